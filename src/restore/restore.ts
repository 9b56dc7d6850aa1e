/**
 * Restore: pick the chain and sets for the requested time, read each set's volumes in
 * chain order (only those whose index range can hold the requested path) and apply
 * their entries — snapshots, deletions, deltas — to a staging directory inside the
 * destination. Only when every volume has been read and checked (hashes, MDC) are the
 * staged entries moved into place. A failure removes the staging directory and leaves
 * the destination as it was.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { availableParallelism, tmpdir } from 'node:os';
import { prefetchVolumes } from './prefetch.js';
import type { ReadBackend } from '../backend/backend.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { pickForTime, type BackupSet } from '../chain/collection.js';
import type { VolumeInfo } from '../chain/manifest.js';
import type { DecryptKeys } from '../crypto/index.js';
import { ChainError, DestinationError, FormatError, NotFoundError, UsageError } from '../errors.js';
import { compareIndex, displayIndex, isWithin, type Index } from '../volume/entry-name.js';
import type { TarHeader } from '../volume/tar-header.js';
import { logicalEntries, rawEntries, type LogicalEntry, type VolumeRef } from '../volume/set-reader.js';
import { ArchiveReader } from '../repo/archive.js';
import { readsInPlace } from '../repo/download.js';
import { Commit, destinationFailure } from './commit.js';
import { makeTempDir, removeStaleTempDirs } from '../util/temp-dir.js';
import { createStaging, isStagingName, removeStaleStaging, removeTree, type Staging } from './staging.js';
import { applyDirMeta, TreeWriter } from './tree-writer.js';
import { restoreLanes, stageSetsParallel, type LaneOptions } from './parallel-restore.js';
import { entryFailure } from './volume-restore.js';

export interface RestoreOptions {
  backend: ReadBackend;
  /** Destination directory; created if missing. */
  dest: string;
  keys: DecryptKeys;
  cache?: ArchiveCache;
  /** Point in time (epoch seconds). @default now (latest) */
  time?: number;
  /** Restore only this path (an index) and what is below it, at its place under DEST. */
  path?: Index;
  /** Restore into a non-empty destination, replacing what is there. @default false */
  force?: boolean;
  /** chown what is restored to the stored owners. @default true when `uid` is 0 */
  restoreOwnership?: boolean;
  /** The user this restore runs as. @default process.getuid() */
  uid?: number;
  /** Temp directory for downloaded volumes (remote targets). @default os.tmpdir() */
  tempDir?: string;
  /** Use the stored numeric ids, not the names looked up on this host. @default false */
  numericOwner?: boolean;
  /** Write aligned runs of zeros (4 KiB or more) as holes. @default true */
  sparse?: boolean;
  /** Set stored extended attributes, POSIX ACLs and file capabilities. @default true */
  xattrs?: boolean;
  /** Told which sets were picked, before anything is read. */
  onPicked?: (sets: BackupSet[]) => void;
  onWarning?: (message: string) => void;
  /**
   * Volumes restored at once, each whole by one of `jobs` worker threads while this
   * thread puts their files in place (`1`: one after the other on this thread). A
   * restore of a `path` reads on one lane. @default os.availableParallelism()
   */
  jobs?: number;
  /** Stops the restore (DEST is left as it was). */
  signal?: AbortSignal;
}

export interface RestoreResult {
  sets: BackupSet[];
  files: number;
  patched: number;
  volumesRead: number;
}

/**
 * DEST must be a directory, empty unless `force`; leftovers of killed restores (their
 * staging directories) are removed first and do not count.
 */
