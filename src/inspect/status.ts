/** What is at a target: chains, their sets, volumes and sizes, incomplete and orphaned sets. */
import type { Backend } from '../backend/backend.js';
import { buildCollection, chainSets, setFiles, type BackupSet } from '../chain/collection.js';
import { getBytes, listAll } from '../backend/backend.js';
import type { ArchiveCache } from '../cache/archive-cache.js';
import { keyPacketInfo } from '../crypto/decrypt.js';
import { loadVerifyState, type VerifyState } from '../verify/verify-state.js';

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
async function addKeys(backend: Backend, st: SetStatus): Promise<void> {
  if (!st.manifest) return;
  if (!st.encrypted) {
    st.encryption = 'none';
    return;
  }
  try {
    const info = await keyPacketInfo([await getBytes(backend, st.manifest)]);
    st.encryption = info.symmetric ? 'passphrase' : 'public-key';
    if (info.recipients.length) st.recipients = info.recipients;
  } catch {
    // unreadable: status still shows the rest
  }
}

export async function targetStatus(backend: Backend, cache?: ArchiveCache): Promise<TargetStatus> {
  const col = buildCollection(await listAll(backend));
  const st: TargetStatus = {
    target: backend.describe(),
    chains: col.chains.map((c) => ({ start: c.start, end: c.end, sets: chainSets(c).map(setStatus) })),
    incomplete: col.incomplete.map(setStatus),
    orphans: col.orphans.map(setStatus),
    strays: col.strays.map((f) => f.name),
    unknown: col.unknown.map((f) => f.name),
  };
  // Keys of each chain, from its full's manifest (one small read per chain).
  for (const c of st.chains) {
    const full = c.sets[0]!;
    await addKeys(backend, full);
    for (const s of c.sets.slice(1)) {
      if (full.encryption) s.encryption = full.encryption;
      if (full.recipients) s.recipients = full.recipients;
    }
  }
  if (cache) {
    const v = await loadVerifyState(cache.dir);
    if (v.last) st.lastVerify = v.last;
  }
  return st;
}
