import { describe, expect, test } from '@jest/globals';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { md4 } from '../../../src/diff/md4.js';
import { rollsum } from '../../../src/diff/rollsum.js';
import { blockSizeFor, SignatureBuilder, signatureOf, signatureSize } from '../../../src/diff/signature.js';
import { tempDirs } from '../../helpers/tmp.js';
import { requireTool, runOk } from '../../helpers/tools.js';

const tmp = tempDirs();

function pseudo(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

describe('md4', () => {
  // RFC 1320 appendix A.5 test suite
  test.each([
    ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
    ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
    ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
    ['message digest', 'd9130a8164549fe818874806e1c7014b'],
    ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '043f8582f241db351ce627e153e7f0e4'],
    ['1234567890'.repeat(8), 'e33b4ddc9c38f2199c3e7b164fcc0536'],
  ])('MD4(%j)', (input, hex) => {
    expect(md4(Buffer.from(input)).toString('hex')).toBe(hex);
  });

  test('hello world\\n matches the prefix duplicity stores', () => {
    expect(md4(Buffer.from('hello world\n')).toString('hex').slice(0, 16)).toBe('97668ab2f29d0115');
  });

  test('the in-place word path and the copying path agree at every alignment and length', () => {
    // Aligned input is read through a word view of the caller's buffer, unaligned input
    // through a copy: both must give the same digest, across the 55/56/64 padding edges.
    const data = pseudo(5000, 7);
    for (const len of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 512, 513, 2048, 4999]) {
      const at = (shift: number) => {
        const b = Buffer.alloc(shift + len);
        data.copy(b, shift, 0, len);
        return md4(b.subarray(shift)).toString('hex');
      };
      expect(new Set([0, 1, 2, 3, 4, 5, 6, 7].map(at))).toEqual(new Set([at(0)]));
    }
  });
});

describe('rollsum', () => {
  test('test vector from librsync', () => {
    expect(rollsum(Buffer.from('hello world\n'), 0, 12)).toBe(0x27d805da);
  });

  test('the four-bytes-a-step path equals the definition at every alignment', () => {
    const naive = (b: Uint8Array, off: number, len: number) => {
      let s1 = 0, s2 = 0;
      for (let i = 0; i < len; i++) {
        s1 += b[off + i]! + 31;
        s2 += s1;
      }
      return (((s2 & 0xffff) << 16) | (s1 & 0xffff)) >>> 0;
    };
    const data = pseudo(70000, 3);
    data.fill(0xff, 100, 3000); // long runs of high bytes exercise the mod-2^16 wrap
    for (const len of [63, 64, 65, 66, 67, 512, 1536, 2048, 65536]) {
      for (const off of [0, 1, 2, 3, 4, 512]) expect(rollsum(data, off, len)).toBe(naive(data, off, len));
    }
  });
});

describe('block size rule', () => {
  test.each([
    [0, 512],
    [1023999, 512],
    [2047999, 512],
    [2048000, 1024],
    [3000000, 1024],
    [3072000, 1536],
    [4096000, 2048],
    [10 ** 10, 2048],
  ])('%d bytes → %d', (size, bl) => expect(blockSizeFor(size)).toBe(bl));
});

describe('signatures equal rdiff -H md4 -R rollsum -S 8', () => {
  requireTool('rdiff');
  const cases: [number, number][] = [
    [0, 512],
    [1, 512],
    [511, 512],
    [512, 512],
    [513, 512],
    [12, 512],
    [100000, 512],
    [65536, 1024],
    [3000000, 1024],
    [777777, 1536],
    [4200000, 2048],
  ];
  test.each(cases)('%d bytes, block %d', (size, bl) => {
    const dir = tmp('sig');
    const data = pseudo(size, size + bl);
    const f = join(dir, 'in');
    writeFileSync(f, data);
    runOk('rdiff', ['-H', 'md4', '-R', 'rollsum', '-S', '8', '-b', String(bl), 'signature', f, join(dir, 'sig')]);
    const expected = readFileSync(join(dir, 'sig'));
    expect(signatureOf(data, bl).equals(expected)).toBe(true);
    expect(expected.length).toBe(signatureSize(size, bl));
  });

  test.each([512, 1536, 2048])('runs of zeros (summed once, copied after) among data, block %d', (bl) => {
    const dir = tmp('sig0');
    // zeros at block-aligned and unaligned places, a lone zero block, data between
    const data = Buffer.concat([pseudo(3 * bl + 17, 1), Buffer.alloc(40 * bl), pseudo(bl, 2), Buffer.alloc(4 * bl), pseudo(5, 3), Buffer.alloc(9 * bl + 3)]);
    const f = join(dir, 'in');
    writeFileSync(f, data);
    runOk('rdiff', ['-H', 'md4', '-R', 'rollsum', '-S', '8', '-b', String(bl), 'signature', f, join(dir, 'sig')]);
    expect(signatureOf(data, bl).equals(readFileSync(join(dir, 'sig')))).toBe(true);
  });

  test('fed in odd chunk sizes, the result is the same', () => {
    const data = pseudo(100003, 9);
    const whole = signatureOf(data, 512);
    for (const step of [1, 7, 511, 513, 4096]) {
      const parts: Buffer[] = [];
      const b = new SignatureBuilder(512, (x) => parts.push(x));
      for (let i = 0; i < data.length; i += step) b.update(data.subarray(i, i + step));
      b.finish();
      expect(Buffer.concat(parts).equals(whole)).toBe(true);
    }
  });
});
