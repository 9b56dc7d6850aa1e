/**
 * librsync delta generation against a signature (the rs_job "delta" half), streaming.
 *
 * Input arrives in chunks; `#buf` holds unprocessed bytes from `#p` (the start of the
 * current block-sized window) plus pending literal bytes from `#lit`. The search rolls
 * the weak sum one byte at a time; a bitset prefilter rejects almost every position
 * with one array read, and only prefilter hits consult the hash table and MD4. A match
 * emits the pending literal and a COPY (merged with the previous COPY when contiguous)
 * and jumps a whole block. Output (magic, commands, END) goes to `emit` in pieces.
 */
import { FormatError } from '../errors.js';
import type { BlockSumCache } from './block-sum-cache.js';
import { ROLLSUM_CHAR_OFFSET, RABINKARP_MULT } from './rollsum.js';
import type { SignatureIndex } from './signature-index.js';

export const DELTA_MAGIC = 0x72730236;
const OP_END = 0x00;
const OP_LITERAL_N1 = 0x41;
const OP_COPY_BASE = 0x45;
/** Literal runs are flushed at this size, bounding memory. */
const MAX_LITERAL = 1 << 16;
const RK_ADJ = 0x08104224;

function widthCode(v: number): [number, number] {
  if (v < 0x100) return [0, 1];
  if (v < 0x10000) return [1, 2];
  if (v < 0x100000000) return [2, 4];
  return [3, 8];
}

function writeUInt(b: Buffer, off: number, v: number, w: number): void {
  if (w === 1) b[off] = v;
  else if (w === 2) b.writeUInt16BE(v, off);
  else if (w === 4) b.writeUInt32BE(v, off);
  else b.writeBigUInt64BE(BigInt(v), off);
}

/** Encodes delta commands with the narrowest widths, as librsync's writer does. */
export class DeltaEncoder {
  readonly #emit: (b: Buffer) => void;
  #copyOff = -1;
  #copyLen = 0;
  /** Delta bytes written so far (for statistics). */
  written = 0;

  constructor(emit: (b: Buffer) => void) {
    this.#emit = emit;
    const m = Buffer.alloc(4);
    m.writeUInt32BE(DELTA_MAGIC);
    this.#out(m);
  }

