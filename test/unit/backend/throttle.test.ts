import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { getBytes } from '../../../src/backend/backend.js';
import { FileBackend } from '../../../src/backend/file.js';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { ThrottledBackend, waitFor } from '../../../src/backend/throttle.js';
import { tempDirs } from '../../helpers/tmp.js';

const tmp = tempDirs();
const KIB = 1024;

/** Seconds that `n` bytes need at `rate` bytes/s, the first 16 KiB step passing at once: a lower bound. */
const atLeast = (n: number, rate: number) => (n - 16 * KIB) / rate;

const source = (data: Buffer, path?: string) => ({
  size: data.length,
  open: () => Readable.from([data]),
  openRange: (s: number, e: number) => Readable.from([data.subarray(s, e)]),
  ...(path ? { path } : {}),
});

describe('ThrottledBackend', () => {
  test("a wait is never cut short by a timer that counts from the event loop's earlier time", async () => {
    for (let i = 0; i < 5; i++) {
      const busy = performance.now();
      while (performance.now() - busy < 3) {
        // work in this turn of the loop: its cached time falls 3 ms behind
      }
      const start = performance.now();
      await waitFor(5);
      expect(performance.now() - start).toBeGreaterThanOrEqual(5);
    }
  });

  test('uploads share one budget: two puts at once take as long as their bytes at the rate; the bytes arrive intact', async () => {
    const inner = new MemoryBackend();
    const b = new ThrottledBackend(inner, { upload: 256 * KIB });
    const a = randomBytes(256 * KIB);
    const c = randomBytes(256 * KIB);
    const t0 = performance.now();
    await Promise.all([b.put('a', source(a)), b.put('c', source(c))]);
    const secs = (performance.now() - t0) / 1000;
    expect(secs).toBeGreaterThanOrEqual(atLeast(512 * KIB, 256 * KIB));
    expect((await getBytes(inner, 'a')).equals(a)).toBe(true);
    expect((await getBytes(inner, 'c')).equals(c)).toBe(true);
  });

  test('a local target streams the bytes at the rate instead of linking the file', async () => {
    const dir = tmp('thr');
    const file = join(dir, 'staged');
    const data = randomBytes(384 * KIB);
    fs.writeFileSync(file, data);
    const target = new FileBackend(join(dir, 't'));
    const t0 = performance.now();
    await new ThrottledBackend(target, { upload: 256 * KIB }).put('x', source(data, file));
    expect((performance.now() - t0) / 1000).toBeGreaterThanOrEqual(atLeast(384 * KIB, 256 * KIB));
    expect(fs.statSync(join(dir, 't', 'x')).ino).not.toBe(fs.statSync(file).ino);
    expect(fs.readFileSync(join(dir, 't', 'x')).equals(data)).toBe(true);
  });

  test('downloads keep to their own rate; without limits nothing is slowed', async () => {
    const inner = new MemoryBackend();
    const data = randomBytes(320 * KIB);
    await inner.put('d', source(data));
    const t0 = performance.now();
    const got = await getBytes(new ThrottledBackend(inner, { download: 256 * KIB }), 'd');
    expect((performance.now() - t0) / 1000).toBeGreaterThanOrEqual(atLeast(320 * KIB, 256 * KIB));
    expect(got.equals(data)).toBe(true);
    // an upload limit does not touch downloads
    const t1 = performance.now();
    await getBytes(new ThrottledBackend(inner, { upload: 1 * KIB }), 'd');
    expect((performance.now() - t1) / 1000).toBeLessThan(atLeast(320 * KIB, 1 * KIB));
  });
});
