/**
 * `copy`: replicate backup sets from one target to another as stored — nothing is
 * decrypted but a manifest where there is no seal — so the destination is a target
 * duplicity and tapechain read as they read the source.
 *
 * Every file is checked while it streams into a local temp file, and only a file that
 * passed is uploaded: against its seal's SHA-256 and size when the set is sealed
 * (the seal's signature checked with the keys given or pinned); else volumes against
 * the manifest's hashes, and the manifest and signature file by decoding them (MDC,
 * OpenPGP signature, gzip CRC). A set's manifest goes last, so an interrupted copy
 * leaves an incomplete set that the next run completes: files already at the
 * destination with the right size and hash are skipped. A damaged file is named and
 * not copied; its set stays incomplete at the destination and the rest of its chain
 * is not copied (it would restore nothing).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Backend, ReadBackend } from '../backend/backend.js';
import { getBytes, listAll } from '../backend/backend.js';
import { buildCollection, chainSets, setFiles, type BackupSet, type Collection, type RemoteFile } from '../chain/collection.js';
import { parseName } from '../chain/file-naming.js';
import { parseManifest } from '../chain/manifest.js';
import { decodeStored, type DecryptKeys } from '../crypto/index.js';
import { readSealUnchecked, verifySeal } from '../crypto/seal.js';
import { ChainError, ConfigError, EngineError, ExitCode } from '../errors.js';
import { withTempDir } from '../util/temp-dir.js';

export interface CopyOptions {
  source: ReadBackend;
  dest: Backend;
  keys: DecryptKeys;
  /** Which sets to copy, per chain (in chain order), from the source's collection. @default every chain whole */
  choose?: (col: Collection) => BackupSet[][];
  /** @default os.tmpdir() */
  tempDir?: string;
  signal?: AbortSignal;
  onFile?: (e: CopiedFile) => void;
  onWarning?: (message: string) => void;
}

export interface CopiedFile {
  name: string;
  size: number;
  action: 'copied' | 'present' | 'refused';
  /** Why a file was refused. */
  reason?: string;
}

export interface CopyResult {
  sets: number;
  copied: number;
  present: number;
  bytes: number;
  /** Files not copied because they failed their checks, or sets left out for that. */
  refused: { name: string; reason: string }[];
}

/** How one file of a set is checked. */
interface Expectation {
  size?: number;
  /** The hashes the file must have, and what promises each (the seal, the manifest). */
  hashes: { algorithm: 'sha256' | 'sha1' | 'md5'; hex: string; from: string }[];
  /** The file's bytes, read and checked already (an unsealed set's manifest): not fetched again. */
  bytes?: Buffer;
  /** Decode it as it streams (MDC, signature, CRC) when no hash vouches for it. */
  decode?: boolean;
}

class Refused extends Error {}

