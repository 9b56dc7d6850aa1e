/**
 * OpenPGP string-to-key (RFC 4880 3.7): simple, salted and iterated+salted S2K.
 * Iterated S2K with gpg's default count hashes ~65 MB per derivation, so derived keys
 * are cached per (passphrase, spec): one derivation per run for our own archives
 * (one salt per run), one per file for gpg-made ones.
 */
import { createHash } from 'node:crypto';
import { FormatError, InternalError } from '../errors.js';

export const HASH_NAMES: Record<number, string> = { 1: 'md5', 2: 'sha1', 3: 'ripemd160', 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224' };

export interface S2kSpec {
  type: 0 | 1 | 3;
  hashAlgo: number;
  salt?: Buffer;
  /** Decoded byte count for iterated S2K. */
  count?: number;
}

export function decodeCount(c: number): number {
  return (16 + (c & 15)) << ((c >> 4) + 6);
}

/** The coded count byte gpg uses by default: 65,011,712 bytes hashed. */
export const DEFAULT_CODED_COUNT = 255;

export function encodeSpec(s: S2kSpec, codedCount: number): Buffer {
  if (s.type !== 3 || !s.salt) throw new InternalError('only iterated+salted S2K is written');
  return Buffer.concat([Buffer.from([3, s.hashAlgo]), s.salt, Buffer.from([codedCount])]);
}

const cache = new Map<string, Buffer>();

export function deriveKey(passphrase: Buffer, spec: S2kSpec, keyLen: number): Buffer {
  const hashName = HASH_NAMES[spec.hashAlgo];
  if (!hashName) throw new FormatError(`unsupported S2K hash algorithm ${spec.hashAlgo}`);
  const cacheKey = createHash('sha256')
    .update(passphrase)
    .update(JSON.stringify([spec.type, spec.hashAlgo, spec.salt?.toString('hex'), spec.count, keyLen]))
    .digest('hex');
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  const data = spec.type === 0 ? passphrase : Buffer.concat([spec.salt ?? Buffer.alloc(0), passphrase]);
  const total = spec.type === 3 ? Math.max(spec.count ?? 0, data.length) : data.length;
  // Repeat the data into one big buffer so each hash update call is large.
  const reps = Math.max(1, Math.floor(65536 / Math.max(1, data.length)));
  const big = Buffer.concat(Array.from({ length: reps }, () => data));
  const parts: Buffer[] = [];
  let have = 0;
  for (let ctx = 0; have < keyLen; ctx++) {
    // Each further hash context is preloaded with one more zero byte (RFC 4880 3.7.1).
    const h = createHash(hashName);
    if (ctx > 0) h.update(Buffer.alloc(ctx));
    let left = total;
    while (left >= big.length) {
      h.update(big);
      left -= big.length;
    }
    if (left > 0) h.update(big.subarray(0, left));
    const d = h.digest();
    parts.push(d);
    have += d.length;
  }
  const key = Buffer.concat(parts).subarray(0, keyLen);
  if (cache.size > 64) cache.clear();
  cache.set(cacheKey, key);
  return key;
}
