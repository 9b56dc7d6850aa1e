/**
 * Writes one backup set. Entries are cut into batches of about one volume's input
 * (batch.ts), each encoded whole — read, signed, diffed, tarred, compressed, encrypted —
 * on a worker thread of its own (or, with one job, here); the results are taken in
 * batch order: their volumes numbered and, with the records of the entries they hold,
 * appended to the signature file (signature-file.ts) and the manifest's file list
 * (file-list.ts), named in the checkpoint (checkpoint.ts), the manifest's volume lines
 * and the seal's list, and uploaded in order. At the end the signature file and then
 * the manifest (manifest-writer.ts) are uploaded, the manifest last so that an
 * interrupted run never leaves a set that looks complete, then the seal (seal-list.ts).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Backend, Retention } from '../backend/backend.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { formatName, parseName, sealName, type NameSpec } from '../chain/file-naming.js';
import type { VolumeInfo } from '../chain/manifest.js';
import type { Encoder } from '../crypto/encoding.js';
import type { SecretKey } from '../crypto/keys.js';
import { WorkerPool } from '../util/worker-pool.js';
import { CancelledError } from '../errors.js';
import { joinIndex, type Index } from '../volume/entry-name.js';
import { batchVolumeFile, encodeBatch, fragmentFiles, reviveResult, reviveVolume, type BatchEntry, type BatchProgress, type BatchResult, type BatchVolume, type VolumeBatch } from './batch.js';
import { CheckpointFiles, CheckpointWriter, SyncAppender, checkpointVolume, emptyCheckpoint, fromHex, type CheckpointState } from './checkpoint.js';
import { FileList } from './file-list.js';
import { manifestVolume, writeManifest } from './manifest-writer.js';
import { SealList } from './seal-list.js';
import { SignatureFileWriter } from './signature-file.js';
import { Uploader } from './uploader.js';
import { GrowingFiles, type GrowingFile } from './growing-file.js';
import { EntryStat } from '../source/entry-meta.js';
import type { WalkEntry, WalkWarning } from '../source/walk.js';

export interface SetStats {
  files: number;
  bytesRead: number;
  changed: number;
  deleted: number;
  volumes: number;
  storedBytes: number;
  deltaBytes: number;
}

export interface SetWriterOptions {
  backend: Backend;
  spec: Omit<NameSpec, 'kind' | 'volume'>;
  encoder: Encoder;
  tmp: string;
  /** Options resolved by the backup (backup/options.ts): no defaults here. */
  volsize: number;
  hostname: string;
  localdir: Buffer;
  uploadConcurrency: number;
  maxStaged: number;
  signal?: AbortSignal;
  warn: (w: WalkWarning) => void;
  /** Told about each stored file. */
  onStored?: (name: string, size: number) => void;
  /** Receives plain copies of the new manifest and signatures once the set is stored. */
  cache?: ArchiveCache;
  /** Seal the set: sign a list of its files with this key, chained to `previous`. */
  seal?: { key: SecretKey; previous: string | null };
  /** Checkpoint files (in the cache) for resuming; and the state to resume from. */
  checkpoint?: { files: CheckpointFiles; resume?: CheckpointState; source: string };
  /** Batches encoded at once on worker threads; 1: one after the other, on this thread. */
  jobs: number;
  /** Read and store xattrs (and record the inode state beside the signatures). */
  xattrs: boolean;
  /** Told as files are read (from the workers too). */
  onProgress?: () => void;
  /** Object Lock retention for every file of the set. */
  retention?: Retention;
}

/**
 * A batch closes once its entries hold this share of a volume's size in input (stored
 * bytes rarely exceed input bytes: compression, and little tar and OpenPGP overhead),
 * so most batches make one volume, somewhat under the size; or at this many entries,
 * which bounds the metadata a batch holds in memory on a tree of tiny files.
 */
const BATCH_INPUT_SHARE = 0.98;
const BATCH_MAX_ENTRIES = 5_000;
/** Input counted for an entry besides its data: a tar header. */
const ENTRY_OVERHEAD = 512;

/** A later name of a file with several: the first one's path (latin1 text: it crosses to a worker as it is). */
function linkOf(e: WalkEntry): { linkTo?: string } {
  return e.linkTo ? { linkTo: joinIndex(e.linkTo).toString('latin1') } : {};
}

