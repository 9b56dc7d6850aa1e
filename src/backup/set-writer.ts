/**
 * Writes one backup set: entries go to the volume writer (and from there to the
 * uploader, volume by volume) and, in the same pass, to the signature file
 * (signature-file.ts) and the manifest's file list (file-list.ts); each closed volume
 * goes into the checkpoint (checkpoint.ts), the manifest's volume lines and the seal's
 * list. At the end the signature file and then the manifest (manifest-writer.ts) are
 * uploaded, the manifest last so that an interrupted run never leaves a set that looks
 * complete, then the seal (seal-list.ts).
 */
import { createReadStream, createWriteStream, lstatSync, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Backend } from '../backend/backend.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { formatName, parseName, sealName, type NameSpec } from '../chain/file-naming.js';
import type { VolumeInfo } from '../chain/manifest.js';
import type { Encoder } from '../crypto/encoding.js';
import type { SecretKey } from '../crypto/keys.js';
import { DeltaBuilder } from '../diff/delta.js';
import { SignatureIndex } from '../diff/signature-index.js';
import { BlockSumCache } from '../diff/block-sum-cache.js';
import { blockSizeFor, DEFAULT_STRONG_LEN, SignatureBuilder } from '../diff/signature.js';
import { withContext } from '../errors.js';
import { Spool } from '../util/spool.js';
import { compareIndex, entryName, type Index } from '../volume/entry-name.js';
import type { TarHeader } from '../volume/tar-header.js';
import { VolumeWriter, type FinishedVolume, type TarBlock } from '../volume/volume-writer.js';
import { CheckpointFiles, CheckpointWriter, SyncAppender, checkpointVolume, emptyCheckpoint, fromHex, hexIndex, type CheckpointState, type CheckpointStep } from './checkpoint.js';
import { deletedHeader, entryType, headerFromStat } from '../source/entry-meta.js';
import { CHUNK, pieces, readBuffers, type ReadSeen, type WholeFile } from '../source/read-file.js';
import { FileList } from './file-list.js';
import { manifestVolume, writeManifest } from './manifest-writer.js';
import { SealList } from './seal-list.js';
import { SignatureFileWriter } from './signature-file.js';
import { StreamChunker } from './stream-chunker.js';
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
}

/**
 * The mtime recorded in the signature file for a file that changed while it was read
 * (1970-01-01T00:00:01Z): no live file has it, so the next incremental always stores the
 * file again (as a delta against what was read).
 */
const CHANGED_MARK_MTIME = 1;

export class SetWriter {
  readonly #o: SetWriterOptions;
  readonly #uploader: Uploader;
  readonly #volumes: VolumeWriter;
  readonly #sigtar: SignatureFileWriter;
  readonly #files: FileList;
  readonly #seal = new SealList();
  /** The manifest's volume lines: an interrupted run's, then ours. */
  readonly #manifestVolumes: VolumeInfo[];
  readonly #checkpoint: CheckpointWriter | undefined;
  /** The entry being stored (for the checkpoint's resume point). */
  #current: { index: Index; stat?: Stats } | undefined;
  /** Resume: blocks up to this point are already stored. */
  #skip: { index: Index; block?: number } | undefined;
  /** The last entry whose signature-file record was written: it is complete. */
  #sigDone: Index | undefined;
  readonly stats: SetStats = { files: 0, bytesRead: 0, changed: 0, deleted: 0, volumes: 0, storedBytes: 0, deltaBytes: 0 };

  private constructor(o: SetWriterOptions, files: FileList) {
    this.#o = o;
    this.#files = files;
    const cp = o.checkpoint;
    const resume = cp?.resume;
    const prior = resume?.volumes ?? [];
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
      onStored: (name, size) => {
        this.stats.storedBytes += size;
        o.onStored?.(name, size);
        const n = parseName(name);
        if (n?.kind === 'volume' && n.volume !== undefined) void this.#checkpoint?.uploaded(n.volume);
      },
    });
    this.#volumes = new VolumeWriter({
      dir: o.tmp,
      volsize: o.volsize,
      encoder: o.encoder,
      nameFor: (n) => this.name('volume', n),
      sha256: o.seal !== undefined,
      firstNumber: prior.length + 1,
      onVolume: (v) => this.#volumeClosed(v),
    });
    const local = cp ? new SyncAppender(cp.files.sigtar, resume ? resume.sigtarLength : undefined) : undefined;
    this.#sigtar = new SignatureFileWriter(path.join(o.tmp, this.name('signature')), o.encoder, local, o.seal !== undefined, cp?.files.sigtar);
  }

  static async open(o: SetWriterOptions): Promise<SetWriter> {
    const resume = o.checkpoint?.resume;
    const files = await FileList.open(o.checkpoint ? o.checkpoint.files.filelist : path.join(o.tmp, 'filelist'), resume?.filelistLength);
    return new SetWriter(o, files);
  }

  /** A volume is closed: into the manifest, the seal and (as pending) the checkpoint, then uploaded. */
  async #volumeClosed(v: FinishedVolume): Promise<void> {
    this.stats.volumes++;
    const name = this.name('volume', v.number);
    this.#manifestVolumes.push(manifestVolume(v));
    this.#seal.add(name, v.size, v.sha256);
    // Named as pending before it can reach the target: a run killed once it is there
    // resumes after it (see settle).
    await this.#checkpoint?.closed(this.#stepAt(v, name));
    await this.#uploader.enqueue(name, v.path, v.size);
  }

  /** What volume `v` adds to the checkpoint once it is stored. */
  #stepAt(v: FinishedVolume, name: string): CheckpointStep {
    const cur = this.#current && compareIndex(this.#current.index, v.end) === 0 ? this.#current.stat : undefined;
    const done = this.#sigDone !== undefined && compareIndex(this.#sigDone, v.end) === 0;
    this.#sigtar.local?.sync();
    this.#files.sync();
    return {
      volume: checkpointVolume(v, name),
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


  /**
   * Stores the whole current state of a path (new, or changed type/metadata); `whole`
   * is a small file's content when it was read ahead.
   */
  async snapshot(e: WalkEntry, isNew: boolean, whole?: Promise<WholeFile>): Promise<void> {
    const type = entryType(e.stat);
    if (!type) return;
    this.#current = { index: e.index, stat: e.stat };
    if (type === 'file') {
      if (await this.#snapshotFile(e.index, e.path, e.stat, whole)) this.#files.add(isNew ? 'new' : 'changed', e.index);
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
    if (wasFile) this.#files.add('deleted', index);
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
      this.#files.add('changed', index);
      await this.#addSignature(index, this.#signatureHeader(index, st, sigSpool.size, changed), sigSpool);
    } finally {
      sigSpool.dispose();
    }
  }

  /** Closes the last volume, uploads the signature file and then the manifest (and the seal). */
  async finish(): Promise<void> {
    await this.#volumes.finish();
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
