/**
 * Restore: pick the chain and sets for the requested time, read each set's volumes in
 * chain order (only those whose index range can hold the requested path) and apply
 * their entries — snapshots, deletions, deltas — to a staging directory inside the
 * destination. Only when every volume has been read and checked (hashes, MDC) are the
 * staged entries moved into place. A failure removes the staging directory and leaves
 * the destination as it was.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { tmpdir } from 'node:os';
import { prefetchVolumes } from './prefetch.js';
import type { Backend } from '../backend/backend.js';
import type { ArchiveCache } from '../cache/archive-cache.js';
import { pickForTime, type BackupSet } from '../chain/collection.js';
import type { VolumeInfo } from '../chain/manifest.js';
import type { DecryptKeys } from '../crypto/index.js';
import { ChainError, DestinationError, FormatError, NotFoundError, withContext } from '../errors.js';
import { compareIndex, displayIndex, type Index } from '../volume/entry-name.js';
import { logicalEntries, rawEntries, type VolumeRef } from '../volume/set-reader.js';
import { ArchiveReader } from './archive.js';
import { applyDirMeta, TreeWriter } from './tree-writer.js';

export interface RestoreOptions {
  backend: Backend;
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
  /** @default true when root */
  restoreOwnership?: boolean;
  /** Temp directory for downloaded volumes (remote targets). @default os.tmpdir() */
  tempDir?: string;
  numericOwner?: boolean;
  /** Told which sets were picked, before anything is read. */
  onPicked?: (sets: BackupSet[]) => void;
  onWarning?: (message: string) => void;
}

export interface RestoreResult {
  sets: BackupSet[];
  files: number;
  patched: number;
  volumesRead: number;
}

async function prepareDest(dest: string, force: boolean): Promise<{ created: boolean }> {
  let st;
  try {
    st = await fs.stat(dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new DestinationError(`${dest}: cannot create or use: ${code ?? (e as Error).message}`, { cause: e });
  }
  if (st) {
    if (!st.isDirectory()) throw new DestinationError(`${dest}: exists and is not a directory`);
    const entries = await fs.readdir(dest);
    if (entries.length > 0 && !force) throw new DestinationError(`${dest}: directory is not empty (use --force to restore into it)`, { code: 'DEST_NOT_EMPTY' });
    return { created: false };
  }
  try {
    await fs.mkdir(dest, { recursive: true });
  } catch (e) {
    throw new DestinationError(`${dest}: cannot create or use: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  return { created: true };
}

/**
 * Whether a volume can hold entries at or below `p` (duplicity's rule): the first
 * len(p) components of its StartingPath ≤ p ≤ its EndingPath.
 */
export function volumeMayHold(v: VolumeInfo, p: Index): boolean {
  return compareIndex(v.start.slice(0, p.length), p) <= 0 && compareIndex(p, v.end) <= 0;
}

function isWithin(index: Index, p: Index): boolean {
  return index.length >= p.length && compareIndex(index.slice(0, p.length), p) === 0;
}

export interface RestorePlan {
  sets: BackupSet[];
  /** Per set (in chain order), the volumes the restore reads. */
  volumes: VolumeRef[][];
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
  for (const set of picked.sets) {
    const m = await archive.manifest(set, { fromTarget: true });
    volumes.push(archive.volumeRefs(set, m, sel.length ? (v) => volumeMayHold(v, sel) : undefined));
  }
  return { sets: picked.sets, volumes, archive };
}

export async function runRestore(o: RestoreOptions): Promise<RestoreResult> {
  const { sets, volumes: plan, archive } = await planRestore(o);
  const sel = o.path ?? [];
  const dest = path.resolve(o.dest);
  const { created } = await prepareDest(dest, o.force ?? false);
  const staging = path.join(dest, `.tapechain-restore-${randomBytes(6).toString('hex')}`);
  try {
    await fs.mkdir(staging, { mode: 0o700 });
  } catch (e) {
    if (created) await fs.rmdir(dest).catch(() => undefined);
    throw new DestinationError(`${dest}: not writable: ${(e as Error).message}`, { cause: e });
  }
  // Remote targets: download the next volume while the current one is applied.
  const prefetchDir = o.backend.properties.local ? undefined : await fs.mkdtemp(path.join(o.tempDir ?? tmpdir(), 'tapechain-restore-'));
  const volumeLists = prefetchDir ? splitBack(plan, prefetchVolumes(plan.flat(), prefetchDir)) : plan;
  const owner = o.restoreOwnership ?? process.getuid?.() === 0;
  const writer = new TreeWriter(Buffer.from(staging), {
    restoreOwnership: owner,
    ...(o.numericOwner !== undefined ? { numericOwner: o.numericOwner } : {}),
    ...(o.onWarning ? { onWarning: o.onWarning } : {}),
  });
  let found = sel.length === 0;
  try {
    for (const volumes of volumeLists) {
      for await (const e of logicalEntries(rawEntries(volumes, archive.keys, archive.decodeOptions))) {
        if (!isWithin(e.index, sel)) continue;
        found = true;
        try {
          if (e.kind === 'snapshot') await writer.snapshot(e.index, e.header, e.data);
          else if (e.kind === 'deleted') await writer.delete(e.index);
          else if (e.kind === 'diff') await writer.patch(e.index, e.header, e.data);
          else throw new FormatError(`unexpected ${e.kind} entry in a volume`);
        } catch (err) {
          throw withContext(err, `${e.volume}: ${displayIndex(e.index)}`);
        }
      }
      writer.nextSet();
    }
    if (!found) throw new NotFoundError(`${displayIndex(sel)}: not in the backup at that time`, { code: 'PATH_NOT_FOUND' });
    await writer.finish();
    await commit(Buffer.from(staging), Buffer.from(dest));
    if (writer.rootHeader && sel.length === 0) await applyDirMeta(Buffer.from(dest), writer.rootHeader, owner, o.numericOwner ?? false);
    return { sets, files: writer.files, patched: writer.patched, volumesRead: plan.reduce((a, v) => a + v.length, 0) };
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
    if (created) await fs.rm(dest, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  } finally {
    if (prefetchDir) await fs.rm(prefetchDir, { recursive: true, force: true });
  }
}

/** Regroups a flat list into the shape of `lists`. */
function splitBack<T>(lists: T[][], flat: T[]): T[][] {
  let i = 0;
  return lists.map((l) => flat.slice(i, (i += l.length)));
}

/** Moves the staged top-level entries into the destination, replacing same names. */
async function commit(staging: Buffer, dest: Buffer): Promise<void> {
  const names = (await fs.readdir(staging, { encoding: 'buffer' })) as Buffer[];
  for (const n of names) {
    const to = Buffer.concat([dest, Buffer.from('/'), n]);
    const from = Buffer.concat([staging, Buffer.from('/'), n]);
    const st = await fs.lstat(to).catch(() => null);
    if (st?.isDirectory()) await fs.rm(to, { recursive: true, force: true });
    await fs.rename(from, to);
  }
  await fs.rmdir(staging);
}
