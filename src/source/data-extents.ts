/**
 * Which files a backup reads by their data alone: a sparse file's holes are not read
 * when the file system says where its data lies (lseek SEEK_DATA/SEEK_HOLE, through
 * the python3 helper: util/fs-helper.ts). Only files with at least MIN_HOLE bytes
 * unallocated are asked about: a round trip to the helper costs more than reading a
 * small hole, which the kernel fills with zeros cheaply.
 */
import { fsHelper } from '../util/fs-helper.js';

/** A file is asked about when this much of its size is not allocated (st_blocks). */
export const MIN_HOLE = 1 << 20;

/** Data ranges [start, end) in file order. */
export type Extents = [number, number][];

export function looksSparse(st: { size: number; blocks: number }): boolean {
  return st.size - st.blocks * 512 >= MIN_HOLE && !fsHelper().unavailable;
}

/** How to read a file (readBuffers' options): by its data ranges when it is sparse and they are known. */
export async function sparseRead(p: Buffer, st: { size: number; blocks: number }): Promise<{ extents?: Extents }> {
  if (!looksSparse(st)) return {};
  const extents = await fsHelper().extents(p, st.size);
  return extents ? { extents } : {};
}
