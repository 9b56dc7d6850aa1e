/**
 * One volume checked on its own (on a worker thread: parallel verify): the stored bytes
 * against the manifest's hash, decryption (MDC, signature), the tar, and each file
 * against its slice of the set's signature file — the entries the manifest's range
 * gives the volume, from a spool of the decoded signature file. What needs the volumes
 * before and after (index order across volumes, multivol runs, a block split between
 * two volumes) goes back to the main thread as a summary of every entry, in order.
 */
import { createReadStream } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import type { SignatureReport, StoredEncoding } from '../crypto/index.js';
import { keysFromWire, type WireKeys } from '../crypto/key-wire.js';
import type { DecryptKeys } from '../crypto/decrypt.js';
import { errorToWire, type ErrorWire } from '../errors.js';
import { sigtarEntries, type StateEntry } from '../repo/signature-state.js';
import type { SignatureCheck } from '../diff/signature-check.js';
import { compareIndex, displayIndex, type EntryKind, type Index } from '../volume/entry-name.js';
import { CHUNK_SIZE, rawEntries, type RawEntry, type VolumeRef } from '../volume/set-reader.js';
import { problemCollector, type ProblemCollector } from './problems.js';
import { SignatureCursor } from './signature-cursor.js';

/** Where a volume's entries are in the spooled signature file. */
/** Spooled signature entries: a file in the run's temp directory, and their byte range in it. */
export interface SpooledEntries {
  spool: string;
  start: number;
  end: number;
}

export interface SignatureSlice extends SpooledEntries {
  /** The signature file's name (for reports). */
  name: string;
  /** The entry before the slice: a run the volume continues is checked against it. */
  lead?: SpooledEntries;
}

export interface VolumeTask {
  name: string;
  /** The stored bytes: the target's file, or a download of it. */
  file: string;
  hash?: VolumeRef['hash'];
  encoding: StoredEncoding;
  keys: WireKeys;
  sig?: SignatureSlice;
}

export interface EntrySummary {
  kind: EntryKind;
  index: Index;
  chunk?: number;
  size: number;
}

/** A block of a multivol run split between two volumes: this volume's part of it. */
export interface SplitBlock {
  index: Index;
  block: number;
  bytes: Buffer;
}

export interface VolumeReport {
  entries: EntrySummary[];
  /** Problems found, each with the number of entries read when it was found. */
  problems: { at: number; file: string; problem: string }[];
  /** The volume could not be read to its end. */
  failure?: ErrorWire;
  signatures: SignatureReport[];
  warnings: string[];
  /** A run continued from the volume before: the block across this volume's first byte (its record, the bytes here). */
  head?: SplitBlock & { record: Buffer; md4: boolean };
  /** A run that may go on in the next volume: the block begun at this volume's end. */
  tail?: SplitBlock;
}

/**
 * Stored bytes read at a time: 1 MiB on a worker lane, as restore's lanes read. Each read,
 * and the inflate of what it carries, is a thread-pool round trip; verify --compare
 * (its lane a worker) took 6.8–7.1 s against 7.5–8.2 s with 128 KiB. This thread keeps
 * 128 KiB: as the only lane of a plain verify, 1 MiB was 2–5 % slower.
 */
const READ_SIZE = isMainThread ? 128 * 1024 : 1 << 20;

let lastKeys: { wire: WireKeys; keys: DecryptKeys } | undefined;

