import { describe, expect, test } from '@jest/globals';
import { BufferQueue, coalesce, joined } from '../../../src/util/buffer-queue.js';

describe('BufferQueue', () => {
  test('takes lengths across buffer boundaries, in order, slicing without copying', () => {
    const q = new BufferQueue();
    const a = Buffer.from('abcde');
    q.push(a);
    q.push(Buffer.alloc(0));
    q.push(Buffer.from('fgh'));
    q.push(Buffer.from('ijklmn'));
    expect(q.size).toBe(14);
    const first = q.take(7);
    expect(joined(first).toString()).toBe('abcdefg');
    expect(first[0]!.buffer).toBe(a.buffer); // a slice of the queued buffer, not a copy
    expect(joined(q.take(1)).toString()).toBe('h');
    expect(q.size).toBe(6);
    expect(joined(q.takeAll()).toString()).toBe('ijklmn');
    expect(q.size).toBe(0);
    expect(q.takeAll()).toEqual([]);
  });
});

describe('coalesce', () => {
  const run = async (chunks: Buffer[], min: number) => {
    const out: Buffer[] = [];
    for await (const c of coalesce((async function* () { yield* chunks; })(), min)) out.push(c);
    return out;
  };

  test('joins runs of small chunks into pieces of at least min bytes, keeping every byte in order', async () => {
    const chunks = Array.from({ length: 23 }, (_, i) => Buffer.alloc(3 + (i % 5), i));
    const out = await run(chunks, 16);
    expect(Buffer.concat(out)).toEqual(Buffer.concat(chunks));
    for (const c of out.slice(0, -1)) expect(c.length).toBeGreaterThanOrEqual(16);
    expect(out.length).toBeLessThan(chunks.length / 2);
  });

  test('passes large chunks through uncopied, but never ahead of small ones waiting', async () => {
    const big = Buffer.alloc(100, 1);
    const small = Buffer.from('ab');
    const out = await run([big, small, big, Buffer.from('c')], 50);
    expect(out[0]).toBe(big); // the same buffer: not copied
    expect(out[1]).toEqual(Buffer.concat([small, big])); // the waiting bytes go first
    expect(out.map((c) => c.toString('latin1')).join('')).toBe(Buffer.concat([big, small, big, Buffer.from('c')]).toString('latin1'));
    expect(await run([], 8)).toEqual([]);
  });
});
