/**
 * The combined tree state of a chain from its signature files: the full signatures
 * plus every new-signatures file, merged by index with later files winning, deleted
 * entries dropping the path (duplicity-format.md 6). Streams: one entry per sigtar is
 * held at a time; a signature is read only when the consumer asks for it, before it
 * asks for the next entry.
 */
import type { BackupSet } from '../chain/collection.js';
import { withContext } from '../errors.js';
import type { ArchiveReader } from './archive.js';
import { compareIndex, parseEntryName, type Index } from '../volume/entry-name.js';
import type { TarHeader } from '../volume/tar-header.js';
import { TarReader } from '../volume/tar-reader.js';

export interface StateEntry {
  kind: 'snapshot' | 'signature' | 'deleted';
  index: Index;
  header: TarHeader;
  /** Reads the librsync signature of a `signature` entry (only before the next entry). */
  signature: () => Promise<Buffer>;
  /** The same, streamed (also only before the next entry). */
  signatureStream: () => AsyncIterable<Buffer>;
  /** The set whose signature file holds the entry (when read through chainState). */
  set?: BackupSet;
}

export async function* sigtarEntries(data: AsyncIterable<Buffer>, name: string, set?: BackupSet): AsyncGenerator<StateEntry> {
  const tar = new TarReader(data);
  try {
    for (;;) {
      const h = await tar.next();
      if (!h) break;
      const p = parseEntryName(h.name);
      if (p.kind !== 'snapshot' && p.kind !== 'signature' && p.kind !== 'deleted') continue;
      yield { kind: p.kind, index: p.index, header: h, signature: () => tar.readAll(), signatureStream: () => tar.data(), ...(set ? { set } : {}) };
    }
    await tar.drain();
  } catch (err) {
    throw withContext(err, { file: name });
  }
}

/** Merged state of the given sets (in chain order); yields present paths only. */
export async function* chainState(archive: ArchiveReader, sets: BackupSet[]): AsyncGenerator<StateEntry> {
  const its: AsyncGenerator<StateEntry>[] = [];
  for (const s of sets) its.push(sigtarEntries(await archive.signatures(s), s.signature!.name, s));
  const pull = async (i: number) => (await its[i]!.next()).value ?? undefined;
  const heads: (StateEntry | undefined)[] = [];
  for (let i = 0; i < its.length; i++) heads.push(await pull(i));
  try {
    for (;;) {
      let min: Index | undefined;
      for (const h of heads) if (h && (!min || compareIndex(h.index, min) < 0)) min = h.index;
      if (!min) return;
      // The latest set holding this index wins; the others are skipped.
      let winner = -1;
      for (let i = 0; i < heads.length; i++) if (heads[i] && compareIndex(heads[i]!.index, min) === 0) winner = i;
      for (let i = 0; i < heads.length; i++) {
        if (i !== winner && heads[i] && compareIndex(heads[i]!.index, min) === 0) heads[i] = await pull(i);
      }
      const w = heads[winner]!;
      if (w.kind !== 'deleted') yield w;
      heads[winner] = await pull(winner);
    }
  } finally {
    await Promise.all(its.map((it) => it.return(undefined)));
  }
}