export class SetWriter {
  readonly #o: SetWriterOptions;
  readonly #uploader: Uploader;
  readonly #sigtar: SignatureFileWriter;
  readonly #files: FileList;
  readonly #seal = new SealList();
  /** The manifest's volume lines: an interrupted run's, then ours. */
  readonly #manifestVolumes: VolumeInfo[];
  readonly #checkpoint: CheckpointWriter | undefined;
  readonly #pool: WorkerPool<VolumeBatch, BatchResult> | undefined;
  /** Resume: blocks up to this point are already stored (told to the first batch). */
  #skip: VolumeBatch['skip'];
  #batch: BatchEntry[] = [];
  #batchBytes = 0;
  #seq = 0;
  #volumeNumber: number;
  /** Batches sent and not yet taken in; the taking-in, in batch order. */
  #inFlight = 0;
  #taken: Promise<void> = Promise.resolve();
  #takenOne: (() => void) | undefined;
  /** Per running batch, the progress it reported (added to stats as it grows). */
  readonly #reported = new Map<number, BatchProgress>();
  /** Volumes followed while they are written, to upload them as they grow (backends with `streamsParts`). */
  readonly #growing: GrowingFiles | undefined;
  readonly stats: SetStats = { files: 0, bytesRead: 0, changed: 0, deleted: 0, volumes: 0, storedBytes: 0, deltaBytes: 0 };