/** Checks the volume of `t` (on a worker thread, or on the main thread as one of the lanes: then `signal` stops it). */
export async function checkVolumeTask(t: VolumeTask, signal?: AbortSignal): Promise<VolumeReport> {
  const keys = await keysFromWire(t.keys, lastKeys);
  lastKeys = { wire: t.keys, keys };
  const out: VolumeReport = { entries: [], problems: [], signatures: [], warnings: [] };
  const problems = problemCollector((p) => out.problems.push({ at: out.entries.length, ...p }));
  const sig = t.sig;
  const cursor = sig ? await SignatureCursor.over(sig.name, sigtarEntries(spooled(sig), sig.name), problems) : SignatureCursor.none('', problems);
  const ref: VolumeRef = { name: t.name, ...(t.hash ? { hash: t.hash } : {}), encoding: t.encoding, open: async () => createReadStream(t.file, { highWaterMark: READ_SIZE }) };
  const opts = { onSignature: (r: SignatureReport) => out.signatures.push(r), onWarning: (m: string) => out.warnings.push(m) };
  let lead: AsyncGenerator<StateEntry> | undefined;
  let continued: { index: Index; check: SignatureCheck | undefined } | undefined;
  let prev: EntrySummary | undefined;
  try {
    for await (const e of rawEntries([ref], keys, opts, signal ? { signal } : {})) {
      const s: EntrySummary = { kind: e.kind, index: e.index, ...(e.chunk !== undefined ? { chunk: e.chunk } : {}), size: 0 };
      // the volume starts inside a run that began in the volume before
      const inherited = prev === undefined && isMultivol(e) && (e.chunk ?? 1) > 1;
      const sameRun = prev !== undefined && isMultivol(e) && prev.kind === e.kind && compareIndex(prev.index, e.index) === 0;
      out.entries.push(s);
      if (inherited && sig?.lead !== undefined) {
        // held against the signature entry the volume before left
        lead = sigtarEntries(spooled(sig.lead), sig.name);
        const entry = (await lead.next()).value as StateEntry | undefined;
        const check = entry && compareIndex(entry.index, e.index) === 0 && e.kind === 'multivol_snapshot' ? await cursor.continueEntry(entry, ((e.chunk ?? 1) - 1) * CHUNK_SIZE) : undefined;
        continued = { index: e.index, check };
      } else if (!inherited && !sameRun) await openVolumeEntry(cursor, e, t.name, problems);
      for await (const d of e.data()) {
        s.size += d.length;
        await cursor.update(d);
      }
      prev = s;
    }
    if (prev && isMultivol(prev) && prev.size === CHUNK_SIZE) {
      const tail = await cursor.detachEntry();
      if (tail) out.tail = { index: prev.index, ...tail };
    }
    await cursor.finish();
    const straddle = continued?.check?.straddle();
    if (straddle && continued) out.head = { index: continued.index, ...straddle };
  } catch (e) {
    out.failure = errorToWire(e);
  } finally {
    await lead?.return(undefined);
  }
  return out;
}

/**
 * A logical entry begins in a volume: opened against the signature file's cursor, or,
 * for a kind that has no place in a volume, reported.
 */
export async function openVolumeEntry(cursor: SignatureCursor, e: Pick<RawEntry, 'kind' | 'index' | 'header'>, volume: string, p: ProblemCollector): Promise<void> {
  const kind = e.kind === 'multivol_snapshot' ? 'snapshot' : e.kind === 'multivol_diff' ? 'diff' : e.kind;
  if (kind === 'snapshot' || kind === 'diff' || kind === 'deleted') await cursor.openEntry(kind, e.index, e.header.type, volume);
  else p.report(volume, `unexpected ${e.kind} entry ${displayIndex(e.index)}`);
}

/**
 * The manifest's StartingPath/EndingPath must name the volume's first and last entries:
 * restore --path picks volumes by these ranges, so a wrong range hides entries from it.
 */
export function checkRange(ref: VolumeRef, first: Index | undefined, last: Index | undefined, report: (file: string, problem: string) => void): void {
  if (!ref.range || !first || !last) return;
  if (compareIndex(first, ref.range.start) !== 0) report(ref.name, `the manifest says the volume starts at ${displayIndex(ref.range.start)}, but its first entry is ${displayIndex(first)}`);
  if (compareIndex(last, ref.range.end) !== 0) report(ref.name, `the manifest says the volume ends at ${displayIndex(ref.range.end)}, but its last entry is ${displayIndex(last)}`);
}

function isMultivol(e: { kind: EntryKind }): boolean {
  return e.kind === 'multivol_snapshot' || e.kind === 'multivol_diff';
}

/** The bytes of spooled entries. */
export async function* spooled(e: SpooledEntries): AsyncGenerator<Buffer> {
  if (e.end <= e.start) return;
  yield* createReadStream(e.spool, { start: e.start, end: e.end - 1, highWaterMark: 128 * 1024 }) as AsyncIterable<Buffer>;
}