async function prepareDest(dest: string, force: boolean, onWarning?: (m: string) => void): Promise<{ created: boolean }> {
  let st;
  try {
    st = await fs.stat(dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new DestinationError(`cannot create or use: ${code ?? (e as Error).message}`, { context: { path: dest }, cause: e });
  }
  if (st) {
    if (!st.isDirectory()) throw new DestinationError(`exists and is not a directory`, { context: { path: dest } });
    const stale = await removeStaleStaging(dest);
    if (stale.length > 0) onWarning?.(`removed ${stale.length} leftover staging director${stale.length === 1 ? 'y' : 'ies'} of an interrupted restore from ${dest}`);
    const entries = await fs.readdir(dest);
    if (entries.length > 0 && !force) throw new DestinationError('directory is not empty', { context: { path: dest }, code: 'DEST_NOT_EMPTY' });
    return { created: false };
  }
  await makeDirs(dest);
  return { created: true };
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir loops forever where mkdir says
 * ENOENT below an existing directory (/proc/foo). Any failure is a destination error.
 */
async function makeDirs(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    if (await fs.stat(d).then(() => true, () => false)) break;
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      await fs.mkdir(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new DestinationError(`cannot create or use: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { context: { path: dir }, cause: e });
    }
  }
}

/**
 * Whether a volume can hold entries at or below `p` (duplicity's rule): the first
 * len(p) components of its StartingPath ≤ p ≤ its EndingPath.
 */
export function volumeMayHold(v: VolumeInfo, p: Index): boolean {
  return compareIndex(v.start.slice(0, p.length), p) <= 0 && compareIndex(p, v.end) <= 0;
}

export interface RestorePlan {
  sets: BackupSet[];
  /** Per set (in chain order), the volumes the restore reads. */
  volumes: VolumeRef[][];
  /** Per set, every volume: a multivol run is read on into volumes the plan left out. */
  allVolumes: VolumeRef[][];
  archive: ArchiveReader;
}

/**
 * What a restore would read: the sets for the time and, per set, the volumes whose
 * path range can hold the selection. Reads (and so checks) every manifest from the
 * target: a wrong key, a bad signature or a missing volume fails here.
 */
export async function planRestore(o: Omit<RestoreOptions, 'dest'>): Promise<RestorePlan> {
  const archive = new ArchiveReader(o.backend, o.keys, o.cache, o.onWarning ? { onWarning: o.onWarning } : {});
  const picked = pickForTime(await archive.collection(), o.time ?? Number.MAX_SAFE_INTEGER);
  if (!picked) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.backend.describe()}`);
  o.onPicked?.(picked.sets);
  const sel = o.path ?? [];
  const volumes: VolumeRef[][] = [];
  const allVolumes: VolumeRef[][] = [];
  for (const set of picked.sets) {
    const m = await archive.manifest(set, { fromTarget: true });
    const chosen = new Set(m.volumes.filter((v) => sel.length === 0 || volumeMayHold(v, sel)).map((v) => v.number));
    // a volume the selection cannot need may be missing: it fails only if a run continues into it
    const all = archive.volumeRefs(set, m, undefined, (v) => !chosen.has(v.number));
    allVolumes.push(all);
    volumes.push(all.filter((_, i) => chosen.has(m.volumes[i]!.number)));
  }
  return { sets: picked.sets, volumes, allVolumes, archive };
}

/** The volumes of each set to read, with downloads ahead of the reader for remote targets. */
function readingLists(plan: RestorePlan, prefetchDir: string | undefined): { refs: VolumeRef[]; chosen: Set<string> }[] {
  const fetched = new Map<string, VolumeRef>();
  if (prefetchDir) for (const r of prefetchVolumes(plan.volumes.flat(), prefetchDir)) fetched.set(r.name, r);
  return plan.allVolumes.map((all, i) => ({
    refs: all.map((r) => fetched.get(r.name) ?? r),
    chosen: new Set(plan.volumes[i]!.map((r) => r.name)),
  }));
}

/**
 * Restores into a staging directory inside DEST (every volume read, every entry
 * applied, every check passed), then merges the staged tree into DEST with a journal:
 * a failure anywhere leaves DEST as it was (commit.ts).
 */
export async function runRestore(o: RestoreOptions): Promise<RestoreResult> {
  const jobs = o.jobs ?? availableParallelism();
  if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`expected a whole number >= 1, got ${jobs}`, { code: 'BAD_OPTION', context: { option: 'jobs' } });
  const plan = await planRestore(o);
  const sel = o.path ?? [];
  const dest = path.resolve(o.dest);
  const owner = o.restoreOwnership ?? (o.uid ?? process.getuid?.()) === 0;
  const numeric = o.numericOwner ?? false;
  const { created } = await prepareDest(dest, o.force ?? false, o.onWarning);
  // staging inside DEST changes its times: a failed restore puts them back
  const destTimes = created ? undefined : await fs.stat(dest);
  let staging: Staging;
  try {
    staging = await createStaging(dest);
  } catch (e) {
    if (created) await fs.rmdir(dest).catch(() => undefined); // ours, and empty: nothing is lost if it stays
    throw new DestinationError(`not writable: ${(e as Error).message}`, { context: { path: dest }, cause: e });
  }
  const sparse = o.sparse ?? true;
  const xattrs = o.xattrs ?? true;
  const writer = new TreeWriter(Buffer.from(staging.tree), { restoreOwnership: owner, numericOwner: numeric, sparse, xattrs, ...(o.onWarning ? { onWarning: o.onWarning } : {}) });
  const commit = new Commit(staging.trash);
  let committed = false;
  try {
    const volumesRead = await stageAll(o, { plan, writer, staging, jobs }, { owner, numericOwner: numeric, sparse, xattrs });
    const root = Buffer.from(dest);
    try {
      await commit.merge(Buffer.from(staging.tree), root, (n) => isStagingName(n.toString('latin1')));
    } catch (e) {
      throw destinationFailure(e, dest);
    }
    committed = true;
    // before the directory times are set: removing it changes DEST's mtime
    await removeTree(staging.root).catch(() => o.onWarning?.(`could not remove ${staging.root}`));
    const restored = await applyDirectoryMeta(root, writer, sel.length === 0, { owner, numeric, onWarning: o.onWarning });
    await commit.closeOpened(restored);
    return { sets: plan.sets, files: writer.files, patched: writer.patched, volumesRead };
  } catch (e) {
    const failed = committed ? [] : await commit.rollback();
    if (o.signal?.aborted && !committed) throw o.signal.reason; // whatever the abort surfaced as
    if (failed.length > 0) o.onWarning?.(`could not put back ${failed.length} path(s) in DEST after the failure: ${failed.slice(0, 5).join(', ')}`);
    throw e;
  } finally {
    if (!committed) {
      await removeTree(staging.root).catch(() => o.onWarning?.(`could not remove ${staging.root}`));
      // best effort: DEST's content is back; only its times could stay changed
      if (destTimes) await fs.utimes(dest, destTimes.atime, destTimes.mtime).catch(() => undefined);
    }
    // a DEST this run created holds nothing of the user's
    if (created && !committed) await fs.rm(dest, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Applies the planned sets to the staging tree: a whole restore with `jobs` > 1 in
 * parallel lanes, else (a --path selection, `jobs` 1, sets of one volume) on this thread. Remote volumes
 * are downloaded to a temp directory ahead of their reader. Returns the volumes read.
 */
async function stageAll(o: RestoreOptions, s: { plan: RestorePlan; writer: TreeWriter; staging: Staging; jobs: number }, lo: LaneOptions): Promise<number> {
  const sel = o.path ?? [];
  const tempParent = o.tempDir ?? tmpdir();
  await removeStaleTempDirs(tempParent);
  // sets of one volume each have nothing to spread: no thread is started for them
  const spread = sel.length === 0 && s.jobs > 1 && s.plan.allVolumes.some((v) => v.length > 1);
  const lanes = spread ? restoreLanes(s.jobs) : undefined;
  // the lanes read each volume from a file: remote ones are downloaded first
  const downloads = !o.backend.properties.local || (lanes && !readsInPlace(o.backend));
  const prefetchDir = downloads ? await makeTempDir(tempParent, 'restore') : undefined;
  try {
    if (!lanes) return await stageEntries(s.plan, s.writer, sel, prefetchDir, o.signal);
    const scratch = await makeScratch(s.staging);
    return await stageSetsParallel({ plan: s.plan, writer: s.writer, lanes, scratch, tree: s.staging.tree, downloads: prefetchDir, options: lo, onWarning: o.onWarning, signal: o.signal });
  } finally {
    await lanes?.close();
    if (prefetchDir) await fs.rm(prefetchDir, { recursive: true, force: true });
  }
}

/** Reads the planned volumes set by set into `writer` (the staging tree); returns the volumes read. */
async function stageEntries(plan: RestorePlan, writer: TreeWriter, sel: Index, prefetchDir: string | undefined, signal: AbortSignal | undefined): Promise<number> {
  const { archive } = plan;
  let found = sel.length === 0;
  let volumesRead = 0;
  for (const { refs, chosen } of readingLists(plan, prefetchDir)) {
    const raw = rawEntries(refs, archive.keys, archive.decodeOptions, { select: (r) => chosen.has(r.name), ...(signal ? { signal } : {}) });
    for await (const e of logicalEntries(raw)) {
      if (!isWithin(e.index, sel)) continue;
      found = true;
      await applyEntry(writer, e);
    }
    volumesRead += chosen.size;
    writer.nextSet();
  }
  if (!found) throw new NotFoundError('not in the backup at that time', { context: { path: displayIndex(sel) }, code: 'PATH_NOT_FOUND' });
  await writer.finish();
  return volumesRead;
}

async function applyEntry(writer: TreeWriter, e: LogicalEntry): Promise<void> {
  try {
    if (e.kind === 'snapshot') await writer.snapshot(e.index, e.header, e.data);
    else if (e.kind === 'deleted') await writer.delete(e.index);
    else if (e.kind === 'diff') await writer.patch(e.index, e.header, e.data);
    else throw new FormatError(`unexpected ${e.kind} entry in a volume`);
  } catch (err) {
    throw entryFailure(err, e.index, e.volume);
  }
}

/** The scratch space of a parallel restore's lanes, in the staging directory (0700: files there have their final modes). */
async function makeScratch(staging: Staging): Promise<string> {
  const dir = path.join(staging.root, 'scratch');
  try {
    await fs.mkdir(dir, { mode: 0o700 });
  } catch (e) {
    throw destinationFailure(e, staging.root, 'making the staging directory');
  }
  return dir;
}


/**
 * Directory modes, owners and times, deepest first, once every entry is at its final
 * place (a 0555 directory could not have received its entries). The data is restored
 * by then: a directory whose metadata cannot be set is a warning.
 */
async function applyDirectoryMeta(root: Buffer, writer: TreeWriter, withRoot: boolean, o: { owner: boolean; numeric: boolean; onWarning: ((m: string) => void) | undefined }): Promise<Set<string>> {
  const done = new Set<string>();
  const dirs: { p: Buffer; header: TarHeader }[] = writer.directories().map((d) => ({ p: Buffer.concat([root, Buffer.from('/'), d.rel]), header: d.header }));
  if (withRoot && writer.rootHeader) dirs.push({ p: root, header: writer.rootHeader });
  for (const d of dirs) {
    try {
      await applyDirMeta(d.p, d.header, o.owner, o.numeric, writer.xattrs);
      done.add(d.p.toString('latin1'));
    } catch (e) {
      o.onWarning?.(`${d.p.toString()}: directory metadata not restored: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return done;
}
