import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { md4 } from '../../../src/diff/md4.js';
import { Md4x4, md4x4 } from '../../../src/diff/md4x4.js';
import { signatureOf } from '../../../src/diff/signature.js';
import { rollsum } from '../../../src/diff/rollsum.js';

describe('MD4 of four blocks at once (WebAssembly SIMD)', () => {
  test('is available on Node 20', () => {
    expect(md4x4).toBeDefined();
  });

  test.each([64, 512, 1024, 2048, 16384])('equals md4 for every lane, %d-byte blocks, any input offset', (len) => {
    for (const off of [0, 1, 3, 4096]) {
      const buf = randomBytes(off + 4 * len);
      const out = Buffer.alloc(4 * 20);
      md4x4!.sum4(buf, off, len, out, 2, 20, 16);
      for (let i = 0; i < 4; i++) {
        const want = md4(buf.subarray(off + i * len, off + (i + 1) * len));
        expect(out.subarray(2 + i * 20, 2 + i * 20 + 16).toString('hex')).toBe(want.toString('hex'));
      }
    }
  });

  test('writes only the first n bytes of each digest', () => {
    const buf = randomBytes(4 * 512);
    const out = Buffer.alloc(4 * 8 + 1, 0xee);
    md4x4!.sum4(buf, 0, 512, out, 0, 8, 8);
    for (let i = 0; i < 4; i++) expect(out.subarray(i * 8, i * 8 + 8).equals(md4(buf.subarray(i * 512, (i + 1) * 512)).subarray(0, 8))).toBe(true);
    expect(out[32]).toBe(0xee);
  });

  test('takes block lengths that are multiples of 64 up to 16 KiB only', () => {
    expect([64, 512, 2048, 16384].every((n) => Md4x4.fits(n))).toBe(true);
    expect([0, 100, 700, 16448].some((n) => Md4x4.fits(n))).toBe(false);
  });
});

describe('signatures summed four blocks at a time', () => {
  /** Block by block with the scalar functions: the definition. */
  function reference(data: Buffer, bl: number): Buffer {
    const parts = [Buffer.from([0x72, 0x73, 0x01, 0x36, 0, 0, bl >> 8, bl & 0xff, 0, 0, 0, 8])];
    for (let off = 0; off < data.length; off += bl) {
      const n = Math.min(bl, data.length - off);
      const rec = Buffer.alloc(12);
      rec.writeUInt32BE(rollsum(data, off, n), 0);
      md4(data.subarray(off, off + n)).copy(rec, 4, 0, 8);
      parts.push(rec);
    }
    return Buffer.concat(parts);
  }

  test.each([512, 2048, 700])('equal the block-by-block signature (block %d; 700 is summed one by one)', (bl) => {
    for (const size of [0, bl * 3, bl * 4, bl * 4 + 1, bl * 37 + 5]) {
      const data = randomBytes(size);
      expect(signatureOf(data, bl).equals(reference(data, bl))).toBe(true);
    }
  });
});

const wat2wasm = spawnSync('sh', ['-c', 'command -v wat2wasm']).status === 0;
(wat2wasm ? test : test.skip)('src/diff/md4x4-wasm.ts is what scripts/gen-md4x4.mjs generates', () => {
  expect(existsSync('scripts/gen-md4x4.mjs')).toBe(true);
  expect(() => execFileSync('node', ['scripts/gen-md4x4.mjs', '--check'], { stdio: 'pipe' })).not.toThrow();
});

describe('signature records of four blocks at once', () => {
  test.each([64, 512, 2048, 16384])('rollsum and MD4 prefix equal the scalar ones (%d-byte blocks)', (len) => {
    for (const fill of ['random', 'zeros', 'ones'] as const) {
      const buf = fill === 'random' ? randomBytes(3 + 4 * len) : Buffer.alloc(3 + 4 * len, fill === 'zeros' ? 0 : 0xff);
      const out = Buffer.alloc(4 * 12);
      md4x4!.records4(buf, 3, len, out, 0, 12, 8);
      for (let i = 0; i < 4; i++) {
        const off = 3 + i * len;
        expect(out.readUInt32BE(i * 12)).toBe(rollsum(buf, off, len));
        expect(out.subarray(i * 12 + 4, i * 12 + 12).equals(md4(buf.subarray(off, off + len)).subarray(0, 8))).toBe(true);
      }
    }
  });
});
