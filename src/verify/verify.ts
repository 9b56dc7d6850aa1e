/**
 * verify: checks a chain without the source tree. For each set: the manifest decrypts
 * and parses; every listed volume is present, its stored bytes match the manifest's
 * hash, it decrypts (MDC and signature hold) and its tar parses; entries are in index
 * order; multivol runs are complete (1, 2, … ending in a short chunk); and the
 * signature file agrees with the volumes — the same paths of matching kinds, and for
 * every snapshot the librsync signature recomputed from the stored data equals the one
 * in the signature file. Every problem is collected with the file it concerns; the run
 * goes on to the next volume.
 */
import { createHash } from 'node:crypto';
import type { ReadBackend } from '../backend/backend.js';
import { localName, type ArchiveCache } from '../repo/archive-cache.js';
import { formatName } from '../chain/file-naming.js';
import { chainSets, pickForTime, setKey, type BackupSet, type Chain } from '../chain/collection.js';
import type { Manifest } from '../chain/manifest.js';
import type { DecryptKeys } from '../crypto/index.js';
import { SignatureCheck } from '../diff/signature-check.js';
import { ChainError } from '../errors.js';
import { sigtarEntries, type StateEntry } from '../repo/signature-state.js';
import { ArchiveReader } from '../repo/archive.js';
import { compareIndex, displayIndex, type Index } from '../volume/entry-name.js';
import { rawEntries, type VolumeRef } from '../volume/set-reader.js';
export type { Problem } from './problems.js';
import { problemCollector, type Problem } from './problems.js';
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
}

export interface VerifyResult {
  problems: Problem[];
  sets: number;
  volumesChecked: number;
  volumesTotal: number;
}

const CHUNK = 65536;

/** The logical (multivol-joined) view of one set's volumes, for the sigtar comparison. */
interface Logical {
  kind: 'snapshot' | 'diff' | 'deleted';
  index: Index;
  type: string;
  sig?: SignatureCheck;
}

