/**
 * verify with every core: each volume of a set is checked whole by one of `jobs` lanes
 * (volume-check.ts) — read, hashed, decrypted, parsed, its files held against their slice
 * of the signature file — with up to `jobs` + 1 volumes under way. Every `jobs`-th
 * volume is checked on this thread, the others on `jobs` - 1 worker threads (on `jobs`
 * workers when this thread has other work). This thread cuts the slices, takes the
 * reports in volume order and does what spans volumes: index order,
 * multivol runs, the manifest's ranges and the block a split run leaves between two
 * volumes. Problems come out in volume order, as with one lane.
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { BackupSet } from '../chain/collection.js';
import { keysToWire, type WireKeys } from '../crypto/key-wire.js';
import { SignatureCheck } from '../diff/signature-check.js';
import { errorFromWire, withContext } from '../errors.js';
import type { ArchiveReader } from '../repo/archive.js';
import { withVolumeFile } from '../repo/download.js';
import { makeTempDir, removeStaleTempDirs } from '../util/temp-dir.js';
import { revivedBuffer } from '../util/wire.js';
import { Lanes, untilAborted } from '../util/lanes.js';
import { compareIndex, revivedIndex } from '../volume/entry-name.js';
import type { VolumeRef } from '../volume/set-reader.js';
import { EntrySequence } from './entry-sequence.js';
import type { ProblemCollector } from './problems.js';
import { mismatch, type DigestedBytes } from './signature-cursor.js';
import { SignatureSpool } from './signature-spool.js';
import { checkRange, checkVolumeTask, type SplitBlock, type VolumeReport, type VolumeTask } from './volume-check.js';

/** The lanes and the temp directory of a parallel verify, made on first use. */
export class VolumeCheckers {
  readonly jobs: number;
  readonly #lanes: Lanes<VolumeTask, VolumeReport>;
  #dir: string | undefined;
  #wire: WireKeys | undefined;

  /** `here`: this thread is one of the lanes (not when it has other work: verify --compare). */
  constructor(jobs: number, here = true) {
    this.jobs = jobs;
    this.#lanes = new Lanes(new URL('./volume-worker.js', import.meta.url), jobs, here ? checkVolumeTask : undefined);
  }

