/** `ls`: the files of the chain state at a time, from the signature files only. */
import type { Backend } from '../backend/backend.js';
import { pickForTime, type BackupSet } from '../chain/collection.js';
import type { DecryptKeys } from '../crypto/index.js';
import { ChainError } from '../errors.js';
import { ArchiveReader } from '../restore/archive.js';
import { chainState, type StateEntry } from './signature-state.js';

export interface ListOptions {
  backend: Backend;
  keys: DecryptKeys;
  /** @default latest */
  time?: number;
  onPicked?: (sets: BackupSet[]) => void;
}

export async function* listFiles(o: ListOptions): AsyncGenerator<StateEntry> {
  const col = await new ArchiveReader(o.backend, o.keys).collection();
  const picked = pickForTime(col, o.time ?? Number.MAX_SAFE_INTEGER);
  if (!picked) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.backend.describe()}`);
  o.onPicked?.(picked.sets);
  yield* chainState(o.backend, picked.sets, o.keys);
}
