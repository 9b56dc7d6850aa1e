/**
 * The signature file of a set, read from the target alongside its volumes: a cursor
 * over its entries in index order. Each logical entry of the volumes is opened against
 * the cursor's head (same path, same kind; a file's librsync signature is recomputed
 * from the stored data as it goes by and compared when the entry closes); entries the
 * signature file has and the volumes lack are reported as the cursor passes them. Once
 * the file or a volume is broken the comparison stops: later differences would be
 * noise. The bytes read are hashed, so the cache's copy can be held against them.
 */
import { createHash } from 'node:crypto';
import type { BackupSet } from '../chain/collection.js';
import { SignatureCheck } from '../diff/signature-check.js';
import type { ArchiveReader } from '../repo/archive.js';
import { sigtarEntries, type StateEntry } from '../repo/signature-state.js';
import { compareIndex, displayIndex, type Index } from '../volume/entry-name.js';
import type { ProblemCollector } from './problems.js';

export type LogicalKind = 'snapshot' | 'diff' | 'deleted';

/** The logical (multivol-joined) entry being compared. */
interface Open {
  index: Index;
  sig?: SignatureCheck;
  /** Continues a run from the volume before: its entry is not this cursor's (no advance). */
  continued?: boolean;
}

/** A signature file's stored bytes as read, with their digest once read to the end. */
export class DigestedBytes {
  readonly #hash = createHash('sha256');
  #complete = false;
  async *read(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const c of src) {
      this.#hash.update(c);
      yield c;
    }
    this.#complete = true;
  }
  /** The SHA-256 of every byte, if they were all read. */
  digest(): string | undefined {
    return this.#complete ? this.#hash.digest('hex') : undefined;
  }
}

export class SignatureCursor {
  readonly name: string;
  readonly #p: ProblemCollector;
  #entries: AsyncGenerator<StateEntry> | undefined;
  #head: StateEntry | undefined;
  #open: Open | undefined;
  /** Nothing more is compared: no file, a broken one, or a broken volume. */
  #broken: boolean;

  private constructor(name: string, p: ProblemCollector, entries?: AsyncGenerator<StateEntry>) {
    this.name = name;
    this.#p = p;
    this.#entries = entries;
    this.#broken = entries === undefined;
  }

  /** A cursor on `set`'s signature file at the target (a dead one when `compare` is false). */
  static async open(archive: ArchiveReader, set: BackupSet, compare: boolean, bytes: DigestedBytes, p: ProblemCollector): Promise<SignatureCursor> {
    const name = set.signature?.name ?? '';
    if (!compare) return new SignatureCursor(name, p);
    const c = new SignatureCursor(name, p, sigtarEntries(bytes.read(await archive.signatures(set, { fromTarget: true })), name));
    await c.#advance();
    return c;
  }

  /** A cursor on entries of a signature file (a slice of one, for a volume checked on its own). */
  static async over(name: string, entries: AsyncGenerator<StateEntry>, p: ProblemCollector): Promise<SignatureCursor> {
    const c = new SignatureCursor(name, p, entries);
    await c.#advance();
    return c;
  }

  /** A cursor that compares nothing (no signature file to hold the volume against). */
  static none(name: string, p: ProblemCollector): SignatureCursor {
    return new SignatureCursor(name, p);
  }

  static async failed(set: BackupSet, p: ProblemCollector, e: unknown): Promise<SignatureCursor> {
    p.reportError(set.signature?.name ?? '', e);
    return new SignatureCursor(set.signature?.name ?? '', p);
  }

  async #advance(): Promise<void> {
    try {
      this.#head = (await this.#entries!.next()).value ?? undefined;
    } catch (e) {
      this.#p.reportError(this.name, e);
      this.#broken = true;
      this.#head = undefined;
    }
  }

  /** A logical entry of the volumes begins; the one before ends. */
  async openEntry(kind: LogicalKind, index: Index, type: string, volume: string): Promise<void> {
    await this.closeEntry();
    if (this.#broken) return;
    this.#open = { index };
    while (this.#head && compareIndex(this.#head.index, index) < 0) {
      this.#p.report(this.name, `${displayIndex(this.#head.index)} is in the signature file but not in the volumes`);
      await this.#advance();
    }
    const head = this.#head;
    if (!head || compareIndex(head.index, index) !== 0) {
      this.#p.report(volume, `${displayIndex(index)} is in the volumes but not in the signature file`);
      this.#open = undefined;
      return;
    }
    const want = kind === 'deleted' ? 'deleted' : type === 'file' ? 'signature' : 'snapshot';
    if (head.kind !== want) this.#p.report(this.name, `${displayIndex(index)} is ${head.kind} in the signature file but ${kind} (${type}) in the volumes`);
    else if (kind === 'snapshot' && type === 'file') {
      // Checked as the data goes by; the cursor moves on when the entry ends.
      this.#open.sig = await SignatureCheck.open(head.signatureStream());
      return;
    }
    this.#open = undefined;
    await this.#advance();
  }

  /**
   * The volume starts inside a multivol run whose signature entry `lead` the volume
   * before holds: its data here, from byte `offset` of the file on, is checked against
   * that signature (the block across `offset` is left to the caller: straddle()).
   */
  async continueEntry(lead: StateEntry, offset: number): Promise<SignatureCheck | undefined> {
    await this.closeEntry();
    if (lead.kind !== 'signature') return undefined;
    const sig = await SignatureCheck.open(lead.signatureStream());
    await sig.resumeAt(offset);
    this.#open = { index: lead.index, sig, continued: true };
    return sig;
  }

  /** Data of the open entry, in order. */
  async update(d: Buffer): Promise<void> {
    await this.#open?.sig?.update(d);
  }

  /** The open entry ends: its recomputed signature is compared. */
  async closeEntry(): Promise<void> {
    const o = this.#open;
    this.#open = undefined;
    if (!o?.sig || this.#broken) return;
    const problem = await o.sig.finish();
    if (problem) this.#p.report(this.name, mismatch(o.index, problem));
    if (!o.continued) await this.#advance(); // the signature was read alongside the data: now move on
  }

  /**
   * The volume ends inside the open entry (its run may go on in the next volume): what
   * was compared is reported, and the block begun is returned unchecked.
   */
  async detachEntry(): Promise<{ block: number; bytes: Buffer } | undefined> {
    const o = this.#open;
    this.#open = undefined;
    if (!o?.sig || this.#broken) return undefined;
    if (o.sig.problem) this.#p.report(this.name, mismatch(o.index, o.sig.problem));
    if (!o.continued) await this.#advance();
    return o.sig.problem ? undefined : o.sig.pending();
  }

  /** A volume broke: the comparison stops here. */
  abandon(): void {
    this.#broken = true;
    this.#open = undefined;
  }

  /** The volumes ended: what the signature file has beyond them is reported. */
  async finish(): Promise<void> {
    await this.closeEntry();
    while (!this.#broken && this.#head) {
      this.#p.report(this.name, `${displayIndex(this.#head.index)} is in the signature file but not in the volumes`);
      await this.#advance();
    }
    await this.#entries?.return(undefined);
  }
}

/** A signature that does not describe the stored data, as verify reports it. */
export function mismatch(index: Index, problem: string): string {
  return `signature of ${displayIndex(index)} does not match the data stored in the volumes (${problem})`;
}
