/**
 * The seal of a set: the files stored (volumes, signature file, manifest) with their
 * SHA-256, signed and chained to the previous set's seal, for offline verification.
 */
import type { NameSpec } from '../chain/file-naming.js';
import type { SecretKey } from '../crypto/keys.js';
import { signSeal, type SealFile } from '../crypto/seal.js';

export class SealList {
  readonly #files: SealFile[] = [];

  /** A stored file; without a digest (a volume of an older interrupted run) it is not listed. */
  add(name: string, size: number, sha256: string | undefined): void {
    if (sha256) this.#files.push({ name, size, sha256 });
  }

  /** The signed seal text. */
  sign(spec: Omit<NameSpec, 'kind' | 'volume'>, key: SecretKey, previous: string | null): Promise<string> {
    return signSeal({ type: spec.type, start: spec.start, end: spec.end, previous, files: this.#files }, key);
  }
}
