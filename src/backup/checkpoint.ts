/**
 * Checkpoints that let an interrupted backup (kill -9, power loss) continue its set.
 *
 * While a set is written, the cache holds: the plain signature tar written so far
 * (`checkpoint.sigtar`), the manifest's file list so far (`checkpoint.filelist`), both
 * appended synchronously, and `checkpoint.json`: the set's name and times, the volumes
 * stored (with their manifest lines), how much of the two files belongs to what those
 * volumes hold, and where the next volume must start — the last entry of the last
 * stored volume, and its chunk if it ends inside a large file. Each volume is written
 * into it as a pending step before its upload starts, and moves to the stored ones once
 * the upload is done: a run killed between the two still finds every volume that
 * reached the target (`settle` adopts those at the target with their recorded size).
 * The next run with the same source and target reads it, checks that those volumes are
 * at the target as recorded, and goes on from there under the same set name. Anything
 * that does not fit (other set at the target, changed key, the file cut in two has
 * changed) discards the checkpoint and a new set is written instead.
 */
import { closeSync, fsyncSync, openSync, readFileSync, writeSync, ftruncateSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Index } from '../volume/entry-name.js';
import { localWriteError } from '../errors.js';

export interface CheckpointVolume {
  number: number;
  name: string;
  size: number;
  sha1: string;
  sha256?: string;
  start: string[];
  startBlock?: number;
  end: string[];
  endBlock?: number;
}

export interface CheckpointState {
  version: 1;
  type: 'full' | 'inc';
  start: number;
  end: number;
  encoding: string;
  source: string;
  volumes: CheckpointVolume[];
  sigtarLength: number;
  filelistLength: number;
  /**
   * The last entry of the last stored volume, its chunk when the volume ends inside it.
   * `done`: the entry is complete — its data stored, its signature and file-list line in
   * the checkpoint copies — so a resumed run starts after it (the last volume of a set,
   * or one closed just before the next entry); otherwise the entry is redone from
   * after `block`.
   */
  resume: ResumePoint;
  /** Volumes closed after the stored ones, in order, whose uploads had not ended. */
  pending?: CheckpointStep[];
}

export interface ResumePoint {
  index: string[];
  block?: number;
  size?: number;
  mtime?: number;
  done?: boolean;
}

/** What one more stored volume adds to a checkpoint. */
export interface CheckpointStep {
  volume: CheckpointVolume;
  sigtarLength: number;
  filelistLength: number;
  resume: ResumePoint;
}

/** `st` with `step`'s volume stored. */
export function withStep(st: CheckpointState, step: CheckpointStep): CheckpointState {
  const { volume, ...rest } = step;
  return { ...st, ...rest, volumes: [...st.volumes, volume] };
}

/**
 * The state to resume from: the stored volumes, and then each pending one, in order,
 * that is at the target as recorded (its upload ended before the run did). Undefined
 * when no volume was stored.
 */
export function settle(st: CheckpointState, atTarget: (v: CheckpointVolume) => boolean): CheckpointState | undefined {
  const { pending = [], ...stored } = st;
  let cur: CheckpointState = stored;
  for (const step of pending) {
    if (!atTarget(step.volume)) break;
    cur = withStep(cur, step);
  }
  return cur.volumes.length > 0 ? cur : undefined;
}

export const hexIndex = (i: Index): string[] => i.map((c) => c.toString('hex'));
export const fromHex = (h: string[]): Buffer[] => h.map((c) => Buffer.from(c, 'hex'));

/**
 * An append-only file written synchronously, so a recorded length is really on disk
 * once `sync()` returns. Appends gather in a buffer first: the plain sigtar and file
 * list get a few small appends per source file, and a system call for each was 8 % of
 * a backup of small files.
 */
