/**
 * verify: checks a chain without the source tree. For each set: the manifest decrypts
 * and parses; every listed volume is present, its stored bytes match the manifest's
 * hash, it decrypts (MDC and signature hold) and its tar parses; entries are in index
 * order; multivol runs are complete (1, 2, … ending in a short chunk); and the
 * signature file agrees with the volumes — the same paths of matching kinds, and for
 * every snapshot the librsync signature recomputed from the stored data equals the one
 * in the signature file. Every problem is collected with the file it concerns; the run
 * goes on to the next volume. With `jobs` > 1 a set's volumes are checked in parallel
 * lanes (parallel-check.ts), with the same problems in the same order.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { ReadBackend } from '../backend/backend.js';
import { localName, type ArchiveCache } from '../repo/archive-cache.js';
import { formatName } from '../chain/file-naming.js';
import { chainSets, pickForTime, setKey, type BackupSet, type Collection } from '../chain/collection.js';
import type { Manifest } from '../chain/manifest.js';
import type { DecryptKeys } from '../crypto/index.js';
import { ChainError, UsageError } from '../errors.js';
import { ArchiveReader } from '../repo/archive.js';
import type { Index } from '../volume/entry-name.js';
import { rawEntries, type VolumeRef } from '../volume/set-reader.js';
import { checkSetParallel, VolumeCheckers, type SetCheck } from './parallel-check.js';
import { checkRange, openVolumeEntry } from './volume-check.js';
export type { Problem } from './problems.js';
import { problemCollector, type Problem, type ProblemCollector } from './problems.js';
import { EntrySequence } from './entry-sequence.js';
import { DigestedBytes, SignatureCursor } from './signature-cursor.js';
import { loadVerifyState, pickSample, saveVerifyState } from '../repo/verify-state.js';

export interface VerifyOptions {
  backend: ReadBackend;
  keys: DecryptKeys;
  cache?: ArchiveCache;
  /** Verify the chain at this time. @default latest */
  time?: number;
  /** Every chain. @default false */
  all?: boolean;
  /** Deep-check only this percentage of volumes, least recently checked first. */
  samplePercent?: number;
  /** Told about each problem as it is found. */
  onProblem?: (p: Problem) => void;
  /** Told about each volume deep-checked. */
  onVolume?: (name: string) => void;
  /** Stops the run; nothing is saved as verified. */
  signal?: AbortSignal;
  /**
   * Volumes checked at once: this thread and `jobs` - 1 worker threads; 1: one after the
   * other on this thread. @default one per CPU but one (on 2 CPUs a second lane gains
   * 0–15 % and triples peak RSS: measured in the README's "The parallel engine")
   */
  jobs?: number;
  /**
   * This thread is one of the `jobs` lanes. @default true; false when it has other work
   * (verify --compare walks the live tree on it): then every lane is a worker thread.
   */
  mainLane?: boolean;
}

export interface VerifyResult {
  problems: Problem[];
  sets: number;
  volumesChecked: number;
  volumesTotal: number;
}

/**
 * Verifies the chain at `time` (or every chain): the key once, the target's listing,
 * each set's manifest against its volumes, then each volume read and checked
 * (verifySetVolumes); a sample reads the least recently checked volumes only.
 */
