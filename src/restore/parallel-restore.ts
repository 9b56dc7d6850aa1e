/**
 * restore with every core: the volumes of a set are restored whole by `jobs` worker
 * threads (volume-restore.ts) — read, hashed, decrypted, parsed, and their files written
 * into the staging directory's scratch space — with up to `jobs` + 1 volumes under way.
 * This thread is not a lane: it takes the workers' reports in volume order, checks what
 * spans volumes (index order, multivol runs), and does each volume's actions (files
 * moved into place, directories, links, deletions) with the checks of the one-lane
 * restore; with a lane of its own those would wait behind its volume. Sets are applied
 * in chain order: a set's deltas are applied to what the sets before it left.
 */
import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { keysToWire, type WireKeys } from '../crypto/key-wire.js';
import { errorFromWire, IntegrityError, InternalError, withContext } from '../errors.js';
import { withVolumeFile } from '../repo/download.js';
import { Lanes, untilAborted } from '../util/lanes.js';
import { displayIndex, revivedIndex } from '../volume/entry-name.js';
import {
  checkOrder, CHUNK_SIZE, continuesRun, firstChunkProblem, isOpenChunk, lastChunkProblem, nextChunkProblem,
  type EntryMark, type VolumeRef,
} from '../volume/set-reader.js';
import type { TarHeader } from '../volume/tar-header.js';
import type { Index } from '../volume/entry-name.js';
import { finishFile, noData } from './file-writer.js';
import type { RestorePlan } from './restore.js';
import type { TreeWriter } from './tree-writer.js';
import { entryFailure, loggedActions, runRefused, type Action, type RestoreVolumeTask, type VolumeRestoreReport } from './volume-restore.js';

/** How the lanes write what they restore. */
export interface LaneOptions {
  owner: boolean;
  numericOwner: boolean;
  sparse: boolean;
  xattrs: boolean;
}

export interface ParallelStage {
  plan: RestorePlan;
  writer: TreeWriter;
  lanes: Lanes<RestoreVolumeTask, VolumeRestoreReport>;
  /** The staging directory's scratch space (the tree's filesystem). */
  scratch: string;
  /** The staging tree. */
  tree: string;
  /** Where remote volumes are downloaded. */
  downloads: string | undefined;
  options: LaneOptions;
  onWarning: ((m: string) => void) | undefined;
  signal: AbortSignal | undefined;
}

/** The lanes of a parallel restore: `jobs` worker threads. */
export function restoreLanes(jobs: number): Lanes<RestoreVolumeTask, VolumeRestoreReport> {
  return new Lanes(new URL('./volume-worker.js', import.meta.url), jobs);
}

/** Restores every set of the plan (all their volumes) into the staging tree; returns the volumes read. */
export async function stageSetsParallel(s: ParallelStage): Promise<number> {
  const wire = keysToWire(s.plan.archive.keys);
  const warned = new Set<string>();
  let read = 0;
  for (let k = 0; k < s.plan.sets.length; k++) {
    await stageSet(s, k, { wire, warned });
    read += s.plan.allVolumes[k]!.length;
    s.writer.nextSet();
  }
  await s.writer.finish();
  return read;
}

type Outcome = { report: VolumeRestoreReport } | { error: unknown };

async function stageSet(s: ParallelStage, k: number, shared: { wire: WireKeys; warned: Set<string> }): Promise<void> {
  const refs = s.plan.allVolumes[k]!;
  const started: Promise<Outcome>[] = [];
  const taker = new SetTaker(s, shared.warned);
  let finished = false;
  try {
    for (let i = 0; i < refs.length; i++) {
      while (started.length < refs.length && started.length <= i + s.lanes.jobs) started.push(launch(s, k, started.length, shared.wire));
      const o = await untilAborted(started[i]!, s.signal);
      if ('error' in o) throw o.error;
      await taker.take(refs[i]!, o.report);
    }
    taker.end();
    finished = true;
  } finally {
    if (!finished) await s.lanes.close(); // failed or stopped: the volumes under way are cancelled
    await Promise.allSettled(started);
  }
}

/** Starts volume `i` of set `k`: its bytes (downloaded unless local), its task. */
async function launch(s: ParallelStage, k: number, i: number, wire: WireKeys): Promise<Outcome> {
  const ref = s.plan.allVolumes[k]![i]!;
  const { requireSignature, tolerateUnknownSigners } = s.plan.archive.keys;
  const keys = { ...wire, requireSignature: requireSignature ?? false, tolerateUnknownSigners: tolerateUnknownSigners ?? false };
  try {
    return await withVolumeFile(s.plan.archive.backend, ref, { dir: s.downloads, name: `volume-${k}-${i}` }, s.signal, async (file) => {
      const task: RestoreVolumeTask = { name: ref.name, file, ...(ref.hash ? { hash: ref.hash } : {}), encoding: ref.encoding, keys, scratch: s.scratch, tag: `s${k}v${i}`, setTag: `s${k}`, tree: s.tree, ...s.options };
      return { report: revive(await s.lanes.run(i, task, s.signal)) };
    });
  } catch (e) {
    return { error: withContext(e, { file: ref.name }) };
  }
}

