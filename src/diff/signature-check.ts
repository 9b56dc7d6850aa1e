/**
 * Checks that a stored librsync signature describes given data, without rebuilding it:
 * each block's strong sum is recomputed and compared, and the block count must agree.
 *
 * Weak sums are not recomputed (that halves the cost of verify). They only steer the
 * delta search: a wrong weak sum makes a later delta larger, never wrong, because
 * every match is confirmed by the strong sum before it becomes a COPY. The strong sums
 * are what a restore's correctness rests on, and they are all checked.
 */
import { blake2bStrong } from './blake2.js';
import { md4Into } from './md4.js';
import { SIG_MAGIC_BLAKE2, SIG_MAGIC_MD4, SIG_MAGIC_RK_BLAKE2, SIG_MAGIC_RK_MD4 } from './signature.js';

export class SignatureCheck {
  readonly #sig: Buffer;
  readonly #blockLen: number;
  readonly #strongLen: number;
  readonly #md4: boolean;
  readonly #count: number;
  readonly #block: Buffer;
  readonly #scratch = Buffer.alloc(32);
  #fill = 0;
  #blocks = 0;
  /** Why the signature does not match, once it is known not to. */
  problem: string | undefined;

  constructor(sig: Buffer) {
    this.#sig = sig;
    const magic = sig.length >= 12 ? sig.readUInt32BE(0) : 0;
    this.#md4 = magic === SIG_MAGIC_MD4 || magic === SIG_MAGIC_RK_MD4;
    this.#blockLen = sig.length >= 12 ? sig.readUInt32BE(4) : 0;
    this.#strongLen = sig.length >= 12 ? sig.readUInt32BE(8) : 0;
    const rec = 4 + this.#strongLen;
    this.#count = Math.floor((sig.length - 12) / rec);
    if (!this.#md4 && magic !== SIG_MAGIC_BLAKE2 && magic !== SIG_MAGIC_RK_BLAKE2) this.problem = 'not a librsync signature';
    else if (this.#blockLen < 1 || this.#blockLen > 1 << 24 || this.#strongLen < 1 || this.#strongLen > (this.#md4 ? 16 : 32)) this.problem = 'bad signature header';
    else if ((sig.length - 12) % rec !== 0) this.problem = 'signature length is not a whole number of blocks';
    this.#block = Buffer.alloc(this.problem ? 0 : this.#blockLen);
  }

  #checkBlock(buf: Buffer, off: number, len: number): void {
    const n = this.#blocks++;
    if (n >= this.#count) {
      this.problem = `more data than the signature's ${this.#count} blocks`;
      return;
    }
    const at = 12 + n * (4 + this.#strongLen) + 4;
    if (this.#md4) md4Into(buf, off, len, this.#scratch, 0, this.#strongLen);
    else blake2bStrong(buf.subarray(off, off + len)).copy(this.#scratch, 0, 0, this.#strongLen);
    if (this.#scratch.compare(this.#sig, at, at + this.#strongLen, 0, this.#strongLen) !== 0) this.problem = `block ${n} differs`;
  }

  update(data: Buffer): void {
    if (this.problem) return;
    const bl = this.#blockLen;
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
    for (; data.length - off >= bl && !this.problem; off += bl) this.#checkBlock(data, off, bl);
    if (off < data.length && !this.problem) {
      data.copy(this.#block, 0, off);
      this.#fill = data.length - off;
    }
  }

  /** Ends the data; returns the problem, or undefined when the signature matches. */
  finish(): string | undefined {
    if (!this.problem && this.#fill > 0) this.#checkBlock(this.#block, 0, this.#fill);
    if (!this.problem && this.#blocks !== this.#count) this.problem = `the signature has ${this.#count} blocks, the data ${this.#blocks}`;
    return this.problem;
  }
}