export async function runVerify(o: VerifyOptions): Promise<VerifyResult> {
  const jobs = o.jobs ?? Math.max(1, availableParallelism() - 1);
  if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`expected a whole number >= 1, got ${jobs}`, { code: 'BAD_OPTION', context: { option: 'jobs' } });
  const archive = new ArchiveReader(o.backend, o.keys, o.cache);
  const col = await archive.collection();
  const picked = o.all ? undefined : pickForTime(col, o.time ?? Number.MAX_SAFE_INTEGER);
  const chains = o.all ? col.chains : picked ? [picked.chain] : [];
  // A target whose only sets lost their manifests is damaged, not empty: name them.
  if (chains.length === 0 && col.incomplete.length === 0) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.backend.describe()}`);
  // a wrong or missing key is one error (exit 7 or 3), not a problem per file
  await archive.proveKey(chains.flatMap(chainSets));
  const collector = problemCollector(o.onProblem);
  const { problems } = collector;
  const sets = o.all || o.time === undefined ? chains.flatMap(chainSets) : picked ? picked.sets : [];
  await reportListing(col, archive, o.cache, collector);
  const { manifests, allVolumes } = await checkManifests(archive, sets, collector);
  const stateDir = o.cache?.dir;
  const state = stateDir ? await loadVerifyState(stateDir) : { checked: {} as Record<string, number> };
  const sample = o.samplePercent !== undefined ? pickSample(allVolumes, state, o.samplePercent) : undefined;
  let checked = 0;
  const now = Math.floor(Date.now() / 1000);
  const checkers = new VolumeCheckers(jobs, o.mainLane ?? true);
  try {
    for (const s of sets) {
      const m = manifests.get(s);
      if (!m) continue;
      const refs = archive.volumeRefs(s, m, (v) => s.volumes.has(v.number));
      const deep = refs.filter((r) => !sample || sample.has(r.name));
      if (deep.length === 0) continue;
      checked += await verifySetVolumes({
        archive,
        set: s,
        all: refs,
        deep: new Set(deep.map((r) => r.name)),
        // The sigtar comparison needs every volume of the set; with a sample it is skipped.
        compareSigtar: deep.length === m.volumes.length && s.signature !== undefined,
        problems: collector,
        done: (name) => {
          state.checked[name] = now;
          o.onVolume?.(name);
        },
        checkers,
        ...(o.signal ? { signal: o.signal } : {}),
      });
    }
  } finally {
    await checkers.close();
  }
  if (stateDir) {
    state.last = { time: now, ok: problems.length === 0, problems: problems.length, volumes: checked, offline: false, sets: sets.map(setKey), manifests: [...archive.storedDigests.values()] };
    // the record only feeds --sample and status: a cache that cannot take it changes no result
    await saveVerifyState(stateDir, state).catch(() => undefined);
  }
  return { problems, sets: sets.length, volumesChecked: checked, volumesTotal: allVolumes.length };
}


/** Problems the listing shows: sets without a manifest, orphans, unknown and stray files. */
async function reportListing(col: Collection, archive: ArchiveReader, cache: ArchiveCache | undefined, p: ProblemCollector): Promise<void> {
  const lost = new Set(cache ? await cache.lost(archive.names) : []);
  for (const s of col.incomplete) {
    const name = formatName({ kind: 'manifest', type: s.type, start: s.start, end: s.end, encoding: s.encoding });
    const copy = lost.has(localName(name) ?? '') ? '; the local cache holds a copy that `tapechain repair` can put back' : '';
    p.report(name, `missing at the target: the set has no manifest (incomplete, or its manifest was removed)${copy}`);
  }
  for (const s of col.orphans) p.report(s.manifest!.name, 'incremental set that no chain accepts (orphaned)');
  for (const f of col.unknown) p.report(f.name, 'unknown file at the target (not part of any backup set)');
  for (const f of col.strays) p.report(f.name, 'belongs to no backup set');
}

/** Each set's manifest, read from the target, against the volumes there; every volume present, in order. */
async function checkManifests(archive: ArchiveReader, sets: BackupSet[], p: ProblemCollector): Promise<{ manifests: Map<BackupSet, Manifest>; allVolumes: string[] }> {
  const manifests = new Map<BackupSet, Manifest>();
  const allVolumes: string[] = [];
  for (const s of sets) {
    try {
      const m = await archive.manifest(s, { fromTarget: true });
      manifests.set(s, m);
      for (const v of m.volumes) {
        const f = s.volumes.get(v.number);
        if (!f) p.report(s.manifest!.name, `volume ${v.number} is listed but missing at the target`);
        else allVolumes.push(f.name);
      }
      const listed = new Set(m.volumes.map((v) => v.number));
      for (const [n, f] of s.volumes) if (!listed.has(n)) p.report(f.name, 'volume not listed in the manifest');
      if (!s.signature) p.report(s.manifest!.name, 'the set has no signature file');
    } catch (e) {
      p.reportError(s.manifest!.name, e);
    }
  }
  return { manifests, allVolumes };
}


/**
 * Deep-checks the volumes of a set named in `deep` (in order), each entry through the
 * index order check, the multivol run check and the signature-file cursor; returns
 * how many volumes were read. The target's signature file is read (never the cache's),
 * and the cache's copy is then held against it.
 */
async function verifySetVolumes(c: SetCheck): Promise<number> {
  const { archive, set, problems } = c;
  const sigBytes = new DigestedBytes();
  const sigName = set.signature?.name ?? '';
  const count = c.checkers.suits(c.all, c.deep.size) ? await checkSetParallel(c, sigBytes) : await checkSetHere(c, sigBytes);
  if (set.signature && !c.compareSigtar) {
    // a sampled set: the signature file is not compared, but its stored bytes are checked
    try {
      for await (const _ of sigBytes.read(await archive.signatures(set, { fromTarget: true }))) {
        /* decrypting checks MDC and signature */
      }
    } catch (e) {
      problems.reportError(sigName, e);
    }
  }
  const digest = sigBytes.digest();
  if (digest && archive.cache) await compareCachedSignatures(archive.cache, sigName, digest, problems.report);
  return count;
}

/** The set's volumes one after the other on this thread, against one cursor on the signature file; returns how many were read. */
async function checkSetHere(c: SetCheck, sigBytes: DigestedBytes): Promise<number> {
  const { archive, set, problems } = c;
  const cursor = await SignatureCursor.open(archive, set, c.compareSigtar, sigBytes, problems).catch((e: unknown) => SignatureCursor.failed(set, problems, e));
  const seq = new EntrySequence(problems);
  let count = 0;
  for (const ref of c.all) {
    if (!c.deep.has(ref.name)) {
      seq.gap(); // the run (if any) goes on in a volume we do not read: no judgement on it
      continue;
    }
    try {
      await checkVolume(c, ref, { seq, cursor });
      c.done(ref.name);
      count++;
    } catch (e) {
      if (c.signal?.aborted) throw c.signal.reason; // stopped, not a problem of the volume
      problems.reportError(ref.name, e);
      // A broken volume breaks the comparison for the rest of the set.
      cursor.abandon();
      seq.gap();
    }
  }
  seq.close();
  await cursor.finish();
  return count;
}

/** Reads one volume's entries through the checks; throws if the volume cannot be read. */
async function checkVolume(c: SetCheck, ref: VolumeRef, w: { seq: EntrySequence; cursor: SignatureCursor }): Promise<void> {
  const report = c.problems.report;
  let first: Index | undefined;
  let lastHere: Index | undefined;
  for await (const e of rawEntries([ref], c.archive.keys, c.archive.decodeOptions, c.signal ? { signal: c.signal } : {})) {
    first ??= e.index;
    lastHere = e.index;
    if (!w.seq.entry(e, ref.name)) await openVolumeEntry(w.cursor, e, ref.name, c.problems);
    let size = 0;
    for await (const d of e.data()) {
      size += d.length;
      await w.cursor.update(d);
    }
    w.seq.sized(size);
  }
  checkRange(ref, first, lastHere, report);
}

/** A cached signature file that differs from the target's verified one is reported and dropped. */
async function compareCachedSignatures(cache: ArchiveCache, sigName: string, targetDigest: string, report: (file: string, problem: string) => void): Promise<void> {
  const cached = await cache.cachedSignatures(sigName);
  if (!cached) return;
  const h = createHash('sha256');
  try {
    for await (const c of cached) h.update(c);
  } catch {
    h.update('unreadable');
  }
  if (h.digest('hex') === targetDigest) return;
  await cache.drop(sigName);
  report(sigName, "the local cache's copy differs from the target's (removed from the cache; the next run fetches it again)");
}
