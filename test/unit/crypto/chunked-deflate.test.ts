import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { inflateRawSync } from 'node:zlib';
import { ChunkedDeflate, looksIncompressible, storedBlocks, zeroRunSpans } from '../../../src/crypto/chunked-deflate.js';

async function deflate(data: Buffer, step: number, parallel = 3): Promise<{ out: Buffer; d: ChunkedDeflate }> {
  const d = new ChunkedDeflate({ level: 6, parallel });
  const parts: Buffer[] = [];
  async function* src() {
    for (let i = 0; i < data.length; i += step) yield data.subarray(i, i + step);
  }
  await pipeline(Readable.from(src()), d, new Writable({ write(c, _e, cb) { parts.push(c); cb(); } }));
  return { out: Buffer.concat(parts), d };
}

describe('chunked deflate', () => {
  test('mixed data: one valid deflate stream, random pieces stored, text compressed, order kept', async () => {
    const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(30000));
    const data = Buffer.concat([text.subarray(0, 1_200_000), randomBytes(1_600_000), text.subarray(0, 800_001), Buffer.alloc(5)]);
    for (const step of [1 << 20, 65536, 4097]) {
      const { out, d } = await deflate(data, step);
      expect(inflateRawSync(out).equals(data)).toBe(true);
      expect(d.stored).toBeGreaterThanOrEqual(5);
      expect(d.compressed).toBeGreaterThanOrEqual(6);
      expect(out.length).toBeLessThan(data.length * 0.5);
    }
  });

  test('the output does not depend on how many pieces run at once', async () => {
    const lines = Array.from({ length: 40000 }, (_, i) => `${i} ${(i * 7919) % 10007} row\n`).join('');
    const data = Buffer.concat([Buffer.from(lines), randomBytes(300_000), Buffer.from(lines)]);
    const one = await deflate(data, 65536, 1);
    const four = await deflate(data, 65536, 4);
    expect(four.out.equals(one.out)).toBe(true);
    expect(inflateRawSync(one.out).equals(data)).toBe(true);
  });

  test('runs of zeros are written from one precomputed block: the stream still inflates to the input, whatever the cut', async () => {
    const text = Buffer.from('some text between the holes\n'.repeat(2000));
    // runs long and short, aligned and not, at the start, the end and across piece boundaries
    const data = Buffer.concat([Buffer.alloc(70_000), text, Buffer.alloc(1 << 20), randomBytes(3000), Buffer.alloc(16_383), text.subarray(0, 999), Buffer.alloc(300_001)]);
    for (const step of [1 << 20, 65536, 4097]) {
      const { out, d } = await deflate(data, step);
      expect(inflateRawSync(out).equals(data)).toBe(true);
      expect(d.zeroRuns).toBeGreaterThan(64); // most of the 1.4 MiB of zeros
    }
    const sparse = await deflate(Buffer.alloc(8 << 20), 1 << 20);
    expect(sparse.out.length).toBeLessThan(20_000);
    expect(inflateRawSync(sparse.out).equals(Buffer.alloc(8 << 20))).toBe(true);
  });

  test('zero runs are whole 16 KiB runs on 1 KiB steps; shorter ones stay with the data', () => {
    const piece = Buffer.alloc(256 * 1024, 1);
    piece.fill(0, 1000, 1000 + 40_000); // from 1024 to 1024 + 32768 is a run of two
    piece.fill(0, 100_000, 100_000 + 16_000); // too short once aligned
    expect(zeroRunSpans(piece)).toEqual([
      { zero: false, start: 0, end: 1024 },
      { zero: true, start: 1024, end: 1024 + 32768 },
      { zero: false, start: 1024 + 32768, end: piece.length },
    ]);
    expect(zeroRunSpans(Buffer.alloc(16384))).toEqual([{ zero: true, start: 0, end: 16384 }]);
  });

  test('empty input is a valid empty stream', async () => {
    const { out } = await deflate(Buffer.alloc(0), 1);
    expect(inflateRawSync(out).length).toBe(0);
  });

  test('stored blocks of 64 KiB split at 65535 bytes', () => {
    const data = randomBytes(65536);
    const s = storedBlocks(data);
    expect(s.length).toBe(65536 + 10);
    expect(inflateRawSync(Buffer.concat([s, Buffer.from([0x01, 0, 0, 0xff, 0xff])])).equals(data)).toBe(true);
    expect(looksIncompressible(data)).toBe(true);
    expect(looksIncompressible(Buffer.alloc(65536, 'a'))).toBe(false);
    // base64 of random bytes: high-entropy text that deflate still shrinks by a quarter
    expect(looksIncompressible(Buffer.from(randomBytes(49152).toString('base64')))).toBe(false);
  });
});