export async function runVerify(o: VerifyOptions): Promise<VerifyResult> {
  const archive = new ArchiveReader(o.backend, o.keys, o.cache);
  const col = await archive.collection();
  let chains: Chain[];
  if (o.all) chains = col.chains;
  else {
    const p = pickForTime(col, o.time ?? Number.MAX_SAFE_INTEGER);
    chains = p ? [p.chain] : [];
  }
  // A target whose only sets lost their manifests is damaged, not empty: name them.
  if (chains.length === 0 && col.incomplete.length === 0) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.backend.describe()}`);
  // a wrong or missing key is one error (exit 7 or 3), not a problem per file
  await archive.proveKey(chains.flatMap(chainSets));
  const { problems, report } = problemCollector(o.onProblem);
  const sets = chains.flatMap((c) => (o.all || o.time === undefined ? chainSets(c) : pickForTime(col, o.time)!.sets));
  // Sets without a manifest next to the verified chains: a missing manifest is a problem.
  const lost = new Set(o.cache ? await o.cache.lost(archive.names) : []);
  for (const s of col.incomplete) {
    const name = formatName({ kind: 'manifest', type: s.type, start: s.start, end: s.end, encoding: s.encoding });
    const copy = lost.has(localName(name) ?? '') ? '; the local cache holds a copy that `tapechain repair` can put back' : '';
    report(name, `missing at the target: the set has no manifest (incomplete, or its manifest was removed)${copy}`);
  }
  for (const s of col.orphans) report(s.manifest!.name, 'incremental set that no chain accepts (orphaned)');
  for (const f of col.unknown) report(f.name, 'unknown file at the target (not part of any backup set)');
  for (const f of col.strays) report(f.name, 'belongs to no backup set');

  const manifests = new Map<BackupSet, Manifest>();
  const allVolumes: string[] = [];
  for (const s of sets) {
    try {
      const m = await archive.manifest(s, { fromTarget: true });
      manifests.set(s, m);
      for (const v of m.volumes) {
        const f = s.volumes.get(v.number);
        if (!f) report(`${s.manifest!.name}`, `volume ${v.number} is listed but missing at the target`);
        else allVolumes.push(f.name);
      }
      const listed = new Set(m.volumes.map((v) => v.number));
      for (const [n, f] of s.volumes) if (!listed.has(n)) report(f.name, 'volume not listed in the manifest');
      if (!s.signature) report(s.manifest!.name, 'the set has no signature file');
    } catch (e) {
      report(s.manifest!.name, (e as Error).message.replace(`${s.manifest!.name}: `, ''));
    }
  }
  const stateDir = o.cache?.dir;
  const state = stateDir ? await loadVerifyState(stateDir) : { checked: {} as Record<string, number> };
  const sample = o.samplePercent !== undefined ? pickSample(allVolumes, state, o.samplePercent) : undefined;
  let checked = 0;
  const now = Math.floor(Date.now() / 1000);
  for (const s of sets) {
    const m = manifests.get(s);
    if (!m) continue;
    const refs = archive.volumeRefs(s, m, (v) => s.volumes.has(v.number));
    const deep = refs.filter((r) => !sample || sample.has(r.name));
    if (deep.length === 0) continue;
    // The sigtar comparison needs every volume of the set; with a sample it is skipped.
    const compareSigtar = deep.length === m.volumes.length && s.signature !== undefined;
    checked += await verifySetVolumes({
      archive,
      set: s,
      all: refs,
      deep: new Set(deep.map((r) => r.name)),
      compareSigtar,
      report,
      done: (name) => {
        state.checked[name] = now;
        o.onVolume?.(name);
      },
      ...(o.signal ? { signal: o.signal } : {}),
    });
  }
  if (stateDir) {
    state.last = { time: now, ok: problems.length === 0, problems: problems.length, volumes: checked, offline: false, sets: sets.map(setKey), manifests: [...archive.storedDigests.values()] };
    await saveVerifyState(stateDir, state).catch(() => undefined);
  }
  return { problems, sets: sets.length, volumesChecked: checked, volumesTotal: allVolumes.length };
}

/**
 * Deep-checks the volumes of a set named in `deep` (in order); returns how many were
 * read. With a sample, a multivol run may continue into a volume that is not read:
 * runs are only judged across volumes that were read one after the other.
 */
interface SetCheck {
  archive: ArchiveReader;
  set: BackupSet;
  /** Every volume of the set, in order. */
  all: VolumeRef[];
  /** The names of those to read (all, or a sample). */
  deep: Set<string>;
  /** Hold the volumes against the signature file (every volume is read). */
  compareSigtar: boolean;
  report: (file: string, problem: string) => void;
  /** Told about each volume read to the end. */
  done: (name: string) => void;
  signal?: AbortSignal;
}

async function verifySetVolumes(c: SetCheck): Promise<number> {
  const { archive, set, all, deep, compareSigtar, report, done, signal } = c;
  let sig: AsyncGenerator<StateEntry> | undefined;
  let sigHead: StateEntry | undefined;
  const sigName = set.signature?.name ?? '';
  let sigBroken = !compareSigtar;
  // The target's copy is what a restore after a lost machine depends on: read it, never
  // the cache's, and then hold the cache's copy against it.
  const sigDigest = createHash('sha256');
  let sigComplete = false;
  const fromTarget = async function* (src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const c of src) {
      sigDigest.update(c);
      yield c;
    }
    sigComplete = true;
  };
  if (compareSigtar) {
    try {
      sig = sigtarEntries(fromTarget(await archive.signatures(set, { fromTarget: true })), sigName);
      sigHead = (await sig.next()).value ?? undefined;
    } catch (e) {
      report(sigName, (e as Error).message);
      sigBroken = true;
    }
  }
  const advanceSig = async () => {
    try {
      sigHead = (await sig!.next()).value ?? undefined;
    } catch (e) {
      report(sigName, (e as Error).message);
      sigBroken = true;
      sigHead = undefined;
    }
  };
  let last: Index | undefined;
  let run: { kind: string; index: Index; next: number; lastSize: number; volume: string } | undefined;
  let cur: Logical | undefined;

  const closeRun = () => {
    if (run && run.lastSize === CHUNK) report(run.volume, `multivol data of ${displayIndex(run.index)} ends with a full chunk ${run.next - 1}: later chunks are missing`);
    run = undefined;
  };
  /** Compares a finished logical entry with the signature file. */
  const closeLogical = async () => {
    if (!cur || sigBroken) return (cur = undefined);
    const c = cur;
    cur = undefined;
    if (!c.sig) return;
    const problem = await c.sig.finish();
    if (problem) report(sigName, `signature of ${displayIndex(c.index)} does not match the data stored in the volumes (${problem})`);
    await advanceSig(); // the signature was read alongside the data: now move on
  };
  const openLogical = async (kind: Logical['kind'], index: Index, type: string, volume: string) => {
    await closeLogical();
    cur = { kind, index, type };
    if (sigBroken) return;
    while (sigHead && compareIndex(sigHead.index, index) < 0) {
      report(sigName, `${displayIndex(sigHead.index)} is in the signature file but not in the volumes`);
      await advanceSig();
    }
    if (!sigHead || compareIndex(sigHead.index, index) !== 0) {
      report(volume, `${displayIndex(index)} is in the volumes but not in the signature file`);
      return;
    }
    const want = kind === 'deleted' ? 'deleted' : type === 'file' ? 'signature' : 'snapshot';
    if (sigHead.kind !== want) report(sigName, `${displayIndex(index)} is ${sigHead.kind} in the signature file but ${kind} (${type}) in the volumes`);
    else if (kind === 'snapshot' && type === 'file') {
      // Checked as the data goes by; the signature file moves on when the entry ends.
      cur.sig = await SignatureCheck.open(sigHead.signatureStream());
      return;
    }
    await advanceSig();
  };

  let count = 0;
  let afterFailure = false;
  let prevRead = false;
  for (const ref of all) {
    if (!deep.has(ref.name)) {
      // The run (if any) goes on in a volume we do not read: no judgement on it.
      run = undefined;
      prevRead = false;
      continue;
    }
    if (!prevRead && all.indexOf(ref) > 0) afterFailure = true; // it may start in the middle of a run
    prevRead = true;
    let first: Index | undefined;
    let lastHere: Index | undefined;
    try {
      for await (const e of rawEntries([ref], archive.keys, archive.decodeOptions, signal ? { signal } : {})) {
        first ??= e.index;
        lastHere = e.index;
        if (last && compareIndex(e.index, last) < 0) report(ref.name, `entry ${displayIndex(e.index)} is out of index order`);
        last = e.index;
        const multivol = e.kind === 'multivol_snapshot' || e.kind === 'multivol_diff';
        const kind = e.kind === 'multivol_snapshot' ? 'snapshot' : e.kind === 'multivol_diff' ? 'diff' : (e.kind as Logical['kind']);
        const continues = multivol && run && run.kind === e.kind && compareIndex(run.index, e.index) === 0;
        if (continues) {
          if (run!.lastSize < CHUNK) report(ref.name, `multivol data of ${displayIndex(e.index)}: chunk ${e.chunk} follows the final chunk ${run!.next - 1}`);
          if (e.chunk !== run!.next) report(ref.name, `multivol data of ${displayIndex(e.index)}: chunk ${e.chunk} where ${run!.next} was expected`);
          run!.next = (e.chunk ?? 0) + 1;
        } else {
          closeRun();
          if (multivol) {
            // (after a broken volume, the next one may well start inside a run)
            if (e.chunk !== 1 && !afterFailure) report(ref.name, `multivol data of ${displayIndex(e.index)} starts at chunk ${e.chunk}`);
            run = { kind: e.kind, index: e.index, next: (e.chunk ?? 0) + 1, lastSize: 0, volume: ref.name };
          }
          if (kind === 'snapshot' || kind === 'diff' || kind === 'deleted') await openLogical(kind, e.index, e.header.type, ref.name);
          else report(ref.name, `unexpected ${e.kind} entry ${displayIndex(e.index)}`);
        }
        afterFailure = false;
        let size = 0;
        for await (const d of e.data()) {
          size += d.length;
          await cur?.sig?.update(d);
        }
        if (run) run.lastSize = size;
      }
      checkRange(ref, first, lastHere, report);
      done(ref.name);
      count++;
    } catch (e) {
      if (signal?.aborted) throw signal.reason; // stopped, not a problem of the volume
      report(ref.name, (e as Error).message);
      // A broken volume breaks the comparison for the rest of the set.
      sigBroken = true;
      cur = undefined;
      run = undefined;
      afterFailure = true;
    }
  }
  if (prevRead) closeRun();
  await closeLogical();
  if (!sigBroken) {
    while (sigHead) {
      report(sigName, `${displayIndex(sigHead.index)} is in the signature file but not in the volumes`);
      await advanceSig();
    }
  }
  await sig?.return(undefined);
  if (set.signature && !compareSigtar) {
    // a sampled set: the signature file is not compared, but its stored bytes are checked
    try {
      for await (const _ of fromTarget(await archive.signatures(set, { fromTarget: true }))) {
        /* decrypting checks MDC and signature */
      }
    } catch (e) {
      report(sigName, (e as Error).message.replace(`${sigName}: `, ''));
    }
  }
  if (sigComplete && archive.cache) await compareCachedSignatures(archive.cache, sigName, sigDigest.digest('hex'), report);
  return count;
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

/**
 * The manifest's StartingPath/EndingPath must name the volume's first and last entries:
 * restore --path picks volumes by these ranges, so a wrong range hides entries from it.
 */
function checkRange(ref: VolumeRef, first: Index | undefined, last: Index | undefined, report: (file: string, problem: string) => void): void {
  if (!ref.range || !first || !last) return;
  if (compareIndex(first, ref.range.start) !== 0) report(ref.name, `the manifest says the volume starts at ${displayIndex(ref.range.start)}, but its first entry is ${displayIndex(first)}`);
  if (compareIndex(last, ref.range.end) !== 0) report(ref.name, `the manifest says the volume ends at ${displayIndex(ref.range.end)}, but its last entry is ${displayIndex(last)}`);
}
