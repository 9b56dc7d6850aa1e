/**
 * MD4 (RFC 1320). librsync's default strong sum for duplicity signatures; Node's
 * OpenSSL 3 ships no MD4, so it is implemented here. Written for many short inputs
 * (512–2048-byte blocks): no allocation per call besides the 16-byte digest.
 */

const X = new Int32Array(16);
const TAIL = new Uint8Array(128);

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

/** Processes 64-byte blocks of `buf` from `off`, updating state `s`. */
function blocks(s: Int32Array, buf: Uint8Array, off: number, count: number): void {
  let a = s[0]!, b = s[1]!, c = s[2]!, d = s[3]!;
  for (let blk = 0; blk < count; blk++) {
    const p = off + blk * 64;
    for (let i = 0; i < 16; i++) {
      const q = p + i * 4;
      X[i] = buf[q]! | (buf[q + 1]! << 8) | (buf[q + 2]! << 16) | (buf[q + 3]! << 24);
    }
    const aa = a, bb = b, cc = c, dd = d;
    // Round 1: F(x,y,z) = (x & y) | (~x & z)
    for (let i = 0; i < 16; i += 4) {
      a = rotl((a + ((b & c) | (~b & d)) + X[i]!) | 0, 3);
      d = rotl((d + ((a & b) | (~a & c)) + X[i + 1]!) | 0, 7);
      c = rotl((c + ((d & a) | (~d & b)) + X[i + 2]!) | 0, 11);
      b = rotl((b + ((c & d) | (~c & a)) + X[i + 3]!) | 0, 19);
    }
    // Round 2: G(x,y,z) = (x & y) | (x & z) | (y & z), constant 0x5a827999
    for (let i = 0; i < 4; i++) {
      a = rotl((a + ((b & c) | (b & d) | (c & d)) + X[i]! + 0x5a827999) | 0, 3);
      d = rotl((d + ((a & b) | (a & c) | (b & c)) + X[i + 4]! + 0x5a827999) | 0, 5);
      c = rotl((c + ((d & a) | (d & b) | (a & b)) + X[i + 8]! + 0x5a827999) | 0, 9);
      b = rotl((b + ((c & d) | (c & a) | (d & a)) + X[i + 12]! + 0x5a827999) | 0, 13);
    }
    // Round 3: H(x,y,z) = x ^ y ^ z, constant 0x6ed9eba1, order 0 8 4 12 2 10 6 14 ...
    for (const i of R3) {
      a = rotl((a + (b ^ c ^ d) + X[i]! + 0x6ed9eba1) | 0, 3);
      d = rotl((d + (a ^ b ^ c) + X[i + 8]! + 0x6ed9eba1) | 0, 9);
      c = rotl((c + (d ^ a ^ b) + X[i + 4]! + 0x6ed9eba1) | 0, 11);
      b = rotl((b + (c ^ d ^ a) + X[i + 12]! + 0x6ed9eba1) | 0, 15);
    }
    a = (a + aa) | 0;
    b = (b + bb) | 0;
    c = (c + cc) | 0;
    d = (d + dd) | 0;
  }
  s[0] = a;
  s[1] = b;
  s[2] = c;
  s[3] = d;
}
const R3 = [0, 2, 1, 3];

const STATE = new Int32Array(4);

/**
 * MD4 of `buf[off, off+len)`, written into `out[outOff, outOff+outLen)` (truncated
 * digest: librsync signatures keep the first `strong_sum_len` bytes).
 */
export function md4Into(buf: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, outLen = 16): void {
  STATE[0] = 0x67452301;
  STATE[1] = 0xefcdab89 | 0;
  STATE[2] = 0x98badcfe | 0;
  STATE[3] = 0x10325476;
  const full = len >>> 6;
  blocks(STATE, buf, off, full);
  const rem = len - full * 64;
  TAIL.fill(0);
  TAIL.set(buf.subarray(off + full * 64, off + len), 0);
  TAIL[rem] = 0x80;
  const tailLen = rem < 56 ? 64 : 128;
  const bits = len * 8;
  TAIL[tailLen - 8] = bits & 0xff;
  TAIL[tailLen - 7] = (bits >>> 8) & 0xff;
  TAIL[tailLen - 6] = (bits >>> 16) & 0xff;
  TAIL[tailLen - 5] = (bits >>> 24) & 0xff;
  const hi = Math.floor(bits / 0x100000000);
  TAIL[tailLen - 4] = hi & 0xff;
  TAIL[tailLen - 3] = (hi >>> 8) & 0xff;
  TAIL[tailLen - 2] = (hi >>> 16) & 0xff;
  TAIL[tailLen - 1] = (hi >>> 24) & 0xff;
  blocks(STATE, TAIL, 0, tailLen / 64);
  for (let i = 0; i < outLen; i++) out[outOff + i] = (STATE[i >> 2]! >>> ((i & 3) * 8)) & 0xff;
}

/** MD4 digest (16 bytes) of a whole buffer. */
export function md4(buf: Uint8Array): Buffer {
  const out = Buffer.alloc(16);
  md4Into(buf, 0, buf.length, out, 0, 16);
  return out;
}
