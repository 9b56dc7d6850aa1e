/**
 * Reads the entries of one backup set across its volumes, in order, as logical
 * entries: multivol chunks of one file (which may span volumes) are joined into one
 * data stream, and the kind loses its `multivol_` prefix.
 *
 * Each volume's stored bytes are hashed as they stream and compared with the manifest
 * when the volume ends, after its decoded stream was read to the end (so the OpenPGP
 * MDC has been checked too). Consumers stage what they read and commit nothing until
 * the whole generator has finished: a late failure then loses nothing.
 *
 * A consumer must read a file entry's data fully, or not at all, before asking for
 * the next entry.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { decodeStored, type DecryptKeys, type DecryptOptions, type StoredEncoding } from '../crypto/index.js';
import { FormatError, IntegrityError, withContext } from '../errors.js';
import { compareIndex, displayIndex, parseEntryName, type EntryKind, type Index } from './entry-name.js';
import type { TarHeader } from './tar-header.js';
import { TarReader } from './tar-reader.js';

export interface VolumeRef {
  name: string;
  /** Expected hash of the stored bytes (manifest), if known. */
  hash?: { type: 'SHA1' | 'MD5'; hex: string };
  encoding: StoredEncoding;
  /** Stored size, when the listing gave it. */
  size?: number;
  /** The index range the manifest claims for the volume (StartingPath, EndingPath). */
  range?: { start: Index; end: Index };
  open: () => Promise<Readable>;
}

export interface RawEntry {
  kind: EntryKind;
  index: Index;
  chunk?: number;
  header: TarHeader;
  data: () => AsyncIterable<Buffer>;
  volume: string;
}

export interface LogicalEntry {
  kind: 'snapshot' | 'diff' | 'deleted' | 'signature';
  index: Index;
  header: TarHeader;
  /** The entry's data (file content, delta or signature); empty for other types. */
  data: AsyncIterable<Buffer>;
  /** The volume the entry starts in (for messages). */
  volume: string;
  /** Joined from multivol chunks: `header.size` is the first chunk's, not the whole data's. */
  joined?: boolean;
}

async function* hashing(src: AsyncIterable<Buffer>, h: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  for await (const c of src) {
    h.update(c);
    yield c;
  }
}

/** Size of every multivol chunk but the last (duplicity-format.md 5.5). */
export const CHUNK_SIZE = 65536;

/** A raw entry that a further chunk of the same run must follow. */
function opensRun(e: RawEntry): boolean {
  return isOpenChunk(markOf(e));
}

export interface ReadOptions {
  /** Read only the volumes chosen (and those a multivol run continues into). @default all */
  select?: (v: VolumeRef) => boolean;
  /** Stops the reading between entries and between data pieces. */
  signal?: AbortSignal;
}

/**
 * Raw tar entries of the given volumes, in order, with per-volume hash checks. With
 * `select`, only the chosen volumes are read, plus any volume that a multivol run
 * continues into: whatever a manifest's index ranges claim, a run is read to its end.
 *
 * Kept as one function: a generator whose state (the volume being read, its hash,
 * whether a multivol run is open and so the next volume must be read) spans its yields.
 */
