/**
 * librsync signatures: a header (magic, block length, strong-sum length), then per
 * block of input a weak sum and a truncated strong sum. Duplicity always writes
 * MD4 + rollsum (magic 0x72730136) with 8-byte strong sums; see duplicity-format.md 7.
 */
import type { BlockSumCache } from './block-sum-cache.js';
import { md4Into } from './md4.js';
import { Md4x4, md4x4 } from './md4x4.js';
import { rollsum } from './rollsum.js';
import { InternalError } from '../errors.js';
import { isZero } from '../util/zero-runs.js';

export const SIG_MAGIC_MD4 = 0x72730136;
export const SIG_MAGIC_BLAKE2 = 0x72730137;
export const SIG_MAGIC_RK_MD4 = 0x72730146;
export const SIG_MAGIC_RK_BLAKE2 = 0x72730147;
export const DEFAULT_STRONG_LEN = 8;

/**
 * Duplicity's block-size rule (diffdir.get_block_size): 512 below 1,024,000 bytes,
 * else 512 per started 1,024,000 bytes, capped at 2048. Matching it keeps our
 * signatures identical to duplicity's for the same file.
 */
export function blockSizeFor(fileSize: number, maxBlockSize = 2048): number {
  if (fileSize < 1024000) return 512;
  return Math.min(Math.floor(fileSize / 1024000) * 512, maxBlockSize);
}

/** Signature length for a file of `size` bytes. */
export function signatureSize(size: number, blockLen: number, strongLen = DEFAULT_STRONG_LEN): number {
  return 12 + Math.ceil(size / blockLen) * (4 + strongLen);
}

/**
 * Streaming MD4/rollsum signature builder. Feed content with `update()`; signature
 * bytes come out through `emit` in pieces of a few KiB, so a signature of any size
 * never sits whole in memory here.
 */
/** Four records of zero blocks, per block and strong-sum length: sparse files and images repeat them. */
const zeroRecords = new Map<string, Buffer>();

function zeroRecords4(blockLen: number, strongLen: number): Buffer {
  const key = `${blockLen}:${strongLen}`;
  let r = zeroRecords.get(key);
  if (!r) {
    const one = Buffer.alloc(4 + strongLen);
    const zeros = Buffer.alloc(blockLen);
    one.writeUInt32BE(rollsum(zeros, 0, blockLen), 0);
    md4Into(zeros, 0, blockLen, one, 4, strongLen);
    zeroRecords.set(key, (r = Buffer.concat([one, one, one, one])));
  }
  return r;
}

export class SignatureBuilder {
  readonly blockLen: number;
  readonly strongLen: number;
  readonly #emit: (b: Buffer) => void;
  readonly #block: Buffer;
  #fill = 0;
  #out: Buffer;
  #outPos = 0;
  /** Blocks summed so far. */
  #blocks = 0;
  /** Sums shared with a delta over the same input. */
  readonly #cache: BlockSumCache | undefined;

  /**
   * @param o.size the input's expected size, to size the output buffer (most files are small)
   * @param o.cache block sums shared with a delta over the same input
   */
  constructor(blockLen: number, emit: (b: Buffer) => void, strongLen = DEFAULT_STRONG_LEN, o: { size?: number; cache?: BlockSumCache } = {}) {
    this.blockLen = blockLen;
    this.strongLen = strongLen;
    this.#emit = emit;
    // allocUnsafe: both are written before they are read, and small ones come from
    // Node's buffer pool instead of an allocation each (a backup makes two per file).
    this.#block = Buffer.allocUnsafe(blockLen);
    const expected = o.size === undefined ? Infinity : Math.ceil(o.size / blockLen) * (4 + strongLen);
    this.#out = Buffer.allocUnsafe(Math.max(4 + strongLen, Math.min(4096, expected)));
    if (o.cache && (o.cache.blockLen !== blockLen || o.cache.strongLen !== strongLen)) throw new InternalError('block sum cache of another shape');
    this.#cache = o.cache;
    const head = Buffer.alloc(12);
    head.writeUInt32BE(SIG_MAGIC_MD4, 0);
    head.writeUInt32BE(blockLen, 4);
    head.writeUInt32BE(strongLen, 8);
    emit(head);
  }

  /** `end`: where the valid bytes of `buf` end (the cache may sum a few blocks at once). */
  #sumBlock(buf: Uint8Array, off: number, len: number, end = off + len): void {
    const rec = 4 + this.strongLen;
    if (this.#outPos + rec > this.#out.length) this.#flushOut();
    const cache = this.#cache;
    if (cache) {
      const at = this.#blocks * this.blockLen;
      this.#out.writeUInt32BE(cache.weak(at, buf, off, len), this.#outPos);
      this.#out.set(cache.strong(at, buf, off, len, end), this.#outPos + 4);
    } else {
      this.#out.writeUInt32BE(rollsum(buf, off, len), this.#outPos);
      md4Into(buf, off, len, this.#out, this.#outPos + 4, this.strongLen);
    }
    this.#blocks++;
    this.#outPos += rec;
  }

  /** Four whole blocks from `buf[off]`, summed together (or, when they are zeros, copied from the records of zeros). */
  #sumBlocks4(x4: Md4x4, buf: Uint8Array, off: number): void {
    const rec = 4 + this.strongLen;
    const bl = this.blockLen;
    if (this.#outPos + 4 * rec > this.#out.length) {
      this.#flushOut();
      if (this.#out.length < 4 * rec) this.#out = Buffer.alloc(4096);
    }
    if (isZero(buf, off, 4 * bl)) zeroRecords4(bl, this.strongLen).copy(this.#out, this.#outPos);
    else x4.records4(buf, off, bl, this.#out, this.#outPos, rec, this.strongLen);
    this.#blocks += 4;
    this.#outPos += 4 * rec;
  }

  #flushOut(): void {
    if (this.#outPos === 0) return;
    this.#emit(Buffer.from(this.#out.subarray(0, this.#outPos)));
    this.#outPos = 0;
  }

  update(data: Uint8Array): void {
    let off = 0;
    const bl = this.blockLen;
    if (this.#fill > 0) {
      const take = Math.min(bl - this.#fill, data.length);
      this.#block.set(data.subarray(0, take), this.#fill);
      this.#fill += take;
      off = take;
      if (this.#fill < bl) return;
      this.#sumBlock(this.#block, 0, bl);
      this.#fill = 0;
    }
    const x4 = this.#cache === undefined && this.strongLen <= 16 && Md4x4.fits(bl) ? md4x4 : undefined;
    if (x4) for (; data.length - off >= 4 * bl; off += 4 * bl) this.#sumBlocks4(x4, data, off);
    while (data.length - off >= bl) {
      this.#sumBlock(data, off, bl, data.length);
      off += bl;
    }
    if (off < data.length) {
      this.#block.set(data.subarray(off), 0);
      this.#fill = data.length - off;
    }
  }

  /** Sums the final short block and flushes. */
  finish(): void {
    if (this.#fill > 0) this.#sumBlock(this.#block, 0, this.#fill);
    this.#fill = 0;
    this.#flushOut();
  }
}

/** Signature of a whole buffer (tests and small inputs). */
export function signatureOf(data: Uint8Array, blockLen: number, strongLen = DEFAULT_STRONG_LEN): Buffer {
  const parts: Buffer[] = [];
  const b = new SignatureBuilder(blockLen, (x) => parts.push(x), strongLen);
  b.update(data);
  b.finish();
  return Buffer.concat(parts);
}
