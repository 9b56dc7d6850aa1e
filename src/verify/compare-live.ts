/**
 * The live side of `verify --compare`: walks the source tree and holds each path against
 * the archived state as it arrives, in index order — metadata from the stored header
 * (and the xattrs against their digest, where the set recorded one), content block by
 * block against the archived version's librsync signature. It needs
 * only headers and signatures (about 0.6 % of a file's size) from the archive.
 */
import { readlink } from 'node:fs/promises';
import { devMajor, devMinor, entryType, mtimeSeconds } from '../source/entry-meta.js';
import { liveXattrDigest } from '../source/inode-state.js';
import { readAhead, type Ahead } from '../source/read-ahead.js';
import { availableParallelism } from 'node:os';
import { blockSizeFor, signatureSize } from '../diff/signature.js';
import { WorkerPool } from '../util/worker-pool.js';
import { liveContentDiffers, type ContentTask } from './content-check.js';
import { walkTree, type WalkEntry } from '../source/walk.js';
import { escapeName } from '../util/escape-name.js';
import { localGid, localUid } from '../util/owners.js';
import { compareIndex, displayIndex, type Index } from '../volume/entry-name.js';
import type { TarHeader } from '../volume/tar-header.js';

/** One path of the archived state: its header and, for a regular file, its signature. */
export interface ArchivedEntry {
  kind: 'snapshot' | 'signature';
  index: Index;
  header: TarHeader;
  /** The librsync signature, streamed (kind 'signature'); must be read or drained before the next entry. */
  signature?: AsyncIterable<Buffer>;
}

export interface LiveCompareOptions {
  /** Absolute path of the live tree. */
  root: string;
  /** Compare owners (only root restores them). */
  owners: boolean;
  report: (file: string, problem: string) => void;
  signal?: AbortSignal;
}

/**
 * Files this large (not read ahead) have their content checked on worker threads, while
 * this thread goes on — in `verify`, it also decodes the volumes; their signature
 * goes along whole (0.6 % of the file).
 */
const OFFLOAD_MIN = 256 * 1024;
/** A signature larger than this (a file over ~8 GiB) is not held whole: that file is checked here, streaming. */
const OFFLOAD_MAX_SIGNATURE = 48 << 20;
/** Entries whose report waits for a worker, at most (bounds the signatures held). */
const PENDING = 16;

/**
 * Merges the live walk with the archived entries (both in index order) and reports every
 * difference, in index order.
 *
 * Kept as one function: the merge's two cursors, the queue of reports still waiting
 * for a worker and the pool's lifetime belong to one loop.
 */
export async function compareLive(archived: AsyncIterable<ArchivedEntry>, o: LiveCompareOptions): Promise<void> {
  // small files are read ahead of the comparison, as a backup reads them: per-file
  // latency, not bytes, is what a tree of many small files costs
  const walk = walkTree(Buffer.from(o.root), { onWarning: (w) => o.report(escapeName(w.path), w.message) });
  const live = readAhead(walk, (e) => e)[Symbol.asyncIterator]();
  const stored = archived[Symbol.asyncIterator]();
  const checker = new ContentChecker();
  const pending: { shown: string; found: Promise<string[]> }[] = [];
  const say = async (shown: string, found: Found) => {
    const later = !Array.isArray(found);
    pending.push({ shown, found: later ? found.later : Promise.resolve(found) });
    pending[pending.length - 1]!.found.catch(() => undefined); // awaited in turn below
    while (pending.length > (later ? PENDING : 0)) {
      const head = pending.shift()!;
      for (const d of await head.found) o.report(head.shown, d);
    }
  };
  try {
    let a = (await live.next()).value as Ahead<WalkEntry> | undefined;
    let b = (await stored.next()).value as ArchivedEntry | undefined;
    while (a || b) {
      o.signal?.throwIfAborted();
      const c = !a ? 1 : !b ? -1 : compareIndex(a.item.index, b.index);
      if (c < 0) await say(displayIndex(a!.item.index), ['in the source, not in the backup']);
      else if (c > 0) await say(displayIndex(b!.index), ['in the backup, not in the source']);
      else if (a!.item.index.length > 0) await say(displayIndex(a!.item.index), await differences(a!, b!, o, checker));
      if (c >= 0 && b?.signature) for await (const _ of b.signature) { /* the rest of an unread signature */ }
      if (c <= 0) a = (await live.next()).value;
      if (c >= 0) b = (await stored.next()).value;
    }
    await say('', []); // the reports still waiting
  } finally {
    await checker.close();
  }
}

