/**
 * Runs of zeros in a buffer, found a block at a time: what restore leaves as holes, what
 * compression writes from one precomputed block, and what signatures sum once. Blocks
 * are compared with memcmp after a look at their first and last byte, so data without
 * zeros costs a few byte reads per block and no call into C++.
 */

const ZEROS = Buffer.alloc(64 * 1024);

/** Whether `len` bytes of `b` from `off` are zeros (`len` up to 64 KiB). */
export function isZero(b: Uint8Array, off: number, len: number): boolean {
  if (off + len > b.length || b[off] !== 0 || b[off + len - 1] !== 0) return false;
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return buf.compare(ZEROS, 0, len, off, off + len) === 0;
}

export interface ZeroRunOptions {
  /** Block size: runs are made of whole blocks (at most 64 KiB). */
  step: number;
  /** Where `b` lies in a longer stream (a file offset): blocks are aligned in that stream. @default 0 */
  at?: number;
  /** Runs are cut to a multiple of this (a multiple of `step`); shorter ones are not runs. @default step */
  unit?: number;
}

/** The runs of zeros [start, end) in `b`, in order (see ZeroRunOptions). */
export function zeroRuns(b: Buffer, o: ZeroRunOptions): [number, number][] {
  const { step } = o;
  const unit = o.unit ?? step;
  const runs: [number, number][] = [];
  let i = (step - ((o.at ?? 0) % step)) % step;
  while (i + unit <= b.length) {
    if (!isZero(b, i, step)) {
      i += step;
      continue;
    }
    let j = i + step;
    while (j + step <= b.length && isZero(b, j, step)) j += step;
    const end = i + Math.floor((j - i) / unit) * unit;
    if (end > i) runs.push([i, end]);
    i = j;
  }
  return runs;
}
