/**
 * One backup run: walk the source in index order → tar blocks (snapshot entries,
 * 64 KiB multivol chunks) → VolumeWriter (encode to temp files) → Uploader; in the
 * same pass each regular file's librsync signature goes to the sigtar. After the last
 * volume: the sigtar, then the manifest (last, so a crash leaves no complete-looking
 * set). Nothing is deleted from the target, so a failed run leaves earlier chains as
 * they were.
 */
import { constants as fsc, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { hostname as osHostname, tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Backend } from '../backend/backend.js';
import { listAll } from '../backend/backend.js';
import { buildCollection } from '../chain/collection.js';
import { formatName, type NameSpec } from '../chain/file-naming.js';
import { formatManifest, type FileChange } from '../chain/manifest.js';
import { gpgEncoder, gzipEncoder, plainEncoder, type Encoder } from '../crypto/encoding.js';
import type { MessageEncryptor } from '../crypto/encrypt.js';
import { blockSizeFor, SignatureBuilder } from '../diff/signature.js';
import { ConfigError, SourceError, withContext } from '../errors.js';
import { Spool } from '../util/spool.js';
import { EncodedFileWriter } from '../volume/encoded-file.js';
import { entryName, joinIndex, type Index } from '../volume/entry-name.js';
import { BLOCK, encodeHeader, padding, type TarHeader } from '../volume/tar-header.js';
import { VolumeWriter, type TarBlock } from '../volume/volume-writer.js';
import { entryType, headerFromStat } from './entry-meta.js';
import { Uploader } from './uploader.js';
import { walkTree, type WalkWarning } from './walk.js';

export const CHUNK = 65536;

export interface BackupOptions {
  /** Source directory as the user gave it (recorded as the manifest's Localdir). */
  source: string;
  backend: Backend;
  /** OpenPGP encryptor, or null for --no-encryption (gzip). */
  encryptor: MessageEncryptor | null;
  /** zlib level inside OpenPGP / gzip; 0 = none. @default 6 */
  compressLevel?: number;
  /** Volume size cap in bytes. @default 200 MiB */
  volsize?: number;
  /** Temp directory. @default os.tmpdir() */
  tempDir?: string;
  /** Clock, epoch seconds. @default Date.now()/1000 */
  now?: () => number;
  /** @default os.hostname() */
  hostname?: string;
  /** Finished files waiting for upload. @default 2 */
  maxStaged?: number;
  /** @default 1 */
  uploadConcurrency?: number;
  signal?: AbortSignal;
  onWarning?: (w: WalkWarning) => void;
  onProgress?: (p: BackupProgress) => void;
}

export interface BackupProgress {
  files: number;
  bytesRead: number;
  volumes: number;
  storedBytes: number;
}

export interface BackupResult {
  type: 'full' | 'inc';
  time: number;
  files: number;
  bytesRead: number;
  volumes: number;
  storedBytes: number;
  warnings: number;
  names: string[];
}

interface SetContext {
  spec: Omit<NameSpec, 'kind'>;
  encoder: Encoder;
  tmp: string;
}

/** Reads a file in 64 KiB pieces (the last one shorter, possibly empty). */
async function* readChunks(p: Buffer): AsyncGenerator<Buffer> {
  const fh = await fs.open(p, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK);
      let n = 0;
      while (n < CHUNK) {
        const { bytesRead } = await fh.read(buf, n, CHUNK - n, null);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      yield buf.subarray(0, n);
      if (n < CHUNK) return;
    }
  } finally {
    await fh.close();
  }
}

