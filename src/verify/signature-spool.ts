/**
 * The set's signature file, read once from the target and spooled decoded into the run's
 * temp directory (0600: it is plaintext), cut into the slices the volumes check their
 * entries against: a volume gets the entries from the end of the one before's manifest
 * range to the end of its own (the last volume: to the end of the file). Slices are
 * asked for in volume order and are ready once the reader has passed them; the bytes
 * read are hashed (DigestedBytes) for the cache comparison, as the single-lane check does.
 *
 * Each slice is spooled in a segment file of its own, removed once the volumes that read
 * it are done (`release`): temp disk holds the slices of the volumes under way, not the
 * whole decoded file (tar headers and signatures: 55 MB for 23,600 files and 1 GiB, and
 * it grows with the tree).
 */
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { BackupSet } from '../chain/collection.js';
import type { ArchiveReader } from '../repo/archive.js';
import { sigtarEntries, type StateEntry } from '../repo/signature-state.js';
import { InternalError } from '../errors.js';
import { compareIndex, type Index } from '../volume/entry-name.js';
import type { ProblemCollector } from './problems.js';
import type { DigestedBytes } from './signature-cursor.js';
import type { SignatureSlice } from './volume-check.js';

/** Bytes copied at a time when a segment takes over what the reader read past a slice's end. */
const COPY = 1 << 20;

/** A file holding the spooled bytes from `base` (an offset in the decoded signature file) on. */
class Segment {
  readonly path: string;
  readonly base: number;
  /** Open while the reader's bytes go here. */
  fd: number | undefined;
  /** The slices reading it, and the spool while it writes here or the last entry handed out is here. */
  refs = 1;

  constructor(path: string, base: number) {
    this.path = path;
    this.base = base;
    this.fd = openSync(path, 'wx+', 0o600); // read too: a new segment takes over the bytes read past a slice's end
  }

  /** Drops a reference; the file goes with the last. */
  unref(): void {
    if (--this.refs > 0) return;
    this.stopWriting();
    rmSync(this.path, { force: true });
  }

  stopWriting(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

export class SignatureSpool {
  readonly #name: string;
  readonly #dir: string;
  readonly #p: ProblemCollector;
  /** Where the reader's bytes are written; undefined once closed. */
  #current: Segment | undefined;
  /** The current segment holds a slice already: the next slice starts a new one. */
  #currentTaken = false;
  #written = 0;
  #entries: AsyncGenerator<StateEntry> | undefined;
  #head: StateEntry | undefined;
  /** The last entry handed out: where it starts and the segment holding it whole. */
  #last: { start: number; segment: Segment } | undefined;
  #failed = false;
  /** Slices are cut one after the other. */
  #queue: Promise<unknown> = Promise.resolve();
  /** The segments of the slices handed out, by slice. */
  readonly #held = new WeakMap<SignatureSlice, Segment[]>();
  #made = 0;

  private constructor(name: string, dir: string, p: ProblemCollector) {
    this.#name = name;
    this.#dir = dir;
    this.#p = p;
    this.#current = this.#segment(0);
  }

  /** The spool of `set`'s signature file; undefined (reported) when it cannot be opened. */
  static async open(archive: ArchiveReader, set: BackupSet, bytes: DigestedBytes, dir: string, p: ProblemCollector): Promise<SignatureSpool | undefined> {
    const name = set.signature?.name ?? '';
    try {
      const stored = await archive.signatures(set, { fromTarget: true });
      const spool = new SignatureSpool(name, dir, p);
      spool.#entries = sigtarEntries(spool.#tee(bytes.read(stored)), name);
      await spool.#advance();
      return spool;
    } catch (e) {
      p.reportError(name, e);
      return undefined;
    }
  }

  #segment(base: number): Segment {
    return new Segment(join(this.#dir, `signatures-${process.hrtime.bigint()}-${this.#made++}`), base);
  }

  async *#tee(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const c of src) {
      // written before the reader sees it: a slice handed out is on disk
      writeSync(this.#current!.fd!, c);
      this.#written += c.length;
      yield c;
    }
  }

  async #advance(): Promise<void> {
    try {
      this.#head = (await this.#entries!.next()).value ?? undefined;
    } catch (e) {
      this.#p.reportError(this.#name, e);
      this.#failed = true;
      this.#head = undefined;
    }
  }

  /**
   * The entries up to `end` (inclusive; undefined: to the end of the file) not yet handed
   * out; undefined once the file broke. The caller gives it back with `release`.
   */
  slice(end: Index | undefined): Promise<SignatureSlice | undefined> {
    const next = this.#queue.then(() => this.#cut(end));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #cut(end: Index | undefined): Promise<SignatureSlice | undefined> {
    if (this.#failed || !this.#current) return undefined;
    const start = this.#head?.offset ?? this.#written;
    try {
      if (this.#currentTaken) this.#startSegment(start);
    } catch (e) {
      this.#p.reportError(this.#name, e);
      this.#failed = true;
      return undefined;
    }
    const seg = this.#current;
    this.#currentTaken = true;
    const lead = this.#last;
    // held before the entries move #last on: that may drop the lead segment's last other hold
    const held = lead && lead.segment !== seg ? [seg, lead.segment] : [seg];
    for (const s of held) s.refs++;
    while (this.#head && (end === undefined || compareIndex(this.#head.index, end) <= 0)) {
      this.#setLast(this.#head.offset, seg);
      await this.#advance();
    }
    if (this.#failed) {
      for (const s of held) s.unref();
      return undefined;
    }
    const slice: SignatureSlice = {
      name: this.#name,
      spool: seg.path,
      start: start - seg.base,
      end: (this.#head?.offset ?? this.#written) - seg.base,
      // the entry before the slice ends where the slice starts
      ...(lead ? { lead: { spool: lead.segment.path, start: lead.start - lead.segment.base, end: start - lead.segment.base } } : {}),
    };
    this.#held.set(slice, held);
    return slice;
  }

  /** The last entry handed out is the next slice's lead: its segment stays while it is. */
  #setLast(start: number, segment: Segment): void {
    const before = this.#last?.segment;
    this.#last = { start, segment };
    if (before === segment) return;
    segment.refs++;
    before?.unref();
  }

  /**
   * Moves the writing to a new segment that starts at `start`: what the reader already
   * read past it (the next entry's header, the rest of a chunk) is copied over.
   */
  #startSegment(start: number): void {
    const old = this.#current!;
    const next = this.#segment(start);
    try {
      const buf = Buffer.allocUnsafe(Math.min(COPY, Math.max(1, this.#written - start)));
      for (let at = start; at < this.#written; ) {
        const n = readSync(old.fd!, buf, 0, Math.min(buf.length, this.#written - at), at - old.base);
        if (n === 0) throw new InternalError(`signature spool ${old.path} ends before the ${this.#written - old.base} bytes written to it`);
        writeSync(next.fd!, buf, 0, n);
        at += n;
      }
    } catch (e) {
      next.unref();
      throw e;
    }
    old.stopWriting();
    old.unref();
    this.#current = next;
  }

  /** A volume is done with its slice: segments no slice reads any more are removed. */
  release(slice: SignatureSlice | undefined): void {
    if (!slice) return;
    for (const s of this.#held.get(slice) ?? []) s.unref();
    this.#held.delete(slice);
  }

  /** Stops reading (what was not read is not compared); the segments still held go when released. */
  async close(): Promise<void> {
    await this.#queue;
    await this.#entries?.return(undefined);
    this.#current?.stopWriting();
    this.#current?.unref();
    this.#current = undefined;
    this.#last?.segment.unref();
    this.#last = undefined;
  }
}
