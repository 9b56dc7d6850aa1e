/** `ls`: the files of the chain state at a time, from the signature files only. */
import type { ReadBackend } from '../backend/backend.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { pickForTime, type BackupSet } from '../chain/collection.js';
import type { DecryptKeys } from '../crypto/index.js';
import { ChainError } from '../errors.js';
import { ArchiveReader } from '../repo/archive.js';
import { chainState, type StateEntry } from '../repo/signature-state.js';

export interface ListOptions {
  backend: ReadBackend;
  keys: DecryptKeys;
  /** Local cache of manifests and signatures. @default none */
  cache?: ArchiveCache;
  /** @default latest */
  time?: number;
  onPicked?: (sets: BackupSet[]) => void;
}

export async function* listFiles(o: ListOptions): AsyncGenerator<StateEntry> {
  const archive = new ArchiveReader(o.backend, o.keys, o.cache);
  const picked = pickForTime(await archive.collection(), o.time ?? Number.MAX_SAFE_INTEGER);
  if (!picked) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.backend.describe()}`);
  await archive.proveKey(picked.sets);
  o.onPicked?.(picked.sets);
  yield* chainState(archive, picked.sets);
}
