/**
 * One backup run, as its data flows (one file each):
 *
 *   options.ts      the options, defaulted and validated once
 *   plan.ts         which set: resume an interrupted one (resume.ts), an incremental on
 *                   the latest chain (same key, host, source) or a new full; its times
 *   source-walk.ts  the source walked through the selection; for an incremental, merged
 *                   with the chain's signatures into changes (changes.ts)
 *   set-writer.ts   entries -> volumes (volume/), alongside the signature file
 *                   (signature-file.ts), the manifest's file list (file-list.ts), the
 *                   checkpoint (checkpoint.ts) and the seal's list (seal-list.ts); then
 *                   the manifest (manifest-writer.ts), last
 *   uploader.ts     finished files to the target while the next volume is built
 *
 * Nothing is deleted from the target, so a failed run leaves earlier chains as they
 * were; the manifest is uploaded last, so an interrupted set is visibly incomplete.
 */
import * as fs from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { Backend, Retention } from '../backend/backend.js';
import { getBytes } from '../backend/backend.js';
import type { MessageEncryptor } from '../crypto/encrypt.js';
import type { DecryptKeys } from '../crypto/index.js';
import type { SecretKey } from '../crypto/keys.js';
import { SourceError } from '../errors.js';
import { chainSets } from '../chain/collection.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { ArchiveReader } from '../repo/archive.js';
import type { Selection } from '../source/selection.js';
import { checkSource } from '../source/source-dir.js';
import type { WalkWarning } from '../source/walk.js';
import { makeTempDir, removeStaleTempDirs } from '../util/temp-dir.js';
import type { Index } from '../volume/entry-name.js';
import type { Change } from './changes.js';
import { CheckpointFiles } from './checkpoint.js';
import { resolveBackupOptions, type ResolvedBackupOptions } from './options.js';
import { planSet, type SetPlan } from './plan.js';
import { storedBefore } from './resume.js';
import { SetWriter, type SetStats } from './set-writer.js';
import { sourceChanges, type SourceCounts } from './source-walk.js';

export interface BackupOptions {
  /** Source directory as the user gave it (recorded as the manifest's Localdir). */
  source: string;
  backend: Backend;
  /** OpenPGP encryptor, or null for --no-encryption (gzip). */
  encryptor: MessageEncryptor | null;
  /** Keys to read the existing chain (its manifest and signatures). */
  keys: DecryptKeys;
  /** Local cache of manifests and signatures. @default none (read from the target) */
  cache?: ArchiveCache;
  /** Always start a new chain. @default false */
  full?: boolean;
  /** Continue a set an interrupted run of this backup left (see resume.ts); false starts it over. @default true */
  resume?: boolean;
  /**
   * S3 Object Lock: every file of the set is stored with a retention that keeps the whole
   * chain for at least `days` after its planned end (retentionFor). @default none
   */
  objectLock?: { days: number; mode: 'GOVERNANCE' | 'COMPLIANCE' };
  /** Start a new chain when the current one's full is older than this many seconds. */
  fullIfOlderThan?: number;
  /** Allow an incremental from another host or source path. @default false */
  allowSourceMismatch?: boolean;
  /** Back up although the newest set is dated after this machine's clock. @default false */
  allowClockSkew?: boolean;
  /** zlib level inside OpenPGP / gzip; 0 = none. @default DEFAULT_COMPRESS_LEVEL */
  compressLevel?: number;
  /** Volume size cap in bytes (at least 256 KiB). @default 200 MiB */
  volsize?: number;
  /** Temp directory. @default os.tmpdir() */
  tempDir?: string;
  /** Clock, epoch seconds. @default Date.now()/1000 */
  now?: () => number;
  /** @default os.hostname() */
  hostname?: string;
  /** Finished files waiting for upload. @default 2 */
  maxStaged?: number;
  /** @default 1 */
  uploadConcurrency?: number;
  /**
   * Volumes built at once, each on a worker thread of its own; 1 builds them one after
   * the other on the main thread (the single-lane engine). @default os.availableParallelism()
   */
  jobs?: number;
  signal?: AbortSignal;
  /** Which paths to back up. @default everything */
  selection?: Selection;
  /** Decide and report what would be stored; write nothing. @default false */
  dryRun?: boolean;
  /** With dryRun: each path that would be stored, and how. */
  onDryRun?: (action: 'new' | 'changed' | 'deleted', index: Index) => void;
  onWarning?: (w: WalkWarning) => void;
  /** Called as entries are stored (often: keep it cheap). */
  onProgress?: (p: SetStats & { sourceFiles: number; sourceBytes: number }) => void;
  /** Called when a file (volume, signatures, manifest, seal) is stored. */
  onStored?: (name: string, size: number) => void;
  /** Make every warning (unreadable, vanished, changed files) fatal. @default false */
  strict?: boolean;
  /**
   * Store extended attributes, POSIX ACLs and file capabilities, and count their
   * changes as changes. @default true
   */
  xattrs?: boolean;
  /** Seal each set (a signed list of its files, for offline verification) with this key. */
  sealKey?: SecretKey;
  /** Told the kind of set before anything is written (and why: a full, a resume). */
  onPlan?: (p: { type: 'full' | 'inc'; reason: string; start: number; end: number; resumed?: boolean }) => void;
}