export async function* rawEntries(volumes: VolumeRef[], keys: DecryptKeys, opts: DecryptOptions = {}, ro: ReadOptions = {}): AsyncGenerator<RawEntry> {
  const { select, signal } = ro;
  let runOpen = false;
  for (const v of volumes) {
    if (select && !select(v) && !runOpen) continue;
    runOpen = false;
    const hash = createHash(v.hash?.type === 'MD5' ? 'md5' : 'sha1');
    let stream: Readable;
    try {
      stream = await v.open();
    } catch (e) {
      throw withContext(e, { file: v.name });
    }
    const stored = hashing(stream as AsyncIterable<Buffer>, hash);
    const tar = new TarReader(decodeStored(v.encoding, stored, keys, opts));
    const expectHash = async (digest: string) => {
      if (v.hash && digest !== v.hash.hex) {
        throw new IntegrityError(`hash mismatch (manifest ${v.hash.type} ${v.hash.hex}, stored file ${digest})`, { context: { file: v.name }, code: 'HASH_MISMATCH' });
      }
    };
    // After a decode failure the streamed hash covers only part of the file: hash the
    // whole file again, because a hash mismatch explains the failure better.
    const explain = async (decodeErr: unknown): Promise<never> => {
      if (v.hash) {
        let digest: string | undefined;
        try {
          const h2 = createHash(v.hash.type === 'MD5' ? 'md5' : 'sha1');
          for await (const c of await v.open()) h2.update(c as Buffer);
          digest = h2.digest('hex');
        } catch {
          // unreadable now: report the original failure
        }
        if (digest !== undefined) await expectHash(digest);
      }
      throw withContext(decodeErr, { file: v.name });
    };
    // Entry data is pulled by the consumer, outside this generator's try: give its
    // failures the same explanation (a hash mismatch beats "truncated").
    const guarded = async function* (g: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
      try {
        for await (const c of g) {
          signal?.throwIfAborted();
          yield c;
        }
      } catch (err) {
        if (signal?.aborted) throw err;
        stream.destroy();
        await explain(err);
      }
    };
    let ok = false;
    try {
      for (;;) {
        signal?.throwIfAborted();
        const h = await tar.next();
        if (!h) break;
        const p = parseEntryName(h.name);
        const e: RawEntry = { kind: p.kind, index: p.index, header: h, data: () => guarded(tar.data()), volume: v.name };
        if (p.chunk !== undefined) e.chunk = p.chunk;
        runOpen = opensRun(e);
        yield e;
      }
      await tar.drain();
      ok = true;
    } catch (err) {
      stream.destroy();
      if (signal?.aborted) throw err;
      await explain(err);
    } finally {
      if (!ok) stream.destroy();
    }
    await expectHash(hash.digest('hex'));
  }
}

/**
 * Joins multivol chunks into logical entries, refusing what duplicity would silently
 * restore as a corrupt file: entries out of index order or repeated (format errors),
 * and multivol runs with a missing first or final chunk, a gap or a repeated chunk
 * (integrity errors naming the volume and path). A run is judged only when its data is
 * read: a consumer that skips an entry (outside a --path selection) may meet a run
 * whose first chunks are in a volume it did not read.
 */
export async function* logicalEntries(raw: AsyncIterator<RawEntry>): AsyncGenerator<LogicalEntry> {
  let pending: RawEntry | undefined;
  let last: RawEntry | undefined;
  const pull = async () => {
    const n = await raw.next();
    return n.done ? undefined : n.value;
  };
  pending = await pull();
  while (pending) {
    const first = pending;
    pending = undefined;
    if (last) checkOrder(last, first);
    last = first;
    if (first.kind === 'multivol_snapshot' || first.kind === 'multivol_diff') {
      const kind = first.kind === 'multivol_snapshot' ? 'snapshot' : 'diff';
      const sameRun = (e: RawEntry | undefined) => e !== undefined && e.kind === first.kind && compareIndex(e.index, first.index) === 0;
      let started = false;
      let finished = false;
      const data = (async function* () {
        started = true;
        const run = new RunCheck(first);
        let cur: RawEntry | undefined = first;
        while (cur) {
          yield* cur.data();
          const next = await pull();
          if (sameRun(next)) {
            run.next(next!);
            cur = next;
          } else {
            pending = next;
            cur = undefined;
          }
        }
        run.end();
        finished = true;
      })();
      yield { kind, index: first.index, header: first.header, data, volume: first.volume, joined: true };
      if (!started) {
        // skipped by the consumer: pass its chunks unjudged
        for (let next = await pull(); ; next = await pull()) {
          if (!sameRun(next)) {
            pending = next;
            break;
          }
        }
      } else if (!finished) for await (const _ of data) { /* skip unread chunks */ }
      continue;
    }
    yield { kind: first.kind as LogicalEntry['kind'], index: first.index, header: first.header, data: first.data(), volume: first.volume };
    pending = await pull();
  }
}

