/**
 * Writes one backup set: entries go to the volume writer (and from there to the
 * uploader, volume by volume) and, in the same pass, to the signature file; at the end
 * the signature file and then the manifest are uploaded, the manifest last so that an
 * interrupted run never leaves a set that looks complete.
 */
import { createReadStream, createWriteStream, lstatSync, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { once } from 'node:events';
import { finished, pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Backend } from '../backend/backend.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { formatName, parseName, sealName, type NameSpec } from '../chain/file-naming.js';
import { fileLine, manifestHead, type FileChange, type Manifest } from '../chain/manifest.js';
import type { Encoder } from '../crypto/encoding.js';
import type { SecretKey } from '../crypto/keys.js';
import { signSeal, type SealFile } from '../crypto/seal.js';
import { DeltaBuilder } from '../diff/delta.js';
import { SignatureIndex } from '../diff/signature-index.js';
import { BlockSumCache } from '../diff/block-sum-cache.js';
import { blockSizeFor, DEFAULT_STRONG_LEN, SignatureBuilder } from '../diff/signature.js';
import { withContext } from '../errors.js';
import { BufferQueue, joined } from '../util/buffer-queue.js';
import { Spool } from '../util/spool.js';
import { EncodedFileWriter } from '../volume/encoded-file.js';
import { compareIndex, entryName, joinIndex, type Index } from '../volume/entry-name.js';
import { BLOCK, ZERO_BLOCK, encodeHeader, padding, type TarHeader } from '../volume/tar-header.js';
import { VolumeWriter, type FinishedVolume, type TarBlock } from '../volume/volume-writer.js';
import { CheckpointFiles, SyncAppender, fromHex, hexIndex, withStep, type CheckpointState, type CheckpointStep, type CheckpointVolume } from './checkpoint.js';
import { deletedHeader, entryType, headerFromStat } from '../source/entry-meta.js';
import { CHUNK, pieces, readBuffers, type ReadSeen, type WholeFile } from '../source/read-file.js';
import { Uploader } from './uploader.js';
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
  volsize?: number;
  hostname: string;
  localdir: Buffer;
  uploadConcurrency?: number;
  maxStaged?: number;
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
}

/**
 * The mtime recorded in the signature file for a file that changed while it was read
 * (1970-01-01T00:00:01Z): no live file has it, so the next incremental always stores the
 * file again (as a delta against what was read).
 */
const CHANGED_MARK_MTIME = 1;

/** The entries of a file list written by SetWriter (action NUL path NUL ...), streamed. */
async function* fileEntries(file: string): AsyncGenerator<FileChange> {
  let rest = Buffer.alloc(0);
  for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) {
    const all = rest.length ? Buffer.concat([rest, c as Buffer]) : (c as Buffer);
    let pos = 0;
    for (;;) {
      const a = all.indexOf(0, pos);
      const b = a < 0 ? -1 : all.indexOf(0, a + 1);
      if (b < 0) break;
      yield { action: all.toString('latin1', pos, a) as FileChange['action'], path: all.subarray(a + 1, b) };
      pos = b + 1;
    }
    rest = Buffer.from(all.subarray(pos));
  }
}

/**
 * Writes a sigtar (a plain tar stream with end marker) through an encoder, and — when
 * there is a cache — a plain copy synchronously beside it (the cache's signatures, and
 * the checkpoint a resumed run starts from). A resumed run first replays `prefix`.
 */
