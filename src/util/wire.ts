/** What crosses threads as structured clones gets its types back here. */

/** A Buffer that crossed threads (it arrives as a Uint8Array), as a Buffer again, without a copy. */
export function revivedBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
