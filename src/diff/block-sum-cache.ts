/**
 * The block sums of one input, computed once and shared by its new signature and its
 * delta (an incremental's changed file). Whichever needs a block's weak or strong sum
 * first computes it. When the delta finds a block unchanged — its strong sum equals the
 * old signature's for the block that follows the previous match — the weak sum is the
 * old one, so it is never computed: on a file changed in place, the rollsum of its
 * unchanged blocks is skipped and their MD4 is computed once, not twice.
 *
 * Only whole blocks at block boundaries are cached, in a ring of RECENT entries by
 * block number: the delta and the signature never run more than one read apart.
 */
import { md4Into } from './md4.js';
import { Md4x4, md4x4 } from './md4x4.js';
import { rollsum } from './rollsum.js';

const RECENT = 4096;
const HAS_WEAK = 1;
const HAS_STRONG = 2;

export class BlockSumCache {
  readonly blockLen: number;
  readonly strongLen: number;
  readonly #num = new Float64Array(RECENT).fill(-1);
  readonly #flags = new Uint8Array(RECENT);
  readonly #weak = new Uint32Array(RECENT);
  readonly #strong: Uint8Array;
  readonly #scratch: Uint8Array;

  constructor(blockLen: number, strongLen: number) {
    this.blockLen = blockLen;
    this.strongLen = strongLen;
    this.#strong = new Uint8Array(RECENT * strongLen);
    this.#scratch = new Uint8Array(strongLen);
  }

  /** The ring slot of the whole block at `offset`, or -1 for anything else. */
  #slot(offset: number, len: number): number {
    if (len !== this.blockLen || offset % len !== 0) return -1;
    const n = offset / len;
    const s = n % RECENT;
    if (this.#num[s] !== n) {
      this.#num[s] = n;
      this.#flags[s] = 0;
    }
    return s;
  }

  /** Rollsum of `buf[off, off+len)`, the input's bytes at `offset`. */
  weak(offset: number, buf: Uint8Array, off: number, len: number): number {
    const s = this.#slot(offset, len);
    if (s < 0) return rollsum(buf, off, len);
    if (!(this.#flags[s]! & HAS_WEAK)) {
      this.#weak[s] = rollsum(buf, off, len);
      this.#flags[s]! |= HAS_WEAK;
    }
    return this.#weak[s]!;
  }

  /**
   * Truncated MD4 of `buf[off, off+len)`; valid until the next call. When `buf` holds
   * the next three blocks too (up to `end`), their sums are computed at the same time
   * (md4x4): the signature needs every block's, and the delta asks in order.
   */
  strong(offset: number, buf: Uint8Array, off: number, len: number, end = off + len): Uint8Array {
    const s = this.#slot(offset, len);
    if (s < 0) {
      md4Into(buf, off, len, this.#scratch, 0, this.strongLen);
      return this.#scratch;
    }
    const at = s * this.strongLen;
    if (!(this.#flags[s]! & HAS_STRONG)) {
      if (md4x4 && off + 4 * len <= end && Md4x4.fits(len) && s + 4 <= RECENT && this.strongLen <= 16) {
        for (let i = 1; i < 4; i++) this.#flags[this.#slot(offset + i * len, len)]! |= HAS_STRONG;
        md4x4.sum4(buf, off, len, this.#strong, at, this.strongLen, this.strongLen);
      } else md4Into(buf, off, len, this.#strong, at, this.strongLen);
      this.#flags[s]! |= HAS_STRONG;
    }
    return this.#strong.subarray(at, at + this.strongLen);
  }

  /** The strong sum of the block at `offset` if it was computed, else undefined. */
  strongIfKnown(offset: number, len: number): Uint8Array | undefined {
    const s = this.#slot(offset, len);
    if (s < 0 || !(this.#flags[s]! & HAS_STRONG)) return undefined;
    return this.#strong.subarray(s * this.strongLen, (s + 1) * this.strongLen);
  }

  /** Records the weak sum of a block shown to equal a block of the old signature. */
  setWeak(offset: number, len: number, weak: number): void {
    const s = this.#slot(offset, len);
    if (s < 0) return;
    this.#weak[s] = weak;
    this.#flags[s]! |= HAS_WEAK;
  }
}
