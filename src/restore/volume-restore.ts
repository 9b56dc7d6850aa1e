/**
 * One volume of a parallel restore, read whole by one lane (a worker thread, or the main
 * thread as one of the lanes): the stored bytes hashed and decrypted, the tar read, and
 * every file's data written — to a new file in the staging directory's scratch space,
 * never to a path the archive names. A snapshot's file gets its owner, xattrs, mode and
 * times there; a delta is applied to the staged file it changes (the version the sets
 * before left) into a new file. What the main thread then does, in volume order, is in
 * the volume's action log: where each file goes (a rename), directories, links, special
 * files, deletions — with every safety check of the one-lane restore (tree-writer.ts).
 *
 * A multivol run that crosses a volume boundary is written by both lanes at once: every
 * chunk but the last is CHUNK_SIZE bytes, so chunk n lands at (n − 1) × CHUNK_SIZE of
 * one run file whose name both derive from the set and the path. The main thread checks
 * that the chunks meet (numbers, sizes) before it finishes the file. A delta crossing a
 * boundary cannot be applied in pieces (a command may straddle them): each lane spools
 * its chunks, and the main thread applies the joined delta.
 */
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import type { SignatureReport, StoredEncoding } from '../crypto/index.js';
import type { DecryptKeys } from '../crypto/decrypt.js';
import { keysFromWire, type WireKeys } from '../crypto/key-wire.js';
import { applyDelta, fileBasis } from '../diff/patch.js';
import { EngineError, errorToWire, FormatError, withContext, withSuffix, type ErrorWire } from '../errors.js';
import { displayIndex, joinIndex, type Index } from '../volume/entry-name.js';
import {
  checkOrder, CHUNK_SIZE, continuesRun, firstChunkProblem, lastChunkProblem, markOf, nextChunkProblem, rawEntries, runFailure,
  type EntryMark, type RawEntry, type VolumeRef,
} from '../volume/set-reader.js';
import type { TarHeader } from '../volume/tar-header.js';
import { destinationFailure } from './commit.js';
import { finishFile, ownerIds, smallFile, writeAt, writeFile, writeSmallFile, type FileMeta } from './file-writer.js';
import { XattrWriter } from './xattr-writer.js';

export interface RestoreVolumeTask {
  name: string;
  /** The stored bytes: the target's file, or a download of it. */
  file: string;
  hash?: VolumeRef['hash'];
  encoding: StoredEncoding;
  keys: WireKeys;
  /** Where the files, the run files and the action log go (in the staging directory: the tree's filesystem). */
  scratch: string;
  /** This volume's prefix for names in the scratch space (unique in the restore). */
  tag: string;
  /** The set's prefix: names the run files the volumes of a set share. */
  setTag: string;
  /** The staging tree: where a delta's basis is. */
  tree: string;
  owner: boolean;
  numericOwner: boolean;
  sparse: boolean;
  xattrs: boolean;
}

/** What the main thread does with an entry, in order. */
export type Action =
  /** A snapshot: a regular file (`temp` holds it, metadata set) or another type (header only). */
  | { op: 'put'; index: Index; header: TarHeader; temp?: string; volume: string }
  | { op: 'delete'; index: Index; volume: string }
  /** A delta applied into `temp`; without `temp`, no staged file to apply it to was found. */
  | { op: 'patch'; index: Index; header: TarHeader; temp?: string; volume: string }
  /** This volume's part of a multivol run that crosses its first or last byte: chunks `first`–`last`. */
  | { op: 'piece'; kind: 'snapshot' | 'diff'; index: Index; header: TarHeader; first: number; last: EntryMark; file: string; volume: string };

export interface VolumeRestoreReport {
  /** The volume's first and last tar entries (the checks across volumes). */
  first?: EntryMark;
  last?: EntryMark;
  /** The action log (loggedActions reads it). */
  log: string;
  /** The actions in the log (a failed write leaves an unfinished record after them). */
  logged: number;
  /** The volume could not be read to its end: the actions before the failure are in the log. */
  failure?: ErrorWire;
  signatures: SignatureReport[];
  warnings: string[];
}