  private constructor(o: SetWriterOptions, files: FileList) {
    this.#o = o;
    this.#files = files;
    const cp = o.checkpoint;
    const resume = cp?.resume;
    const prior = resume?.volumes ?? [];
    this.#volumeNumber = prior.length;
    this.#manifestVolumes = prior.map((v) => manifestVolume({ ...v, start: fromHex(v.start), end: fromHex(v.end) }));
    for (const v of prior) this.#seal.add(v.name, v.size, v.sha256);
    if (resume) this.#skip = { index: fromHex(resume.resume.index), ...(resume.resume.block !== undefined ? { block: resume.resume.block } : {}) };
    if (cp) {
      const unsaved = (e: unknown) => o.warn({ code: 'CHECKPOINT_UNSAVED', path: Buffer.from(cp.files.dir), message: `cannot save the checkpoint (${(e as Error).message}): an interruption would start this set over` });
      this.#checkpoint = new CheckpointWriter(cp.files, resume ?? emptyCheckpoint(o.spec, cp.source), unsaved);
    }
    this.#uploader = new Uploader(o.backend, {
      concurrency: o.uploadConcurrency,
      maxStaged: o.maxStaged,
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.retention ? { retention: o.retention } : {}),
      onStored: (name, size) => {
        this.stats.storedBytes += size;
        o.onStored?.(name, size);
        const n = parseName(name);
        if (n?.kind === 'volume' && n.volume !== undefined) void this.#checkpoint?.uploaded(n.volume);
      },
    });
    const local = cp ? new SyncAppender(cp.files.sigtar, resume ? resume.sigtarLength : undefined) : undefined;
    this.#sigtar = new SignatureFileWriter(path.join(o.tmp, this.name('signature')), o.encoder, local, o.seal !== undefined, cp?.files.sigtar);
    if (o.jobs > 1) this.#pool = new WorkerPool(new URL('./volume-worker.js', import.meta.url), o.jobs);
    if (o.backend.properties.streamsParts) this.#growing = new GrowingFiles(o.tmp);
  }

  static async open(o: SetWriterOptions): Promise<SetWriter> {
    const resume = o.checkpoint?.resume;
    const files = await FileList.open(o.checkpoint ? o.checkpoint.files.filelist : path.join(o.tmp, 'filelist'), resume?.filelistLength);
    return new SetWriter(o, files);
  }

  name(kind: NameSpec['kind'], volume?: number): string {
    return formatName({ ...this.#o.spec, kind, ...(volume !== undefined ? { volume } : {}) });
  }

  /** Stores the whole current state of a path (new, or changed type/metadata). */
  async snapshot(e: WalkEntry, isNew: boolean): Promise<void> {
    await this.#addEntry({ op: 'snapshot', index: e.index, path: e.path, stat: new EntryStat(e.stat), isNew, ...linkOf(e) }, e.stat.isFile() ? e.stat.size : 0);
  }

  /** Records that a path present in the previous state is gone. */
  async deleted(index: Index, wasFile: boolean): Promise<void> {
    await this.#addEntry({ op: 'deleted', index, wasFile }, 0);
  }

  /** Stores a changed regular file as a librsync delta against its old signature. */
  async diff(e: WalkEntry, oldSignature: Buffer): Promise<void> {
    await this.#addEntry({ op: 'diff', index: e.index, path: e.path, stat: new EntryStat(e.stat), oldSignature, ...linkOf(e) }, e.stat.size);
  }

  async #addEntry(e: BatchEntry, dataBytes: number): Promise<void> {
    this.#o.signal?.throwIfAborted();
    this.#batch.push(e);
    this.#batchBytes += dataBytes + ENTRY_OVERHEAD;
    if (this.#batchBytes >= this.#o.volsize * BATCH_INPUT_SHARE || this.#batch.length >= BATCH_MAX_ENTRIES) await this.#send(false);
  }

  /**
   * Sends the batch being cut to a worker (or encodes it here: with one job, and for a
   * set that is one batch — nothing to share, and no thread to start) and queues its
   * taking-in behind the earlier batches'. Waits while every worker is busy and one
   * more batch is waiting: the walk runs at most that far ahead.
   */
  async #send(last: boolean, atLeastOneVolume = false): Promise<void> {
    const batch: VolumeBatch = {
      seq: ++this.#seq,
      tmp: this.#o.tmp,
      volsize: this.#o.volsize,
      encoder: this.#o.encoder.wire(),
      sha256: this.#o.seal !== undefined,
      xattrs: this.#o.xattrs,
      entries: this.#batch,
      ...(this.#skip ? { skip: this.#skip } : {}),
      ...(atLeastOneVolume ? { atLeastOneVolume } : {}),
    };
    this.#batch = [];
    this.#batchBytes = 0;
    this.#skip = undefined;
    const seq = batch.seq;
    const feed = new VolumeFeed();
    const progress = (p: BatchProgress) => this.#progress(seq, p);
    const pool = last && batch.seq === 1 ? undefined : this.#pool;
    const result = pool
      ? pool.run(batch, { onProgress: (p) => progress(p as BatchProgress), onAsk: (v) => feed.push(reviveVolume(v as BatchVolume)) }).then(reviveResult)
      : encodeBatch(batch, { volume: (v) => feed.push(v), progress, ...(this.#o.signal ? { signal: this.#o.signal } : {}) });
    result.then(
      () => feed.end(),
      () => feed.end(),
    );
    this.#inFlight++;
    this.#taken = this.#taken.then(async () => {
      await this.#takeIn(seq, feed, result);
      this.#inFlight--;
      this.#takenOne?.();
    });
    this.#taken.catch(() => undefined); // thrown by the next send or by finish
    const limit = this.#pool ? this.#o.jobs + 1 : 1;
    while (this.#inFlight >= limit) await Promise.race([this.#taken, new Promise<void>((r) => (this.#takenOne = r))]);
  }

  #progress(seq: number, p: BatchProgress): void {
    const last = this.#reported.get(seq) ?? { files: 0, bytesRead: 0 };
    this.stats.files += p.files - last.files;
    this.stats.bytesRead += p.bytesRead - last.bytesRead;
    this.#reported.set(seq, p);
    this.#o.onProgress?.();
  }

  /**
   * A batch, in order: each volume as it closes (below), its last one, then the
   * warnings and records of entries after that, and its counts.
   */
  async #takeIn(seq: number, feed: VolumeFeed, result: Promise<BatchResult>): Promise<void> {
    const fragments = new FragmentReader(this.#o.tmp, seq);
    let made = 0;
    let next = await this.#streamNext(seq, ++made);
    let r: BatchResult;
    try {
      for await (const { volume, taken } of feed.volumes()) {
        await this.#takeVolume(fragments, volume, next);
        next = await this.#streamNext(seq, ++made);
        taken();
      }
      r = await result;
      if (r.lastVolume) await this.#takeVolume(fragments, r.lastVolume, next);
      else next?.cancel(new CancelledError('the batch made no further volume'));
    } catch (e) {
      next?.cancel(e);
      throw e;
    }
    for (const w of r.warnings) this.#o.warn(w);
    await fragments.copyUntil(r.sigBytes, r.listBytes, r.listCount, this.#sigtar, this.#files);
    await fragments.remove();
    const last = this.#reported.get(seq) ?? { files: 0, bytesRead: 0 };
    this.#reported.delete(seq);
    this.stats.files += r.stats.files - last.files;
    this.stats.bytesRead += r.stats.bytesRead - last.bytesRead;
    this.stats.changed += r.stats.changed;
    this.stats.deleted += r.stats.deleted;
    this.stats.deltaBytes += r.stats.deltaBytes;
  }

  /**
   * A closed volume: the records of the entries it completes, its number, manifest
   * line, seal line and (as pending) checkpoint step, then its upload.
   */
  /**
   * With a backend that streams parts: the upload of the batch's `n`th volume, queued
   * before the volume is complete — it is the next volume of the set, so its name is
   * known — to send parts while a worker writes it. Completed when taken in.
   */
  async #streamNext(seq: number, n: number): Promise<GrowingFile | undefined> {
    if (!this.#growing) return undefined;
    const file = this.#growing.follow(path.join(this.#o.tmp, batchVolumeFile(seq, n)));
    await this.#uploader.enqueueGrowing(this.name('volume', this.#volumeNumber + 1), file);
    return file;
  }

  async #takeVolume(fragments: FragmentReader, v: BatchVolume, streaming?: GrowingFile): Promise<void> {
    for (const w of v.warnings) this.#o.warn(w); // first: --strict makes one fatal, and the volume is not stored
    await fragments.copyUntil(v.sigEnd, v.listEnd, v.listCount, this.#sigtar, this.#files);
    const number = ++this.#volumeNumber;
    const name = this.name('volume', number);
    this.stats.volumes++;
    this.#manifestVolumes.push(manifestVolume({ ...v, number }));
    this.#seal.add(name, v.size, v.sha256);
    this.#sigtar.local?.sync();
    this.#files.sync();
    // Named as pending before it can reach the target: a run killed once it is there
    // resumes after it (see settle).
    await this.#checkpoint?.closed({
      volume: checkpointVolume({ ...v, number }, name),
      sigtarLength: this.#sigtar.local?.length ?? 0,
      filelistLength: this.#files.length,
      resume: v.resume,
    });
    if (streaming) this.#growing!.forget(streaming);
    if (streaming?.path === v.path) return streaming.finish(v.size); // its upload completes now
    streaming?.cancel(new CancelledError(`${v.path} is not the volume followed`));
    await this.#uploader.enqueue(name, v.path, v.size);
  }

  /** Encodes the last batch, uploads the signature file and then the manifest (and the seal). */
  async finish(): Promise<void> {
    if (this.#batch.length > 0 || this.#seq === 0) await this.#send(true, this.#volumeNumber === 0 && this.#inFlight === 0);
    await this.#taken;
    // Every batch was empty or made no volume: a set has at least one (an empty tar).
    if (this.#volumeNumber === 0) {
      await this.#send(true, true);
      await this.#taken;
    }
    await this.#pool?.close();
    const sig = await this.#sigtar.finish();
    this.#seal.add(this.name('signature'), sig.size, sig.sha256);
    await this.#uploader.enqueue(this.name('signature'), sig.path, sig.size);
    const manName = this.name('manifest');
    const files = {
      path: path.join(this.#o.tmp, manName),
      plainPath: path.join(this.#o.tmp, 'plain-manifest'),
      transforms: this.#o.encoder.encoding === 'gpg' ? await this.#o.encoder.transforms() : [],
      sha256: this.#o.seal !== undefined,
    };
    const man = await writeManifest(files, { hostname: this.#o.hostname, localdir: this.#o.localdir, volumes: this.#manifestVolumes }, this.#files);
    this.#seal.add(manName, man.size, man.sha256);
    // The manifest goes last, after everything else is stored.
    await this.#uploader.drain();
    await this.#uploader.enqueue(manName, man.path, man.size);
    await this.#uploader.drain();
    if (this.#o.seal) await this.#writeSeal(this.#o.seal);
    await this.#adoptIntoCache(manName, files.plainPath);
    await this.#checkpoint?.flush();
    this.#sigtar.local?.close();
    this.#files.close();
    await this.#o.checkpoint?.files.clear();
  }

  /**
   * Only a stored set goes to the cache (duplicity keeps such local copies too), so the
   * next incremental needs no download and no secret key. A failure to keep a copy is
   * no failure of the backup: the next run fetches the file from the target.
   */
  async #adoptIntoCache(manName: string, plainManifest: string): Promise<void> {
    if (!this.#o.cache || !this.#sigtar.local) return;
    const gz = path.join(this.#o.tmp, 'local-signatures.gz');
    this.#sigtar.local.flush();
    await pipeline(createReadStream(this.#o.checkpoint!.files.sigtar), createGzip({ level: 1 }), createWriteStream(gz));
    const cacheMiss = (e: unknown) => this.#o.warn({ code: 'CACHE_UNWRITABLE', path: Buffer.from(this.#o.cache!.dir), message: `cannot keep a copy in the cache (${(e as Error).message}): the next run downloads it` });
    await this.#o.cache.adopt(this.name('signature'), gz).catch(cacheMiss);
    await this.#o.cache.adopt(manName, plainManifest).catch(cacheMiss);
  }

  /** Signs the list of stored files and uploads it after the manifest. */
  async #writeSeal(o: { key: SecretKey; previous: string | null }): Promise<void> {
    const spec = this.#o.spec;
    const text = await this.#seal.sign(spec, o.key, o.previous);
    const name = sealName(spec.type, spec.start, spec.end);
    const file = path.join(this.#o.tmp, name);
    await writeFile(file, text);
    await this.#uploader.enqueue(name, file, Buffer.byteLength(text));
    await this.#uploader.drain();
  }

  get stored(): string[] {
    return this.#uploader.stored;
  }

  /** After a failure: the workers stopped, uploads dropped; the caller removes the temp directory. */
  async abort(): Promise<void> {
    await this.#pool?.close();
    await this.#taken.catch(() => undefined); // the failure is the caller's to report
    await this.#sigtar.abort();
    await this.#uploader.abort();
  }

  dispose(): void {
    void this.#pool?.close(); // closed already unless the run ended early: no thread outlives it
    this.#growing?.close();
    try {
      this.#files.close();
      this.#sigtar.local?.close();
    } catch {
      // already closed
    }
  }
}

/** A batch's volumes as they close, to the set writer in order; each waits until it is taken. */
class VolumeFeed {
  readonly #items: { volume: BatchVolume; taken: () => void }[] = [];
  #wake: (() => void) | undefined;
  #ended = false;

  push(volume: BatchVolume): Promise<void> {
    return new Promise<void>((taken) => {
      this.#items.push({ volume, taken });
      this.#wake?.();
    });
  }

  /** No more volumes: the batch ended (or failed). */
  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *volumes(): AsyncGenerator<{ volume: BatchVolume; taken: () => void }> {
    for (;;) {
      const next = this.#items.shift();
      if (next) yield next;
      else if (this.#ended) return;
      else await new Promise<void>((r) => (this.#wake = r));
    }
  }
}

/** Reads a batch's record fragments on, volume by volume, into the set's signature file and file list. */
class FragmentReader {
  readonly #sigFile: string;
  readonly #listFile: string;
  #sigPos = 0;
  #listPos = 0;
  #listCount = 0;
  constructor(tmp: string, seq: number) {
    ({ sigFile: this.#sigFile, listFile: this.#listFile } = fragmentFiles(tmp, seq));
  }

  async copyUntil(sigEnd: number, listEnd: number, listCount: number, sigtar: SignatureFileWriter, files: FileList): Promise<void> {
    if (sigEnd > this.#sigPos) for await (const c of createReadStream(this.#sigFile, { start: this.#sigPos, end: sigEnd - 1, highWaterMark: 1 << 20 })) await sigtar.addRecords(c as Buffer);
    if (listEnd > this.#listPos) {
      const chunks: Buffer[] = [];
      for await (const c of createReadStream(this.#listFile, { start: this.#listPos, end: listEnd - 1, highWaterMark: 1 << 20 })) chunks.push(c as Buffer);
      files.addRecords(Buffer.concat(chunks), listCount - this.#listCount);
    }
    this.#sigPos = Math.max(this.#sigPos, sigEnd);
    this.#listPos = Math.max(this.#listPos, listEnd);
    this.#listCount = Math.max(this.#listCount, listCount);
  }

  async remove(): Promise<void> {
    await rm(this.#sigFile, { force: true });
    await rm(this.#listFile, { force: true });
  }
}
