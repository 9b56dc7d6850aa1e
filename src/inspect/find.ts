/**
 * `find`: every stored version of the paths that match, across all sets and chains, in
 * time order — from manifests and signature files only (through the cache when there
 * is one), never a volume. Per chain, set by set: a full set's entries are compared
 * with the state the previous chain ended in (so a new chain re-storing a file
 * unchanged is no new version), an incremental's entries are new, changed or deleted.
 * Memory holds the state of the matching paths only.
 */
import type { ReadBackend } from '../backend/backend.js';
import { chainSets, type BackupSet } from '../chain/collection.js';
import type { DecryptKeys } from '../crypto/index.js';
import { ChainError } from '../errors.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { ArchiveReader } from '../repo/archive.js';
import { sigtarEntries } from '../repo/signature-state.js';
import { compareIndex, joinIndex, type Index } from '../volume/entry-name.js';
import type { TarHeader } from '../volume/tar-header.js';
import { difference, storedVersion, type StoredVersion } from './versions.js';

export type VersionChange = 'new' | 'changed' | 'deleted' | 'unchanged';

export interface FoundVersion {
  index: Index;
  /** The set that stored the version (for `unchanged`: the one that stored it last). */
  set: BackupSet;
  change: VersionChange;
  /** For `changed`: what changed. */
  what?: 'type' | 'content' | 'metadata';
  /** The version's header (for `deleted`, the last one stored). */
  header: TarHeader;
}

export interface FindOptions {
  backend: ReadBackend;
  keys: DecryptKeys;
  cache?: ArchiveCache;
  /** Which paths (relative, as stored: "etc/hosts") to report. */
  match: (index: Index) => boolean;
  /** Report versions stored from this time on, and the unchanged ones alive then. */
  from?: number;
  /** Report versions stored up to this time. */
  to?: number;
}

interface Known extends StoredVersion {
  index: Index;
  set: BackupSet;
}

const keyOf = (index: Index) => joinIndex(index).toString('latin1');

export async function* findVersions(o: FindOptions): AsyncGenerator<FoundVersion> {
  const archive = new ArchiveReader(o.backend, o.keys, o.cache);
  const chains = [...(await archive.collection()).chains].sort((a, b) => a.start - b.start);
  if (chains.length === 0) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.backend.describe()}`);
  await archive.proveKey(chainSets(chains[chains.length - 1]!));
  const from = o.from ?? -Infinity;
  const to = o.to ?? Infinity;
  const state = new Map<string, Known>();
  let atFrom: Map<string, Known> | undefined;
  const touched = new Set<string>();
  for (const set of chains.flatMap(chainSets)) {
    if (set.end > to) break;
    if (set.end >= from && !atFrom) atFrom = new Map(state);
    const report = set.end >= from;
    for await (const v of setVersions(archive, set, state, o.match)) {
      if (!report) continue;
      touched.add(keyOf(v.index));
      yield v;
    }
  }
  // what was there when the range began and stayed as it was through it
  if (o.from !== undefined) {
    const still = [...(atFrom ?? state).entries()].filter(([k]) => !touched.has(k)).map(([, v]) => v);
    for (const k of still.sort((a, b) => compareIndex(a.index, b.index))) yield { index: k.index, set: k.set, change: 'unchanged', header: k.header };
  }
}

/** The versions one set stored, updating `state` (the matching paths as they were before it). */
async function* setVersions(archive: ArchiveReader, set: BackupSet, state: Map<string, Known>, match: (i: Index) => boolean): AsyncGenerator<FoundVersion> {
  const seen = set.type === 'full' ? new Set<string>() : undefined;
  for await (const e of sigtarEntries(await archive.signatures(set), set.signature!.name)) {
    if (e.index.length === 0 || !match(e.index)) continue;
    const key = keyOf(e.index);
    seen?.add(key);
    const old = state.get(key);
    if (e.kind === 'deleted') {
      if (!old) continue;
      state.delete(key);
      yield { index: e.index, set, change: 'deleted', header: old.header };
      continue;
    }
    const now: Known = { ...(await storedVersion(e)), index: e.index, set };
    state.set(key, now);
    if (!old) {
      yield { index: e.index, set, change: 'new', header: now.header };
      continue;
    }
    const d = difference(old, now);
    if (d === 'none') state.set(key, old); // re-stored as it was (a new chain): the old version lives on
    else yield { index: e.index, set, change: 'changed', what: d, header: now.header };
  }
  // a full set lists everything there is: what it lacks was deleted before it
  if (!seen) return;
  const gone = [...state.entries()].filter(([k]) => !seen.has(k)).map(([, v]) => v);
  for (const k of gone.sort((a, b) => compareIndex(a.index, b.index))) {
    state.delete(keyOf(k.index));
    yield { index: k.index, set, change: 'deleted', header: k.header };
  }
}