let lastKeys: { wire: WireKeys; keys: DecryptKeys } | undefined;

/** Restores the volume of `t` into the scratch space (on a worker, or on the main thread: `signal` stops it). */
export async function restoreVolumeTask(t: RestoreVolumeTask, signal?: AbortSignal): Promise<VolumeRestoreReport> {
  const keys = await keysFromWire(t.keys, lastKeys);
  lastKeys = { wire: t.keys, keys };
  const out: VolumeRestoreReport = { log: `${t.scratch}/${t.tag}.log`, logged: 0, signatures: [], warnings: [] };
  const log = new ActionLog(out.log);
  const lane = new VolumeLane(t, log, (m) => out.warnings.push(m));
  const ref: VolumeRef = { name: t.name, ...(t.hash ? { hash: t.hash } : {}), encoding: t.encoding, open: async () => createReadStream(t.file, { highWaterMark: 1 << 20 }) };
  const opts = { onSignature: (r: SignatureReport) => out.signatures.push(r), onWarning: (m: string) => out.warnings.push(m) };
  try {
    for await (const e of rawEntries([ref], keys, opts, signal ? { signal } : {})) {
      const m = markOf(e);
      out.first ??= m;
      out.last = m;
      await lane.take(e, m);
    }
    await lane.end();
  } catch (e) {
    if (signal?.aborted) throw e;
    out.failure = errorToWire(e);
  } finally {
    await lane.close();
    try {
      log.close();
    } catch (e) {
      out.failure ??= errorToWire(e);
    }
    out.logged = log.written;
  }
  return out;
}

/** An open multivol run: its file (the shared run file, or this lane's spool of delta chunks). */
interface Run {
  kind: 'snapshot' | 'diff';
  index: Index;
  header: TarHeader;
  first: number;
  last: EntryMark;
  file: string;
  fh: fs.FileHandle;
  /** Where the next chunk goes in the file. */
  pos: number;
}

/** The entries of one volume, taken in order. */
class VolumeLane {
  readonly #t: RestoreVolumeTask;
  readonly #log: ActionLog;
  readonly #xattrs: XattrWriter | undefined;
  #prev: EntryMark | undefined;
  #run: Run | undefined;
  /** Tar entries taken. */
  #taken = 0;
  #seq = 0;

  constructor(t: RestoreVolumeTask, log: ActionLog, onWarning: (m: string) => void) {
    this.#t = t;
    this.#log = log;
    this.#xattrs = t.xattrs ? new XattrWriter(onWarning) : undefined;
  }