export interface BackupResult extends SetStats {
  type: 'full' | 'inc';
  /** Entries walked in the source (after selection), and their regular files' bytes. */
  sourceFiles: number;
  sourceBytes: number;
  dryRun: boolean;
  /** Set time (END for an incremental). */
  time: number;
  start: number;
  warnings: number;
  /** Sockets met in the source (they cannot be stored); not warnings. */
  skippedSockets: number;
  /** Sets in the chain this set belongs to, itself and its full included. */
  chainSets: number;
  names: string[];
}

/** Counts warnings (sockets apart: they are notes), and makes them fatal with `strict`. */
class Warnings {
  count = 0;
  skippedSockets = 0;
  constructor(private readonly o: ResolvedBackupOptions) {}
  readonly warn = (w: WalkWarning): void => {
    // Sockets cannot be backed up (duplicity and GNU tar skip them too): a note, counted apart.
    if (w.code === 'SKIPPED_SOCKET') this.skippedSockets++;
    else this.count++;
    if (this.o.strict && w.code !== 'SKIPPED_SOCKET') throw new SourceError(w.message, { code: 'STRICT', context: { path: w.path.toString('utf8') } });
    this.o.onWarning?.(w);
  };
}

/**
 * One backup run: options resolved, the source checked, the set planned (plan.ts),
 * the source walked into changes (source-walk.ts) and written as a set (set-writer.ts),
 * or only counted for a dry run.
 */
export async function runBackup(options: BackupOptions): Promise<BackupResult> {
  const o = resolveBackupOptions(options);
  const srcAbs = await checkSource(o.source);
  const archive = new ArchiveReader(o.backend, o.keys, o.cache);
  const col = await archive.collection();
  // An interrupted run of this source left a checkpoint: continue its set if it still fits.
  const cp = o.cache && !o.dryRun ? new CheckpointFiles(o.cache.dir) : undefined;
  await cp?.ensure();
  const plan = await planSet(o, archive, col, srcAbs, cp);
  const warnings = new Warnings(o);
  if (plan.clockSkew) warnings.warn(plan.clockSkew);
  const { changes, counts } = await sourceChanges(o, srcAbs, plan, archive, warnings.warn);
  const result = (stats: SetStats, names: string[]): BackupResult => ({
    ...stats,
    type: plan.type,
    time: plan.end,
    start: plan.start,
    warnings: warnings.count,
    skippedSockets: warnings.skippedSockets,
    chainSets: plan.chain ? chainSets(plan.chain).length + 1 : 1,
    names,
    sourceFiles: counts.files,
    sourceBytes: counts.bytes,
    dryRun: o.dryRun === true,
  });
  if (o.dryRun) return result(await countChanges(o, changes), []);
  const written = await writeSet(o, plan, changes, counts, warnings.warn, cp);
  await o.cache?.rememberSource({ typed: o.source, real: await fs.realpath(srcAbs) }).catch(() => undefined); // a hint only
  return result(written.stats, written.names);
}