/** Checks large files' content on worker threads (started with the first such file). */
class ContentChecker {
  #pool: WorkerPool<ContentTask, boolean> | undefined;

  /** Whether the file goes to a worker: large, not read ahead, with a signature of bounded size. */
  offloads(ahead: Ahead<WalkEntry>): boolean {
    return !ahead.whole && ahead.item.stat.size >= OFFLOAD_MIN && signatureSize(ahead.item.stat.size, blockSizeFor(ahead.item.stat.size)) <= OFFLOAD_MAX_SIGNATURE;
  }

  /**
   * Collects the signature (the caller moves on at once) and checks the file on a
   * worker. A signature past the cap belongs to an archived version far larger than the
   * live file (which `offloads` bounded): the content differs, and the rest is not held.
   */
  async differs(a: WalkEntry, signature: AsyncIterable<Buffer>): Promise<{ later: Promise<boolean> }> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const c of signature) {
      parts.push(c);
      size += c.length;
      if (size > OFFLOAD_MAX_SIGNATURE) return { later: Promise.resolve(true) };
    }
    const sig = Buffer.concat(parts);
    this.#pool ??= new WorkerPool(new URL('./content-worker.js', import.meta.url), Math.max(1, availableParallelism() - 1));
    const task: ContentTask = { path: a.path, size: a.stat.size, blocks: a.stat.blocks, signature: sig };
    return { later: this.#pool.run(task) };
  }

  async close(): Promise<void> {
    await this.#pool?.close();
  }
}

/** What was found of one path: now, or later (a large file's content checked on a worker). */
type Found = string[] | { later: Promise<string[]> };

async function differences(ahead: Ahead<WalkEntry>, b: ArchivedEntry, o: LiveCompareOptions, checker: ContentChecker): Promise<Found> {
  const a = ahead.item;
  const h = b.header;
  const type = entryType(a.stat);
  if (type !== h.type) return [`type ${h.type} in the backup, ${type ?? 'socket'} in the source`];
  const out: string[] = [];
  if (type === 'symlink') {
    if (!(await readlink(a.path, { encoding: 'buffer' })).equals(h.linkname)) out.push('symlink target differs');
    return out;
  }
  const mode = a.stat.mode & 0o7777;
  if (mode !== h.mode) out.push(`mode ${h.mode.toString(8)} in the backup, ${mode.toString(8)} in the source`);
  if (o.owners && (a.stat.uid !== localUid(h.uname, h.uid) || a.stat.gid !== localGid(h.gname, h.gid))) out.push('owner differs');
  if (mtimeSeconds(a.stat) !== h.mtime) out.push('mtime differs');
  if ((type === 'char' || type === 'block') && (devMajor(a.stat.rdev) !== h.devmajor || devMinor(a.stat.rdev) !== h.devminor)) out.push('device numbers differ');
  // an inode whose ctime the set recorded has not changed since: its xattrs neither
  if (h.inode && h.inode.ctime !== a.stat.ctimeMs && !(await sameXattrs(a.path, h.inode.xattrs?.digest))) out.push('extended attributes (ACLs, capabilities) differ');
  if (type !== 'file' || !b.signature) return out;
  if (checker.offloads(ahead)) {
    const { later } = await checker.differs(a, b.signature);
    return { later: later.then((d) => (d ? [...out, 'content differs'] : out)) };
  }
  if (await liveContentDiffers(a.path, a.stat, b.signature, { ...(ahead.whole ? { whole: ahead.whole } : {}), ...(o.signal ? { signal: o.signal } : {}) })) out.push('content differs');
  return out;
}

/** Whether the live xattrs are those the backup recorded (sets that recorded them only; unreadable ones are not held against it). */
async function sameXattrs(p: Buffer, recorded: string | undefined): Promise<boolean> {
  const now = await liveXattrDigest(p);
  return now === null || now === recorded;
}
