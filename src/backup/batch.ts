/**
 * One batch of a set: a run of consecutive entries (in index order) encoded into its own
 * volumes — the unit of work a worker thread does whole (volume-worker.ts), or the main
 * thread with one job. For each entry it reads the file, stores it as snapshot, multivol
 * chunks or a librsync delta, and computes its new signature; the volumes go to temp
 * files and the entries' signature-file and file-list records to two fragment files, in
 * order. Only the volume results and these files' names go back: bulk data never
 * crosses threads.
 *
 * The set writer (set-writer.ts) cuts the batches, numbers the volumes, appends the
 * fragments to the set's signature file and file list and uploads the volumes, all in
 * batch order; each volume result says how far the fragments reach at its end, which
 * is what the checkpoint records.
 */
import { lstatSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { FileChange } from '../chain/manifest.js';
import { encoderFromWire, type Encoder, type EncoderWire } from '../crypto/encoding.js';
import { DeltaBuilder } from '../diff/delta.js';
import { SignatureIndex } from '../diff/signature-index.js';
import { BlockSumCache } from '../diff/block-sum-cache.js';
import { blockSizeFor, DEFAULT_STRONG_LEN, SignatureBuilder } from '../diff/signature.js';
import { withContext } from '../errors.js';
import { readAhead } from '../source/read-ahead.js';
import { inodeState, storedXattrs } from '../source/inode-state.js';
import { sparseRead } from '../source/data-extents.js';
import { deletedHeader, EntryStat, entryType, headerFromStat } from '../source/entry-meta.js';
import { CHUNK, pieces, readBuffers, type ReadSeen, type WholeFile } from '../source/read-file.js';
import type { WalkWarning } from '../source/walk.js';
import { Spool } from '../util/spool.js';
import { compareIndex, entryName, revivedIndex, type Index } from '../volume/entry-name.js';
import { revivedBuffer } from '../util/wire.js';
import { encodeHeader, padding, ZERO_BLOCK, type InodeState, type TarHeader } from '../volume/tar-header.js';
import type { Xattr } from '../util/xattr.js';
import { VolumeWriter, type FinishedVolume, type TarBlock } from '../volume/volume-writer.js';
import { hexIndex, SyncAppender, type ResumePoint } from './checkpoint.js';
import { fileListRecord } from './file-list.js';
import { StreamChunker } from './stream-chunker.js';

/** An entry of a batch, as data (its lstat as an EntryStat, which crosses threads as its fields). */
export type BatchEntry =
  | { op: 'snapshot'; index: Index; path: Buffer; stat: EntryStat; isNew: boolean; linkTo?: string }
  | { op: 'diff'; index: Index; path: Buffer; stat: EntryStat; oldSignature: Uint8Array; linkTo?: string }
  | { op: 'deleted'; index: Index; wasFile: boolean };

export interface VolumeBatch {
  /** Names the batch's temp files (unique within the set). */
  seq: number;
  tmp: string;
  volsize: number;
  encoder: EncoderWire;
  sha256: boolean;
  /** Store xattrs, and the inode state beside the signatures. */
  xattrs: boolean;
  entries: BatchEntry[];
  /** Resume: blocks up to this point were stored by an interrupted run. */
  skip?: { index: Index; block?: number };
  /** Write one (empty) volume even if no entry adds a block: a set has at least one. */
  atLeastOneVolume?: boolean;
}

export interface BatchVolume extends FinishedVolume {
  /** Warnings about entries before its end (since the volume before): told before it is taken in, so --strict stops before it is stored. */
  warnings: WalkWarning[];
  /** Bytes of the signature-file and file-list fragments (and list records) complete at its end. */
  sigEnd: number;
  listEnd: number;
  listCount: number;
  /** Where an interrupted run continues once this volume is stored. */
  resume: ResumePoint;
}

export interface BatchStats {
  files: number;
  bytesRead: number;
  changed: number;
  deleted: number;
  deltaBytes: number;
}

export interface BatchResult {
  /** The volume closed at the batch's end (the others went to BatchHooks.volume as they closed). */
  lastVolume?: BatchVolume;
  /** The lengths of the fragments (fragmentFiles) (and the list's records) at the batch's end. */
  sigBytes: number;
  listBytes: number;
  listCount: number;
  /** Warnings after the last volume's end. */
  warnings: WalkWarning[];
  stats: BatchStats;
}

/** Progress a batch reports while it runs (totals of the batch so far). */
export interface BatchProgress {
  files: number;
  bytesRead: number;
}

/**
 * The mtime recorded in the signature file for a file that changed while it was read
 * (1970-01-01T00:00:01Z): no live file has it, so the next incremental always stores the
 * file again (as a delta against what was read).
 */
const CHANGED_MARK_MTIME = 1;
const PROGRESS_EVERY_MS = 200;

/** A batch's record fragments: tar records for the signature file, records for the file list. */
export function fragmentFiles(tmp: string, seq: number): { sigFile: string; listFile: string } {
  return { sigFile: path.join(tmp, `batch-${seq}.sigtar`), listFile: path.join(tmp, `batch-${seq}.filelist`) };
}

/** Gives a batch that crossed threads its types back (Buffers arrive as Uint8Arrays, EntryStats as fields). */
export function reviveBatch(b: VolumeBatch): VolumeBatch {
  const entries = b.entries.map((e): BatchEntry => {
    if (e.op === 'deleted') return { ...e, index: revivedIndex(e.index) };
    return { ...e, index: revivedIndex(e.index), path: revivedBuffer(e.path), stat: new EntryStat(e.stat) };
  });
  return { ...b, tmp: b.tmp, entries, ...(b.skip ? { skip: { ...b.skip, index: revivedIndex(b.skip.index) } } : {}) };
}

/** The same for a result (its last volume's paths, its warnings' paths). */
export function reviveResult(r: BatchResult): BatchResult {
  return { ...r, ...(r.lastVolume ? { lastVolume: reviveVolume(r.lastVolume) } : {}), warnings: r.warnings.map((w) => ({ ...w, path: revivedBuffer(w.path) })) };
}

/** The same for a volume (its first and last paths, its warnings' paths). */
export function reviveVolume(v: BatchVolume): BatchVolume {
  return { ...v, start: revivedIndex(v.start), end: revivedIndex(v.end), warnings: v.warnings.map((w) => ({ ...w, path: revivedBuffer(w.path) })) };
}

export interface BatchHooks {
  /**
   * Takes each volume but the last as it closes (its fragments are on disk up to its
   * ends); the batch waits for it before it goes on, which bounds the finished volumes
   * on temp disk to one per batch in flight.
   */
  volume: (v: BatchVolume) => Promise<void>;
  progress?: (p: BatchProgress) => void;
  /** On the main thread (a worker is stopped instead): checked at every block, so a large file does not delay a Ctrl-C. */
  signal?: AbortSignal;
}

/** Encodes one batch (see the module comment). */
export async function encodeBatch(batch: VolumeBatch, hooks: BatchHooks): Promise<BatchResult> {
  const enc = new BatchEncoder(batch, await encoderFromWire(batch.encoder), hooks);
  try {
    return await enc.run();
  } catch (e) {
    await enc.abort();
    throw e;
  } finally {
    enc.close();
  }
}

/** The temp file of a batch's `n`th volume (in the run's temp directory). */
export function batchVolumeFile(seq: number, n: number): string {
  return `batch-${seq}.vol${n}`;
}

class BatchEncoder {
  readonly #b: VolumeBatch;
  readonly #volumes: VolumeWriter;
  readonly #sig: SyncAppender;
  readonly #list: SyncAppender;
  /** Warnings since the last volume closed. */
  #warnings: WalkWarning[] = [];
  readonly #hooks: BatchHooks;
  #lastProgress = 0;
  #listCount = 0;
  /** The entry being stored (for the resume point of a volume that ends inside it). */
  #current: { index: Index; stat?: EntryStat } | undefined;
  /** The entry at hand is a later name of a file with several: the first one's path. */
  #linkTo: Buffer | undefined;
  /** The last entry whose records were written: it is complete. */
  #done: Index | undefined;
  #skip: VolumeBatch['skip'];
  /** The entries are done: the volume closing now is the batch's last. */
  #ending = false;
  #lastVolume: BatchVolume | undefined;
  readonly stats: BatchStats = { files: 0, bytesRead: 0, changed: 0, deleted: 0, deltaBytes: 0 };

  constructor(b: VolumeBatch, encoder: Encoder, hooks: BatchHooks) {
    this.#b = b;
    this.#hooks = hooks;
    this.#skip = b.skip;
    const files = fragmentFiles(b.tmp, b.seq);
    this.#sig = new SyncAppender(files.sigFile, undefined);
    this.#list = new SyncAppender(files.listFile, undefined);
    this.#volumes = new VolumeWriter({
      dir: b.tmp,
      volsize: b.volsize,
      encoder,
      nameFor: (n) => batchVolumeFile(b.seq, n),
      sha256: b.sha256,
      onVolume: async (v) => {
        this.#sig.flush();
        this.#list.flush();
        // The batch's last volume goes with its result: the worker is free for the next batch.
        if (this.#ending) this.#lastVolume = this.#volumeEnd(v);
        else await hooks.volume(this.#volumeEnd(v));
      },
    });
  }

  async run(): Promise<BatchResult> {
    const entries = this.#b.entries;
    const ahead = readAhead((async function* () {
      yield* entries;
    })(), (e) => (e.op === 'snapshot' ? e : undefined));
    for await (const { item: e, whole } of ahead) {
      this.#linkTo = e.op !== 'deleted' && e.linkTo !== undefined ? Buffer.from(e.linkTo, 'latin1') : undefined;
      if (e.op === 'snapshot') await this.#snapshot(e.index, e.path, e.stat, e.isNew, whole);
      else if (e.op === 'deleted') await this.#deleted(e.index, e.wasFile);
      else await this.#diff(e.index, e.path, e.stat, e.oldSignature);
      this.#report();
    }
    this.#ending = true;
    if (this.#b.atLeastOneVolume) await this.#volumes.finish();
    else await this.#volumes.close();
    this.#sig.flush();
    this.#list.flush();
    return {
      ...(this.#lastVolume ? { lastVolume: this.#lastVolume } : {}),
      sigBytes: this.#sig.length,
      listBytes: this.#list.length,
      listCount: this.#listCount,
      warnings: this.#warnings,
      stats: this.stats,
    };
  }

  #report(): void {
    const now = Date.now();
    if (!this.#hooks.progress || now - this.#lastProgress < PROGRESS_EVERY_MS) return;
    this.#lastProgress = now;
    this.#hooks.progress({ files: this.stats.files, bytesRead: this.stats.bytesRead });
  }

  #warn(w: WalkWarning): void {
    this.#warnings.push(w);
  }

  /** A volume closed: how far the fragments reach, and where a resumed run goes on. */
  #volumeEnd(v: FinishedVolume): BatchVolume {
    const cur = this.#current && compareIndex(this.#current.index, v.end) === 0 ? this.#current.stat : undefined;
    const done = this.#done !== undefined && compareIndex(this.#done, v.end) === 0;
    const resume: ResumePoint = done
      ? { index: hexIndex(v.end), done: true }
      : {
          index: hexIndex(v.end),
          ...(v.endBlock !== undefined ? { block: v.endBlock } : {}),
          ...(cur?.isFile() ? { size: cur.size, mtime: Math.floor(cur.mtimeMs / 1000) } : {}),
        };
    const warnings = this.#warnings;
    this.#warnings = [];
    return { ...v, warnings, sigEnd: this.#sig.length, listEnd: this.#list.length, listCount: this.#listCount, resume };
  }

  /** Adds a tar block unless an interrupted run already stored it. */
  async #add(b: TarBlock): Promise<void> {
    this.#hooks.signal?.throwIfAborted();
    const skip = this.#skip;
    if (skip) {
      const c = compareIndex(b.index, skip.index);
      if (c < 0 || (c === 0 && (skip.block === undefined || (b.chunk !== undefined && b.chunk <= skip.block)))) return;
      this.#skip = undefined;
    }
    await this.#volumes.add(b);
  }

  /**
   * An entry's signature-file record (and file-list record): its last step, so from
   * here on a volume that closes counts the entry as complete.
   */
  async #records(index: Index, h: TarHeader, data?: Spool, listed?: FileChange['action']): Promise<void> {
    this.#sig.append(encodeHeader(h));
    if (data && data.size > 0) {
      for await (const c of data.read()) this.#sig.append(c);
      const pad = padding(data.size);
      if (pad) this.#sig.append(ZERO_BLOCK.subarray(0, pad));
    }
    if (listed) {
      this.#list.append(fileListRecord(listed, index));
      this.#listCount++;
    }
    this.#done = index;
  }

  /** Stores the whole current state of a path (new, or changed type/metadata). */
  async #snapshot(index: Index, p: Buffer, st: EntryStat, isNew: boolean, whole?: Promise<WholeFile>): Promise<void> {
    const type = entryType(st);
    if (!type) return;
    this.#current = { index, stat: st };
    if (type === 'file') {
      await this.#snapshotFile(index, p, st, isNew, whole);
      return;
    }
    let link: Buffer = Buffer.alloc(0);
    if (type === 'symlink') {
      try {
        link = (await fs.readlink(p, { encoding: 'buffer' })) as Buffer;
      } catch (err) {
        this.#warn({ code: 'VANISHED', path: p, message: (err as Error).message });
        return;
      }
    }
    const isDir = type === 'directory';
    if (!isNew) this.stats.changed++;
    const { xattrs, inode } = await this.#inode(p, st);
    await this.#add({ index, header: { ...headerFromStat(entryName('snapshot', index, { isDir }), st, type, link), ...(xattrs ? { xattrs } : {}) } });
    await this.#records(index, { ...headerFromStat(entryName('snapshot', index, { isDir, sigtarRoot: true }), st, type, link), ...(inode ? { inode } : {}) });
  }

  /**
   * The entry's xattrs for its volume header and the inode state for its signature
   * entry; nothing when xattrs are off. Xattrs that cannot be read are a warning and
   * leave the state unknown, so the next run reads them again.
   */
  async #inode(p: Buffer, st: EntryStat): Promise<{ xattrs?: Xattr[]; inode?: InodeState }> {
    if (!this.#b.xattrs) return {};
    let xattrs: Xattr[];
    try {
      xattrs = await storedXattrs(p);
    } catch (e) {
      this.#warn({ code: 'XATTRS_UNREADABLE', path: p, message: `extended attributes not stored: ${(e as Error).message} (--no-xattrs leaves them all out)` });
      return {};
    }
    return { ...(xattrs.length > 0 ? { xattrs } : {}), inode: inodeState(st, xattrs) };
  }

  /** Records that a path present in the previous state is gone. */
  async #deleted(index: Index, wasFile: boolean): Promise<void> {
    this.stats.deleted++;
    this.#current = { index };
    await this.#add({ index, header: deletedHeader(entryName('deleted', index)) });
    await this.#records(index, deletedHeader(entryName('deleted', index)), undefined, wasFile ? 'deleted' : undefined);
  }

  /**
   * Stores one regular file as `snapshot/` (under 64 KiB) or `multivol_snapshot/` chunks,
   * and its new signature. A file that cannot be read is a warning.
   */
  async #snapshotFile(index: Index, p: Buffer, st: EntryStat, isNew: boolean, whole?: Promise<WholeFile>): Promise<void> {
    const sigSpool = new Spool(this.#b.tmp);
    const meta = await this.#inode(p, st);
    try {
      const sig = new SignatureBuilder(blockSizeFor(st.size), (b) => sigSpool.append(b), undefined, { size: st.size });
      let chunk = 0;
      const seen: ReadSeen = { read: 0, grew: false };
      try {
        for await (const data of pieces(readBuffers(p, st.size, seen, whole ? { whole } : await sparseRead(p, st)))) {
          sig.update(data);
          if (chunk === 0 && data.length < CHUNK) {
            await this.#add({ index, header: { ...headerFromStat(entryName('snapshot', index), st, 'file'), size: data.length, ...this.#firstChunk(1, meta.xattrs) }, data });
            break;
          }
          chunk++;
          await this.#add({
            index,
            header: { ...headerFromStat(entryName('multivol_snapshot', index, { chunk }), st, 'file'), size: data.length, ...this.#firstChunk(chunk, meta.xattrs) },
            data,
            chunk,
            finalChunk: data.length < CHUNK,
          });
        }
      } catch (e) {
        if (chunk > 0) throw withContext(e, { action: 'reading', path: p.toString('utf8') }); // entries already written: can't skip
        this.#warn({ code: 'UNREADABLE_FILE', path: p, message: (e as Error).message });
        return;
      }
      sig.finish();
      const changed = this.#checkChanged(p, st, seen);
      this.stats.files++;
      this.stats.bytesRead += seen.read;
      await this.#records(index, this.#signatureHeader(index, st, sigSpool.size, changed, meta.inode), sigSpool, isNew ? 'new' : 'changed');
    } finally {
      sigSpool.dispose();
    }
  }

  /**
   * A file that changed while it was read is stored as read — up to its stat size —
   * (the tar entries and its signature describe exactly those bytes), and reported.
   * Besides a size change, a file rewritten in place is caught as GNU tar catches it:
   * its inode, mtime or ctime after the read differ from the walk's lstat. Returns
   * whether it changed: then the signature file must not record the pre-change mtime
   * as current, or a rewrite within the same second would never be stored again.
   */
  #checkChanged(p: Buffer, st: EntryStat, seen: ReadSeen): boolean {
    let why: string | undefined;
    if (seen.read < st.size) why = `shrank: ${st.size} bytes at stat, ${seen.read} read; stored as read`;
    else if (seen.grew) why = `grew past its ${st.size} bytes at stat; stored the first ${st.size} bytes`;
    else {
      const now = lstatSync(p, { throwIfNoEntry: false });
      if (!now) why = 'removed during the read; stored as read';
      else if (now.ino !== st.ino || now.dev !== st.dev) why = 'replaced by another file during the read; stored the file as it was read';
      else if (now.size !== st.size || now.mtimeMs !== st.mtimeMs || now.ctimeMs !== st.ctimeMs) why = 'rewritten during the read (mtime or ctime changed); stored as read, possibly mixed';
    }
    if (why === undefined) return false;
    this.#warn({ code: 'CHANGED_WHILE_READ', path: p, message: `changed while being read (${why}); the next backup stores it again` });
    return true;
  }

  /**
   * The records of a file's first chunk only (the one the reader sees as the entry's
   * header): the one that makes restore link a later name to the first one of its
   * file, and the xattrs.
   */
  #firstChunk(chunk: number, xattrs: Xattr[] | undefined): { hardlinkTo?: Buffer; xattrs?: Xattr[] } {
    if (chunk !== 1) return {};
    return { ...(this.#linkTo ? { hardlinkTo: this.#linkTo } : {}), ...(xattrs ? { xattrs } : {}) };
  }

  /** The signature entry of a file; a file that changed while read gets an mtime that matches no real one. */
  #signatureHeader(index: Index, st: EntryStat, size: number, changed: boolean, inode: InodeState | undefined): TarHeader {
    const h = { ...headerFromStat(entryName('signature', index), st, 'file'), size, fileSize: st.size, ...(inode ? { inode } : {}) };
    return changed ? { ...h, mtime: CHANGED_MARK_MTIME } : h;
  }

  /** Stores a changed regular file as a librsync delta against its old signature. */
  async #diff(index: Index, p: Buffer, st: EntryStat, oldSignature: Uint8Array): Promise<void> {
    this.#current = { index, stat: st };
    const sigSpool = new Spool(this.#b.tmp);
    const meta = await this.#inode(p, st);
    try {
      const blockLen = blockSizeFor(st.size);
      const sums = new BlockSumCache(blockLen, DEFAULT_STRONG_LEN);
      const newSig = new SignatureBuilder(blockLen, (b) => sigSpool.append(b), DEFAULT_STRONG_LEN, { size: st.size, cache: sums });
      const chunker = new StreamChunker(async (data, chunk, final) => {
        const name = chunk === undefined ? entryName('diff', index) : entryName('multivol_diff', index, { chunk });
        await this.#add({
          index,
          header: { ...headerFromStat(name, st, 'file'), size: data.length, ...this.#firstChunk(chunk ?? 1, meta.xattrs) },
          data,
          ...(chunk !== undefined ? { chunk, finalChunk: final } : {}),
        });
      });
      const old = Buffer.from(oldSignature.buffer, oldSignature.byteOffset, oldSignature.byteLength);
      const delta = new DeltaBuilder(new SignatureIndex(old, `signature of ${p.toString('utf8')}`), (b) => chunker.push(b), sums);
      const seen: ReadSeen = { read: 0, grew: false };
      let started = false;
      try {
        for await (const data of readBuffers(p, st.size, seen, await sparseRead(p, st))) {
          delta.update(data); // first: where it proves blocks unchanged, their sums are known
          newSig.update(data);
          await chunker.flush();
          started = chunker.emitted > 0;
        }
      } catch (err) {
        if (started) throw withContext(err, { action: 'reading', path: p.toString('utf8') });
        this.#warn({ code: 'UNREADABLE_FILE', path: p, message: (err as Error).message });
        return;
      }
      delta.finish();
      newSig.finish();
      const changed = this.#checkChanged(p, st, seen);
      await chunker.end();
      this.stats.files++;
      this.stats.changed++;
      this.stats.bytesRead += seen.read;
      this.stats.deltaBytes += delta.written;
      await this.#records(index, this.#signatureHeader(index, st, sigSpool.size, changed, meta.inode), sigSpool, 'changed');
    } finally {
      sigSpool.dispose();
    }
  }

  async abort(): Promise<void> {
    await this.#volumes.abort();
  }

  close(): void {
    this.#sig.close();
    this.#list.close();
  }
}
