/** What is at a target: chains, their sets, volumes and sizes, incomplete and orphaned sets. */
import { createHash } from 'node:crypto';
import type { ReadBackend, Retention } from '../backend/backend.js';
import { buildCollection, chainSets, setFiles, setKey, type BackupSet } from '../chain/collection.js';
import { getBytes, listAll } from '../backend/backend.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { keyPacketInfo } from '../crypto/decrypt.js';
import { lastVerifyApplies, loadVerifyState, type VerifyState } from '../repo/verify-state.js';

export interface SetStatus {
  type: 'full' | 'inc';
  start: number;
  end: number;
  volumes: number;
  bytes: number;
  encrypted: boolean;
  /** 'passphrase', 'public-key' or 'none', from the manifest's key packets. */
  encryption?: 'passphrase' | 'public-key' | 'none';
  /** Key IDs the set is encrypted to. */
  recipients?: string[];
  /** A seal (signed file list) is present: signed at backup time. */
  sealed: boolean;
  manifest?: string;
}

export interface ChainStatus {
  start: number;
  end: number;
  sets: SetStatus[];
  /**
   * S3 Object Lock: until when (epoch seconds) every set of the chain is protected — the
   * earliest retain-until of its manifests — and how. Absent: not locked.
   */
  lockedUntil?: number;
  lockMode?: 'GOVERNANCE' | 'COMPLIANCE';
}

export interface TargetStatus {
  target: string;
  chains: ChainStatus[];
  incomplete: SetStatus[];
  orphans: SetStatus[];
  /** Files that belong to no set, and files that are not backup files at all. */
  strays: string[];
  unknown: string[];
  lastVerify?: VerifyState['last'];
  /** Manifests and signature files lost at the target of which the local cache holds a copy. */
  recoverable: string[];
  /** Sets whose time is later than this machine's clock (made with a clock ahead, or this one is behind). */
  future: SetStatus[];
}

function setStatus(s: BackupSet): SetStatus {
  const out: SetStatus = {
    type: s.type,
    start: s.start,
    end: s.end,
    volumes: s.volumes.size,
    bytes: setFiles(s).reduce((a, f) => a + f.size, 0),
    encrypted: s.encoding === 'gpg',
    sealed: s.seal !== undefined,
  };
  if (s.manifest) out.manifest = s.manifest.name;
  return out;
}

/** Reads the key packets of a set's manifest (small; nothing decrypted). */
async function addKeys(backend: ReadBackend, st: SetStatus, digests: Set<string>): Promise<void> {
  if (!st.manifest) return;
  let bytes: Buffer;
  try {
    bytes = await getBytes(backend, st.manifest);
  } catch {
    return; // unreadable: status still shows the rest
  }
  digests.add(createHash('sha256').update(bytes).digest('hex'));
  if (!st.encrypted) {
    st.encryption = 'none';
    return;
  }
  try {
    const info = await keyPacketInfo([bytes]);
    st.encryption = info.symmetric ? 'passphrase' : 'public-key';
    if (info.recipients.length) st.recipients = info.recipients;
  } catch {
    // unreadable: status still shows the rest
  }
}

/** A chain's lock: the earliest retention of its sets' manifests (one request per set); none if any set has none. */
async function addLock(backend: ReadBackend, c: ChainStatus): Promise<void> {
  let earliest: Retention | undefined;
  for (const s of c.sets) {
    const r = s.manifest ? await backend.retention!(s.manifest) : undefined;
    if (!r) return;
    if (!earliest || r.until < earliest.until) earliest = r;
  }
  if (!earliest) return;
  c.lockedUntil = Math.floor(earliest.until.getTime() / 1000);
  c.lockMode = earliest.mode;
}

export async function targetStatus(backend: ReadBackend, cache?: ArchiveCache, now = Math.floor(Date.now() / 1000)): Promise<TargetStatus> {
  const files = await listAll(backend);
  const col = buildCollection(files);
  const st: TargetStatus = {
    target: backend.describe(),
    chains: col.chains.map((c) => ({ start: c.start, end: c.end, sets: chainSets(c).map(setStatus) })),
    incomplete: col.incomplete.map(setStatus),
    orphans: col.orphans.map(setStatus),
    strays: col.strays.map((f) => f.name),
    unknown: col.unknown.map((f) => f.name),
    recoverable: cache ? await cache.lost(files.map((f) => f.name)) : [],
    future: [...col.chains.flatMap(chainSets), ...col.incomplete, ...col.orphans].filter((s) => s.end > now).map(setStatus),
  };
  // Keys of each chain, from its full's manifest (one small read per chain).
  const digests = new Set<string>();
  for (const c of st.chains) {
    const full = c.sets[0]!;
    await addKeys(backend, full, digests);
    for (const s of c.sets.slice(1)) {
      if (full.encryption) s.encryption = full.encryption;
      if (full.recipients) s.recipients = full.recipients;
    }
  }
  if (backend.properties.objectLock && backend.retention) for (const c of st.chains) await addLock(backend, c);
  if (cache) {
    const v = await loadVerifyState(cache.dir);
    const keys = new Set([...col.chains.flatMap(chainSets), ...col.incomplete, ...col.orphans].map(setKey));
    if (v.last && lastVerifyApplies(v.last, { sets: keys, manifests: digests })) st.lastVerify = v.last;
  }
  return st;
}
