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
  /** Where the entry starts in the decoded signature file (a tar reader started there reads it first). */
  offset: number;
}

export async function* sigtarEntries(data: AsyncIterable<Buffer>, name: string, set?: BackupSet): AsyncGenerator<StateEntry> {
  const tar = new TarReader(data);
  try {
    for (;;) {
      const h = await tar.next();
      if (!h) break;
      const p = parseEntryName(h.name);
      if (p.kind !== 'snapshot' && p.kind !== 'signature' && p.kind !== 'deleted') continue;
      yield { kind: p.kind, index: p.index, header: h, signature: () => tar.readAll(), signatureStream: () => tar.data(), offset: tar.entryOffset, ...(set ? { set } : {}) };
    }
    await tar.drain();
  } catch (err) {
    throw withContext(err, { file: name });
  }
}

/** Entries of one index from several streams (mergeByIndex). */
export interface IndexGroup<T> {
  index: Index;
  /** The positions of the streams holding the index, ascending. */
  at: number[];
  /** Their entries, in the same order. */
  entries: T[];
}

/**
 * Merges streams sorted by index into one group per index, in index order, through a
 * heap (a chain of 40 sets costs a few comparisons per entry, not 80). Each stream is
 * advanced past an index only when the consumer asks for the next group, so the
 * group's entries (their data, their signatures) stay readable until then.
 */
export async function* mergeByIndex<T extends { index: Index }>(its: AsyncIterator<T>[]): AsyncGenerator<IndexGroup<T>> {
  const heap: { pos: number; e: T }[] = [];
  const before = (a: { pos: number; e: T }, b: { pos: number; e: T }) => {
    const c = compareIndex(a.e.index, b.e.index);
    return c < 0 || (c === 0 && a.pos < b.pos);
  };
  const push = (x: { pos: number; e: T }) => {
    heap.push(x);
    for (let i = heap.length - 1; i > 0; ) {
      const up = (i - 1) >> 1;
      if (!before(heap[i]!, heap[up]!)) break;
      [heap[i], heap[up]] = [heap[up]!, heap[i]!];
      i = up;
    }
  };
  const pop = () => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const [l, r] = [2 * i + 1, 2 * i + 2];
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  };
  const advance = async (pos: number) => {
    const n = await its[pos]!.next();
    if (!n.done) push({ pos, e: n.value });
  };
  for (let pos = 0; pos < its.length; pos++) await advance(pos);
  while (heap.length > 0) {
    const first = pop();
    const group = [first];
    while (heap.length > 0 && compareIndex(heap[0]!.e.index, first.e.index) === 0) group.push(pop());
    yield { index: first.e.index, at: group.map((g) => g.pos), entries: group.map((g) => g.e) };
    for (const g of group) await advance(g.pos);
  }
}

/** The signature files of the sets, as entry streams. */
async function setStreams(archive: ArchiveReader, sets: BackupSet[]): Promise<AsyncGenerator<StateEntry>[]> {
  const its: AsyncGenerator<StateEntry>[] = [];
  for (const s of sets) its.push(sigtarEntries(await archive.signatures(s), s.signature!.name, s));
  return its;
}

/** Merged state of the given sets (in chain order); yields present paths only. */
export async function* chainState(archive: ArchiveReader, sets: BackupSet[]): AsyncGenerator<StateEntry> {
  const its = await setStreams(archive, sets);
  try {
    for await (const g of mergeByIndex(its)) {
      // the latest set holding this index wins
      const w = g.entries[g.entries.length - 1]!;
      if (w.kind !== 'deleted') yield w;
    }
  } finally {
    await Promise.all(its.map((it) => it.return(undefined)));
  }
}

/** The state of one path at several points of a chain (chainStates). */
export interface PathStates {
  index: Index;
  /** Per cut, the entry in force there (undefined: absent). */
  at: (StateEntry | undefined)[];
}

/**
 * The states of several points of one chain in one pass over its signature files: the
 * point after the first `cuts[k]` sets, for each k. Per index, the entries in force are
 * readable (their signatures) until the consumer asks for the next index. diff compares
 * two points of a chain this way, reading each signature file once.
 */
export async function* chainStates(archive: ArchiveReader, sets: BackupSet[], cuts: number[]): AsyncGenerator<PathStates> {
  const its = await setStreams(archive, sets);
  try {
    for await (const g of mergeByIndex(its)) {
      const at = cuts.map((cut) => {
        let k = g.at.length - 1;
        while (k >= 0 && g.at[k]! >= cut) k--;
        const e = k < 0 ? undefined : g.entries[k]!;
        return e?.kind === 'deleted' ? undefined : e;
      });
      if (at.some((e) => e)) yield { index: g.index, at };
    }
  } finally {
    await Promise.all(its.map((it) => it.return(undefined)));
  }
}