/** Where an entry is, for the checks across entries. */
export interface EntryMark {
  kind: EntryKind;
  index: Index;
  chunk?: number;
  /** The tar entry's data size: a multivol chunk of CHUNK_SIZE is followed by another. */
  size: number;
  volume: string;
}

/** Fails unless `e` comes after `prev` in index order (entries of different paths). */
export function checkOrder(prev: { index: Index }, e: { index: Index; volume: string }): void {
  const c = compareIndex(e.index, prev.index);
  if (c > 0) return;
  const what = c === 0 ? `repeats the entry for ${displayIndex(e.index)}` : `has ${displayIndex(e.index)} after ${displayIndex(prev.index)} (out of index order)`;
  throw new FormatError(`${what}`, { context: { file: e.volume }, code: c === 0 ? 'ENTRY_REPEATED' : 'ENTRY_ORDER' });
}

/** Whether `e` is a chunk of the same multivol run as `prev` (a further chunk, in a sound run). */
export function continuesRun(prev: EntryMark, e: EntryMark): boolean {
  return (e.kind === 'multivol_snapshot' || e.kind === 'multivol_diff') && e.kind === prev.kind && compareIndex(e.index, prev.index) === 0;
}

/** Whether a multivol run ends open at `last` (a full chunk: more must follow). */
export function isOpenChunk(last: EntryMark): boolean {
  return (last.kind === 'multivol_snapshot' || last.kind === 'multivol_diff') && last.size === CHUNK_SIZE;
}

/** A multivol run that is not whole: its path, what is wrong, the volume of the chunk at fault. */
export function runFailure(at: { index: Index; volume: string }, what: string): IntegrityError {
  return new IntegrityError(`multivol data of ${displayIndex(at.index)} ${what}`, { context: { file: at.volume }, code: 'MULTIVOL_INCOMPLETE' });
}

/** What is wrong with `e` as the chunk after `prev` in one run, if anything. */
export function nextChunkProblem(prev: EntryMark, e: EntryMark): string | undefined {
  if (!isOpenChunk(prev)) return `chunk ${e.chunk} follows the final chunk ${prev.chunk}`;
  if (e.chunk !== (prev.chunk ?? 0) + 1) return `chunk ${e.chunk} where ${(prev.chunk ?? 0) + 1} was expected`;
  return undefined;
}

/** What a run's first chunk lacks, if anything. */
export function firstChunkProblem(first: { chunk?: number }): string | undefined {
  return first.chunk === 1 ? undefined : `starts at chunk ${first.chunk}: the chunks before it are missing`;
}

/** What a run that ends at `last` lacks, if anything. */
export function lastChunkProblem(last: EntryMark): string | undefined {
  return isOpenChunk(last) ? `ends with the full chunk ${last.chunk}: the chunks after it are missing` : undefined;
}

/** An entry's mark. */
export function markOf(e: RawEntry): EntryMark {
  return { kind: e.kind, index: e.index, ...(e.chunk !== undefined ? { chunk: e.chunk } : {}), size: e.header.size, volume: e.volume };
}

/** The chunks of one multivol run: 1, 2, … each full but the last, which is short. */
class RunCheck {
  #prev: EntryMark;

  constructor(first: RawEntry) {
    this.#prev = markOf(first);
    const p = firstChunkProblem(first);
    if (p) throw runFailure(first, p);
  }

  next(e: RawEntry): void {
    const m = markOf(e);
    const p = nextChunkProblem(this.#prev, m);
    if (p) throw runFailure(e, p);
    this.#prev = m;
  }

  end(): void {
    const p = lastChunkProblem(this.#prev);
    if (p) throw runFailure(this.#prev, p);
  }
}
