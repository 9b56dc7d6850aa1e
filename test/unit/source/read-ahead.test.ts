import { describe, expect, test } from '@jest/globals';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAhead } from '../../../src/source/read-ahead.js';
import { tempDirs } from '../../helpers/tmp.js';
import { turns } from '../../helpers/wait.js';

const tmp = tempDirs();

describe('readAhead', () => {
  test('yields in order, pulls ahead, and gives small files their content', async () => {
    const dir = tmp('ahead');
    mkdirSync(dir, { recursive: true });
    const names = Array.from({ length: 50 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    for (const [i, n] of names.entries()) writeFileSync(join(dir, n), Buffer.alloc(i * 100, i));
    let pulled = 0;
    async function* source() {
      for (const n of names) {
        pulled++;
        yield n;
      }
    }
    const seen: string[] = [];
    let maxAhead = 0;
    for await (const { item, whole } of readAhead(source(), (n) => ({ path: Buffer.from(join(dir, n)), stat: statSync(join(dir, n)) }), { depth: 8 })) {
      await turns(20); // a consumer slower than the reads
      maxAhead = Math.max(maxAhead, pulled - seen.length - 1);
      const i = names.indexOf(item);
      expect((await whole!).data.equals(Buffer.alloc(i * 100, i))).toBe(true);
      seen.push(item);
    }
    expect(seen).toEqual(names);
    expect(maxAhead).toBeGreaterThan(1);
    expect(maxAhead).toBeLessThanOrEqual(8);
  });

  test('nothing is pulled past a barrier until the consumer is done with it', async () => {
    const log: string[] = [];
    async function* source() {
      for (const x of ['a', 'b', 'BARRIER', 'c', 'd']) {
        log.push(`pull ${x}`);
        yield x;
      }
    }
    for await (const { item } of readAhead(source(), () => undefined, { barrier: (x) => x === 'BARRIER' })) {
      await turns(20);
      log.push(`use ${item}`);
    }
    expect(log.indexOf('pull c')).toBeGreaterThan(log.indexOf('use BARRIER'));
    expect(log.indexOf('pull BARRIER')).toBeLessThan(log.indexOf('use a'));
  });

  test('an error in the source reaches the consumer at its place, after the items before it', async () => {
    async function* source() {
      yield 1;
      yield 2;
      throw new Error('walk failed');
    }
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const { item } of readAhead(source(), () => undefined)) got.push(item);
      })(),
    ).rejects.toThrow('walk failed');
    expect(got).toEqual([1, 2]);
  });

  test('an unreadable small file fails when the consumer comes to it, not before', async () => {
    const dir = tmp('ahead-missing');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'x'), 'x');
    const st = statSync(join(dir, 'x'));
    const items = ['ok', 'gone'];
    const results: string[] = [];
    for await (const { item, whole } of readAhead(
      (async function* () {
        yield* items;
      })(),
      (n) => ({ path: Buffer.from(join(dir, n === 'ok' ? 'x' : 'missing')), stat: st }),
    )) {
      results.push(await whole!.then(() => `${item}: read`, (e: NodeJS.ErrnoException) => `${item}: ${e.code}`));
    }
    expect(results).toEqual(['ok: read', 'gone: ENOENT']);
  });
});
