import { describe, expect, test } from '@jest/globals';
import { BufferQueue, joined } from '../../../src/util/buffer-queue.js';

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