/** A dry run: what would be stored, told to onDryRun and counted. */
async function countChanges(o: ResolvedBackupOptions, changes: AsyncIterable<Change>): Promise<SetStats> {
  const stats = { files: 0, bytesRead: 0, changed: 0, deleted: 0, volumes: 0, storedBytes: 0, deltaBytes: 0 };
  for await (const c of changes) {
    const index = c.op === 'deleted' ? c.index : c.entry.index;
    const action = c.op === 'deleted' ? 'deleted' : c.op === 'diff' || !c.isNew ? 'changed' : 'new';
    if (action === 'deleted') stats.deleted++;
    else if (action === 'changed') stats.changed++;
    if (c.op !== 'deleted' && c.entry.stat.isFile()) stats.files++;
    o.onDryRun?.(action, index);
  }
  return stats;
}

/**
 * The retain-until date of a set's files: `days` after the chain's planned end — its full
 * plus --full-if-older-than when that is given (every set of the chain then gets the same
 * date, and the chain stays whole until it passes), else now — never before now + days.
 */
export function retentionFor(o: Pick<BackupOptions, 'objectLock' | 'fullIfOlderThan'>, chainStart: number, now: number): Retention | undefined {
  if (!o.objectLock) return undefined;
  const plannedEnd = o.fullIfOlderThan !== undefined ? Math.max(now, chainStart + o.fullIfOlderThan) : now;
  return { mode: o.objectLock.mode, until: new Date((plannedEnd + o.objectLock.days * 86400) * 1000) };
}

/** The hash chain of seals: an incremental's seal names the hash of the previous set's seal. */
async function sealFor(o: ResolvedBackupOptions, plan: SetPlan): Promise<{ key: SecretKey; previous: string | null } | undefined> {
  if (!o.sealKey) return undefined;
  const prev = plan.chain ? (plan.chain.incs[plan.chain.incs.length - 1] ?? plan.chain.full).seal : undefined;
  return { key: o.sealKey, previous: prev ? createHash('sha256').update(await getBytes(o.backend, prev.name)).digest('hex') : null };
}

/**
 * Writes the planned set from `changes` in a temp directory of its own; entries an
 * interrupted run stored are skipped. On failure the set's workers and uploads stop
 * and the temp directory goes; what was stored stays for the next run to continue.
 */
async function writeSet(o: ResolvedBackupOptions, plan: SetPlan, changes: AsyncIterable<Change>, counts: SourceCounts, warn: (w: WalkWarning) => void, cp: CheckpointFiles | undefined): Promise<{ stats: SetStats; names: string[] }> {
  const seal = await sealFor(o, plan);
  const retention = retentionFor(o, plan.chain ? plan.chain.start : plan.start, Math.floor(o.now()));
  await removeStaleTempDirs(o.tempDir);
  const tmp = await makeTempDir(o.tempDir, 'backup');
  let writer: SetWriter | undefined;
  const progress = () => writer && o.onProgress?.({ ...writer.stats, sourceFiles: counts.files, sourceBytes: counts.bytes });
  try {
    writer = await SetWriter.open({
      backend: o.backend,
      spec: { type: plan.type, start: plan.start, end: plan.end, encoding: o.encoder.encoding },
      encoder: o.encoder,
      tmp,
      volsize: o.volsize,
      hostname: o.hostname,
      localdir: Buffer.from(o.source),
      uploadConcurrency: o.uploadConcurrency,
      maxStaged: o.maxStaged,
      jobs: o.jobs,
      xattrs: o.xattrs,
      onProgress: progress,
      ...(retention ? { retention } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      warn,
      ...(o.onStored ? { onStored: o.onStored } : {}),
      ...(o.cache ? { cache: o.cache } : {}),
      ...(seal ? { seal } : {}),
      ...(cp ? { checkpoint: { files: cp, source: o.source, ...(plan.resume ? { resume: plan.resume } : {}) } } : {}),
    });
    const stored = plan.resume ? storedBefore(plan.resume) : undefined;
    for await (const c of changes) {
      if (o.signal?.aborted) throw o.signal.reason;
      if (stored?.(c.op === 'deleted' ? c.index : c.entry.index)) continue;
      if (c.op === 'snapshot') await writer.snapshot(c.entry, c.isNew);
      else if (c.op === 'deleted') await writer.deleted(c.index, c.old.kind === 'signature');
      else await writer.diff(c.entry, await c.old.signature());
      progress();
    }
    await writer.finish();
    return { stats: writer.stats, names: writer.stored };
  } catch (e) {
    await writer?.abort();
    throw e;
  } finally {
    writer?.dispose();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
