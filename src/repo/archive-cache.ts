/**
 * The local archive directory: plain copies of manifests and gzipped copies of signature
 * files, so incrementals, ls and status need not download and decrypt them each run.
 * Same layout as duplicity's cache (`<archive-dir>/<md5 of the target URL>/`, manifest
 * plain, `*.sigtar.gz`). The target is authoritative: missing entries are fetched and
 * decoded on first use, entries whose set is gone from the target are removed.
 * Writes are temp + rename, so a crash never leaves a half-written cache file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip, createGzip, gunzip, type ZlibOptions } from 'node:zlib';
import { setKey } from '../chain/collection.js';
import { parseName } from '../chain/file-naming.js';

/** `$XDG_CACHE_HOME/tapechain` or `~/.cache/tapechain`. */
export function defaultArchiveDir(env: Record<string, string | undefined>): string {
  return path.join(env['XDG_CACHE_HOME'] || path.join(homedir(), '.cache'), 'tapechain');
}

/** The cache folder name for a target: MD5 of the URL as typed, as duplicity does. */
export function cacheName(target: string): string {
  return createHash('md5').update(target).digest('hex');
}

/** The cache name of a remote file: manifests plain, signatures `.sigtar.gz`. */
export function localName(remote: string): string | undefined {
  const p = parseName(remote);
  if (!p) return undefined;
  const base = remote.replace(/\.(gpg|gz|g|z)$/, '');
  if (p.kind === 'manifest') return base;
  if (p.kind === 'signature') return `${base}.gz`;
  return undefined;
}

const SOURCE_FILE = 'source.json';
/** Gzipped signature files that expand to at most this much are read whole. */
const SMALL_SIGNATURES = 512 << 10;
const gunzipAsync = promisify(gunzip);

/**
 * A cached signature file's bytes when it expands to at most SMALL_SIGNATURES (its
 * gzip trailer says how much), undefined when it is larger, null when it is missing.
 */
async function readSmall(file: string): Promise<Buffer | undefined | null> {
  let fh;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    return null;
  }
  try {
    const { size } = await fh.stat();
    if (size < 4 || size > SMALL_SIGNATURES) return undefined; // a broken one fails in the stream, named
    const gz = await fh.readFile();
    return gz.readUInt32LE(gz.length - 4) <= SMALL_SIGNATURES ? gz : undefined;
  } finally {
    await fh.close();
  }
}
/** The public key backups to this target were signed with here (pinned as SSH's known_hosts pins host keys). */
const SIGNER_FILE = 'signer.asc';

