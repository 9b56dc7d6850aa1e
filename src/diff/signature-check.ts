/**
 * Checks that a stored librsync signature describes given data, without rebuilding it
 * and without holding it: the signature is read as the data goes by (it is about 0.6 %
 * of the file's size — 600 MiB for a 100 GiB image), each block's strong sum is
 * recomputed and compared, and the block count must agree.
 *
 * Weak sums are not recomputed (that halves the cost of verify). They only steer the
 * delta search: a wrong weak sum makes a later delta larger, never wrong, because
 * every match is confirmed by the strong sum before it becomes a COPY. The strong sums
 * are what a restore's correctness rests on, and they are all checked.
 */
import { ByteReader } from '../util/byte-reader.js';
import { blake2bStrong } from './blake2.js';
import { md4Into } from './md4.js';
import { Md4x4, md4x4 } from './md4x4.js';
import { SIG_MAGIC_BLAKE2, SIG_MAGIC_MD4, SIG_MAGIC_RK_BLAKE2, SIG_MAGIC_RK_MD4 } from './signature.js';

/** Signature bytes read at a time. */
const READ = 64 * 1024;
/** Records skipped at a time when a check resumes part way (bounds what is held). */
const SKIP = 4096;

export class SignatureCheck {
  readonly #src: ByteReader;
  #blockLen = 0;
  #strongLen = 0;
  #md4 = true;
  #block = Buffer.alloc(0);
  readonly #scratch = Buffer.alloc(32);
  readonly #scratch4 = Buffer.alloc(4 * 16);
  /** Signature records read but not yet compared. */
  #records = Buffer.alloc(0);
  #pos = 0;
  #fill = 0;
  #blocks = 0;
  /** Why the signature does not match, once it is known not to. */
  problem: string | undefined;
  /** The block across the offset a check resumed at (resumeAt), and its bytes from there on. */
  #straddle: { block: number; record: Buffer; parts: Buffer[]; left: number } | undefined;

  private constructor(src: AsyncIterable<Buffer> | Iterable<Buffer>) {
    this.#src = new ByteReader(src);
  }

