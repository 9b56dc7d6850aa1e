/**
 * A loaded librsync signature, indexed for delta search: weak sums in a typed-array
 * hash table (chained by block number) and a bitset prefilter, so the rolling search
 * does one array read per byte in the common no-match case.
 */
import { FormatError } from '../errors.js';
import { blake2bStrong } from './blake2.js';
import { md4Into } from './md4.js';
import { SIG_MAGIC_BLAKE2, SIG_MAGIC_MD4, SIG_MAGIC_RK_BLAKE2, SIG_MAGIC_RK_MD4 } from './signature.js';

export type WeakKind = 'rollsum' | 'rabinkarp';

export class SignatureIndex {
  readonly blockLen: number;
  readonly strongLen: number;
  readonly weakKind: WeakKind;
  readonly strongKind: 'md4' | 'blake2';
  readonly count: number;
  readonly weak: Uint32Array;
  readonly strong: Uint8Array;
  /** Prefilter: one bit per hashed weak sum. */
  readonly bits: Uint8Array;
  readonly bitShift: number;
  readonly head: Int32Array;
  readonly next: Int32Array;
  readonly tableMask: number;
  readonly #scratch = Buffer.alloc(64);

  constructor(sig: Buffer, what = 'signature') {
    if (sig.length < 12) throw new FormatError(`truncated librsync signature`, { context: { file: what } });
    const magic = sig.readUInt32BE(0);
    if (magic === SIG_MAGIC_MD4 || magic === SIG_MAGIC_BLAKE2) this.weakKind = 'rollsum';
    else if (magic === SIG_MAGIC_RK_MD4 || magic === SIG_MAGIC_RK_BLAKE2) this.weakKind = 'rabinkarp';
    else throw new FormatError(`unknown librsync signature magic 0x${magic.toString(16)}`, { context: { file: what } });
    this.strongKind = magic === SIG_MAGIC_MD4 || magic === SIG_MAGIC_RK_MD4 ? 'md4' : 'blake2';
    this.blockLen = sig.readUInt32BE(4);
    this.strongLen = sig.readUInt32BE(8);
    const max = this.strongKind === 'md4' ? 16 : 32;
    if (this.blockLen < 1 || this.blockLen > 1 << 24 || this.strongLen < 1 || this.strongLen > max) {
      throw new FormatError(`bad signature header (block ${this.blockLen}, strong ${this.strongLen})`, { context: { file: what } });
    }
    const rec = 4 + this.strongLen;
    if ((sig.length - 12) % rec !== 0) throw new FormatError(`signature length is not a whole number of blocks`, { context: { file: what } });
    const n = (sig.length - 12) / rec;
    this.count = n;
    this.weak = new Uint32Array(n);
    this.strong = new Uint8Array(n * this.strongLen);
    for (let i = 0, off = 12; i < n; i++, off += rec) {
      this.weak[i] = sig.readUInt32BE(off);
      this.strong.set(sig.subarray(off + 4, off + rec), i * this.strongLen);
    }
    let tbits = 10;
    while (1 << tbits < n * 2 && tbits < 24) tbits++;
    this.tableMask = (1 << tbits) - 1;
    this.head = new Int32Array(1 << tbits).fill(-1);
    this.next = new Int32Array(n);
    // Insert in reverse so chains list lower block numbers first.
    for (let i = n - 1; i >= 0; i--) {
      const h = SignatureIndex.hash(this.weak[i]!) & this.tableMask;
      this.next[i] = this.head[h]!;
      this.head[h] = i;
    }
    let bbits = 16;
    while (1 << bbits < n * 64 && bbits < 27) bbits++;
    this.bitShift = 32 - bbits;
    this.bits = new Uint8Array((1 << bbits) >>> 3);
    for (let i = 0; i < n; i++) {
      const b = Math.imul(this.weak[i]!, 0x9e3779b1) >>> this.bitShift;
      this.bits[b >>> 3]! |= 1 << (b & 7);
    }
  }

  static hash(weak: number): number {
    return (weak ^ (weak >>> 15) ^ Math.imul(weak, 0x85ebca6b)) >>> 0;
  }

  /** Strong sum of buf[off, off+len) into the scratch buffer. */
  strongOf(buf: Uint8Array, off: number, len: number): Buffer {
    if (this.strongKind === 'md4') md4Into(buf, off, len, this.#scratch, 0, this.strongLen);
    else blake2bStrong(buf.subarray(off, off + len)).copy(this.#scratch, 0, 0, this.strongLen);
    return this.#scratch;
  }

  strongEquals(block: number, s: Uint8Array): boolean {
    const base = block * this.strongLen;
    for (let i = 0; i < this.strongLen; i++) if (this.strong[base + i] !== s[i]) return false;
    return true;
  }

  /**
   * The block whose sums match buf[off, off+len) (weak already computed), preferring
   * `hint` (the block after the previous match, so COPYs merge); -1 when none.
   */
  find(weak: number, buf: Uint8Array, off: number, len: number, hint: number, known?: Uint8Array): number {
    // A strong sum computed elsewhere (MD4, at least as long as ours) saves hashing.
    let strong: Uint8Array | undefined = known && this.strongKind === 'md4' && known.length >= this.strongLen ? known : undefined;
    if (hint >= 0 && hint < this.count && this.weak[hint] === weak) {
      strong ??= this.strongOf(buf, off, len);
      if (this.strongEquals(hint, strong)) return hint;
    }
    for (let i = this.head[SignatureIndex.hash(weak) & this.tableMask]!; i >= 0; i = this.next[i]!) {
      if (this.weak[i] !== weak) continue;
      strong ??= this.strongOf(buf, off, len);
      if (this.strongEquals(i, strong)) return i;
    }
    return -1;
  }
}
