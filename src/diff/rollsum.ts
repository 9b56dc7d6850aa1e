/**
 * librsync's weak checksums. Rollsum (rsync's Adler-like sum with offset 31) is what
 * duplicity's signatures use; RabinKarp is librsync >= 2.2's default, read only.
 * See duplicity-format.md 7.2.
 */

export const ROLLSUM_CHAR_OFFSET = 31;

/** Rollsum digest of `buf[off, off+len)`: (s2 << 16) | s1, both mod 2^16. */
export function rollsum(buf: Uint8Array, off: number, len: number): number {
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < len; i++) {
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