  #out(b: Buffer): void {
    this.written += b.length;
    this.#emit(b);
  }

  #flushCopy(): void {
    if (this.#copyLen === 0) return;
    const [wc, wo] = widthCode(this.#copyOff);
    const [lc, lw] = widthCode(this.#copyLen);
    const b = Buffer.alloc(1 + wo + lw);
    b[0] = OP_COPY_BASE + 4 * wc + lc;
    writeUInt(b, 1, this.#copyOff, wo);
    writeUInt(b, 1 + wo, this.#copyLen, lw);
    this.#out(b);
    this.#copyLen = 0;
  }

  copy(offset: number, len: number): void {
    if (this.#copyLen > 0 && this.#copyOff + this.#copyLen === offset) {
      this.#copyLen += len;
      return;
    }
    this.#flushCopy();
    this.#copyOff = offset;
    this.#copyLen = len;
  }

  literal(data: Buffer): void {
    if (data.length === 0) return;
    this.#flushCopy();
    let head: Buffer;
    if (data.length <= 64) head = Buffer.from([data.length]);
    else {
      const [c, w] = widthCode(data.length);
      head = Buffer.alloc(1 + w);
      head[0] = OP_LITERAL_N1 + c;
      writeUInt(head, 1, data.length, w);
    }
    this.#out(head);
    this.#out(Buffer.from(data));
  }

  end(): void {
    this.#flushCopy();
    this.#out(Buffer.from([OP_END]));
  }
}

export class DeltaBuilder {
  readonly #sig: SignatureIndex;
  readonly #enc: DeltaEncoder;
  #buf: Buffer = Buffer.alloc(0);
  #end = 0;
  #p = 0;
  #lit = 0;
  #have = false;
  #s1 = 0;
  #s2 = 0;
  #rk = 0;
  #rkMult = 1;
  #hint = -1;
  /** Input offset of #buf[0]. */
  #base = 0;
  readonly #cache: BlockSumCache | undefined;
  /** The cache's MD4 sums compare with the signature's (MD4, no longer than the cache's). */
  readonly #cacheStrong: boolean;
  /** Bytes of new data matched against the basis (for statistics). */
  matched = 0;

  /** @param cache block sums shared with the input's new signature (computed once) */
  constructor(sig: SignatureIndex, emit: (b: Buffer) => void, cache?: BlockSumCache) {
    this.#sig = sig;
    this.#enc = new DeltaEncoder(emit);
    this.#cache = cache?.blockLen === sig.blockLen ? cache : undefined;
    this.#cacheStrong = this.#cache !== undefined && sig.strongKind === 'md4' && sig.strongLen <= this.#cache.strongLen;
  }

  get written(): number {
    return this.#enc.written;
  }

  update(data: Buffer): void {
    // Compact: keep bytes from the pending literal on, then append.
    const keep = this.#buf.subarray(this.#lit, this.#end);
    this.#base += this.#lit;
    this.#p -= this.#lit;
    this.#lit = 0;
    this.#buf = keep.length ? Buffer.concat([keep, data]) : data;
    this.#end = this.#buf.length;
    if (this.#sig.count === 0) {
      this.#p = this.#end;
    } else if (this.#sig.weakKind === 'rollsum') this.#searchRollsum(false);
    else this.#searchGeneric(false);
    this.#flushLiteralIfLarge();
  }

  #flushLiteralIfLarge(): void {
    while (this.#p - this.#lit >= MAX_LITERAL) {
      this.#enc.literal(this.#buf.subarray(this.#lit, this.#lit + MAX_LITERAL));
      this.#lit += MAX_LITERAL;
    }
  }

  #match(block: number, len: number): void {
    this.#enc.literal(this.#buf.subarray(this.#lit, this.#p));
    this.#enc.copy(block * this.#sig.blockLen, len);
    this.#p += len;
    this.#lit = this.#p;
    this.#have = false;
    this.#hint = block + 1;
    this.matched += len;
  }

  /**
   * The hot loop for rollsum signatures (duplicity's kind).
   *
   * Kept as one function: it runs once per input byte; the rolling sums, the table
   * probe and the literal run stay in locals, which a call per byte would not allow.
   */
  #searchRollsum(final: boolean): void {
    const sig = this.#sig;
    const bl = sig.blockLen;
    const bits = sig.bits;
    const shift = sig.bitShift;
    const buf = this.#buf;
    const end = this.#end;
    for (;;) {
      if (!this.#have) {
        if (this.#p + bl > end) break;
        const at = this.#base + this.#p;
        const cache = this.#cache;
        const hint = this.#hint;
        // After a match the next block usually follows it in the old file too: one MD4
        // (shared with the new signature) confirms it, and its weak sum is the old one.
        if (this.#cacheStrong && hint >= 0 && hint < sig.count && sig.strongEquals(hint, cache!.strong(at, buf, this.#p, bl, end))) {
          cache!.setWeak(at, bl, sig.weak[hint]!);
          this.#match(hint, bl);
          continue;
        }
        let weak: number;
        if (cache) weak = cache.weak(at, buf, this.#p, bl);
        else {
          let s1 = 0;
          let s2 = 0;
          for (let i = this.#p, e = this.#p + bl; i < e; i++) {
            s1 += buf[i]! + ROLLSUM_CHAR_OFFSET;
            s2 += s1;
          }
          weak = (((s2 & 0xffff) << 16) | (s1 & 0xffff)) >>> 0;
        }
        this.#s1 = weak & 0xffff;
        this.#s2 = weak >>> 16;
        this.#have = true;
        const b = Math.imul(weak, 0x9e3779b1) >>> shift;
        if (bits[b >>> 3]! & (1 << (b & 7))) {
          const known = this.#cacheStrong ? cache!.strong(at, buf, this.#p, bl, end) : undefined;
          const blk = sig.find(weak, buf, this.#p, bl, this.#hint, known);
          if (blk >= 0) {
            this.#match(blk, bl);
            continue;
          }
        }
      }
      // Roll the window one byte at a time until a prefilter hit or the end.
      let p = this.#p;
      let s1 = this.#s1;
      let s2 = this.#s2;
      const sub = bl * ROLLSUM_CHAR_OFFSET;
      let hit = false;
      while (p + bl < end) {
        const out = buf[p]!;
        s1 = (s1 - out + buf[p + bl]!) & 0xffff;
        s2 = (s2 - bl * out - sub + s1) & 0xffff;
        p++;
        const weak = ((s2 << 16) | s1) >>> 0;
        const b = Math.imul(weak, 0x9e3779b1) >>> shift;
        if (bits[b >>> 3]! & (1 << (b & 7))) {
          hit = true;
          this.#p = p;
          this.#s1 = s1;
          this.#s2 = s2;
          const blk = sig.find(weak, buf, p, bl, this.#hint);
          if (blk >= 0) this.#match(blk, bl);
          break;
        }
      }
      if (!hit) {
        this.#p = p;
        this.#s1 = s1;
        this.#s2 = s2;
        break;
      }
    }
    if (final) this.#tail();
  }

  /** RabinKarp (librsync >= 2.2 default) and anything else: simple, not tuned. */
  #searchGeneric(final: boolean): void {
    const sig = this.#sig;
    const bl = sig.blockLen;
    const buf = this.#buf;
    const end = this.#end;
    let multN = 1;
    for (let i = 0; i < bl; i++) multN = Math.imul(multN, RABINKARP_MULT) >>> 0;
    for (;;) {
      if (!this.#have) {
        if (this.#p + bl > end) break;
        let h = 1;
        for (let i = this.#p; i < this.#p + bl; i++) h = (Math.imul(h, RABINKARP_MULT) + buf[i]!) >>> 0;
        this.#rk = h;
        this.#rkMult = multN;
        this.#have = true;
      } else {
        if (this.#p + bl >= end) break;
        const out = buf[this.#p]!;
        this.#rk = (Math.imul(this.#rk, RABINKARP_MULT) + buf[this.#p + bl]! - Math.imul(this.#rkMult, out + RK_ADJ)) >>> 0;
        this.#p++;
      }
      const blk = sig.find(this.#rk, buf, this.#p, bl, this.#hint);
      if (blk >= 0) this.#match(blk, bl);
    }
    if (final) this.#tail();
  }

  /**
   * At the end of input: windows shorter than a block can only match the signature's
   * last (short) block. Shrink the window from the front, as librsync does, and test
   * each against that block; whatever is left is literal.
   */
  #tail(): void {
    const sig = this.#sig;
    const buf = this.#buf;
    const end = this.#end;
    const last = sig.count - 1;
    if (last >= 0 && end > this.#p) {
      const rollsum = sig.weakKind === 'rollsum';
      let q = Math.max(this.#p + (this.#have ? 1 : 0), end - sig.blockLen); // a full window at #p was tested
      let s1 = 0;
      let s2 = 0;
      if (rollsum) {
        for (let i = q; i < end; i++) {
          s1 += buf[i]! + ROLLSUM_CHAR_OFFSET;
          s2 += s1;
        }
      }
      for (; q < end; q++) {
        const len = end - q;
        const w = rollsum ? (((s2 & 0xffff) << 16) | (s1 & 0xffff)) >>> 0 : rabinkarpOf(buf, q, len);
        if (rollsum) {
          // roll the first byte out of the window for the next, shorter one
          const out = buf[q]! + ROLLSUM_CHAR_OFFSET;
          s1 -= out;
          s2 -= len * out;
        }
        if (w === sig.weak[last] && sig.strongEquals(last, sig.strongOf(buf, q, len))) {
          this.#p = q;
          this.#match(last, len);
          break;
        }
      }
    }
    this.#p = end;
    this.#enc.literal(buf.subarray(this.#lit, end));
    this.#lit = end;
  }

  finish(): void {
    if (this.#sig.count === 0) {
      this.#p = this.#end;
      this.#enc.literal(this.#buf.subarray(this.#lit, this.#end));
      this.#lit = this.#end;
    } else if (this.#sig.weakKind === 'rollsum') this.#searchRollsum(true);
    else this.#searchGeneric(true);
    this.#flushLiteralIfLarge();
    this.#enc.end();
  }
}

function rabinkarpOf(buf: Buffer, off: number, len: number): number {
  let h = 1;
  for (let i = off; i < off + len; i++) h = (Math.imul(h, RABINKARP_MULT) + buf[i]!) >>> 0;
  return h;
}

export function assertDelta(cond: boolean, msg: string): void {
  if (!cond) throw new FormatError(msg);
}