export class SyncAppender {
  readonly #fd: number;
  readonly #buf = Buffer.allocUnsafe(256 * 1024);
  #buffered = 0;
  /** Bytes appended in all, buffered ones included. */
  length: number;
  readonly #file: string;
  constructor(file: string, keep: number | undefined) {
    this.#file = file;
    this.#fd = openSync(file, keep === undefined ? 'w' : 'r+', 0o600); // plaintext signatures and file list
    if (keep !== undefined) ftruncateSync(this.#fd, keep);
    this.length = keep ?? 0;
  }
  append(b: Buffer): void {
    if (this.#buffered + b.length > this.#buf.length) this.flush();
    if (b.length >= this.#buf.length) this.#writeAt(b, this.length);
    else this.#buffered += b.copy(this.#buf, this.#buffered);
    this.length += b.length;
  }
  /** Writes the buffered appends to the file (before it is read by path). */
  flush(): void {
    if (this.#buffered === 0) return;
    this.#writeAt(this.#buf.subarray(0, this.#buffered), this.length - this.#buffered);
    this.#buffered = 0;
  }
  #writeAt(b: Buffer, pos: number): void {
    let off = 0;
    try {
      while (off < b.length) off += writeSync(this.#fd, b, off, b.length - off, pos + off);
    } catch (e) {
      throw localWriteError(e, this.#file);
    }
  }
  sync(): void {
    this.flush();
    fsyncSync(this.#fd);
  }
  close(): void {
    this.flush();
    closeSync(this.#fd);
  }
}

export class CheckpointFiles {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  get sigtar(): string {
    return path.join(this.dir, 'checkpoint.sigtar');
  }
  get filelist(): string {
    return path.join(this.dir, 'checkpoint.filelist');
  }
  get #json(): string {
    return path.join(this.dir, 'checkpoint.json');
  }
  async ensure(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
  }
  load(): CheckpointState | undefined {
    try {
      const s = JSON.parse(readFileSync(this.#json, 'utf8')) as CheckpointState;
      return s.version === 1 ? s : undefined;
    } catch {
      return undefined; // none, or torn by a crash while saved in place by an older version: start the set over
    }
  }
  async save(s: CheckpointState): Promise<void> {
    const tmp = `${this.#json}.tmp`;
    const fh = await fs.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(s));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, this.#json);
  }
  async clear(): Promise<void> {
    for (const f of [this.#json, this.sigtar, this.filelist]) await fs.rm(f, { force: true });
  }
}

/** A finished volume as a checkpoint records it. */
export function checkpointVolume(v: { number: number; size: number; sha1: string; sha256?: string; start: Index; end: Index; startBlock?: number; endBlock?: number }, name: string): CheckpointVolume {
  return {
    number: v.number,
    name,
    size: v.size,
    sha1: v.sha1,
    ...(v.sha256 ? { sha256: v.sha256 } : {}),
    start: hexIndex(v.start),
    ...(v.startBlock !== undefined ? { startBlock: v.startBlock } : {}),
    end: hexIndex(v.end),
    ...(v.endBlock !== undefined ? { endBlock: v.endBlock } : {}),
  };
}

/**
 * Keeps `checkpoint.json` true as a set is written: each volume is added as a pending
 * step when it closes (saved before its upload starts) and becomes stored once it and
 * every volume before it reached the target. Saves run one after another. A save that
 * fails is reported once through `onSaveFailed` and the run goes on: the backup itself
 * is sound, only an interruption would then cost more.
 */
export class CheckpointWriter {
  readonly #files: CheckpointFiles;
  #stored: CheckpointState;
  readonly #steps = new Map<number, CheckpointStep>();
  readonly #uploaded = new Set<number>();
  #saving: Promise<void> = Promise.resolve();
  #failed = false;
  readonly #onSaveFailed: (e: unknown) => void;

  constructor(files: CheckpointFiles, stored: CheckpointState, onSaveFailed: (e: unknown) => void) {
    this.#files = files;
    this.#stored = stored;
    this.#onSaveFailed = onSaveFailed;
  }

  /** Volume `step.volume` closed: pending until it is stored. Resolves once saved. */
  closed(step: CheckpointStep): Promise<void> {
    this.#steps.set(step.volume.number, step);
    return this.#save();
  }

  /** Volume `n` reached the target. */
  uploaded(n: number): Promise<void> {
    this.#uploaded.add(n);
    for (const [m, step] of [...this.#steps].sort((a, b) => a[0] - b[0])) {
      if (!this.#uploaded.has(m)) break;
      this.#stored = withStep(this.#stored, step);
      this.#steps.delete(m);
    }
    return this.#save();
  }

  /** Every save begun has ended. */
  flush(): Promise<void> {
    return this.#saving;
  }

  #save(): Promise<void> {
    const pending = [...this.#steps].sort((a, b) => a[0] - b[0]).map(([, step]) => step);
    const state: CheckpointState = { ...this.#stored, ...(pending.length ? { pending } : {}) };
    this.#saving = this.#saving
      .then(() => this.#files.save(state))
      .catch((e: unknown) => {
        if (!this.#failed) this.#onSaveFailed(e);
        this.#failed = true;
      });
    return this.#saving;
  }
}

/** The checkpoint of a set with no volume stored yet. */
export function emptyCheckpoint(spec: Pick<CheckpointState, 'type' | 'start' | 'end' | 'encoding'>, source: string): CheckpointState {
  return { version: 1, type: spec.type, start: spec.start, end: spec.end, encoding: spec.encoding, source, volumes: [], sigtarLength: 0, filelistLength: 0, resume: { index: [] } };
}