  /** Reads the signature's header; a bad one is reported through `problem`. */
  static async open(signature: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<SignatureCheck> {
    const c = new SignatureCheck(signature);
    const head = await c.#src.read(12);
    const magic = head.length === 12 ? head.readUInt32BE(0) : 0;
    c.#md4 = magic === SIG_MAGIC_MD4 || magic === SIG_MAGIC_RK_MD4;
    if (head.length === 12) {
      c.#blockLen = head.readUInt32BE(4);
      c.#strongLen = head.readUInt32BE(8);
    }
    if (!c.#md4 && magic !== SIG_MAGIC_BLAKE2 && magic !== SIG_MAGIC_RK_BLAKE2) c.problem = 'not a librsync signature';
    else if (c.#blockLen < 1 || c.#blockLen > 1 << 24 || c.#strongLen < 1 || c.#strongLen > (c.#md4 ? 16 : 32)) c.problem = 'bad signature header';
    else c.#block = Buffer.alloc(c.#blockLen);
    return c;
  }

  get #rec(): number {
    return 4 + this.#strongLen;
  }

  /** Makes `n` more records available; false when the signature ends first. */
  async #want(n: number): Promise<boolean> {
    const need = n * this.#rec;
    if (this.#records.length - this.#pos >= need) return true;
    const parts: Buffer[] = [this.#records.subarray(this.#pos)];
    let have = parts[0]!.length;
    try {
      while (have < need) {
        const more = await this.#src.read(Math.max(READ, need - have));
        if (more.length === 0) break;
        parts.push(more);
        have += more.length;
      }
    } catch (e) {
      // A damaged signature file: named as this entry's problem, not the volume's.
      this.problem = `signature unreadable: ${(e as Error).message}`;
      return false;
    }
    this.#records = Buffer.concat(parts);
    this.#pos = 0;
    return have >= need;
  }

  #checkBlock(buf: Buffer, off: number, len: number): void {
    const n = this.#blocks++;
    if (this.#records.length - this.#pos < this.#rec) {
      this.problem = `more data than the signature's ${n} blocks`;
      return;
    }
    const at = this.#pos + 4;
    this.#pos += this.#rec;
    if (this.#md4) md4Into(buf, off, len, this.#scratch, 0, this.#strongLen);
    else blake2bStrong(buf.subarray(off, off + len)).copy(this.#scratch, 0, 0, this.#strongLen);
    if (this.#scratch.compare(this.#records, at, at + this.#strongLen, 0, this.#strongLen) !== 0) this.problem = `block ${n} differs`;
  }

  /** Four whole blocks, their MD4s computed together (the records are already read). */
  #checkBlocks4(x4: Md4x4, buf: Buffer, off: number): void {
    const n = this.#blocks;
    if (this.#records.length - this.#pos < 4 * this.#rec) {
      for (let i = 0; i < 4 && !this.problem; i++) this.#checkBlock(buf, off + i * this.#blockLen, this.#blockLen);
      return;
    }
    x4.sum4(buf, off, this.#blockLen, this.#scratch4, 0, this.#strongLen, this.#strongLen);
    for (let i = 0; i < 4; i++) {
      const at = this.#pos + i * this.#rec + 4;
      if (this.#scratch4.compare(this.#records, at, at + this.#strongLen, i * this.#strongLen, (i + 1) * this.#strongLen) !== 0) {
        this.problem = `block ${n + i} differs`;
        return;
      }
    }
    this.#blocks += 4;
    this.#pos += 4 * this.#rec;
  }

  /**
   * Continues the check at byte `offset` of the data: the blocks before it are another
   * reader's (a multivol run split over volumes that are read in parallel). A block
   * across `offset` cannot be checked by either reader alone: its record and the bytes
   * of it from `offset` on are kept (straddle()), to be joined with the bytes before
   * (the other reader's pending()) by whoever gets both.
   */
  async resumeAt(offset: number): Promise<void> {
    if (this.problem || offset <= 0) return;
    const bl = this.#blockLen;
    const before = offset % bl;
    let skip = Math.floor(offset / bl) + (before > 0 ? 1 : 0);
    while (skip > 0) {
      const n = Math.min(skip, SKIP);
      if (!(await this.#want(n))) {
        this.problem ??= `the signature ends before byte ${offset} of the data`;
        return;
      }
      this.#pos += n * this.#rec;
      this.#blocks += n;
      skip -= n;
    }
    if (before === 0) return;
    const at = this.#pos - this.#rec + 4;
    this.#straddle = { block: this.#blocks - 1, record: Buffer.from(this.#records.subarray(at, at + this.#strongLen)), parts: [], left: bl - before };
  }

  /** The block across the offset the check resumed at: its index, its record, its bytes from there on. */
  straddle(): { block: number; record: Buffer; bytes: Buffer; md4: boolean } | undefined {
    const s = this.#straddle;
    return s && { block: s.block, record: s.record, bytes: Buffer.concat(s.parts), md4: this.#md4 };
  }

  /** The block begun and not yet checked (the data goes on in another reader): its index and bytes. */
  pending(): { block: number; bytes: Buffer } {
    return { block: this.#blocks, bytes: Buffer.from(this.#block.subarray(0, this.#fill)) };
  }

  /** Whether `bytes`, one block, has the strong sum `record` (MD4 or BLAKE2, cut to the record's length). */
  static blockMatches(bytes: Buffer, record: Buffer, md4: boolean): boolean {
    const sum = Buffer.alloc(32);
    if (md4) md4Into(bytes, 0, bytes.length, sum, 0, record.length);
    else blake2bStrong(bytes).copy(sum, 0, 0, record.length);
    return sum.compare(record, 0, record.length, 0, record.length) === 0;
  }

  async update(data: Buffer): Promise<void> {
    if (this.problem) return;
    const s = this.#straddle;
    if (s && s.left > 0) {
      const take = Math.min(s.left, data.length);
      s.parts.push(Buffer.from(data.subarray(0, take)));
      s.left -= take;
      data = data.subarray(take);
      if (data.length === 0) return;
    }
    const bl = this.#blockLen;
    await this.#want(Math.floor((this.#fill + data.length) / bl));
    if (this.problem) return;
    let off = 0;
    if (this.#fill > 0) {
      const take = Math.min(bl - this.#fill, data.length);
      data.copy(this.#block, this.#fill, 0, take);
      this.#fill += take;
      off = take;
      if (this.#fill < bl) return;
      this.#checkBlock(this.#block, 0, bl);
      this.#fill = 0;
    }
    const x4 = this.#md4 && this.#strongLen <= 16 && Md4x4.fits(bl) ? md4x4 : undefined;
    if (x4) for (; data.length - off >= 4 * bl && !this.problem; off += 4 * bl) this.#checkBlocks4(x4, data, off);
    for (; data.length - off >= bl && !this.problem; off += bl) this.#checkBlock(data, off, bl);
    if (off < data.length && !this.problem) {
      data.copy(this.#block, 0, off);
      this.#fill = data.length - off;
    }
  }

  /** Ends the data; returns the problem, or undefined when the signature matches. */
  async finish(): Promise<string | undefined> {
    if (!this.problem && this.#fill > 0) {
      await this.#want(1);
      if (!this.problem) this.#checkBlock(this.#block, 0, this.#fill);
    }
    if (!this.problem) {
      // Records left over: the signature describes more data than there is.
      const left = this.#records.length - this.#pos + (await this.#src.read(this.#rec).catch(() => Buffer.alloc(0))).length;
      if (left > 0) this.problem = `the signature goes on past the data's ${this.#blocks} blocks`;
    }
    return this.problem;
  }
}
