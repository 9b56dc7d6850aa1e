/** The runs a sparse restore writes: every aligned block of zeros left out, nothing else. */
import { describe, expect, test } from '@jest/globals';
import { blockAligned, dataRuns } from '../../../src/restore/file-writer.js';

const B = 4096;

/** The bytes a file would hold after writing only the runs (holes read as zeros). */
function replay(c: Buffer, at: number): Buffer {
  const out = Buffer.alloc(c.length);
  for (const [a, b] of dataRuns(c, at)) c.copy(out, a, a, b);
  return out;
}

describe('dataRuns', () => {
  test('data without zero blocks is one run', () => {
    const c = Buffer.alloc(5 * B, 7);
    expect(dataRuns(c, 0)).toEqual([[0, 5 * B]]);
  });

  test('aligned zero blocks are left out, unaligned zeros are written', () => {
    const c = Buffer.alloc(6 * B, 1);
    c.fill(0, B, 3 * B); // two aligned zero blocks
    c.fill(0, 4 * B + 100, 5 * B + 100); // a block of zeros that straddles two blocks
    expect(dataRuns(c, 0)).toEqual([
      [0, B],
      [3 * B, 6 * B],
    ]);
  });

  test('alignment follows the file offset, not the piece', () => {
    const c = Buffer.alloc(3 * B, 0);
    // at file offset 100, the aligned blocks in the piece start at 3996 and 8092
    expect(dataRuns(c, 100)).toEqual([
      [0, B - 100],
      [3 * B - 100, 3 * B],
    ]);
    expect(dataRuns(Buffer.alloc(3 * B), 0)).toEqual([]);
  });

  test.each([0, 1, 4095, 4096, 12345])('replaying the runs at offset %i gives the piece back', (at) => {
    const c = Buffer.alloc(9 * B + 77);
    for (let i = 0; i < c.length; i += 3 * B + 5) c.fill(i % 251, i, Math.min(c.length, i + 700));
    expect(replay(c, at).equals(c)).toBe(true);
  });
});

describe('blockAligned', () => {
  test.each([[[1, 4095, 1, 8192, 3, 5000]], [[4096, 4096]], [[10]], [[100000, 7, 4089, 4096 * 3 + 1]]])('pieces of sizes %j: the same bytes, every piece but the last ending on a block boundary', async (sizes) => {
    const pieces = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    const out: Buffer[] = [];
    for await (const p of blockAligned((async function* () { yield* pieces; })())) out.push(p);
    expect(Buffer.concat(out).equals(Buffer.concat(pieces))).toBe(true);
    let at = 0;
    out.forEach((p, i) => {
      at += p.length;
      if (i < out.length - 1) expect(at % B).toBe(0);
    });
  });
});
