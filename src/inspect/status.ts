/** What is at a target: chains, their sets, volumes and sizes, incomplete and orphaned sets. */
import type { Backend } from '../backend/backend.js';
import { buildCollection, chainSets, setFiles, type BackupSet } from '../chain/collection.js';
import { listAll } from '../backend/backend.js';

export interface SetStatus {
  type: 'full' | 'inc';
  start: number;
  end: number;
  volumes: number;
  bytes: number;
  encrypted: boolean;
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
}

function setStatus(s: BackupSet): SetStatus {
  const out: SetStatus = {
    type: s.type,
    start: s.start,
    end: s.end,
    volumes: s.volumes.size,
    bytes: setFiles(s).reduce((a, f) => a + f.size, 0),
    encrypted: s.encoding === 'gpg',
  };
  if (s.manifest) out.manifest = s.manifest.name;
  return out;
}

export async function targetStatus(backend: Backend): Promise<TargetStatus> {
  const col = buildCollection(await listAll(backend));
  return {
    target: backend.describe(),
    chains: col.chains.map((c) => ({ start: c.start, end: c.end, sets: chainSets(c).map(setStatus) })),
    incomplete: col.incomplete.map(setStatus),
    orphans: col.orphans.map(setStatus),
  };
}