export async function copySets(o: CopyOptions): Promise<CopyResult> {
  const col = buildCollection(await listAll(o.source));
  if (col.chains.length === 0) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.source.describe()}`);
  const chosen = o.choose ? o.choose(col) : [...col.chains].sort((a, b) => a.start - b.start).map(chainSets);
  const result: CopyResult = { sets: 0, copied: 0, present: 0, bytes: 0, refused: [] };
  const at = new Map((await listAll(o.dest)).map((f) => [f.name, f.size]));
  return withTempDir(o.tempDir, 'copy', async (temp) => {
    const copier = new FileCopier(o, temp, at, result);
    for (const sets of chosen) {
      for (const [i, set] of sets.entries()) {
        o.signal?.throwIfAborted();
        try {
          await copier.set(set);
          result.sets++;
        } catch (e) {
          if (!(e instanceof Refused)) throw e;
          for (const later of sets.slice(i + 1)) {
            const reason = 'not copied: an earlier set of its chain failed its checks';
            result.refused.push({ name: later.manifest!.name, reason });
            o.onFile?.({ name: later.manifest!.name, size: later.manifest!.size, action: 'refused', reason });
          }
          break;
        }
      }
    }
    return result;
  });
}

class FileCopier {
  #warnedUnchecked = false;
  constructor(
    private readonly o: CopyOptions,
    private readonly temp: string,
    /** Files at the destination and their sizes. */
    private readonly at: Map<string, number>,
    private readonly result: CopyResult,
  ) {}

  /** Copies one set: its data files, then its seal, then its manifest. */
  async set(s: BackupSet): Promise<void> {
    const expect = await this.#expectations(s);
    const files = setFiles(s).filter((f) => f !== s.manifest && f !== s.seal);
    for (const f of [...files, ...(s.seal ? [s.seal] : []), s.manifest!]) await this.#file(f, expect.get(f.name), s);
  }

  /** What each file of the set must be: from its seal, else from its manifest. */
  async #expectations(s: BackupSet): Promise<Map<string, Expectation>> {
    const out = new Map<string, Expectation>();
    if (s.seal) {
      const armored = (await getBytes(this.o.source, s.seal.name)).toString('utf8');
      const keys = this.o.keys.verifyKeys ?? [];
      let seal;
      try {
        seal = keys.length > 0 ? (await verifySeal(armored, keys, s.seal.name)).seal : await readSealUnchecked(armored, s.seal.name);
      } catch (e) {
        this.#refuse(s.seal, e instanceof EngineError ? e.message : String(e));
      }
      if (keys.length === 0 && !this.#warnedUnchecked) {
        this.#warnedUnchecked = true;
        this.o.onWarning?.('seals read without checking their signatures (no --public-key, --sign-key or pinned signer): their hashes catch damage, not forgery');
      }
      for (const f of seal.files) out.set(f.name, { size: f.size, hashes: [{ algorithm: 'sha256', hex: f.sha256, from: 'seal' }] });
      out.set(s.seal.name, { hashes: [] }); // its signature vouched for it (or was read unchecked, as said)
      return out;
    }
    if (!this.o.keys.passphrase && !this.o.keys.secretKeys?.length && parseName(s.manifest!.name)?.encoding === 'gpg') {
      throw new ConfigError(`${s.manifest!.name}: the set has no seal, so copy reads its manifest for the volumes' hashes: give the passphrase (PASSPHRASE) or --decrypt-key`);
    }
    const raw = await getBytes(this.o.source, s.manifest!.name);
    let manifest;
    try {
      manifest = parseManifest(await decoded(raw, s.manifest!.name, this.o.keys), s.manifest!.name);
    } catch (e) {
      if (!(e instanceof EngineError) || e.exitCode === ExitCode.DECRYPT) throw e; // a wrong key is the user's to fix, not damage
      this.#refuse(s.manifest!, e.message);
    }
    for (const v of manifest.volumes) {
      const f = s.volumes.get(v.number);
      if (f) out.set(f.name, { hashes: [{ algorithm: v.hashType === 'MD5' ? 'md5' : 'sha1', hex: v.hash, from: 'manifest' }] });
    }
    out.set(s.manifest!.name, { size: raw.length, hashes: [{ algorithm: 'sha256', hex: createHash('sha256').update(raw).digest('hex'), from: 'manifest as first read' }], bytes: raw });
    if (s.signature) out.set(s.signature.name, { hashes: [], decode: true });
    return out;
  }

  #refuse(f: RemoteFile, reason: string): never {
    this.result.refused.push({ name: f.name, reason });
    this.o.onFile?.({ name: f.name, size: f.size, action: 'refused', reason });
    throw new Refused(reason);
  }

  async #file(f: RemoteFile, want: Expectation | undefined, s: BackupSet): Promise<void> {
    if (!want) this.#refuse(f, s.seal ? "not in its set's seal" : 'not listed in its manifest');
    if (want.size !== undefined && want.size !== f.size) this.#refuse(f, `size ${f.size}, expected ${want.size}`);
    if (this.at.get(f.name) === f.size && (await this.#presentAndRight(f, want))) {
      this.result.present++;
      this.o.onFile?.({ name: f.name, size: f.size, action: 'present' });
      return;
    }
    const tmp = path.join(this.temp, 'file');
    try {
      const problem = await this.#fetchChecked(f, want, tmp);
      if (problem) this.#refuse(f, problem);
      await this.o.dest.put(f.name, { size: f.size, open: () => createReadStream(tmp), path: tmp }, this.o.signal ? { signal: this.o.signal } : {});
    } finally {
      await fs.rm(tmp, { force: true });
    }
    this.at.set(f.name, f.size);
    this.result.copied++;
    this.result.bytes += f.size;
    this.o.onFile?.({ name: f.name, size: f.size, action: 'copied' });
  }

  /** Streams the file into `tmp`, checking it; a problem, or undefined. */
  async #fetchChecked(f: RemoteFile, want: Expectation, tmp: string): Promise<string | undefined> {
    const hashes = want.hashes.map((h) => ({ want: h, hash: createHash(h.algorithm) }));
    let size = 0;
    const tee = async function* (src: Iterable<Buffer> | AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
      for await (const c of src) {
        size += c.length;
        for (const h of hashes) h.hash.update(c);
        yield c;
      }
    };
    const stored = want.bytes ? [want.bytes] : ((await this.o.source.get(f.name, this.o.signal ? { signal: this.o.signal } : {})) as AsyncIterable<Buffer>);
    const data = tee(stored);
    await pipeline(Readable.from(data), createWriteStream(tmp, { mode: 0o600 }));
    if (want.decode) {
      // decoded from the local copy (bounded memory), output discarded: the check is the point
      const local = createReadStream(tmp, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
      try {
        for await (const _ of decodeStored(parseName(f.name)?.encoding ?? 'plain', local, this.o.keys));
      } catch (e) {
        if (!(e instanceof EngineError) || e.exitCode === ExitCode.DECRYPT) throw e; // a wrong key is the user's to fix, not damage
        return e.message;
      }
    }
    if (size !== f.size) return `read ${size} bytes, listed as ${f.size}`;
    for (const h of hashes) {
      const got = h.hash.digest('hex');
      if (got !== h.want.hex) return `${h.want.algorithm.toUpperCase()} ${got} differs from the ${h.want.from} (${h.want.hex}): damaged at the source`;
    }
    return undefined;
  }

  /** Whether the destination's file of that name has the expected hash (read back). */
  async #presentAndRight(f: RemoteFile, want: Expectation): Promise<boolean> {
    const hashes: Hash[] = want.hashes.map((h) => createHash(h.algorithm));
    // a file no hash vouches for (an unsealed signature file) is compared byte for byte
    const mine = hashes.length === 0 ? createHash('sha256') : undefined;
    const theirs = hashes.length === 0 ? createHash('sha256') : undefined;
    for await (const c of await this.o.dest.get(f.name)) {
      for (const h of hashes) h.update(c as Buffer);
      mine?.update(c as Buffer);
    }
    if (mine) {
      for await (const c of await this.o.source.get(f.name)) theirs!.update(c as Buffer);
      return mine.digest('hex') === theirs!.digest('hex');
    }
    return hashes.every((h, i) => h.digest('hex') === want.hashes[i]!.hex);
  }
}

async function decoded(raw: Buffer, name: string, keys: DecryptKeys): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of decodeStored(parseName(name)?.encoding ?? 'plain', [raw], keys)) parts.push(c);
  return Buffer.concat(parts);
}