/** A report over a thread boundary: its indexes' buffers made Buffers again. */
function revive(r: VolumeRestoreReport): VolumeRestoreReport {
  const mark = (m: EntryMark): EntryMark => ({ ...m, index: revivedIndex(m.index) });
  return { ...r, ...(r.first ? { first: mark(r.first) } : {}), ...(r.last ? { last: mark(r.last) } : {}) };
}

/** A multivol run that crosses volume boundaries, as its pieces come in. */
interface OpenRun {
  kind: 'snapshot' | 'diff';
  index: Index;
  header: TarHeader;
  /** The snapshot's run file, or the delta's spooled pieces in order. */
  files: string[];
  last: EntryMark;
  volume: string;
}

/** Takes a set's volume reports in order. */
class SetTaker {
  readonly #s: ParallelStage;
  readonly #warned: Set<string>;
  /** The last tar entry of the volumes taken. */
  #last: EntryMark | undefined;
  #run: OpenRun | undefined;

  constructor(s: ParallelStage, warned: Set<string>) {
    this.#s = s;
    this.#warned = warned;
  }

  async take(ref: VolumeRef, r: VolumeRestoreReport): Promise<void> {
    try {
      if (r.first) this.#enter(r.first);
      else if (r.failure) throw errorFromWire(r.failure);
      for (const a of loggedActions(r.log, r.logged)) {
        this.#s.signal?.throwIfAborted();
        await this.#act(a);
      }
      if (r.failure) throw errorFromWire(r.failure);
      this.#signatures(ref, r);
      if (r.last) this.#last = r.last;
    } finally {
      await rm(r.log, { force: true });
    }
    for (const w of r.warnings) {
      if (this.#warned.has(w)) continue;
      this.#warned.add(w);
      this.#s.onWarning?.(w);
    }
  }

  /** The checks between the volume before and this one's first entry, as one reader makes them. */
  #enter(first: EntryMark): void {
    const prev = this.#last;
    if (prev && continuesRun(prev, first)) {
      const p = nextChunkProblem(prev, first);
      if (p) throw runRefused(first, p);
      return;
    }
    if (prev) {
      const p = lastChunkProblem(prev);
      if (p) throw runRefused(prev, p);
      checkOrder(prev, first);
    }
    const p = first.kind === 'multivol_snapshot' || first.kind === 'multivol_diff' ? firstChunkProblem(first) : undefined;
    if (p) throw runRefused(first, p);
  }

  /** Signatures as one reader reports and requires them: once a volume (or the manifest) was signed, every one must be. */
  #signatures(ref: VolumeRef, r: VolumeRestoreReport): void {
    const { archive } = this.#s.plan;
    if (r.signatures.length === 0 && archive.keys.requireSignature) {
      throw new IntegrityError('not signed, but a signature is required', { context: { file: ref.name }, code: 'SIGNATURE_MISSING' });
    }
    for (const sig of r.signatures) archive.decodeOptions.onSignature?.(sig);
  }

  async #act(a: Action): Promise<void> {
    const w = this.#s.writer;
    try {
      switch (a.op) {
        case 'put':
          return await (a.temp ? w.place(a.index, a.header, Buffer.from(a.temp)) : w.snapshot(a.index, a.header, noData()));
        case 'delete':
          return await w.delete(a.index);
        case 'patch':
          return await w.placePatched(a.index, a.header, a.temp === undefined ? undefined : Buffer.from(a.temp));
        case 'piece':
          return await this.#piece(a);
      }
    } catch (err) {
      throw entryFailure(err, a.index, a.volume);
    }
  }

  /** A piece of a run across volumes: the first opens it, a later one continues it; the final one finishes the file. */
  async #piece(a: Extract<Action, { op: 'piece' }>): Promise<void> {
    let run = this.#run;
    if (a.first === 1) run = this.#run = { kind: a.kind, index: a.index, header: a.header, files: [a.file], last: a.last, volume: a.volume };
    else if (!run) throw new InternalError(`a piece of ${displayIndex(a.index)} without its start`);
    else {
      if (run.kind === 'diff') run.files.push(a.file);
      run.last = a.last;
    }
    if (isOpenChunk(run.last)) return;
    this.#run = undefined;
    if (run.kind === 'diff') {
      await this.#s.writer.patch(run.index, run.header, joined(run.files));
      await Promise.all(run.files.map((f) => rm(f, { force: true })));
      return;
    }
    const file = run.files[0]!;
    const fh = await open(file, 'r+');
    try {
      const size = ((run.last.chunk ?? 1) - 1) * CHUNK_SIZE + run.last.size;
      await finishFile(fh, Buffer.from(file), run.header, size, this.#s.writer.fileMeta(run.header, () => displayIndex(run.index)));
    } finally {
      await fh.close();
    }
    await this.#s.writer.place(run.index, run.header, Buffer.from(file));
  }

  /** The set's end: a run open at it lacks its last chunks. */
  end(): void {
    const p = this.#last && lastChunkProblem(this.#last);
    if (p) throw runRefused(this.#last!, p);
  }
}

/** The spooled pieces of a delta, as one stream. */
async function* joined(files: string[]): AsyncGenerator<Buffer> {
  for (const f of files) yield* createReadStream(f, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
}