  /** Whether the volumes can be checked apart: two or more, with ranges in order (the slices are cut by them). */
  suits(refs: VolumeRef[], deep: number): boolean {
    if (!this.#lanes.parallel || deep < 2) return false;
    for (let i = 0; i < refs.length; i++) {
      const r = refs[i]!.range;
      if (!r || (i > 0 && compareIndex(refs[i - 1]!.range!.end, r.end) > 0)) return false;
    }
    return true;
  }

  /** Checks volume `i` in its lane. */
  async check(i: number, task: VolumeTask, signal: AbortSignal | undefined): Promise<VolumeReport> {
    const r = await this.#lanes.run(i, task, signal);
    return this.#lanes.isHere(i) ? r : revive(r);
  }

  wireKeys(archive: ArchiveReader): WireKeys {
    this.#wire ??= keysToWire(archive.keys);
    const { requireSignature, tolerateUnknownSigners } = archive.keys;
    return { ...this.#wire, requireSignature: requireSignature ?? false, tolerateUnknownSigners: tolerateUnknownSigners ?? false };
  }

  /** Stops the workers (a task under way fails as cancelled) and removes the temp directory. */
  async close(): Promise<void> {
    await this.#lanes.close();
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }

  /** The temp directory (0700), made on first use. */
  async dir(): Promise<string> {
    if (!this.#dir) {
      await removeStaleTempDirs(tmpdir());
      this.#dir = await makeTempDir(tmpdir(), 'verify');
    }
    return this.#dir;
  }
}

/** One set's deep check: which volumes, and what to hold them against. */
export interface SetCheck {
  archive: ArchiveReader;
  set: BackupSet;
  /** Every volume of the set, in order. */
  all: VolumeRef[];
  /** The names of those to read (all, or a sample). */
  deep: Set<string>;
  /** Hold the volumes against the signature file (every volume is read). */
  compareSigtar: boolean;
  problems: ProblemCollector;
  /** Told about each volume read to the end. */
  done: (name: string) => void;
  /** Worker threads, for sets whose volumes can be checked apart. */
  checkers: VolumeCheckers;
  signal?: AbortSignal;
}

type Outcome = { skipped: true } | { report: VolumeReport } | { error: unknown };

/** Deep-checks the set's volumes in the lanes; returns how many were read. */
export async function checkSetParallel(c: SetCheck, sigBytes: DigestedBytes): Promise<number> {
  const { checkers } = c;
  const dir = await checkers.dir();
  const spool = c.compareSigtar ? await SignatureSpool.open(c.archive, c.set, sigBytes, dir, c.problems) : undefined;
  const seq = new EntrySequence(c.problems);
  const started: Promise<Outcome>[] = [];
  let tail: SplitBlock | undefined;
  let count = 0;
  let finished = false;
  try {
    for (let i = 0; i < c.all.length; i++) {
      while (started.length < c.all.length && started.length <= i + checkers.jobs) started.push(launch(c, dir, spool, started.length));
      const ref = c.all[i]!;
      const o = await untilAborted(started[i]!, c.signal);
      if ('skipped' in o) {
        seq.gap(); // the run (if any) goes on in a volume we do not read: no judgement on it
        tail = undefined;
      } else if ('error' in o) {
        c.problems.reportError(ref.name, o.error);
        seq.gap();
        tail = undefined;
      } else {
        tail = take(c, ref, o.report, { seq, tail });
        if (!o.report.failure) {
          c.done(ref.name);
          count++;
        }
      }
    }
    seq.close();
    finished = true;
  } finally {
    if (!finished) await checkers.close(); // stopped: the tasks under way are cancelled
    await Promise.allSettled(started);
    await spool?.close();
  }
  return count;
}

/** Starts volume `i`: its slice (cut now, in volume order), its bytes (downloaded unless local), its task. */
async function launch(c: SetCheck, dir: string, spool: SignatureSpool | undefined, i: number): Promise<Outcome> {
  const ref = c.all[i]!;
  if (!c.deep.has(ref.name)) return { skipped: true };
  const slice = spool?.slice(i === c.all.length - 1 ? undefined : ref.range!.end);
  try {
    return await withVolumeFile(c.archive.backend, ref, { dir, name: `volume-${i}` }, c.signal, async (file) => {
      const sig = await slice;
      const task: VolumeTask = { name: ref.name, file, ...(ref.hash ? { hash: ref.hash } : {}), encoding: ref.encoding, keys: c.checkers.wireKeys(c.archive), ...(sig ? { sig } : {}) };
      return { report: await c.checkers.check(i, task, c.signal) };
    });
  } catch (e) {
    return { error: withContext(e, { file: ref.name }) };
  } finally {
    // cut even when the volume failed: the next volume's slice starts where this one ends
    spool?.release(await slice?.catch(() => undefined));
  }
}

/**
 * Takes a volume's report: its entries through the checks that span volumes (with the
 * worker's problems in the place a single lane finds them), its signatures and warnings,
 * and the block of a run split with the volume before. Returns the block this volume
 * leaves to the next.
 */
function take(c: SetCheck, ref: VolumeRef, r: VolumeReport, w: { seq: EntrySequence; tail: SplitBlock | undefined }): SplitBlock | undefined {
  const { report } = c.problems;
  let k = 0;
  const flush = (upTo: number) => {
    for (; k < r.problems.length && r.problems[k]!.at <= upTo; k++) report(r.problems[k]!.file, r.problems[k]!.problem);
  };
  for (let i = 0; i < r.entries.length; i++) {
    const e = r.entries[i]!;
    w.seq.entry(e, ref.name);
    w.seq.sized(e.size);
    flush(i + 1);
  }
  flush(Infinity);
  for (const s of r.signatures) {
    if (!s.verified && c.archive.keys.tolerateUnknownSigners) c.archive.keys.unverifiedSigners?.add(s.keyId || '(unknown)');
    c.archive.decodeOptions.onSignature?.(s);
  }
  for (const m of r.warnings) c.archive.decodeOptions.onWarning?.(m);
  if (r.failure) {
    c.problems.reportError(ref.name, errorFromWire(r.failure));
    w.seq.gap();
    return undefined;
  }
  checkRange(ref, r.entries[0]?.index, r.entries[r.entries.length - 1]?.index, report);
  const t = w.tail;
  const h = r.head;
  if (t && h && compareIndex(t.index, h.index) === 0 && t.block === h.block && !SignatureCheck.blockMatches(Buffer.concat([t.bytes, h.bytes]), h.record, h.md4)) {
    report(c.set.signature?.name ?? '', mismatch(h.index, `block ${h.block} differs`));
  }
  return r.tail;
}

/** Gives a report that crossed threads its Buffers back. */
function revive(r: VolumeReport): VolumeReport {
  return {
    ...r,
    entries: r.entries.map((e) => ({ ...e, index: revivedIndex(e.index) })),
    ...(r.head ? { head: { ...r.head, index: revivedIndex(r.head.index), bytes: revivedBuffer(r.head.bytes), record: revivedBuffer(r.head.record) } } : {}),
    ...(r.tail ? { tail: { ...r.tail, index: revivedIndex(r.tail.index), bytes: revivedBuffer(r.tail.bytes) } } : {}),
  };
}
