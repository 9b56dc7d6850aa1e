/**
 * Offline verification with the public key alone: no passphrase, no secret key,
 * nothing decrypted. Every set's seal must carry a good signature by one of the given
 * keys; each file the seal lists must be at the target with the sealed size and
 * SHA-256 (missing, truncated and swapped-in files are named); files of the set that
 * the seal does not list are extra; each seal names the SHA-256 of the previous set's
 * seal, so sets cannot be dropped, replaced or reordered inside a chain unnoticed.
 */
import { createHash } from 'node:crypto';
import type { ReadBackend } from '../backend/backend.js';
import { getBytes } from '../backend/backend.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { buildCollection, chainSets, setKey, setFiles, type BackupSet } from '../chain/collection.js';
import { listAll } from '../backend/backend.js';
import type { PublicKey } from '../crypto/keys.js';
import { verifySeal } from '../crypto/seal.js';
import { ChainError } from '../errors.js';
import { loadVerifyState, saveVerifyState } from '../repo/verify-state.js';
import { problemCollector, type Problem } from './problems.js';

export interface OfflineVerifyOptions {
  backend: ReadBackend;
  publicKeys: PublicKey[];
  cache?: ArchiveCache;
  onProblem?: (p: Problem) => void;
}

export interface OfflineVerifyResult {
  problems: Problem[];
  sets: number;
  files: number;
}

async function sha256Of(backend: ReadBackend, name: string): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of await backend.get(name)) {
    size += (c as Buffer).length;
    h.update(c as Buffer);
  }
  return { size, sha256: h.digest('hex') };
}

export async function runOfflineVerify(o: OfflineVerifyOptions): Promise<OfflineVerifyResult> {
  const listing = await listAll(o.backend);
  const col = buildCollection(listing);
  if (col.chains.length === 0 && col.incomplete.length === 0) throw new ChainError('NO_CHAIN', `no backup found at ${o.backend.describe()}`);
  const { problems, report, reportError } = problemCollector(o.onProblem);
  const sizes = new Map(listing.map((f) => [f.name, f.size]));
  let files = 0;
  let sets = 0;
  const manifestDigests: string[] = [];
  for (const f of col.unknown) report(f.name, 'unknown file at the target (not part of any backup set)');
  for (const f of col.strays) report(f.name, 'belongs to no backup set');
  const verifySet = async (s: BackupSet, previousSeal: Buffer | null | undefined): Promise<Buffer | undefined> => {
    sets++;
    const label = s.manifest?.name ?? [...s.volumes.values()][0]?.name ?? `set ending ${s.end}`;
    if (!s.seal) {
      report(label, 'set has no seal (made without --sign-key, or the seal was removed)');
      return undefined;
    }
    const bytes = await getBytes(o.backend, s.seal.name);
    let seal;
    try {
      seal = (await verifySeal(bytes.toString('utf8'), o.publicKeys, s.seal.name)).seal;
    } catch (e) {
      reportError(s.seal.name, e);
      return undefined;
    }
    if (seal.type !== s.type || seal.start !== s.start || seal.end !== s.end) report(s.seal.name, 'seal describes another set than its name says');
    if (previousSeal !== undefined) {
      const want = previousSeal === null ? null : createHash('sha256').update(previousSeal).digest('hex');
      if (seal.previous !== want) {
        report(s.seal.name, want === null ? 'seal of a full set names a previous seal' : `hash chain broken: the previous set's seal is not the one this seal names`);
      }
    }
    const listed = new Set(seal.files.map((f) => f.name));
    for (const f of seal.files) {
      files++;
      const size = sizes.get(f.name);
      if (size === undefined) {
        report(f.name, 'missing');
        continue;
      }
      if (size !== f.size) {
        report(f.name, size < f.size ? `truncated (${size} of ${f.size} bytes)` : `size ${size}, sealed ${f.size}`);
        continue;
      }
      const got = await sha256Of(o.backend, f.name);
      if (f.name === s.manifest?.name) manifestDigests.push(got.sha256);
      if (got.sha256 !== f.sha256) report(f.name, 'SHA-256 differs from the seal (modified or swapped)');
    }
    for (const f of setFiles(s)) if (f !== s.seal && !listed.has(f.name)) report(f.name, 'extra file: not in the set\'s seal');
    return bytes;
  };
  for (const c of col.chains) {
    let prev: Buffer | null | undefined = null;
    for (const s of chainSets(c)) {
      const b = await verifySet(s, prev);
      // After a set we could not check, the next link cannot be checked either.
      prev = b ?? undefined;
    }
  }
  for (const s of [...col.incomplete, ...col.orphans]) {
    if (!s.manifest) report([...s.volumes.values()][0]?.name ?? `set ending ${s.end}`, 'set has no manifest (incomplete or its manifest was removed)');
    await verifySet(s, undefined);
  }
  if (o.cache) {
    const st = await loadVerifyState(o.cache.dir);
    const keys = [...col.chains.flatMap(chainSets), ...col.incomplete, ...col.orphans].map(setKey);
    st.last = { time: Math.floor(Date.now() / 1000), ok: problems.length === 0, problems: problems.length, volumes: files, offline: true, sets: keys, manifests: manifestDigests };
    await saveVerifyState(o.cache.dir, st).catch(() => undefined);
  }
  return { problems, sets, files };
}
