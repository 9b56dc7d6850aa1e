/**
 * Read access to the backup sets at a target: the collection of chains from the file
 * listing, decoded manifests and signature files (through the local cache when one is
 * given), and volume references for the set reader. Shared by backup (incrementals),
 * restore, ls, status and verify.
 */
import { createHash } from 'node:crypto';
import type { ReadBackend } from '../backend/backend.js';
import { getBytes, listAll } from '../backend/backend.js';
import type { ArchiveCache } from './archive-cache.js';
import { buildCollection, type BackupSet, type Collection } from '../chain/collection.js';
import { parseName } from '../chain/file-naming.js';
import { parseManifest, type Manifest } from '../chain/manifest.js';
import { decodeStored, type DecryptKeys, type DecryptOptions } from '../crypto/index.js';
import { IntegrityError, withContext } from '../errors.js';
import type { VolumeRef } from '../volume/set-reader.js';

export class ArchiveReader {
  readonly backend: ReadBackend;
  readonly keys: DecryptKeys;
  readonly cache: ArchiveCache | undefined;
  /**
   * Signature policy for everything this reader decodes: once one file proved to be
   * signed, every later one must be too (a stripped signature is an attack, not an
   * accident); with explicit verification keys, from the first file on.
   */
  readonly decodeOptions: DecryptOptions;
  /** SHA-256 of the stored bytes of each small file (manifest) read from the target. */
  readonly storedDigests = new Map<string, string>();
  #collection: Collection | undefined;
  #names: string[] = [];

  constructor(backend: ReadBackend, keys: DecryptKeys, cache?: ArchiveCache, opts: DecryptOptions = {}) {
    this.backend = backend;
    this.keys = { ...keys };
    this.cache = cache;
    this.decodeOptions = {
      ...opts,
      onSignature: (r) => {
        this.keys.requireSignature = true;
        opts.onSignature?.(r);
      },
    };
  }

  /** Every file name at the target (after `collection()`). */
  get names(): readonly string[] {
    return this.#names;
  }

  async collection(): Promise<Collection> {
    if (!this.#collection) {
      const files = await listAll(this.backend);
      this.#names = files.map((f) => f.name);
      this.#collection = buildCollection(files);
      await this.cache?.prune(this.#names);
    }
    return this.#collection;
  }

  /** Decodes a small stored file (manifest) fully into memory. */
  async #fetchSmall(name: string): Promise<Buffer> {
    const enc = parseName(name)?.encoding ?? 'plain';
    const raw = await getBytes(this.backend, name);
    this.storedDigests.set(name, createHash('sha256').update(raw).digest('hex'));
    const parts: Buffer[] = [];
    try {
      for await (const c of decodeStored(enc, [raw], this.keys, this.decodeOptions)) parts.push(c);
    } catch (e) {
      throw withContext(e, { file: name });
    }
    return Buffer.concat(parts);
  }

  /**
   * Proves the keys against the target before anything is shown from the cache: the
   * newest manifest of `sets` is decrypted from the target (one small file). A wrong
   * passphrase or key fails here, not silently later (or never, for cached listings).
   */
  async proveKey(sets: BackupSet[]): Promise<void> {
    const last = [...sets].reverse().find((s) => s.manifest);
    if (!last || parseName(last.manifest!.name)?.encoding !== 'gpg') return;
    await this.manifestBytes(last, { fromTarget: true });
  }

  /** The decoded manifest, from the target (verifying the key) or the cache. */
  async manifestBytes(set: BackupSet, opts: { fromTarget?: boolean } = {}): Promise<Buffer> {
    if (!set.manifest) throw new IntegrityError(`set ending ${set.end}: no manifest`, { code: 'MISSING_MANIFEST' });
    const name = set.manifest.name;
    if (!this.cache || opts.fromTarget) return this.#fetchSmall(name);
    return this.cache.manifest(name, () => this.#fetchSmall(name));
  }

  async manifest(set: BackupSet, opts: { fromTarget?: boolean } = {}): Promise<Manifest> {
    return parseManifest(await this.manifestBytes(set, opts), set.manifest?.name ?? 'manifest');
  }

  /**
   * The decoded signature file of a set, streamed: from the cache when one is given,
   * else (or with `fromTarget`) from the target, decrypted and checked as it streams.
   */
  async signatures(set: BackupSet, opts: { fromTarget?: boolean } = {}): Promise<AsyncIterable<Buffer>> {
    if (!set.signature) throw new IntegrityError(`signature file of the set ending ${set.end} is missing`, { code: 'MISSING_SIGNATURE' });
    const name = set.signature.name;
    const enc = parseName(name)?.encoding ?? 'plain';
    const fetch = async function* (this: ArchiveReader): AsyncGenerator<Buffer> {
      try {
        yield* decodeStored(enc, (await this.backend.get(name)) as AsyncIterable<Buffer>, this.keys, this.decodeOptions);
      } catch (e) {
        throw withContext(e, { file: name });
      }
    }.bind(this);
    return this.cache && !opts.fromTarget ? this.cache.signatures(name, fetch) : fetch();
  }

  /**
   * References to the volumes the manifest lists, in order. Every listed volume must
   * exist (duplicity crashes on a missing one; we name it), unless `missingOk` says
   * which may be absent: those fail, naming themselves, only if they are opened.
   */
  volumeRefs(set: BackupSet, m: Manifest, filter?: (v: Manifest['volumes'][number]) => boolean, missingOk?: (v: Manifest['volumes'][number]) => boolean): VolumeRef[] {
    const refs: VolumeRef[] = [];
    for (const v of m.volumes) {
      if (filter && !filter(v)) continue;
      const f = set.volumes.get(v.number);
      const missing = () => new IntegrityError(`volume ${v.number} is listed but missing at the target`, { context: { file: set.manifest?.name }, code: 'MISSING_VOLUME' });
      if (!f && !missingOk?.(v)) throw missing();
      const name = f?.name ?? `volume ${v.number} of ${set.manifest?.name ?? 'the set'}`;
      const enc = f ? (parseName(f.name)?.encoding ?? 'plain') : 'plain';
      const open = f ? () => this.backend.get(f.name) : () => Promise.reject(missing());
      refs.push({ name, ...(f ? { size: f.size } : {}), hash: { type: v.hashType, hex: v.hash }, encoding: enc, range: { start: v.start, end: v.end }, open });
    }
    return refs;
  }
}
