/**
 * --compare SOURCE (duplicity's --compare-data): the archived state at a time against
 * the live tree — type, mode, owner (as root), whole-second mtime (directories too),
 * symlink target, device numbers and content — streaming, with no temp copy.
 *
 * The archived state comes from the chain's signature files, read from the target and
 * merged in index order; compare-live.ts walks the live tree beside it and holds every
 * live file block by block against the librsync signature of its archived version. That
 * the signatures describe the stored data is what verify checks, volume by volume, in
 * the same run. Memory does not grow with the tree.
 */
import type { ReadBackend } from '../backend/backend.js';
import { checkSource } from '../source/source-dir.js';
import { pickForTime } from '../chain/collection.js';
import type { DecryptKeys } from '../crypto/index.js';
import { ChainError } from '../errors.js';
import { chainState } from '../repo/signature-state.js';
import { ArchiveReader } from '../repo/archive.js';
import { compareLive, type ArchivedEntry } from './compare-live.js';
import { problemCollector, type Problem } from './problems.js';

export interface CompareOptions {
  backend: ReadBackend;
  keys: DecryptKeys;
  /** The archived state at this time. @default latest */
  time?: number;
  /** Compare owners. @default true when root (only root restores them) */
  owners?: boolean;
  /** The user this comparison runs as. @default process.getuid() */
  uid?: number;
  signal?: AbortSignal;
}

export async function compareWithSource(source: string, o: CompareOptions, onProblem?: (p: Problem) => void): Promise<Problem[]> {
  const root = await checkSource(source);
  const archive = new ArchiveReader(o.backend, o.keys); // the target's signature files, not a cache's
  const picked = pickForTime(await archive.collection(), o.time ?? Number.MAX_SAFE_INTEGER);
  if (!picked) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.backend.describe()}`);
  await archive.proveKey(picked.sets);
  const { problems, report } = problemCollector(onProblem);
  const archived = (async function* (): AsyncGenerator<ArchivedEntry> {
    for await (const e of chainState(archive, picked.sets)) {
      const kind = e.kind === 'signature' ? 'signature' : 'snapshot';
      yield kind === 'signature' ? { kind, index: e.index, header: e.header, signature: e.signatureStream() } : { kind, index: e.index, header: e.header };
    }
  })();
  await compareLive(archived, { root, owners: o.owners ?? (o.uid ?? process.getuid?.()) === 0, report, ...(o.signal ? { signal: o.signal } : {}) });
  return problems;
}
