/**
 * 32-bit word views of byte buffers, for the checksum loops (MD4, rollsum) that read
 * four bytes at a time. File reads land in 4-byte-aligned buffers, so a view over the
 * buffer's own memory avoids a copy; one view is cached per ArrayBuffer because the
 * loops are called per 512–2048-byte block of the same 64 KiB read.
 */

export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

let viewOf: ArrayBufferLike | undefined;
let view: Int32Array<ArrayBufferLike> = new Int32Array(0);

/** Whether `buf[off…]` can be read as little-endian words in place. */
export function alignedWords(buf: Uint8Array, off: number): boolean {
  return LITTLE_ENDIAN && ((buf.byteOffset + off) & 3) === 0;
}

/** An Int32Array over the whole ArrayBuffer of `buf` (index = byte offset / 4). */
export function wordView(buf: Uint8Array): Int32Array<ArrayBufferLike> {
  if (viewOf !== buf.buffer) {
    viewOf = buf.buffer;
    view = new Int32Array(buf.buffer, 0, buf.buffer.byteLength >>> 2);
  }
  return view;
}
