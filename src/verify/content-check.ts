/**
 * Whether a live file's content differs from its archived version, judged block by
 * block against the archived librsync signature: the file is read once (a sparse one by
 * its data), each block's strong sum recomputed. On the main thread for small files,
 * on a worker thread (content-worker.ts) for large ones.
 */
import { SignatureCheck } from '../diff/signature-check.js';
import { sparseRead } from '../source/data-extents.js';
import { readBuffers, type ReadSeen, type WholeFile } from '../source/read-file.js';

/** A large file's check as a worker takes it: its path, stat size, blocks and archived signature. */
export interface ContentTask {
  path: Uint8Array;
  size: number;
  blocks: number;
  signature: Uint8Array;
}

export async function liveContentDiffers(p: Buffer, st: { size: number; blocks: number }, signature: AsyncIterable<Buffer> | Iterable<Buffer>, o: { whole?: Promise<WholeFile>; signal?: AbortSignal } = {}): Promise<boolean> {
  const check = await SignatureCheck.open(signature);
  const seen: ReadSeen = { read: 0, grew: false };
  for await (const data of readBuffers(p, st.size, seen, o.whole ? { whole: o.whole } : await sparseRead(p, st))) {
    o.signal?.throwIfAborted();
    await check.update(data);
  }
  return (await check.finish()) !== undefined || seen.grew;
}
