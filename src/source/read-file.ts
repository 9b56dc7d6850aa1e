/**
 * Reading source files for a backup: in 1 MiB buffers cut into duplicity's 64 KiB
 * pieces, at most the size the file had at stat time, noting whether it changed while
 * read; small files can be read ahead whole (see read-ahead.ts).
 */
import { close, closeSync, constants as fsc, open, openSync, read, readSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import type { Extents } from './data-extents.js';

/** Duplicity reads data streams in 64 KiB pieces; each piece is one tar entry. */
export const CHUNK = 65536;

/** What reading a file saw: bytes read, and whether data was still coming at the end. */
export interface ReadSeen {
  read: number;
  grew: boolean;
}

/** A small file read whole ahead of time. */
export interface WholeFile {
  data: Buffer;
  grew: boolean;
}

/**
 * How source files are opened: never through a symlink, and without blocking — a file
 * swapped for a fifo between lstat and open would otherwise wait for a writer forever
 * (O_NONBLOCK changes nothing for regular files; a fifo then reads as empty or fails).
 */
const OPEN_FLAGS = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK;

/** Bytes per read call: 16 chunks, so the thread pool is asked once per MiB. */
const READ_SIZE = 16 * CHUNK;

export interface ReadOptions {
  /** The file's content, read ahead (small files). */
  whole?: Promise<WholeFile>;
  /** Where a sparse file's data lies (data-extents.ts): the rest is holes, not read. */
  extents?: Extents;
}

/** Zeros for the windows of a file that are all hole; shared, so never written to. */
const HOLE = Buffer.alloc(READ_SIZE);

/**
 * Reads a file in buffers of up to 1 MiB (whole 64 KiB chunks but the last), at most
 * the `size` it had at stat time: a file that keeps growing (a live log) must not keep
 * the backup reading forever. What happened is recorded in `seen`: bytes read, and
 * whether data was still coming at the end (probed with one extra byte), so the caller
 * can report files that changed while being read. The next read is under way while
 * the caller works on the current buffer. An empty file yields nothing.
 */
export async function* readBuffers(p: Buffer, size: number, seen: ReadSeen, o: ReadOptions = {}): AsyncGenerator<Buffer> {
  if (o.whole) {
    const f = await o.whole;
    seen.read += f.data.length;
    seen.grew = f.grew;
    if (f.data.length > 0) yield f.data;
    return;
  }
  const fh = await fs.open(p, OPEN_FLAGS);
  if (o.extents) {
    try {
      yield* sparseBuffers(fh, size, o.extents, seen);
    } finally {
      await fh.close();
    }
    return;
  }
  let requested = 0;
  let eof = false;
  const readNext = async (): Promise<Buffer> => {
    const want = Math.min(READ_SIZE, size - requested);
    requested += want;
    const buf = Buffer.allocUnsafe(want);
    const n = await readFull(fh, buf);
    eof = n < want;
    return n < want ? buf.subarray(0, n) : buf;
  };
  let pending: Promise<Buffer> | undefined = size > 0 ? readNext() : undefined;
  try {
    let total = 0;
    while (pending) {
      const buf = await pending;
      pending = !eof && requested < size ? readNext() : undefined;
      seen.read += buf.length;
      total += buf.length;
      if (buf.length > 0) yield buf;
    }
    if (total === size) seen.grew = (await fh.read(Buffer.alloc(1), 0, 1, null)).bytesRead > 0;
  } finally {
    await pending?.catch(() => undefined); // a read still in flight must end before close
    await fh.close();
  }
}

/**
 * readBuffers for a sparse file: the same 1 MiB windows, but only the data ranges are
 * read (positioned reads); a window that is all hole is the shared zeros. A file that
 * shrank ends where its data ends, one that grew is probed past `size` as above.
 */
async function* sparseBuffers(fh: fs.FileHandle, size: number, extents: Extents, seen: ReadSeen): AsyncGenerator<Buffer> {
  let next = 0; // the first extent that may reach into the window
  for (let w = 0; w < size; w += READ_SIZE) {
    const end = Math.min(size, w + READ_SIZE);
    while (next < extents.length && extents[next]![1] <= w) next++;
    let buf: Buffer | undefined;
    let short = false;
    for (let i = next; i < extents.length && extents[i]![0] < end; i++) {
      const [s, e] = [Math.max(w, extents[i]![0]), Math.min(end, extents[i]![1])];
      buf ??= Buffer.alloc(end - w);
      const want = e - s;
      const got = await readFullAt(fh, buf, s - w, want, s);
      if (got < want) {
        buf = buf.subarray(0, s - w + got);
        short = true;
        break;
      }
    }
    const out = buf ?? HOLE.subarray(0, end - w);
    seen.read += out.length;
    if (out.length > 0) yield out;
    if (short) return;
  }
  seen.grew = (await fh.read(Buffer.alloc(1), 0, 1, size)).bytesRead > 0;
}

/** Reads `length` bytes at file position `at` into `buf[off]`; fewer only at end of file. */
async function readFullAt(fh: fs.FileHandle, buf: Buffer, off: number, length: number, at: number): Promise<number> {
  let n = 0;
  while (n < length) {
    const { bytesRead } = await fh.read(buf, off + n, length - n, at + n);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return n;
}

/**
 * A file's 64 KiB pieces as duplicity stores them: the last one short, and a stream of
 * exactly k × 64 KiB (or an empty file) ends with an empty piece.
 */
export async function* pieces(buffers: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const buf of buffers) {
    total += buf.length;
    for (let off = 0; off < buf.length; off += CHUNK) yield buf.subarray(off, off + CHUNK);
  }
  if (total % CHUNK === 0) yield Buffer.alloc(0);
}

/** Fills `buf` from the file's current position; fewer bytes only at end of file. */
async function readFull(fh: fs.FileHandle, buf: Buffer): Promise<number> {
  let n = 0;
  while (n < buf.length) {
    const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return n;
}

/**
 * How small files are read: with synchronous calls while those come back fast — from
 * the page cache a small file takes ~10 µs that way, a third of the main-thread time of
 * three thread-pool round trips (full backup of the benchmark corpus: −4 %) — and on the
 * thread pool, several at once, for the next `asyncStretch` files once the last `window`
 * synchronous reads took more than `avgMs` each on average (a disk, a network
 * filesystem). An average, not a single read: a busy machine preempts the main thread
 * for a millisecond or three now and then, and that says nothing about the storage.
 */
export class SmallReadPolicy {
  #asyncLeft = 0;
  readonly #recent: Float64Array;
  #next = 0;
  #sum = 0;
  constructor(
    readonly avgMs = 0.2,
    readonly window = 64,
    readonly asyncStretch = 1000,
  ) {
    this.#recent = new Float64Array(window);
  }
  /** Whether the next small file is read synchronously. */
  get sync(): boolean {
    if (this.#asyncLeft === 0) return true;
    this.#asyncLeft--;
    return false;
  }
  /** Told how long a synchronous read took. */
  took(ms: number): void {
    this.#sum += ms - this.#recent[this.#next]!;
    this.#recent[this.#next] = ms;
    this.#next = (this.#next + 1) % this.window;
    if (this.#sum > this.avgMs * this.window) {
      this.#asyncLeft = this.asyncStretch;
      this.#recent.fill(0);
      this.#sum = 0;
    }
  }
}

const smallReads = new SmallReadPolicy();

/** Reads a file of at most `size` bytes whole (`policy`: synchronously or on the thread pool). */
export function readWhole(p: Buffer, size: number, policy: SmallReadPolicy = smallReads): Promise<WholeFile> {
  if (!policy.sync) return readWholeAsync(p, size);
  const t0 = performance.now();
  try {
    return Promise.resolve(readWholeSync(p, size));
  } catch (e) {
    return Promise.reject(e as Error);
  } finally {
    policy.took(performance.now() - t0);
  }
}

/** One byte more than the stat size tells whether the file grew since. */
const wholeFile = (buf: Buffer, n: number, size: number): WholeFile => ({ data: buf.subarray(0, Math.min(n, size)), grew: n > size });

function readWholeSync(p: Buffer, size: number): WholeFile {
  const fd = openSync(p, OPEN_FLAGS);
  try {
    const buf = Buffer.allocUnsafe(size + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      n += r;
      if (r === 0 || n === buf.length) return wholeFile(buf, n, size);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The same on the thread pool, with callbacks, not fs/promises: a FileHandle costs more
 * main-thread time per call (22,700 cached files read 32 at a time: 1.05 vs 1.25 s of
 * CPU).
 */
function readWholeAsync(p: Buffer, size: number): Promise<WholeFile> {
  return new Promise((resolve, reject) => {
    open(p, OPEN_FLAGS, (openErr, fd) => {
      if (openErr) return reject(openErr);
      const buf = Buffer.allocUnsafe(size + 1);
      let n = 0;
      const finish = (err: Error | null) =>
        close(fd, (closeErr) => {
          const e = err ?? closeErr;
          if (e) reject(e);
          else resolve(wholeFile(buf, n, size));
        });
      const readMore = () =>
        read(fd, buf, n, buf.length - n, null, (err, bytesRead) => {
          if (err) return finish(err);
          n += bytesRead;
          if (bytesRead === 0 || n === buf.length) finish(null);
          else readMore();
        });
      readMore();
    });
  });
}
