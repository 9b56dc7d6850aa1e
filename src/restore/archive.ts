/**
 * Read access to the backup sets at a target: the collection of chains from the file
 * listing, decoded manifests, and volume references for the set reader. Shared by
 * restore, ls, status and verify.
 */
import type { Backend } from '../backend/backend.js';
import { getBytes, listAll } from '../backend/backend.js';
import { buildCollection, type BackupSet, type Collection } from '../chain/collection.js';
import { parseName } from '../chain/file-naming.js';
import { parseManifest, type Manifest } from '../chain/manifest.js';
import { decodeStored, type DecryptKeys } from '../crypto/index.js';
import { IntegrityError, withContext } from '../errors.js';
import type { VolumeRef } from '../volume/set-reader.js';

export class ArchiveReader {
  readonly backend: Backend;
  readonly keys: DecryptKeys;
  #collection: Collection | undefined;

  constructor(backend: Backend, keys: DecryptKeys) {
    this.backend = backend;
    this.keys = keys;
  }

  async collection(): Promise<Collection> {
    this.#collection ??= buildCollection(await listAll(this.backend));
    return this.#collection;
  }

  /** Decodes a small stored file (manifest) fully into memory. */
  async readSmall(name: string): Promise<Buffer> {
    const enc = parseName(name)?.encoding ?? 'plain';
    const raw = await getBytes(this.backend, name);
    const parts: Buffer[] = [];
    try {
      for await (const c of decodeStored(enc, (async function* () { yield raw; })(), this.keys)) parts.push(c);
    } catch (e) {
      throw withContext(e, name);
    }
    return Buffer.concat(parts);
  }

  async manifest(set: BackupSet): Promise<Manifest> {
    if (!set.manifest) throw new IntegrityError(`set ${set.start}: no manifest`);
    const name = set.manifest.name;
    return parseManifest(await this.readSmall(name), name);
  }

  /**
   * References to the volumes the manifest lists, in order. Every listed volume must
   * exist: duplicity crashes on a missing one; we name it.
   */
  volumeRefs(set: BackupSet, m: Manifest, filter?: (v: Manifest['volumes'][number]) => boolean): VolumeRef[] {
    const refs: VolumeRef[] = [];
    for (const v of m.volumes) {
      if (filter && !filter(v)) continue;
      const f = set.volumes.get(v.number);
      if (!f) throw new IntegrityError(`${set.manifest?.name}: volume ${v.number} is listed but missing at the target`, { code: 'MISSING_VOLUME' });
      const enc = parseName(f.name)?.encoding ?? 'plain';
      refs.push({ name: f.name, hash: { type: v.hashType, hex: v.hash }, encoding: enc, open: () => this.backend.get(f.name) });
    }
    return refs;
  }
}
