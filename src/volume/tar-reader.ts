/**
 * Streaming TAR reader that accepts what duplicity and other tools write.
 *
 * Pull-based: `next()` returns the next entry's header; its data must be read with
 * `data()` (or is skipped by the next `next()`). Handles pax (`x`, and ignores `g`),
 * GNU long names (`L`/`K`), base-256 numbers, ustar prefix. The archive ends at the
 * first all-zero block or at the end of input; anything after is ignored (duplicity's
 * encrypted volumes carry junk there). A header cut short mid-block or with a bad
 * checksum is an error: silently dropping the rest of a volume would lose files.
 */
import { FormatError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { BLOCK, NEGATIVE_MTIME_KEY, FILE_SIZE_KEY, HARDLINK_KEY, decodeBlock, inodeFromPax, xattrsFromPax, isZeroBlock, padding, parsePax, typeFromFlag, type TarHeader } from './tar-header.js';

/** A cap for pax/GNU metadata entries, so a hostile header cannot exhaust memory. */
const MAX_META_SIZE = 1 << 20;

export class TarReader {
  readonly #r: ByteReader;
  /** Data of the current entry not yet handed to data(). */
  #pendingData = 0;
  /** Where the current entry's data and padding end in the source. */
  #entryEnd = 0;
  #ended = false;
  #entryOffset = 0;

  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.#r = new ByteReader(source);
  }

  async #skipPending(): Promise<void> {
    // what data() did not hand out: a consumer may stop reading an entry's data part way
    const n = this.#entryEnd - this.#r.offset;
    this.#pendingData = 0;
    if (n > 0 && (await this.#r.skip(n)) !== n) throw new FormatError('tar data truncated');
  }

  async #readMeta(size: number): Promise<Buffer> {
    if (size > MAX_META_SIZE) throw new FormatError(`tar metadata entry too large (${size} bytes)`);
    const b = await this.#r.readExact(size + padding(size), () => new FormatError('tar metadata truncated'));
    return b.subarray(0, size);
  }

  /**
   * The next entry, or null at the end of the archive.
   *
   * Kept as one function: one entry is a loop over header blocks — pax and GNU
   * long-name headers first, each changing the entry that follows — whose state (the
   * pending pax records, long name and link) lives across the loop's turns.
   */
  async next(): Promise<TarHeader | null> {
    if (this.#ended) return null;
    await this.#skipPending();
    this.#entryOffset = this.#r.offset;
    let pax: Map<string, Buffer> | undefined;
    let longName: Buffer | undefined;
    let longLink: Buffer | undefined;
    for (;;) {
      const block = await this.#r.read(BLOCK);
      if (block.length === 0 || isZeroBlock(block)) {
        if (block.length === 0 && (pax || longName || longLink)) throw new FormatError('tar archive ends after an extended header');
        this.#ended = true;
        return null;
      }
      if (block.length < BLOCK) throw new FormatError(`tar header truncated at offset ${this.#r.offset - block.length}`);
      let raw;
      try {
        raw = decodeBlock(block);
      } catch (e) {
        throw new FormatError(`bad tar header at offset ${this.#r.offset - BLOCK}: ${(e as Error).message}`);
      }
      if (raw.size < 0 || !Number.isSafeInteger(raw.size)) throw new FormatError(`bad tar entry size ${raw.size}`);
      const t = raw.typeflag;
      if (t === 0x78 /* x */) {
        pax = parsePax(await this.#readMeta(raw.size));
        continue;
      }
      if (t === 0x67 /* g */) {
        await this.#readMeta(raw.size);
        continue;
      }
      if (t === 0x4c /* L */ || t === 0x4b /* K */) {
        const v = await this.#readMeta(raw.size);
        const nul = v.indexOf(0);
        const s = Buffer.from(nul === -1 ? v : v.subarray(0, nul));
        if (t === 0x4c) longName = s;
        else longLink = s;
        continue;
      }
      const type = typeFromFlag(t);
      if (type === undefined) {
        throw new FormatError(`unsupported tar entry type '${String.fromCharCode(t)}' for ${raw.name.toString('utf8')}`);
      }
      const num = (k: string, v: number): number => {
        const p = pax?.get(k);
        if (p === undefined) return v;
        const n = Math.trunc(Number(p.toString('ascii')));
        if (!Number.isSafeInteger(n) || (n < 0 && k !== 'mtime' && k !== NEGATIVE_MTIME_KEY)) throw new FormatError(`bad pax ${k} value`);
        return n;
      };
      const h: TarHeader = {
        name: pax?.get('path') ?? longName ?? raw.name,
        linkname: pax?.get('linkpath') ?? longLink ?? raw.linkname,
        type,
        mode: raw.mode & 0o7777,
        uid: num('uid', raw.uid),
        gid: num('gid', raw.gid),
        size: num('size', raw.size),
        mtime: pax?.has('mtime') ? num('mtime', raw.mtime) : num(NEGATIVE_MTIME_KEY, raw.mtime),
        uname: pax?.get('uname')?.toString('utf8') ?? raw.uname,
        gname: pax?.get('gname')?.toString('utf8') ?? raw.gname,
        devmajor: raw.devmajor,
        devminor: raw.devminor,
        ...(pax?.has(FILE_SIZE_KEY) ? { fileSize: num(FILE_SIZE_KEY, 0) } : {}),
        ...(pax?.has(HARDLINK_KEY) ? { hardlinkTo: pax.get(HARDLINK_KEY)! } : {}),
      };
      if (pax) this.#extras(h, pax);
      if (h.size < 0 || !Number.isSafeInteger(h.size)) throw new FormatError(`bad tar entry size ${h.size}`);
      // Only regular files carry data (hard links are rejected above as unsupported).
      const dataSize = type === 'file' ? h.size : 0;
      if (type !== 'file') h.size = 0;
      this.#pendingData = dataSize;
      this.#entryEnd = this.#r.offset + dataSize + padding(dataSize);
      return h;
    }
  }

  /** The records beyond ustar's fields that tapechain reads: xattrs and the inode state. */
  #extras(h: TarHeader, pax: Map<string, Buffer>): void {
    const xattrs = xattrsFromPax(pax);
    if (xattrs) h.xattrs = xattrs;
    const inode = inodeFromPax(pax);
    if (inode) h.inode = inode;
  }

  /**
   * Where the current entry (its first header block: a pax or long-name header, when it
   * has one) starts in the source: reading the source from there gives that entry first.
   */
  get entryOffset(): number {
    return this.#entryOffset;
  }

  /** Streams the current entry's data. */
  async *data(): AsyncGenerator<Buffer> {
    const n = this.#pendingData;
    this.#pendingData = 0;
    yield* this.#r.chunks(n, () => new FormatError('tar entry data truncated'));
  }

  /** Reads the current entry's data into one buffer (for small entries only). */
  async readAll(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of this.data()) parts.push(c);
    return Buffer.concat(parts);
  }

  /**
   * Consumes whatever follows the end marker (padding, junk) so that upstream checks
   * that run at end of input (MDC, hashes) happen.
   */
  async drain(): Promise<void> {
    await this.#skipPending();
    for await (const _ of this.#r.rest()) {
      // discard
    }
  }

  /** Stops reading (closes the upstream source). */
  async close(): Promise<void> {
    await this.#r.close();
  }
}
