/**
 * The set's signature file, read once from the target and spooled decoded into the run's
 * temp directory (0600: it is plaintext), cut into the slices the volumes check their
 * entries against: a volume gets the entries from the end of the one before's manifest
 * range to the end of its own (the last volume: to the end of the file). Slices are
 * asked for in volume order and are ready once the reader has passed them; the bytes
 * read are hashed (DigestedBytes) for the cache comparison, as the single-lane check does.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { BackupSet } from '../chain/collection.js';
import type { ArchiveReader } from '../repo/archive.js';
import { sigtarEntries, type StateEntry } from '../repo/signature-state.js';
import { compareIndex, type Index } from '../volume/entry-name.js';
import type { ProblemCollector } from './problems.js';
import type { DigestedBytes } from './signature-cursor.js';
import type { SignatureSlice } from './volume-check.js';

export class SignatureSpool {
  readonly #name: string;
  readonly #path: string;
  readonly #p: ProblemCollector;
  #fd: number;
  #written = 0;
  #entries: AsyncGenerator<StateEntry> | undefined;
  #head: StateEntry | undefined;
  #lastStart: number | undefined;
  #failed = false;
  /** Slices are cut one after the other. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(name: string, path: string, p: ProblemCollector) {
    this.#name = name;
    this.#path = path;
    this.#p = p;
    this.#fd = openSync(path, 'wx', 0o600);
  }

  /** The spool of `set`'s signature file; undefined (reported) when it cannot be opened. */
  static async open(archive: ArchiveReader, set: BackupSet, bytes: DigestedBytes, dir: string, p: ProblemCollector): Promise<SignatureSpool | undefined> {
    const name = set.signature?.name ?? '';
    try {
      const stored = await archive.signatures(set, { fromTarget: true });
      const spool = new SignatureSpool(name, join(dir, `signatures-${process.hrtime.bigint()}`), p);
      spool.#entries = sigtarEntries(spool.#tee(bytes.read(stored)), name);
      await spool.#advance();
      return spool;
    } catch (e) {
      p.reportError(name, e);
      return undefined;
    }
  }

  async *#tee(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const c of src) {
      // written before the reader sees it: a slice handed out is on disk
      writeSync(this.#fd, c);
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

  /** The entries up to `end` (inclusive; undefined: to the end of the file) not yet handed out; undefined once the file broke. */
  slice(end: Index | undefined): Promise<SignatureSlice | undefined> {
    const next = this.#queue.then(() => this.#cut(end));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #cut(end: Index | undefined): Promise<SignatureSlice | undefined> {
    if (this.#failed) return undefined;
    const start = this.#head?.offset ?? this.#written;
    const lead = this.#lastStart;
    while (this.#head && (end === undefined || compareIndex(this.#head.index, end) <= 0)) {
      this.#lastStart = this.#head.offset;
      await this.#advance();
    }
    if (this.#failed) return undefined;
    return { name: this.#name, spool: this.#path, start, end: this.#head?.offset ?? this.#written, ...(lead !== undefined ? { lead } : {}) };
  }

  /** Stops reading (what was not read is not compared). */
  async close(): Promise<void> {
    await this.#queue;
    await this.#entries?.return(undefined);
    closeSync(this.#fd);
  }
}