export class ArchiveCache {
  readonly dir: string;
  #ready: Promise<void> | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  #ensure(): Promise<void> {
    this.#ready ??= fs.mkdir(this.dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    return this.#ready;
  }

  async #writeAtomic(name: string, write: (file: string) => Promise<void>): Promise<void> {
    await this.#ensure();
    const tmp = path.join(this.dir, `.tmp-${randomBytes(6).toString('hex')}`);
    try {
      await write(tmp);
      await fs.rename(tmp, path.join(this.dir, name));
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  }

  async #exists(name: string): Promise<boolean> {
    return fs.access(path.join(this.dir, name)).then(
      () => true,
      () => false,
    );
  }

  /** The decoded manifest of remote file `remote`, fetched with `fetch` when not cached. */
  async manifest(remote: string, fetch: () => Promise<Buffer>): Promise<Buffer> {
    const local = localName(remote)!;
    try {
      return await fs.readFile(path.join(this.dir, local));
    } catch {
      // not cached (or unreadable): the target has it
      const data = await fetch();
      // a cache that cannot keep a copy only costs a download next time
      await this.#writeAtomic(local, (f) => fs.writeFile(f, data, { mode: 0o600 })).catch(() => undefined);
      return data;
    }
  }

  /**
   * The decoded signature file as a stream; when not cached, `fetch` streams it from
   * the target and a gzipped copy is stored first.
   */
  async signatures(remote: string, fetch: () => AsyncIterable<Buffer>): Promise<AsyncIterable<Buffer>> {
    const local = localName(remote)!;
    if (!(await this.#exists(local))) {
      await this.#writeAtomic(local, (f) => pipeline(Readable.from(fetch()), createGzip({ level: 1 }), createWriteStream(f, { mode: 0o600 })));
    }
    return (await this.cachedSignatures(remote))!;
  }

  /** The cached decoded copy of a signature file, if there is one. */
  async cachedSignatures(remote: string): Promise<AsyncIterable<Buffer> | undefined> {
    const file = path.join(this.dir, localName(remote)!);
    const gz = await readSmall(file);
    if (gz === null) return undefined;
    if (gz) {
      // decompressed on the thread pool from now on, while the caller opens the next
      // one: find and diff open dozens (a chain's incrementals) before reading any
      const whole = gunzipAsync(gz, { chunkSize: Math.max(1 << 16, gz.readUInt32LE(gz.length - 4) + 1) });
      whole.catch(() => undefined); // the reader sees the failure
      return (async function* () {
        yield await whole;
      })();
    }
    // large pieces (a full's signature file is tens of MiB, and the stream's cost is per
    // piece), inflated up to 1 MiB ahead of the reader, on the thread pool meanwhile
    const gunzip = createGunzip({ chunkSize: 1 << 17, readableHighWaterMark: 1 << 20 } as ZlibOptions); // zlib streams take stream options too
    const src = createReadStream(file, { highWaterMark: 1 << 19 });
    src.on('error', (e) => gunzip.destroy(e));
    return src.pipe(gunzip);
  }

  /** Removes the cached copy of a remote file (it is fetched again when next needed). */
  async drop(remote: string): Promise<void> {
    const local = localName(remote);
    if (local) await fs.rm(path.join(this.dir, local), { force: true });
  }

  /**
   * The source of the last backup to this target: as typed (what the manifest records)
   * and resolved. A relative path in a manifest says nothing of the directory it was
   * typed in; this does, for the machine that made the backup.
   */
  async lastSource(): Promise<{ typed: string; real: string } | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.dir, SOURCE_FILE), 'utf8')) as { typed: string; real: string };
    } catch {
      return undefined; // not recorded yet (a first backup, another machine)
    }
  }

  async rememberSource(s: { typed: string; real: string }): Promise<void> {
    await this.#writeAtomic(SOURCE_FILE, (f) => fs.writeFile(f, JSON.stringify(s), { mode: 0o600 }));
  }

  /** Where the signer pinned for this target is kept. */
  get signerFile(): string {
    return path.join(this.dir, SIGNER_FILE);
  }

  /** The armored public key of the signer pinned for this target, if any. */
  async pinnedSigner(): Promise<string | undefined> {
    try {
      return await fs.readFile(this.signerFile, 'utf8');
    } catch {
      return undefined; // none pinned (or unreadable: then reading goes on as without a pin)
    }
  }

  /** Pins `armored` as this target's signer; returns the key it replaces, if another. */
  async pinSigner(armored: string): Promise<string | undefined> {
    const before = await this.pinnedSigner();
    if (before === armored) return undefined;
    await this.#writeAtomic(SIGNER_FILE, (f) => fs.writeFile(f, armored, { mode: 0o644 }));
    return before;
  }

  /** Moves a finished local file (e.g. a new set's gzipped signatures) into the cache. */
  async adopt(remote: string, file: string): Promise<void> {
    const local = localName(remote);
    if (!local) return;
    await this.#ensure();
    try {
      await fs.rename(file, path.join(this.dir, local));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
      // The temp directory is on another filesystem than the cache.
      await this.#writeAtomic(local, (f) => fs.copyFile(file, f));
    }
  }

  /**
   * Removes cached files of sets that are gone from the target (pruned elsewhere). A
   * set of which the target still holds any file keeps its cached copies: a manifest
   * or signature file lost at the target may exist nowhere else (see `lost`).
   */
  async prune(remoteNames: Iterable<string>): Promise<void> {
    const sets = new Set<string>();
    for (const n of remoteNames) {
      const p = parseName(n);
      if (p) sets.add(setKey(p));
    }
    for (const n of await this.#names()) {
      const p = parseName(n);
      if (n.startsWith('.tmp-') || (p && !sets.has(setKey(p)))) await fs.rm(path.join(this.dir, n), { force: true });
    }
  }

  /**
   * Cached manifests and signature files that the target lacks although it still holds
   * other files of their set: copies that can be put back (`tapechain repair`).
   */
  async lost(remoteNames: Iterable<string>): Promise<string[]> {
    const have = new Set<string>();
    const sets = new Set<string>();
    for (const n of remoteNames) {
      const l = localName(n);
      if (l) have.add(l);
      const p = parseName(n);
      if (p) sets.add(setKey(p));
    }
    return (await this.#names()).filter((n) => {
      const p = parseName(n);
      return p !== undefined && !p.partial && (p.kind === 'manifest' || p.kind === 'signature') && !have.has(n) && sets.has(setKey(p));
    });
  }

  /** The path of a cached file (from `lost`). */
  pathOf(local: string): string {
    return path.join(this.dir, local);
  }

  async #names(): Promise<string[]> {
    try {
      return await fs.readdir(this.dir);
    } catch {
      return []; // no cache folder yet: nothing cached
    }
  }
}
