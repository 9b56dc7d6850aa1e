/**
 * Restore: pick the chain and sets for the requested time, read each set's volumes in
 * chain order and apply their entries to a staging directory inside the destination;
 * only when every volume has been read and checked (hashes, MDC) are the staged
 * entries moved into place. A failure removes the staging directory and leaves the
 * destination as it was.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Backend } from '../backend/backend.js';
import { pickForTime, type BackupSet } from '../chain/collection.js';
import type { DecryptKeys } from '../crypto/index.js';
import { ChainError, DestinationError, FormatError, withContext } from '../errors.js';
import { displayIndex } from '../volume/entry-name.js';
import { logicalEntries, rawEntries } from '../volume/set-reader.js';
import { ArchiveReader } from './archive.js';
import { applyDirMeta, TreeWriter } from './tree-writer.js';

export interface RestoreOptions {
  backend: Backend;
  /** Destination directory; created if missing. */
  dest: string;
  keys: DecryptKeys;
  /** Point in time (epoch seconds). @default now (latest) */
  time?: number;
  /** Restore into a non-empty destination, replacing what is there. @default false */
  force?: boolean;
  /** @default true when root */
  restoreOwnership?: boolean;
  numericOwner?: boolean;
  /** Told which sets were picked, before anything is read. */
  onPicked?: (sets: BackupSet[]) => void;
  onWarning?: (message: string) => void;
}

export interface RestoreResult {
  sets: BackupSet[];
  files: number;
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

export async function runRestore(o: RestoreOptions): Promise<RestoreResult> {
  const archive = new ArchiveReader(o.backend, o.keys);
  const col = await archive.collection();
  const picked = pickForTime(col, o.time ?? Number.MAX_SAFE_INTEGER);
  if (!picked) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.backend.describe()}`);
  o.onPicked?.(picked.sets);
  // Read every manifest first: a wrong passphrase or a missing volume fails here,
  // before the destination is touched.
  const plan = [];
  for (const set of picked.sets) {
    const m = await archive.manifest(set);
    plan.push({ set, volumes: archive.volumeRefs(set, m) });
  }
  const dest = path.resolve(o.dest);
  const { created } = await prepareDest(dest, o.force ?? false);
  const staging = path.join(dest, `.tapechain-restore-${randomBytes(6).toString('hex')}`);
  try {
    await fs.mkdir(staging, { mode: 0o700 });
  } catch (e) {
    if (created) await fs.rmdir(dest).catch(() => undefined);
    throw new DestinationError(`${dest}: not writable: ${(e as Error).message}`, { cause: e });
  }
  const writer = new TreeWriter(Buffer.from(staging), {
    ...(o.restoreOwnership !== undefined ? { restoreOwnership: o.restoreOwnership } : {}),
    ...(o.numericOwner !== undefined ? { numericOwner: o.numericOwner } : {}),
    ...(o.onWarning ? { onWarning: o.onWarning } : {}),
  });
  try {
    for (const { volumes } of plan) {
      for await (const e of logicalEntries(rawEntries(volumes, o.keys))) {
        try {
          if (e.kind === 'snapshot') await writer.snapshot(e.index, e.header, e.data);
          else if (e.kind === 'deleted') await writer.delete(e.index);
          else if (e.kind === 'diff') throw new FormatError('delta entries need incremental support');
          else throw new FormatError(`unexpected ${e.kind} entry in a volume`);
        } catch (err) {
          throw withContext(err, `${e.volume}: ${displayIndex(e.index)}`);
        }
      }
    }
    await writer.finish();
    await commit(Buffer.from(staging), Buffer.from(dest));
    if (writer.rootHeader) await applyDirMeta(Buffer.from(dest), writer.rootHeader, o.restoreOwnership ?? process.getuid?.() === 0, o.numericOwner ?? false);
    return { sets: picked.sets, files: writer.files };
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true }).catch(() => undefined);
    if (created) await fs.rm(dest, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
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
