import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { SignatureCheck } from '../../../src/diff/signature-check.js';
import { signatureOf } from '../../../src/diff/signature.js';

/** Checks `data` against `sig`, both fed in pieces (the signature in odd-sized ones). */
async function check(sig: Buffer, data: Buffer, step: number): Promise<string | undefined> {
  function* sigPieces() {
    for (let i = 0; i < sig.length; i += 777) yield sig.subarray(i, i + 777);
  }
  const c = await SignatureCheck.open(sigPieces());
  for (let i = 0; i < data.length; i += step) await c.update(data.subarray(i, i + step));
  return c.finish();
}

describe('checking a signature against data', () => {
  const data = randomBytes(100_000);
  test.each([512, 1536, 2048])('the signature of the data passes in any chunking (block %d)', async (bl) => {
    const sig = signatureOf(data, bl);
    for (const step of [1, 100, 4096, 65536, 200_000]) expect(await check(sig, data, step)).toBeUndefined();
    expect(await check(signatureOf(Buffer.alloc(0), bl), Buffer.alloc(0), 1)).toBeUndefined();
  });

  test('a changed byte, a missing or an extra block, and a damaged strong sum are found', async () => {
    const sig = signatureOf(data, 512);
    const changed = Buffer.from(data);
    changed[70_000]! ^= 1;
    expect(await check(sig, changed, 4096)).toBe('block 136 differs');
    // Blocks are checked four at a time: a change is named right in every lane.
    for (const block of [137, 138, 139]) {
      const c = Buffer.from(data);
      c[block * 512 + 17]! ^= 0x80;
      expect(await check(sig, c, 65536)).toBe(`block ${block} differs`);
    }
    expect(await check(sig, data.subarray(0, 512 * 150), 4096)).toBe("the signature goes on past the data's 150 blocks");
    expect(await check(signatureOf(data.subarray(0, 5120), 512), data.subarray(0, 5632), 4096)).toBe("more data than the signature's 10 blocks");
    const bad = Buffer.from(sig);
    bad[12 + 5 * 12 + 4 + 3]! ^= 0x80; // block 5's strong sum
    expect(await check(bad, data, 4096)).toBe('block 5 differs');
    expect(await check(Buffer.from('not a signature at all'), data, 4096)).toBe('not a librsync signature');
  });

  test('weak sums are not what it checks (they only steer the delta search)', async () => {
    const sig = signatureOf(data, 512);
    const weakOff = Buffer.from(sig);
    weakOff[12 + 7 * 12]! ^= 0xff; // block 7's weak sum
    expect(await check(weakOff, data, 4096)).toBeUndefined();
  });
});
