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
import { verifySeal, type SealFile } from '../crypto/seal.js';
import { ChainError } from '../errors.js';
import { loadVerifyState, saveVerifyState } from '../repo/verify-state.js';
import { problemCollector, type Problem, type ProblemCollector } from './problems.js';

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
  const collector = problemCollector(o.onProblem);
  for (const f of col.unknown) collector.report(f.name, 'unknown file at the target (not part of any backup set)');
  for (const f of col.strays) collector.report(f.name, 'belongs to no backup set');
  const check: SealCheck = { o, p: collector, sizes: new Map(listing.map((f) => [f.name, f.size])), files: 0, sets: 0, manifestDigests: [] };
  for (const c of col.chains) {
    let prev: Buffer | null | undefined = null;
    for (const s of chainSets(c)) {
      const b = await verifySealedSet(check, s, prev);
      // After a set we could not check, the next link cannot be checked either.
      prev = b ?? undefined;
    }
  }
  for (const s of [...col.incomplete, ...col.orphans]) {
    if (!s.manifest) collector.report([...s.volumes.values()][0]?.name ?? `set ending ${s.end}`, 'set has no manifest (incomplete or its manifest was removed)');
    await verifySealedSet(check, s, undefined);
  }
  if (o.cache) {
    const st = await loadVerifyState(o.cache.dir);
    const keys = [...col.chains.flatMap(chainSets), ...col.incomplete, ...col.orphans].map(setKey);
    st.last = { time: Math.floor(Date.now() / 1000), ok: collector.problems.length === 0, problems: collector.problems.length, volumes: check.files, offline: true, sets: keys, manifests: check.manifestDigests };
    // the record only feeds status: a cache that cannot take it changes no result
    await saveVerifyState(o.cache.dir, st).catch(() => undefined);
  }
  return { problems: collector.problems, sets: check.sets, files: check.files };
}

/** One offline run's state: what it reports to, the target's sizes, and its counts. */
interface SealCheck {
  o: OfflineVerifyOptions;
  p: ProblemCollector;
  sizes: Map<string, number>;
  files: number;
  sets: number;
  manifestDigests: string[];
}

/**
 * Checks one set against its seal: the signature, that it describes this set, its
 * link to the previous set's seal (`previousSeal`: null for a full, undefined when
 * unknown), and every sealed file's size and SHA-256; files of the set the seal does
 * not list are extra. Returns the seal's bytes (the next link), or undefined.
 */
async function verifySealedSet(c: SealCheck, s: BackupSet, previousSeal: Buffer | null | undefined): Promise<Buffer | undefined> {
  c.sets++;
  const label = s.manifest?.name ?? [...s.volumes.values()][0]?.name ?? `set ending ${s.end}`;
  if (!s.seal) {
    c.p.report(label, 'set has no seal (made without a signing key, or the seal was removed)');
    return undefined;
  }
  const bytes = await getBytes(c.o.backend, s.seal.name);
  let seal;
  try {
    seal = (await verifySeal(bytes.toString('utf8'), c.o.publicKeys, s.seal.name)).seal;
  } catch (e) {
    c.p.reportError(s.seal.name, e);
    return undefined;
  }
  if (seal.type !== s.type || seal.start !== s.start || seal.end !== s.end) c.p.report(s.seal.name, 'seal describes another set than its name says');
  if (previousSeal !== undefined) {
    const want = previousSeal === null ? null : createHash('sha256').update(previousSeal).digest('hex');
    if (seal.previous !== want) c.p.report(s.seal.name, want === null ? 'seal of a full set names a previous seal' : `hash chain broken: the previous set's seal is not the one this seal names`);
  }
  for (const f of seal.files) await checkSealedFile(c, s, f);
  const listed = new Set(seal.files.map((f) => f.name));
  for (const f of setFiles(s)) if (f !== s.seal && !listed.has(f.name)) c.p.report(f.name, "extra file: not in the set's seal");
  return bytes;
}

async function checkSealedFile(c: SealCheck, s: BackupSet, f: SealFile): Promise<void> {
  c.files++;
  const size = c.sizes.get(f.name);
  if (size === undefined) return c.p.report(f.name, 'missing');
  if (size !== f.size) return c.p.report(f.name, size < f.size ? `truncated (${size} of ${f.size} bytes)` : `size ${size}, sealed ${f.size}`);
  const got = await sha256Of(c.o.backend, f.name);
  if (f.name === s.manifest?.name) c.manifestDigests.push(got.sha256);
  if (got.sha256 !== f.sha256) c.p.report(f.name, 'SHA-256 differs from the seal (modified or swapped)');
}
