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
import { sparseRead } from '../source/data-extents.js';
import { readAhead, type Ahead } from '../source/read-ahead.js';
import { readBuffers, type ReadSeen } from '../source/read-file.js';
import { walkTree, type WalkEntry } from '../source/walk.js';
import { SignatureCheck } from '../diff/signature-check.js';
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

/** Merges the live walk with the archived entries (both in index order) and reports every difference. */
export async function compareLive(archived: AsyncIterable<ArchivedEntry>, o: LiveCompareOptions): Promise<void> {
  // small files are read ahead of the comparison, as a backup reads them: per-file
  // latency, not bytes, is what a tree of many small files costs
  const walk = walkTree(Buffer.from(o.root), { onWarning: (w) => o.report(escapeName(w.path), w.message) });
  const live = readAhead(walk, (e) => e)[Symbol.asyncIterator]();
  const stored = archived[Symbol.asyncIterator]();
  let a = (await live.next()).value as Ahead<WalkEntry> | undefined;
  let b = (await stored.next()).value as ArchivedEntry | undefined;
  while (a || b) {
    o.signal?.throwIfAborted();
    const c = !a ? 1 : !b ? -1 : compareIndex(a.item.index, b.index);
    if (c < 0) o.report(displayIndex(a!.item.index), 'in the source, not in the backup');
    else if (c > 0) o.report(displayIndex(b!.index), 'in the backup, not in the source');
    else if (a!.item.index.length > 0) for (const d of await differences(a!, b!, o)) o.report(displayIndex(a!.item.index), d);
    if (c >= 0 && b?.signature) for await (const _ of b.signature) { /* the rest of an unread signature */ }
    if (c <= 0) a = (await live.next()).value;
    if (c >= 0) b = (await stored.next()).value;
  }
}

async function differences(ahead: Ahead<WalkEntry>, b: ArchivedEntry, o: LiveCompareOptions): Promise<string[]> {
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
  if (h.inode && !(await sameXattrs(a.path, h.inode.xattrs?.digest))) out.push('extended attributes (ACLs, capabilities) differ');
  if (type === 'file' && b.signature && (await contentDiffers(ahead, b.signature, o.signal))) out.push('content differs');
  return out;
}

/** Whether the live xattrs are those the backup recorded (sets that recorded them only; unreadable ones are not held against it). */
async function sameXattrs(p: Buffer, recorded: string | undefined): Promise<boolean> {
  const now = await liveXattrDigest(p);
  return now === null || now === recorded;
}

/** Reads the live file once against the archived version's block signature. */
async function contentDiffers({ item: a, whole }: Ahead<WalkEntry>, signature: AsyncIterable<Buffer>, signal: AbortSignal | undefined): Promise<boolean> {
  const check = await SignatureCheck.open(signature);
  const seen: ReadSeen = { read: 0, grew: false };
  for await (const data of readBuffers(a.path, a.stat.size, seen, whole ? { whole } : await sparseRead(a.path, a.stat))) {
    signal?.throwIfAborted();
    await check.update(data);
  }
  return (await check.finish()) !== undefined || seen.grew;
}
