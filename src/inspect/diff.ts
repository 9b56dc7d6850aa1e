/**
 * `diff`: what differs between two points in time — paths added, removed, and changed
 * (type, content or metadata) — from signature files only. Both states stream in index
 * order: two points of one chain in one pass over its signature files, points of two
 * chains merged. A path whose version at both points comes from the same set is the
 * same version and costs no signature read.
 */
import type { ReadBackend } from '../backend/backend.js';
import { pickForTime, type BackupSet } from '../chain/collection.js';
import type { DecryptKeys } from '../crypto/index.js';
import { ChainError } from '../errors.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { ArchiveReader } from '../repo/archive.js';
import { chainState, chainStates, mergeByIndex, type PathStates } from '../repo/signature-state.js';
import type { Index } from '../volume/entry-name.js';
import type { TarHeader } from '../volume/tar-header.js';
import { entryDifference } from './versions.js';

export type PathChange = 'added' | 'removed' | 'type' | 'content' | 'metadata';

export interface PathDifference {
  index: Index;
  change: PathChange;
  /** The header at `to` (at `from` for a removed path). */
  header: TarHeader;
}

export interface DiffOptions {
  backend: ReadBackend;
  keys: DecryptKeys;
  cache?: ArchiveCache;
  from: number;
  /** @default the newest point */
  to?: number;
  /** Told the sets of each side, before anything is compared. */
  onPicked?: (from: BackupSet[], to: BackupSet[]) => void;
}

export async function* diffPoints(o: DiffOptions): AsyncGenerator<PathDifference> {
  const archive = new ArchiveReader(o.backend, o.keys, o.cache);
  const col = await archive.collection();
  const a = pickForTime(col, o.from);
  const b = pickForTime(col, o.to ?? Number.MAX_SAFE_INTEGER);
  if (!a || !b) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.backend.describe()}`);
  await archive.proveKey(b.sets);
  o.onPicked?.(a.sets, b.sets);
  const pairs = a.chain === b.chain ? oneChain(archive, a.sets, b.sets) : twoChains(archive, a.sets, b.sets);
  for await (const { index, at } of pairs) {
    const [x, y] = at;
    if (!y) yield { index, change: 'removed', header: x!.header };
    else if (!x) yield { index, change: 'added', header: y.header };
    else if (x.set !== y.set) {
      const d = await entryDifference(x, y);
      if (d !== 'none') yield { index, change: d, header: y.header };
    }
  }
}

/** Two points of one chain: its signature files read once (the longer list of sets holds the shorter). */
function oneChain(archive: ArchiveReader, a: BackupSet[], b: BackupSet[]): AsyncGenerator<PathStates> {
  return chainStates(archive, a.length >= b.length ? a : b, [a.length, b.length]);
}

/** Two points of different chains: each chain's state, merged by index. */
async function* twoChains(archive: ArchiveReader, a: BackupSet[], b: BackupSet[]): AsyncGenerator<PathStates> {
  const sides = [chainState(archive, a), chainState(archive, b)];
  try {
    for await (const g of mergeByIndex(sides)) yield { index: g.index, at: [0, 1].map((side) => g.entries[g.at.indexOf(side)]) };
  } finally {
    await Promise.all(sides.map((s) => s.return(undefined)));
  }
}
