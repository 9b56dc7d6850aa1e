/**
 * Keeps the I/O of the next entries under way while the current one is encoded.
 *
 * Walking and reading small files are latency-bound: each lstat, open, read and close
 * is a round trip to the thread pool. On the benchmark corpus (22,000 files under
 * 64 KiB) the main thread sat idle 40 % of a full backup waiting for them. This pulls
 * up to `depth` items ahead of the consumer and starts reading each small regular file
 * as it is pulled, so those waits overlap with each other and with the encoding (or,
 * while the files come from the page cache, reads them at once: see SmallReadPolicy).
 * Memory: at most `depth` small files (depth × maxFileSize).
 */
import { readWhole, type WholeFile } from './read-file.js';

export interface ReadAheadOptions<T> {
  /** Items pulled ahead of the consumer. @default 32 */
  depth?: number;
  /** Files up to this size are read whole ahead of time. @default 256 KiB */
  maxFileSize?: number;
  /**
   * Items after which nothing more is pulled until the consumer has dealt with them
   * (an incremental's changed file: its old signature is read from the stream the
   * source walks, and only before the source moves on). @default none
   */
  barrier?: (item: T) => boolean;
}

export interface Ahead<T> {
  item: T;
  /** The file's content, for a small regular file. */
  whole?: Promise<WholeFile>;
}

/** `fileOf` names the file to read ahead for an item, if any. */
export async function* readAhead<T>(
  source: AsyncIterable<T>,
  fileOf: (item: T) => { path: Buffer; stat: { isFile(): boolean; size: number } } | undefined,
  opts: ReadAheadOptions<T> = {},
): AsyncGenerator<Ahead<T>> {
  const depth = opts.depth ?? 32;
  const maxFileSize = opts.maxFileSize ?? 256 * 1024;
  const barrier = opts.barrier ?? (() => false);
  const it = source[Symbol.asyncIterator]();
  const queue: Promise<IteratorResult<Ahead<T>>>[] = [];
  let pulling = false;
  /** Set by the end of the source, an error, or a barrier item not yet dealt with. */
  let blocked = false;
  const fill = (): void => {
    if (pulling || blocked || queue.length >= depth) return;
    pulling = true;
    const p = it.next().then((r): IteratorResult<Ahead<T>> => {
      pulling = false;
      if (r.done || barrier(r.value)) blocked = true;
      else fill();
      if (r.done) return r;
      const f = fileOf(r.value);
      if (!f || !f.stat.isFile() || f.stat.size > maxFileSize) return { done: false, value: { item: r.value } };
      const whole = readWhole(f.path, f.stat.size);
      whole.catch(() => undefined); // handled when the consumer comes to it
      return { done: false, value: { item: r.value, whole } };
    });
    // An error stops the pulling and reaches the consumer when it comes to that item.
    p.catch(() => {
      pulling = false;
      blocked = true;
    });
    queue.push(p);
  };
  try {
    for (;;) {
      fill();
      const r = await queue.shift()!;
      if (r.done) return;
      yield r.value;
      if (barrier(r.value.item)) blocked = false;
    }
  } finally {
    await it.return?.(undefined);
  }
}
