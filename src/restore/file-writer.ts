/**
 * A regular file's data and metadata written to a new path: on the main thread by the
 * tree writer, and on the workers of a parallel restore (into the staging scratch
 * directory, from where the main thread moves the file into place). Owner first (chown
 * clears setuid bits and capabilities), then xattrs, then mode and times.
 */
import * as fs from 'node:fs/promises';
import { closeSync, fchmodSync, fchownSync, futimesSync, openSync, rmSync, writeSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import type { TarHeader } from '../volume/tar-header.js';
import { zeroRuns } from '../util/zero-runs.js';
import { localGid, localUid } from '../util/owners.js';
import type { XattrWriter } from './xattr-writer.js';

/** Files up to this size are collected in memory and written with synchronous calls. */
export const SMALL_FILE = 1 << 20;
/** Writes of one large file under way at once. */
const WRITES_IN_FLIGHT = 4;
/** The filesystem block a hole must cover at least (ext4, xfs, btrfs, tmpfs: 4 KiB). */
const HOLE_BLOCK = 4096;

/** How a file's metadata is set. */
export interface FileMeta {
  /** The uid and gid to chown to; absent: not chowned. */
  ids?: [number, number] | undefined;
  xattrs: XattrWriter | undefined;
  /** Leave aligned blocks of zeros as holes. */
  sparse: boolean;
  /** The path as shown in warnings. */
  shown: () => string;
}

/** The uid and gid to give a restored entry: the stored numbers, or (by default) its owner names looked up here. */
export function ownerIds(h: TarHeader, numeric: boolean): [number, number] {
  return numeric ? [h.uid, h.gid] : [localUid(h.uname, h.uid), localGid(h.gname, h.gid)];
}

/** An entry's mtime for the utimes calls: a Date, since Node turns negative seconds (before 1970) into now. */
export function fileTime(h: TarHeader): Date {
  return new Date(h.mtime * 1000);
}

/**
 * The data re-cut so that every piece but the last ends at a multiple of HOLE_BLOCK
 * (the pieces start at file offset 0): decoded pieces come in any size, and a block of
 * zeros cut by a piece boundary would be written as data. Copies less than a block per
 * piece.
 */
export async function* blockAligned(data: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let carry: Buffer | undefined;
  for await (const c of data) {
    let piece = c;
    if (carry) {
      const need = HOLE_BLOCK - carry.length;
      if (c.length < need) {
        carry = Buffer.concat([carry, c]);
        continue;
      }
      yield Buffer.concat([carry, c.subarray(0, need)]);
      piece = c.subarray(need);
      carry = undefined;
    }
    const tail = piece.length % HOLE_BLOCK;
    if (piece.length > tail) yield piece.subarray(0, piece.length - tail);
    if (tail > 0) carry = Buffer.from(piece.subarray(piece.length - tail));
  }
  if (carry) yield carry;
}

/**
 * The ranges of `c` (which lands at file offset `at`) to write when the whole blocks of
 * zeros, aligned in the file, are left out as holes. A block is compared with memcmp,
 * so a file without zeros costs one comparison per 4 KiB.
 */
export function dataRuns(c: Buffer, at: number): [number, number][] {
  const runs: [number, number][] = [];
  let start = 0;
  for (const [s, e] of zeroRuns(c, { step: HOLE_BLOCK, at })) {
    if (s > start) runs.push([start, s]);
    start = e;
  }
  if (start < c.length) runs.push([start, c.length]);
  return runs;
}

/**
 * A file's data when it is small (up to SMALL_FILE: written at once, synchronously);
 * otherwise the same data as a stream again, what was read first included.
 */
export async function smallFile(data: AsyncIterable<Buffer>): Promise<{ parts: Buffer[]; rest?: undefined } | { parts?: undefined; rest: AsyncIterable<Buffer> }> {
  const it = data[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let size = 0;
  let r = await it.next();
  for (; !r.done && size <= SMALL_FILE; r = await it.next()) {
    parts.push(r.value);
    size += r.value.length;
  }
  if (r.done && size <= SMALL_FILE) return { parts };
  const first = r;
  return {
    rest: (async function* () {
      yield* parts;
      if (!first.done) yield first.value;
      for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
    })(),
  };
}

/** A small file at the new path `to`, with synchronous calls; `to` is removed if that fails. */
export function writeSmallFile(to: Buffer, h: TarHeader, parts: Buffer[], m: FileMeta): void {
  try {
    const fd = openSync(to, 'wx', 0o600);
    try {
      for (const c of parts) for (let off = 0; off < c.length; ) off += writeSync(fd, c, off, c.length - off);
      if (m.ids) fchownSync(fd, ...m.ids);
      m.xattrs?.apply(to, h.xattrs, m.shown);
      fchmodSync(fd, h.mode);
      futimesSync(fd, fileTime(h), fileTime(h));
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    rmSync(to, { force: true });
    throw e;
  }
}

/**
 * Writes `data` into the open file `fh` from offset `at` on: pieces at their offsets, a
 * few at once (decoding the next piece overlaps writing this one), blocks of zeros left
 * out as holes when sparse. Returns the offset after the last byte.
 */
export async function writeAt(fh: fs.FileHandle, data: AsyncIterable<Buffer>, at: number, sparse: boolean): Promise<number> {
  if (!isMainThread) return writeAtSync(fh.fd, data, at, sparse);
  const writes = new Set<Promise<void>>();
  let failure: { e: unknown } | undefined;
  const write = async (c: Buffer, pos: number): Promise<void> => {
    const runs: [number, number][] = sparse ? dataRuns(c, pos) : [[0, c.length]];
    for (const [from, to] of runs) {
      for (let off = from; off < to; ) off += (await fh.write(c, off, to - off, pos + off)).bytesWritten;
    }
  };
  let pos = at;
  try {
    // aligned in the file: `at` is a multiple of the block (0, or a multivol chunk's offset)
    for await (const c of sparse ? blockAligned(data) : data) {
      const w: Promise<void> = write(c, pos).then(
        () => void writes.delete(w),
        (e: unknown) => {
          failure ??= { e };
          writes.delete(w);
        },
      );
      writes.add(w);
      pos += c.length;
      if (writes.size >= WRITES_IN_FLIGHT) await Promise.race(writes);
      if (failure) throw failure.e;
    }
  } finally {
    await Promise.all(writes);
  }
  if (failure) throw failure.e;
  return pos;
}

/** The metadata of an open file whose data is complete (`size` bytes: a file that ends in a hole gets its size set). */
export async function finishFile(fh: fs.FileHandle, p: Buffer, h: TarHeader, size: number, m: FileMeta): Promise<void> {
  if ((await fh.stat()).size < size) await fh.truncate(size);
  if (m.ids) await fh.chown(...m.ids);
  m.xattrs?.apply(p, h.xattrs, m.shown);
  await fh.chmod(h.mode);
  await fh.utimes(fileTime(h), fileTime(h));
}

/** A file of any size at the new path `p`, streamed. */
export async function writeFile(p: Buffer, h: TarHeader, data: AsyncIterable<Buffer>, m: FileMeta): Promise<void> {
  const fh = await fs.open(p, 'wx', 0o600);
  try {
    const size = await writeAt(fh, data, 0, m.sparse);
    await finishFile(fh, p, h, size, m);
  } finally {
    await fh.close();
  }
}

/** The data of an entry without any (a directory, a link; a file whose stored content is not used). */
export async function* noData(): AsyncGenerator<Buffer> {}

/**
 * writeAt on a worker thread: with synchronous calls. The thread has nothing else to do
 * while a write runs, and a thread-pool round trip per piece (a futex wake and two
 * context switches) cost more than the copy into the page cache.
 */
async function writeAtSync(fd: number, data: AsyncIterable<Buffer>, at: number, sparse: boolean): Promise<number> {
  let pos = at;
  for await (const c of sparse ? blockAligned(data) : data) {
    const runs: [number, number][] = sparse ? dataRuns(c, pos) : [[0, c.length]];
    for (const [from, to] of runs) {
      for (let off = from; off < to; ) off += writeSync(fd, c, off, to - off, pos + off);
    }
    pos += c.length;
  }
  return pos;
}
