/**
 * --compare SOURCE (duplicity's --compare-data): the archived state at a time against
 * the live tree — type, mode, owner (as root), whole-second mtime (directories too),
 * symlink target, device numbers and content — streaming, with no temp copy.
 *
 * The archived state comes from the chain's signature files, merged in index order with
 * a walk of the live tree, so memory does not grow with the tree. Content is compared
 * block by block: each live file is read once and every block's strong sum is checked
 * against the librsync signature of the archived version (SignatureCheck), which is
 * what the next incremental would compare against too. That the signatures describe
 * the stored data is what verify checks, volume by volume, in the same run.
 */
import { readlink } from 'node:fs/promises';
import type { Backend } from '../backend/backend.js';
import { devMajor, devMinor, entryType, mtimeSeconds } from '../backup/entry-meta.js';
import { readBuffers, type ReadSeen } from '../backup/read-file.js';
import { checkSource } from '../backup/backup.js';
import { readAhead, type Ahead } from '../backup/read-ahead.js';
import { walkTree, type WalkEntry } from '../backup/walk.js';
import type { ArchiveCache } from '../cache/archive-cache.js';
import { pickForTime } from '../chain/collection.js';
import type { DecryptKeys } from '../crypto/index.js';
import { SignatureCheck } from '../diff/signature-check.js';
import { ChainError } from '../errors.js';
import { chainState, type StateEntry } from '../inspect/signature-state.js';
import { ArchiveReader } from '../restore/archive.js';
import { localGid, localUid } from '../util/owners.js';
import { escapeName } from '../util/escape-name.js';
import { compareIndex, displayIndex } from '../volume/entry-name.js';
import { problemCollector, type Problem } from './problems.js';

export interface CompareOptions {
  backend: Backend;
  keys: DecryptKeys;
  cache?: ArchiveCache;
  /** The archived state at this time. @default latest */
  time?: number;
  /** Compare owners. @default true when root (only root restores them) */
  owners?: boolean;
  signal?: AbortSignal;
}

export async function compareWithSource(source: string, o: CompareOptions, onProblem?: (p: Problem) => void): Promise<Problem[]> {
  const archive = new ArchiveReader(o.backend, o.keys, o.cache);
  const picked = pickForTime(await archive.collection(), o.time ?? Number.MAX_SAFE_INTEGER);
  if (!picked) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.backend.describe()}`);
  await archive.proveKey(picked.sets);
  const owners = o.owners ?? process.getuid?.() === 0;
  const { problems, report } = problemCollector(onProblem);
  const root = await checkSource(source);
  // small files are read ahead of the comparison, as a backup reads them: per-file
  // latency, not bytes, is what a tree of many small files costs
  const walk = walkTree(Buffer.from(root), { onWarning: (w) => report(escapeName(w.path), w.message) });
  const live = readAhead(walk, (e) => e)[Symbol.asyncIterator]();
  const stored = chainState(archive, picked.sets)[Symbol.asyncIterator]();
  let a = (await live.next()).value as Ahead<WalkEntry> | undefined;
  let b = (await stored.next()).value as StateEntry | undefined;
  while (a || b) {
    o.signal?.throwIfAborted();
    const c = !a ? 1 : !b ? -1 : compareIndex(a.item.index, b.index);
    if (c < 0) report(displayIndex(a!.item.index), 'in the source, not in the backup');
    else if (c > 0) report(displayIndex(b!.index), 'in the backup, not in the source');
    else if (a!.item.index.length > 0) for (const d of await differences(a!, b!, owners, o.signal)) report(displayIndex(a!.item.index), d);
    // the stored entry's signature must be read before the state moves on
    if (c <= 0) a = (await live.next()).value;
    if (c >= 0) b = (await stored.next()).value;
  }
  return problems;
}

async function differences(ahead: Ahead<WalkEntry>, b: StateEntry, owners: boolean, signal: AbortSignal | undefined): Promise<string[]> {
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
  if (owners && (a.stat.uid !== localUid(h.uname, h.uid) || a.stat.gid !== localGid(h.gname, h.gid))) out.push('owner differs');
  if (mtimeSeconds(a.stat) !== h.mtime) out.push('mtime differs');
  if ((type === 'char' || type === 'block') && (devMajor(a.stat.rdev) !== h.devmajor || devMinor(a.stat.rdev) !== h.devminor)) out.push('device numbers differ');
  if (type === 'file' && b.kind === 'signature' && (await contentDiffers(ahead, b, signal))) out.push('content differs');
  return out;
}

/** Reads the live file once against the archived version's block signature. */
async function contentDiffers({ item: a, whole }: Ahead<WalkEntry>, b: StateEntry, signal: AbortSignal | undefined): Promise<boolean> {
  const check = await SignatureCheck.open(b.signatureStream());
  const seen: ReadSeen = { read: 0, grew: false };
  for await (const data of readBuffers(a.path, a.stat.size, seen, whole ? { whole } : {})) {
    signal?.throwIfAborted();
    await check.update(data);
  }
  return (await check.finish()) !== undefined || seen.grew;
}