class SigtarWriter {
  #w: EncodedFileWriter | undefined;
  #bytes = 0;
  constructor(
    private readonly file: string,
    private readonly encoder: Encoder,
    readonly local: SyncAppender | undefined,
    private readonly sha256 = false,
    private readonly prefix?: string,
  ) {}
  async #open(): Promise<EncodedFileWriter> {
    if (this.#w) return this.#w;
    this.#w = new EncodedFileWriter(this.file, await this.encoder.transforms(), { sha256: this.sha256 });
    if (this.prefix && this.local && this.local.length > 0) {
      // Replay what the interrupted run wrote, from the checkpoint copy.
      for await (const c of createReadStream(this.prefix, { end: this.local.length - 1, highWaterMark: 1 << 20 })) {
        this.#bytes += (c as Buffer).length;
        await this.#w.write(c as Buffer);
      }
    }
    return this.#w;
  }
  async #write(b: Buffer): Promise<void> {
    const w = await this.#open();
    this.#bytes += b.length;
    this.local?.append(b);
    await w.write(b);
  }
  async add(h: TarHeader, data?: Spool): Promise<void> {
    await this.#write(encodeHeader(h));
    if (!data || data.size === 0) return;
    for await (const c of data.read()) await this.#write(c);
    const pad = padding(data.size);
    if (pad) await this.#write(ZERO_BLOCK.subarray(0, pad));
  }
  async finish() {
    // Python's TarFile.close(): two zero blocks, padded to a 10240-byte record.
    const end = 2 * BLOCK + ((10240 - ((this.#bytes + 2 * BLOCK) % 10240)) % 10240);
    await this.#write(Buffer.alloc(end));
    return this.#w!.finish();
  }
  async abort() {
    await this.#w?.abort();
  }
}

/**
 * Cuts a byte stream of unknown length (a delta) into duplicity's entries: one entry
 * when it is under 64 KiB, else 64 KiB multivol chunks with a final shorter (possibly
 * empty) one. One full chunk is held back until it is known whether more follows.
 */
class StreamChunker {
  readonly #queue = new BufferQueue();
  #chunks = 0;
  constructor(private readonly out: (data: Buffer, chunk: number | undefined, final: boolean) => Promise<void>) {}
  /** Entries emitted so far. */
  get emitted(): number {
    return this.#chunks;
  }
  push(b: Buffer): void {
    this.#queue.push(b);
  }
  /** Emits every chunk that is surely not the last. */
  async flush(): Promise<void> {
    while (this.#queue.size > CHUNK) await this.out(joined(this.#queue.take(CHUNK)), ++this.#chunks, false);
  }
  async end(): Promise<void> {
    await this.flush();
    const rest = Buffer.concat(this.#queue.takeAll());
    if (this.#chunks === 0 && rest.length < CHUNK) return this.out(rest, undefined, true);
    if (rest.length === CHUNK) {
      await this.out(rest, ++this.#chunks, false);
      return this.out(Buffer.alloc(0), ++this.#chunks, true);
    }
    return this.out(rest, ++this.#chunks, true);
  }
}

export class SetWriter {
  readonly #o: SetWriterOptions;
  readonly #uploader: Uploader;
  readonly #volumes: VolumeWriter;
  readonly #sigtar: SigtarWriter;
  /** The manifest's file list, one NUL-separated record per file, appended as we go. */
  readonly #files: SyncAppender;
  readonly #filesPath: string;
  /** Stored files with their SHA-256, for the seal. */
  readonly #sealed: SealFile[] = [];
  /** Volumes an interrupted run stored (resume), then ours. */
  readonly #prior: CheckpointVolume[];
  /** The entry being stored (for the checkpoint's resume point). */
  #current: { index: Index; stat?: Stats } | undefined;
  /** Resume: blocks up to this point are already stored. */
  #skip: { index: Index; block?: number } | undefined;
  /** The last entry whose signature-file record was written: it is complete. */
  #sigDone: Index | undefined;
  /** The checkpoint of the stored volumes (those of an interrupted run, then ours). */
  #stored: CheckpointState | undefined;
  /** Volumes closed, in the checkpoint as pending until they and all before are stored. */
  readonly #steps = new Map<number, CheckpointStep>();
  readonly #uploaded = new Set<number>();
  readonly stats: SetStats = { files: 0, bytesRead: 0, changed: 0, deleted: 0, volumes: 0, storedBytes: 0, deltaBytes: 0 };

  constructor(o: SetWriterOptions) {
    this.#o = o;
    const cp = o.checkpoint;
    const resume = cp?.resume;
    this.#prior = resume?.volumes ?? [];
    if (cp) this.#stored = resume ?? this.#emptyCheckpoint(cp.source);
    if (resume) this.#skip = { index: fromHex(resume.resume.index), ...(resume.resume.block !== undefined ? { block: resume.resume.block } : {}) };
    for (const v of this.#prior) if (v.sha256) this.#sealed.push({ name: v.name, size: v.size, sha256: v.sha256 });
    this.#uploader = new Uploader(o.backend, {
      concurrency: o.uploadConcurrency ?? 1,
      maxStaged: o.maxStaged ?? 2,
      ...(o.signal ? { signal: o.signal } : {}),
      onStored: (name, size) => {
        this.stats.storedBytes += size;
        o.onStored?.(name, size);
        const n = parseName(name);
        if (n?.kind === 'volume' && n.volume !== undefined) {
          this.#uploaded.add(n.volume);
          void this.#storedUpTo();
        }
      },
    });
    this.#volumes = new VolumeWriter({
      dir: o.tmp,
      ...(o.volsize ? { volsize: o.volsize } : {}),
      encoder: o.encoder,
      nameFor: (n) => this.name('volume', n),
      sha256: o.seal !== undefined,
      firstNumber: this.#prior.length + 1,
      onVolume: async (v) => {
        this.stats.volumes++;
        const name = this.name('volume', v.number);
        if (v.sha256) this.#sealed.push({ name, size: v.size, sha256: v.sha256 });
        if (cp) {
          // Named as pending before it can reach the target: a run killed once it is
          // there resumes after it (see settle).
          this.#steps.set(v.number, this.#stepAt(v, name));
          await this.#saveCheckpoint();
        }
        await this.#uploader.enqueue(name, v.path, v.size);
      },
    });
    this.#filesPath = cp ? cp.files.filelist : path.join(o.tmp, 'filelist');
    this.#files = new SyncAppender(this.#filesPath, resume ? resume.filelistLength : undefined);
    const local = cp ? new SyncAppender(cp.files.sigtar, resume ? resume.sigtarLength : undefined) : undefined;
    this.#sigtar = new SigtarWriter(path.join(o.tmp, this.name('signature')), o.encoder, local, o.seal !== undefined, cp?.files.sigtar);
  }

  #emptyCheckpoint(source: string): CheckpointState {
    return { version: 1, ...this.#o.spec, source, volumes: [], sigtarLength: 0, filelistLength: 0, resume: { index: [] } };
  }

  /** What volume `v` adds to the checkpoint once it is stored. */
  #stepAt(v: FinishedVolume, name: string): CheckpointStep {
    const volume: CheckpointVolume = {
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
    const cur = this.#current && compareIndex(this.#current.index, v.end) === 0 ? this.#current.stat : undefined;
    const done = this.#sigDone !== undefined && compareIndex(this.#sigDone, v.end) === 0;
    this.#sigtar.local?.sync();
    this.#files.sync();
    return {
      volume,
      sigtarLength: this.#sigtar.local?.length ?? 0,
      filelistLength: this.#files.length,
      resume: done
        ? { index: hexIndex(v.end), done: true }
        : {
            index: hexIndex(v.end),
            ...(v.endBlock !== undefined ? { block: v.endBlock } : {}),
            ...(cur?.isFile() ? { size: cur.size, mtime: Math.floor(cur.mtimeMs / 1000) } : {}),
          },
    };
  }

  /** Moves the volumes whose upload and all before it are done from pending to stored. */
  async #storedUpTo(): Promise<void> {
    for (const [n, step] of [...this.#steps].sort((a, b) => a[0] - b[0])) {
      if (!this.#uploaded.has(n)) break;
      this.#stored = withStep(this.#stored!, step);
      this.#steps.delete(n);
    }
    await this.#saveCheckpoint();
  }

  #saving: Promise<void> = Promise.resolve();
  async #saveCheckpoint(): Promise<void> {
    const cp = this.#o.checkpoint;
    if (!cp || !this.#stored) return;
    const pending = [...this.#steps].sort((a, b) => a[0] - b[0]).map(([, step]) => step);
    const state: CheckpointState = { ...this.#stored, ...(pending.length ? { pending } : {}) };
    this.#saving = this.#saving.then(() => cp.files.save(state)).catch(() => undefined);
    await this.#saving;
  }

  /** Adds a tar block unless an interrupted run already stored it. */
  async #add(b: TarBlock): Promise<void> {
    this.#o.signal?.throwIfAborted(); // every 64 KiB: a large file does not delay a Ctrl-C
    const skip = this.#skip;
    if (skip) {
      const c = compareIndex(b.index, skip.index);
      if (c < 0 || (c === 0 && (skip.block === undefined || (b.chunk !== undefined && b.chunk <= skip.block)))) return;
      this.#skip = undefined;
    }
    await this.#volumes.add(b);
  }

  name(kind: NameSpec['kind'], volume?: number): string {
    return formatName({ ...this.#o.spec, kind, ...(volume !== undefined ? { volume } : {}) });
  }

  /**
   * Writes an entry's record in the signature file: the last step of an entry (a
   * file's list line follows at once, with no await between), so from here on a
   * checkpoint counts the entry as complete.
   */
  async #addSignature(index: Index, h: TarHeader, data?: Spool): Promise<void> {
    await this.#sigtar.add(h, data);
    this.#sigDone = index;
  }

  #list(action: FileChange['action'], index: Index): void {
    this.#files.append(Buffer.concat([Buffer.from(`${action}\0`), joinIndex(index), Buffer.from([0])]));
  }

  /**
   * Stores the whole current state of a path (new, or changed type/metadata); `whole`
   * is a small file's content when it was read ahead.
   */
  async snapshot(e: WalkEntry, isNew: boolean, whole?: Promise<WholeFile>): Promise<void> {
    const type = entryType(e.stat);
    if (!type) return;
    this.#current = { index: e.index, stat: e.stat };
    if (type === 'file') {
      if (await this.#snapshotFile(e.index, e.path, e.stat, whole)) this.#list(isNew ? 'new' : 'changed', e.index);
      return;
    }
    let link: Buffer = Buffer.alloc(0);
    if (type === 'symlink') {
      try {
        link = (await fs.readlink(e.path, { encoding: 'buffer' })) as Buffer;
      } catch (err) {
        this.#o.warn({ code: 'VANISHED', path: e.path, message: (err as Error).message });
        return;
      }
    }
    const isDir = type === 'directory';
    if (!isNew) this.stats.changed++;
    await this.#add({ index: e.index, header: headerFromStat(entryName('snapshot', e.index, { isDir }), e.stat, type, link) });
    await this.#addSignature(e.index, headerFromStat(entryName('snapshot', e.index, { isDir, sigtarRoot: true }), e.stat, type, link));
  }

  /** Records that a path present in the previous state is gone. */
  async deleted(index: Index, wasFile: boolean): Promise<void> {
    this.stats.deleted++;
    this.#current = { index };
    await this.#add({ index, header: deletedHeader(entryName('deleted', index)) });
    if (wasFile) this.#list('deleted', index);
    await this.#addSignature(index, deletedHeader(entryName('deleted', index)));
  }

  /**
   * Stores one regular file as `snapshot/` (under 64 KiB) or `multivol_snapshot/` chunks,
   * and its new signature. Returns false when the file could not be read (a warning).
   */
  async #snapshotFile(index: Index, p: Buffer, st: Stats, whole?: Promise<WholeFile>): Promise<boolean> {
    const sigSpool = new Spool(this.#o.tmp);
    try {
      const sig = new SignatureBuilder(blockSizeFor(st.size), (b) => sigSpool.append(b), undefined, { size: st.size });
      let chunk = 0;
      const seen: ReadSeen = { read: 0, grew: false };
      try {
        for await (const data of pieces(readBuffers(p, st.size, seen, whole ? { whole } : {}))) {
          sig.update(data);
          if (chunk === 0 && data.length < CHUNK) {
            await this.#add({ index, header: { ...headerFromStat(entryName('snapshot', index), st, 'file'), size: data.length }, data });
            break;
          }
          chunk++;
          await this.#add({
            index,
            header: { ...headerFromStat(entryName('multivol_snapshot', index, { chunk }), st, 'file'), size: data.length },
            data,
            chunk,
            finalChunk: data.length < CHUNK,
          });
        }
      } catch (e) {
        if (chunk > 0) throw withContext(e, { action: 'reading', path: p.toString('utf8') }); // entries already written: can't skip
        this.#o.warn({ code: 'UNREADABLE_FILE', path: p, message: (e as Error).message });
        return false;
      }
      sig.finish();
      const changed = this.#checkChanged(p, st, seen);
      this.stats.files++;
      this.stats.bytesRead += seen.read;
      await this.#addSignature(index, this.#signatureHeader(index, st, sigSpool.size, changed), sigSpool);
      return true;
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
  #checkChanged(p: Buffer, st: Stats, seen: ReadSeen): boolean {
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
    this.#o.warn({ code: 'CHANGED_WHILE_READ', path: p, message: `changed while being read (${why}); the next backup stores it again` });
    return true;
  }

  /** The signature entry of a file; a file that changed while read gets an mtime that matches no real one. */
  #signatureHeader(index: Index, st: Stats, size: number, changed: boolean): TarHeader {
    const h = { ...headerFromStat(entryName('signature', index), st, 'file'), size };
    return changed ? { ...h, mtime: CHANGED_MARK_MTIME } : h;
  }

  /** Stores a changed regular file as a librsync delta against its old signature. */
  async diff(e: WalkEntry, oldSignature: Buffer): Promise<void> {
    const { index, path: p, stat: st } = e;
    this.#current = { index, stat: st };
    const sigSpool = new Spool(this.#o.tmp);
    try {
      const blockLen = blockSizeFor(st.size);
      const sums = new BlockSumCache(blockLen, DEFAULT_STRONG_LEN);
      const newSig = new SignatureBuilder(blockLen, (b) => sigSpool.append(b), DEFAULT_STRONG_LEN, { size: st.size, cache: sums });
      const chunker = new StreamChunker(async (data, chunk, final) => {
        const name = chunk === undefined ? entryName('diff', index) : entryName('multivol_diff', index, { chunk });
        await this.#add({
          index,
          header: { ...headerFromStat(name, st, 'file'), size: data.length },
          data,
          ...(chunk !== undefined ? { chunk, finalChunk: final } : {}),
        });
      });
      const delta = new DeltaBuilder(new SignatureIndex(oldSignature, `signature of ${p.toString('utf8')}`), (b) => chunker.push(b), sums);
      const seen: ReadSeen = { read: 0, grew: false };
      let started = false;
      try {
        for await (const data of readBuffers(p, st.size, seen)) {
          delta.update(data); // first: where it proves blocks unchanged, their sums are known
          newSig.update(data);
          await chunker.flush();
          started = chunker.emitted > 0;
        }
      } catch (err) {
        if (started) throw withContext(err, { action: 'reading', path: p.toString('utf8') });
        this.#o.warn({ code: 'UNREADABLE_FILE', path: p, message: (err as Error).message });
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
      this.#list('changed', index);
      await this.#addSignature(index, this.#signatureHeader(index, st, sigSpool.size, changed), sigSpool);
    } finally {
      sigSpool.dispose();
    }
  }

  /** Closes the last volume, uploads the signature file and then the manifest. */
  async finish(): Promise<void> {
    await this.#volumes.finish();
    const sig = await this.#sigtar.finish();
    if (sig.sha256) this.#sealed.push({ name: this.name('signature'), size: sig.size, sha256: sig.sha256 });
    await this.#uploader.enqueue(this.name('signature'), sig.path, sig.size);
    const head = {
      hostname: this.#o.hostname,
      localdir: this.#o.localdir,
      volumes: [
        ...this.#prior.map((v) => ({ ...v, start: fromHex(v.start), end: fromHex(v.end) })),
        ...this.#volumes.volumes.map((v) => ({
          number: v.number,
          start: v.start,
          end: v.end,
          ...(v.startBlock !== undefined ? { startBlock: v.startBlock } : {}),
          ...(v.endBlock !== undefined ? { endBlock: v.endBlock } : {}),
          sha1: v.sha1,
        })),
      ].map(({ number, start, end, startBlock, endBlock, sha1 }) => ({
        number,
        start,
        end,
        ...(startBlock !== undefined ? { startBlock } : {}),
        ...(endBlock !== undefined ? { endBlock } : {}),
        hashType: 'SHA1' as const,
        hash: sha1,
      })),
    };
    const manName = this.name('manifest');
    const plainManifest = this.#o.encoder.encoding !== 'gpg';
    const mw = new EncodedFileWriter(path.join(this.#o.tmp, manName), plainManifest ? [] : await this.#o.encoder.transforms(), { sha256: this.#o.seal !== undefined });
    // A plain copy for the cache, written alongside.
    const plainPath = path.join(this.#o.tmp, 'plain-manifest');
    const plain = createWriteStream(plainPath, { flags: 'wx', mode: 0o600 });
    const plainDone = finished(plain);
    for await (const part of this.#manifestParts(head)) {
      await mw.write(part);
      if (!plain.write(part)) await once(plain, 'drain');
    }
    plain.end();
    await plainDone;
    const man = await mw.finish();
    if (man.sha256) this.#sealed.push({ name: manName, size: man.size, sha256: man.sha256 });
    // The manifest goes last, after everything else is stored.
    await this.#uploader.drain();
    await this.#uploader.enqueue(manName, man.path, man.size);
    await this.#uploader.drain();
    if (this.#o.seal) await this.#writeSeal(this.#o.seal);
    // Only a stored set goes to the cache (duplicity keeps such local copies too), so
    // the next incremental needs no download and no secret key.
    if (this.#o.cache && this.#sigtar.local) {
      const gz = path.join(this.#o.tmp, 'local-signatures.gz');
      this.#sigtar.local.flush();
      await pipeline(createReadStream(this.#o.checkpoint!.files.sigtar), createGzip({ level: 1 }), createWriteStream(gz));
      await this.#o.cache.adopt(this.name('signature'), gz).catch(() => undefined);
      await this.#o.cache.adopt(manName, plainPath).catch(() => undefined);
    }
    await this.#saving;
    this.#sigtar.local?.close();
    this.#files.close();
    await this.#o.checkpoint?.files.clear();
  }

  /** Signs the list of stored files and uploads it after the manifest. */
  async #writeSeal(o: { key: SecretKey; previous: string | null }): Promise<void> {
    const spec = this.#o.spec;
    const text = await signSeal({ type: spec.type, start: spec.start, end: spec.end, previous: o.previous, files: this.#sealed }, o.key);
    const name = sealName(spec.type, spec.start, spec.end);
    const file = path.join(this.#o.tmp, name);
    await writeFile(file, text);
    await this.#uploader.enqueue(name, file, Buffer.byteLength(text));
    await this.#uploader.drain();
  }

  get stored(): string[] {
    return this.#uploader.stored;
  }

  /**
   * The manifest in pieces: its head, then the file list read back from disk in
   * batches of lines (the list of a large tree never sits whole in memory).
   */
  async *#manifestParts(head: Omit<Manifest, 'files'>): AsyncGenerator<Buffer> {
    this.#files.sync();
    const entries = () => (this.#files.length === 0 ? (async function* () {})() : fileEntries(this.#filesPath));
    let count = 0;
    for await (const _ of entries()) count++;
    yield manifestHead(head, count);
    let batch: Buffer[] = [];
    let size = 0;
    for await (const f of entries()) {
      const line = fileLine(f);
      batch.push(line);
      size += line.length;
      if (size >= 64 * 1024) {
        yield Buffer.concat(batch);
        batch = [];
        size = 0;
      }
    }
    if (batch.length) yield Buffer.concat(batch);
  }

  async abort(): Promise<void> {
    await this.#volumes.abort();
    await this.#sigtar.abort();
    await this.#uploader.abort();
  }

  dispose(): void {
    try {
      this.#files.close();
      this.#sigtar.local?.close();
    } catch {
      // already closed
    }
  }
}