/** Writes a sigtar (a plain tar stream with end marker) through an encoder. */
class SigtarWriter {
  readonly #w: EncodedFileWriter;
  #bytes = 0;
  constructor(file: string, encoder: Encoder) {
    this.#w = new EncodedFileWriter(file, encoder.transforms());
  }
  async #write(b: Buffer): Promise<void> {
    this.#bytes += b.length;
    await this.#w.write(b);
  }
  async add(h: TarHeader, data?: Spool): Promise<void> {
    await this.#write(encodeHeader(h));
    if (!data || data.size === 0) return;
    for await (const c of data.read()) await this.#write(c);
    const pad = padding(data.size);
    if (pad) await this.#write(Buffer.alloc(pad));
  }
  async finish() {
    // Python's TarFile.close(): two zero blocks, padded to a 10240-byte record.
    const end = 2 * BLOCK + ((10240 - ((this.#bytes + 2 * BLOCK) % 10240)) % 10240);
    await this.#write(Buffer.alloc(end));
    return this.#w.finish();
  }
  abort() {
    return this.#w.abort();
  }
}

/** A time strictly after every set already at the target (names must not collide). */
async function pickTime(backend: Backend, now: () => number, signal?: AbortSignal): Promise<number> {
  const col = buildCollection(await listAll(backend));
  const latest = Math.max(0, ...col.chains.map((c) => c.end), ...col.incomplete.map((s) => s.end), ...col.orphans.map((s) => s.end));
  let t = Math.floor(now());
  while (t <= latest) {
    if (signal?.aborted) throw signal.reason;
    if (latest - t > 5) break; // the clock is behind the target: don't wait for it
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
    t = Math.floor(now());
  }
  return t <= latest ? latest + 1 : t;
}

export async function runBackup(o: BackupOptions): Promise<BackupResult> {
  const srcAbs = path.resolve(o.source);
  let rootStat: Stats;
  try {
    rootStat = await fs.stat(srcAbs);
  } catch (e) {
    throw new SourceError(`source ${o.source}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (e as Error).message}`, { cause: e });
  }
  if (!rootStat.isDirectory()) throw new SourceError(`source ${o.source}: not a directory`);
  const compressLevel = o.compressLevel ?? 6;
  if (!Number.isInteger(compressLevel) || compressLevel < 0 || compressLevel > 9) throw new ConfigError(`compress level: expected 0-9, got ${compressLevel}`);
  const encoder = o.encryptor ? gpgEncoder(o.encryptor, compressLevel) : compressLevel > 0 ? gzipEncoder(compressLevel) : plainEncoder;
  const now = o.now ?? (() => Date.now() / 1000);
  const time = await pickTime(o.backend, now, o.signal);
  const tmp = await fs.mkdtemp(path.join(o.tempDir ?? tmpdir(), 'tapechain-'));
  const ctx: SetContext = { spec: { type: 'full', start: time, end: time, encoding: encoder.encoding }, encoder, tmp };
  try {
    return await writeSet(o, ctx, srcAbs);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

async function writeSet(o: BackupOptions, ctx: SetContext, srcAbs: string): Promise<BackupResult> {
  const name = (kind: NameSpec['kind'], volume?: number) => formatName({ ...ctx.spec, kind, ...(volume !== undefined ? { volume } : {}) });
  const progress: BackupProgress = { files: 0, bytesRead: 0, volumes: 0, storedBytes: 0 };
  let warnings = 0;
  const uploader = new Uploader(o.backend, {
    concurrency: o.uploadConcurrency ?? 1,
    maxStaged: o.maxStaged ?? 2,
    ...(o.signal ? { signal: o.signal } : {}),
    onStored: (_n, size) => {
      progress.storedBytes += size;
      o.onProgress?.({ ...progress });
    },
  });
  const volumes = new VolumeWriter({
    dir: ctx.tmp,
    ...(o.volsize ? { volsize: o.volsize } : {}),
    encoder: ctx.encoder,
    nameFor: (n) => name('volume', n),
    onVolume: async (v) => {
      progress.volumes++;
      await uploader.enqueue(name('volume', v.number), v.path, v.size);
    },
  });
  const sigName = name('signature');
  const sigtar = new SigtarWriter(path.join(ctx.tmp, sigName), ctx.encoder);
  const fileList = new Spool(ctx.tmp, 1 << 20);
  let filesListed = 0;
  try {
    const warn = (w: WalkWarning) => {
      warnings++;
      o.onWarning?.(w);
    };
    for await (const e of walkTree(Buffer.from(srcAbs), { onWarning: warn })) {
      if (o.signal?.aborted) throw o.signal.reason;
      const type = entryType(e.stat);
      if (!type) continue;
      if (type === 'file') {
        const ok = await snapshotFile(e.index, e.path, e.stat, volumes, sigtar, ctx.tmp, progress, warn);
        if (ok) {
          fileList.append(Buffer.concat([Buffer.from('new\0'), joinIndex(e.index), Buffer.from([0])]));
          filesListed++;
        }
        continue;
      }
      let link: Buffer = Buffer.alloc(0);
      if (type === 'symlink') {
        try {
          link = (await fs.readlink(e.path, { encoding: 'buffer' })) as Buffer;
        } catch (err) {
          warn({ code: 'VANISHED', path: e.path, message: (err as Error).message });
          continue;
        }
      }
      const isDir = type === 'directory';
      await volumes.add({ index: e.index, header: headerFromStat(entryName('snapshot', e.index, { isDir }), e.stat, type, link) });
      await sigtar.add(headerFromStat(entryName('snapshot', e.index, { isDir, sigtarRoot: true }), e.stat, type, link));
    }
    await volumes.finish();
    const sig = await sigtar.finish();
    await uploader.enqueue(sigName, sig.path, sig.size);
    const manifest = formatManifest({
      hostname: o.hostname ?? osHostname(),
      localdir: Buffer.from(o.source),
      volumes: volumes.volumes.map((v) => ({
        number: v.number,
        start: v.start,
        end: v.end,
        ...(v.startBlock !== undefined ? { startBlock: v.startBlock } : {}),
        ...(v.endBlock !== undefined ? { endBlock: v.endBlock } : {}),
        hashType: 'SHA1' as const,
        hash: v.sha1,
      })),
      files: await readFileList(fileList, filesListed),
    });
    const manName = name('manifest');
    const mw = new EncodedFileWriter(path.join(ctx.tmp, manName), ctx.encoder.encoding === 'gz' ? [] : ctx.encoder.transforms());
    await mw.write(manifest);
    const man = await mw.finish();
    // The manifest goes last, after everything else is stored.
    await uploader.drain();
    await uploader.enqueue(manName, man.path, man.size);
    await uploader.drain();
    return {
      type: ctx.spec.type,
      time: ctx.spec.end,
      files: progress.files,
      bytesRead: progress.bytesRead,
      volumes: volumes.volumes.length,
      storedBytes: progress.storedBytes,
      warnings,
      names: uploader.stored,
    };
  } catch (e) {
    await volumes.abort();
    await sigtar.abort();
    await uploader.abort();
    throw e;
  } finally {
    fileList.dispose();
  }
}

async function readFileList(s: Spool, n: number): Promise<FileChange[]> {
  const out: FileChange[] = [];
  if (n === 0) return out;
  const parts: Buffer[] = [];
  for await (const c of s.read()) parts.push(c);
  const all = Buffer.concat(parts);
  let pos = 0;
  while (pos < all.length) {
    const a = all.indexOf(0, pos);
    const b = all.indexOf(0, a + 1);
    out.push({ action: all.toString('latin1', pos, a) as FileChange['action'], path: Buffer.from(all.subarray(a + 1, b)) });
    pos = b + 1;
  }
  return out;
}

/**
 * Stores one regular file as `snapshot/` (under 64 KiB) or `multivol_snapshot/` chunks,
 * and its signature. Returns false when the file could not be read (a warning).
 */
async function snapshotFile(
  index: Index,
  p: Buffer,
  st: Stats,
  volumes: VolumeWriter,
  sigtar: SigtarWriter,
  tmp: string,
  progress: BackupProgress,
  warn: (w: WalkWarning) => void,
): Promise<boolean> {
  const sigSpool = new Spool(tmp);
  try {
    const sig = new SignatureBuilder(blockSizeFor(st.size), (b) => sigSpool.append(b));
    let chunk = 0;
    let read = 0;
    try {
      for await (const data of readChunks(p)) {
        sig.update(data);
        read += data.length;
        if (chunk === 0 && data.length < CHUNK) {
          await volumes.add({ index, header: { ...headerFromStat(entryName('snapshot', index), st, 'file'), size: data.length }, data });
          break;
        }
        chunk++;
        const final = data.length < CHUNK;
        await volumes.add({
          index,
          header: { ...headerFromStat(entryName('multivol_snapshot', index, { chunk }), st, 'file'), size: data.length },
          data,
          chunk,
          finalChunk: final,
        });
      }
    } catch (e) {
      if (chunk > 0) throw withContext(e, `reading ${p.toString('utf8')}`); // entries already written: can't skip
      warn({ code: 'UNREADABLE_FILE', path: p, message: (e as Error).message });
      return false;
    }
    sig.finish();
    progress.files++;
    progress.bytesRead += read;
    await sigtar.add({ ...headerFromStat(entryName('signature', index), st, 'file'), size: sigSpool.size }, sigSpool);
    return true;
  } finally {
    sigSpool.dispose();
  }
}

export type { TarBlock };
