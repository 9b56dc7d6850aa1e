/**
 * The combined tree state of a chain from its signature files: the full signatures
 * plus every new-signatures file, merged by index with later files winning, deleted
 * entries dropping the path (duplicity-format.md 6). Streams: one entry per sigtar is
 * held at a time.
 */
import { decodeStored, type DecryptKeys } from '../crypto/index.js';
import type { Backend } from '../backend/backend.js';
import { parseName } from '../chain/file-naming.js';
import type { BackupSet } from '../chain/collection.js';
import { IntegrityError, withContext } from '../errors.js';
import { compareIndex, parseEntryName, type Index } from '../volume/entry-name.js';
import type { TarHeader } from '../volume/tar-header.js';
import { TarReader } from '../volume/tar-reader.js';

export interface StateEntry {
  kind: 'snapshot' | 'signature' | 'deleted';
  index: Index;
  header: TarHeader;
  /** Signature bytes for `signature` entries, when asked for. */
  signature?: Buffer;
}

async function* sigtarEntries(backend: Backend, name: string, keys: DecryptKeys, withSigs: boolean): AsyncGenerator<StateEntry> {
  const enc = parseName(name)?.encoding ?? 'plain';
  const tar = new TarReader(decodeStored(enc, (await backend.get(name)) as AsyncIterable<Buffer>, keys));
  try {
    for (;;) {
      const h = await tar.next();
      if (!h) break;
      const p = parseEntryName(h.name);
      if (p.kind !== 'snapshot' && p.kind !== 'signature' && p.kind !== 'deleted') continue;
      const e: StateEntry = { kind: p.kind, index: p.index, header: h };
      if (withSigs && p.kind === 'signature') e.signature = await tar.readAll();
      yield e;
    }
    await tar.drain();
  } catch (err) {
    throw withContext(err, name);
  }
}

/** Merged state of the given sets (in chain order); yields present paths only. */
export async function* chainState(backend: Backend, sets: BackupSet[], keys: DecryptKeys, opts: { withSigs?: boolean } = {}): AsyncGenerator<StateEntry> {
  const its = sets.map((s) => {
    if (!s.signature) throw new IntegrityError(`signature file of the set ending ${s.end} is missing`, { code: 'MISSING_SIGNATURE' });
    return sigtarEntries(backend, s.signature.name, keys, opts.withSigs ?? false);
  });
  const heads: (StateEntry | undefined)[] = await Promise.all(its.map(async (it) => (await it.next()).value ?? undefined));
  try {
    for (;;) {
      let min: Index | undefined;
      for (const h of heads) if (h && (!min || compareIndex(h.index, min) < 0)) min = h.index;
      if (!min) return;
      let winner: StateEntry | undefined;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i];
        if (h && compareIndex(h.index, min) === 0) {
          winner = h; // later sets overwrite earlier ones
          heads[i] = (await its[i]!.next()).value ?? undefined;
        }
      }
      if (winner && winner.kind !== 'deleted') yield winner;
    }
  } finally {
    await Promise.all(its.map((it) => it.return(undefined)));
  }
}