  #temp(): string {
    return `${this.#t.scratch}/${this.#t.tag}-${this.#seq++}`;
  }

  #meta(h: TarHeader, index: Index): FileMeta {
    return { ids: this.#t.owner ? ownerIds(h, this.#t.numericOwner) : undefined, xattrs: this.#xattrs, sparse: this.#t.sparse, shown: () => displayIndex(index) };
  }

  async take(e: RawEntry, m: EntryMark): Promise<void> {
    this.#taken++;
    const run = this.#run;
    if (run && continuesRun(run.last, m)) {
      const p = nextChunkProblem(run.last, m);
      if (p) throw runRefused(e, p);
      await this.#chunk(run, e, m);
      return;
    }
    if (run) {
      const p = lastChunkProblem(run.last);
      if (p) throw runRefused(run.last, p);
      await this.#closeRun(run);
    }
    if (this.#prev) checkOrder(this.#prev, e);
    this.#prev = m;
    try {
      await this.#entry(e, m);
    } catch (err) {
      throw entryFailure(err, e.index, e.volume);
    }
  }

  async #entry(e: RawEntry, m: EntryMark): Promise<void> {
    const v = e.volume;
    switch (e.kind) {
      case 'multivol_snapshot':
      case 'multivol_diff':
        return this.#openRun(e, m);
      case 'snapshot':
        if (e.header.type !== 'file') return this.#log.add({ op: 'put', index: e.index, header: e.header, volume: v });
        return this.#log.add({ op: 'put', index: e.index, header: e.header, temp: await this.#file(e.header, e.index, e.data()), volume: v });
      case 'deleted':
        return this.#log.add({ op: 'delete', index: e.index, volume: v });
      case 'diff':
        return this.#log.add({ op: 'patch', index: e.index, header: e.header, ...(await this.#patched(e.header, e.index, e.data())), volume: v });
      default:
        throw new FormatError(`unexpected ${e.kind} entry in a volume`);
    }
  }

  async #file(h: TarHeader, index: Index, data: AsyncIterable<Buffer>): Promise<string> {
    const temp = this.#temp();
    const small = await smallFile(data);
    if (small.parts) writeSmallFile(Buffer.from(temp), h, small.parts, this.#meta(h, index));
    else await writeFile(Buffer.from(temp), h, small.rest, this.#meta(h, index));
    return temp;
  }

  /** A delta applied to the staged file it changes, into a new file; no `temp` when there is none to apply it to. */
  async #patched(h: TarHeader, index: Index, delta: AsyncIterable<Buffer>): Promise<{ temp?: string }> {
    const basis = await openBasis(this.#t.tree, index);
    if (!basis) {
      for await (const _ of delta); // read: the volume's checks need all of it
      return {};
    }
    const temp = this.#temp();
    try {
      await writeFile(Buffer.from(temp), h, applyDelta(delta, fileBasis(basis.fh, basis.size)), this.#meta(h, index));
    } catch (e) {
      await fs.rm(temp, { force: true });
      throw e;
    } finally {
      await basis.fh.close();
    }
    return { temp };
  }

  async #openRun(e: RawEntry, m: EntryMark): Promise<void> {
    // only a volume's first entry may go on with a run begun in the volume before (checked there)
    const p = this.#taken > 1 ? firstChunkProblem(m) : undefined;
    if (p) throw runFailure(e, p);
    const kind = e.kind === 'multivol_snapshot' ? 'snapshot' : 'diff';
    // a snapshot's chunks land at their place in the run file shared with the lanes of
    // the volumes before and after; a delta's are spooled (applied once whole)
    const file = kind === 'snapshot' ? runFile(this.#t, kind, e.index) : this.#temp();
    const fh = await fs.open(file, kind === 'snapshot' ? constants.O_WRONLY | constants.O_CREAT : 'wx', 0o600);
    const run: Run = { kind, index: e.index, header: e.header, first: m.chunk ?? 1, last: m, file, fh, pos: kind === 'snapshot' ? ((m.chunk ?? 1) - 1) * CHUNK_SIZE : 0 };
    this.#run = run;
    await this.#write(run, e);
  }

  async #chunk(run: Run, e: RawEntry, m: EntryMark): Promise<void> {
    run.last = m;
    try {
      await this.#write(run, e);
    } catch (err) {
      throw entryFailure(err, e.index, e.volume);
    }
  }

  async #write(run: Run, e: RawEntry): Promise<void> {
    run.pos = await writeAt(run.fh, e.data(), run.pos, run.kind === 'snapshot' && this.#t.sparse);
  }

  /** A run ended in this volume: whole here (a file or a delta applied), or this volume's piece of it. */
  async #closeRun(run: Run): Promise<void> {
    this.#run = undefined;
    const v = run.last.volume;
    const whole = run.first === 1 && !lastChunkProblem(run.last);
    try {
      if (whole && run.kind === 'snapshot') {
        await finishFile(run.fh, Buffer.from(run.file), run.header, run.pos, this.#meta(run.header, run.index));
        await run.fh.close();
        return this.#log.add({ op: 'put', index: run.index, header: run.header, temp: run.file, volume: v });
      }
      await run.fh.close();
      if (!whole) return this.#log.add({ op: 'piece', kind: run.kind, index: run.index, header: run.header, first: run.first, last: run.last, file: run.file, volume: v });
      const patched = await this.#patched(run.header, run.index, createReadStream(run.file, { highWaterMark: 1 << 20 }));
      await fs.rm(run.file, { force: true });
      this.#log.add({ op: 'patch', index: run.index, header: run.header, ...patched, volume: v });
    } catch (err) {
      throw entryFailure(err, run.index, v);
    }
  }

  /** The volume's end: a run open at it is this volume's piece. */
  async end(): Promise<void> {
    if (this.#run) await this.#closeRun(this.#run);
    await this.#xattrs?.settled();
  }

  /** Closes what a failure left open (its files are the staging directory's: removed with it). */
  async close(): Promise<void> {
    await this.#run?.fh.close().catch(() => undefined);
    this.#run = undefined;
  }
}

/** A failure at an entry, named as the one-lane restore names it. */
export function entryFailure(err: unknown, index: Index, volume: string): unknown {
  const e2 = destinationFailure(err, undefined, 'writing the staged copy');
  // A failure reading the archive names its volume already (maybe a later one than
  // the entry started in): the path follows it.
  if (e2 instanceof EngineError && e2.context.file !== undefined) return withSuffix(e2, ` (restoring ${displayIndex(index)})`);
  return withContext(e2, { file: volume, path: displayIndex(index) });
}

/** A multivol run refused, named as the one-lane restore names it (found while the entry's data is read). */
export function runRefused(at: { index: Index; volume: string }, what: string): unknown {
  return entryFailure(runFailure(at, what), at.index, at.volume);
}

/** The run file of a multivol snapshot in a set: the same name in every lane. */
export function runFile(t: { scratch: string; setTag: string }, kind: string, index: Index): string {
  return `${t.scratch}/${t.setTag}-run-${kind}-${createHash('sha256').update(joinIndex(index)).digest('hex').slice(0, 32)}`;
}

/**
 * The staged file at `index` for a delta, opened: every ancestor a real directory, the
 * file itself regular and not a link. Null when there is none (the main thread says why).
 */
async function openBasis(tree: string, index: Index): Promise<{ fh: fs.FileHandle; size: number } | null> {
  let p = Buffer.from(tree);
  for (let i = 0; i < index.length; i++) {
    p = Buffer.concat([p, Buffer.from('/'), index[i]!]);
    if (i === index.length - 1) break;
    const st = await fs.lstat(p).catch(() => null);
    if (!st?.isDirectory()) return null;
  }
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(p, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  const st = await fh.stat();
  if (st.isFile()) return { fh, size: st.size };
  await fh.close();
  return null;
}

/** Actions written as they come, in batches: a volume of 50,000 small files does not sit in memory. */
class ActionLog {
  readonly #fd: number;
  #batch: Action[] = [];
  /** Actions written whole. */
  written = 0;

  constructor(file: string) {
    try {
      this.#fd = openSync(file, 'wx', 0o600);
    } catch (e) {
      throw destinationFailure(e, undefined, 'writing the staged copy');
    }
  }

  add(a: Action): void {
    this.#batch.push(a);
    if (this.#batch.length >= 512) this.#flush();
  }

  #flush(): void {
    if (this.#batch.length === 0) return;
    const body = serialize(this.#batch);
    const head = Buffer.alloc(4);
    head.writeUInt32LE(body.length);
    try {
      for (const b of [head, body]) for (let off = 0; off < b.length; ) off += writeSync(this.#fd, b, off, b.length - off);
    } catch (e) {
      throw destinationFailure(e, undefined, 'writing the staged copy');
    }
    this.written += this.#batch.length;
    this.#batch = [];
  }

  close(): void {
    try {
      this.#flush();
    } finally {
      closeSync(this.#fd);
    }
  }
}

/** The first `count` actions of a volume's log, in order, a batch at a time. */
export function* loggedActions(file: string, count: number): Generator<Action> {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(4);
    for (let n = 0; n < count && readSync(fd, head, 0, 4, null) === 4; ) {
      const body = Buffer.alloc(head.readUInt32LE(0));
      for (let off = 0; off < body.length; ) {
        const n = readSync(fd, body, off, body.length - off, null);
        if (n === 0) throw new FormatError(`action log ${file} truncated`);
        off += n;
      }
      const batch = deserialize(body) as Action[];
      n += batch.length;
      yield* batch;
    }
  } finally {
    closeSync(fd);
  }
}
