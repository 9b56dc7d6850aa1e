/** A download cut mid-stream, read through RetryBackend: shared by the memory and S3 tests. */
import { expect } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Backend } from '../../src/backend/backend.js';
import { FaultyBackend } from '../../src/backend/faulty.js';
import { RetryBackend } from '../../src/backend/wrappers.js';

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/**
 * Stores 3 MiB, then reads it (and a range of it) through a connection that drops after
 * `cut` bytes `times` times in a row: the bytes must arrive whole and in order, with one
 * retry per drop, each a ranged GET from where the last one stopped.
 */
export async function expectCutGetsResumed(inner: Backend, cut: number, times: number): Promise<void> {
  const data = randomBytes(3 << 20);
  await inner.put('obj', { size: data.length, open: () => Readable.from([data]) });
  for (const range of [undefined, { start: 1000, end: data.length - 777 }]) {
    const faulty = new FaultyBackend(inner, [{ method: 'get', cutAfterBytes: cut, times }]);
    const retries: string[] = [];
    const b = new RetryBackend(faulty, { baseDelayMs: 1, onRetry: (op) => retries.push(op) });
    const got = await readAll(await b.get('obj', range ? { range } : {}));
    const want = range ? data.subarray(range.start, range.end) : data;
    expect(got.length).toBe(want.length);
    expect(got.equals(want)).toBe(true);
    const from = range?.start ?? 0;
    expect(retries).toEqual(Array.from({ length: times }, (_, i) => `get obj from byte ${from + cut * (i + 1)}`));
    expect(faulty.calls.get).toHaveLength(times + 1);
  }
}

/** More drops in a row than the retry budget: the read fails with the drop's error. */
export async function expectEndlessCutsFail(inner: Backend): Promise<void> {
  const data = randomBytes(1 << 20);
  await inner.put('obj2', { size: data.length, open: () => Readable.from([data]) });
  const faulty = new FaultyBackend(inner, [{ method: 'get', cutAfterBytes: 0 }]);
  const b = new RetryBackend(faulty, { baseDelayMs: 1, retries: 3 });
  await expect(readAll(await b.get('obj2'))).rejects.toThrow(/injected cut after 0 bytes/);
  expect(faulty.calls.get).toHaveLength(4);
}
