/**
 * Whether a backup continues the set an interrupted run left, and from where: the
 * checkpoint (checkpoint.ts) says what that run stored; the set is continued when its
 * volumes are at the target as recorded, the run is the same (source, encryption and
 * key, --full or not), the chain it extends is unchanged, and the file the last stored
 * volume ends in has not changed (or its two halves would differ). Otherwise the
 * checkpoint is dropped and a new set is written, with the reason told.
 */
import * as fs from 'node:fs/promises';
import { setKey, type Collection } from '../chain/collection.js';
import { keyMismatch } from '../repo/key-check.js';
import { sameSource } from '../source/source-dir.js';
import { compareIndex, type Index } from '../volume/entry-name.js';
import { CheckpointFiles, fromHex, settle, type CheckpointState } from './checkpoint.js';
import type { ResolvedBackupOptions } from './options.js';

export type Interrupted = { state: CheckpointState; refused?: undefined } | { state: CheckpointState; refused: string } | undefined;

/** The interrupted set to continue, or the one refused and why; undefined when there is none. */
export async function interruptedSet(o: ResolvedBackupOptions, cp: CheckpointFiles, col: Collection, srcAbs: string): Promise<Interrupted> {
  const st = settleCheckpoint(cp.load(), col);
  if (!st) return undefined;
  const why = await resumeProblem(o, st, col, srcAbs);
  if (!why) return { state: st };
  await cp.clear();
  return { state: st, refused: why };
}

/** Whether an entry at `index` is stored already by the interrupted run. */
export function storedBefore(resume: CheckpointState): (index: Index) => boolean {
  const at = fromHex(resume.resume.index);
  const done = resume.resume.done === true;
  return (index) => {
    const c = compareIndex(index, at);
    return c < 0 || (c === 0 && done);
  };
}

/** The checkpoint with its pending volumes that reached the target counted as stored. */
function settleCheckpoint(st: CheckpointState | undefined, col: Collection): CheckpointState | undefined {
  if (!st) return undefined;
  const set = incompleteSetOf(st, col);
  return settle(st, (v) => {
    const f = set?.volumes.get(v.number);
    return f !== undefined && f.name === v.name && f.size === v.size;
  });
}

function incompleteSetOf(st: CheckpointState, col: Collection) {
  return col.incomplete.find((s) => setKey(s) === setKey(st));
}

/** Why an interrupted set cannot be continued (undefined: it can). */
async function resumeProblem(o: ResolvedBackupOptions, st: CheckpointState, col: Collection, srcAbs: string): Promise<string | undefined> {
  if (o.resume === false) return 'resuming was turned off for this run';
  if (!(await sameSource(st.source, o.source))) return `it backed up ${st.source}`;
  if (o.full && st.type !== 'full') return 'a full backup was asked for';
  if (st.encoding !== o.encoder.encoding) return 'the encryption differs';
  const set = incompleteSetOf(st, col);
  if (!set) return 'its set is not at the target as an incomplete set any more';
  for (const v of st.volumes) {
    const f = set.volumes.get(v.number);
    if (!f || f.name !== v.name || f.size !== v.size) return `volume ${v.number} is not at the target as it was stored`;
  }
  if (st.type === 'inc' && !col.chains.some((c) => c.end === st.start)) return 'the chain it extends has changed';
  const first = st.volumes[0];
  if (first) {
    try {
      const mismatch = await keyMismatch(o.backend, first.name, o.encryptor, o.keys, 'head');
      if (mismatch) return `its first volume ${mismatch}`;
    } catch (e) {
      return `its first volume cannot be read (${(e as Error).message})`;
    }
  }
  return changedSince(st, srcAbs);
}

/** The file the last stored volume ends in, if it changed since. */
async function changedSince(st: CheckpointState, srcAbs: string): Promise<string | undefined> {
  const r = st.resume;
  if (r.size === undefined) return undefined;
  const p = Buffer.concat([Buffer.from(srcAbs), ...fromHex(r.index).flatMap((c) => [Buffer.from('/'), c])]);
  try {
    const cur = await fs.lstat(p);
    if (cur.size !== r.size || Math.floor(cur.mtimeMs / 1000) !== r.mtime) return `${p.toString('utf8')} changed since`;
  } catch {
    return `${p.toString('utf8')} is gone`;
  }
  return undefined;
}
