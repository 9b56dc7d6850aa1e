/**
 * Raw deflate in independent 64 KiB pieces, so compression can skip data that does not
 * compress and run on several threads.
 *
 * Each piece ends with a sync flush (an empty stored block), which leaves the stream
 * byte-aligned; pieces can therefore be concatenated, and the stream ends with one empty
 * final block. The result is one ordinary deflate stream (gpg, zlib and openpgp.js read
 * it as any other). A piece whose sample does not compress is written as stored blocks
 * at memcpy cost; the others go to zlib on the libuv thread pool, several at once, and
 * come out in order. Pieces do not share the 32 KiB window: a slightly lower ratio for
 * the parallelism.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { constants, deflateRaw, deflateRawSync } from 'node:zlib';

const PIECE = 64 * 1024;
const SAMPLE = 4096;
/** A sample that keeps more than this fraction at level 1 counts as incompressible. */
const INCOMPRESSIBLE = 0.9;
const FINAL_EMPTY_BLOCK = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]);

/** Stored (uncompressed) deflate blocks for `data`, not final, byte-aligned. */
export function storedBlocks(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let off = 0; off < data.length; off += 65535) {
    const n = Math.min(65535, data.length - off);
    const h = Buffer.alloc(5);
    h[0] = 0x00; // BFINAL 0, BTYPE 00, padding to the byte
    h.writeUInt16LE(n, 1);
    h.writeUInt16LE(~n & 0xffff, 3);
    parts.push(h, data.subarray(off, off + n));
  }
  return Buffer.concat(parts);
}

export function looksIncompressible(piece: Buffer): boolean {
  if (piece.length < 512) return false;
  const start = Math.max(0, Math.floor(piece.length / 2) - SAMPLE / 2);
  const sample = piece.subarray(start, start + SAMPLE);
  return deflateRawSync(sample, { level: 1 }).length > sample.length * INCOMPRESSIBLE;
}

export interface ChunkedDeflateOptions {
  /** zlib level for compressible pieces. @default 6 */
  level?: number;
  /** Pieces compressed at once. @default 4 */
  parallel?: number;
}

export class ChunkedDeflate extends Transform {
  readonly #level: number;
  readonly #parallel: number;
  #buf: Buffer[] = [];
  #size = 0;
  readonly #inflight: Promise<Buffer>[] = [];
  /** Statistics: pieces stored raw vs compressed. */
  stored = 0;
  compressed = 0;

  constructor(o: ChunkedDeflateOptions = {}) {
    super();
    this.#level = o.level ?? 6;
    this.#parallel = Math.max(1, o.parallel ?? 4);
  }

  #start(piece: Buffer): void {
    if (looksIncompressible(piece)) {
      this.stored++;
      this.#inflight.push(Promise.resolve(storedBlocks(piece)));
      return;
    }
    this.compressed++;
    this.#inflight.push(
      new Promise((resolve, reject) =>
        deflateRaw(piece, { level: this.#level, finishFlush: constants.Z_SYNC_FLUSH }, (err, out) => (err ? reject(err) : resolve(out))),
      ),
    );
  }

  async #drainTo(max: number): Promise<void> {
    while (this.#inflight.length > max) this.push(await this.#inflight.shift()!);
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.#buf.push(chunk);
    this.#size += chunk.length;
    if (this.#size < PIECE) return cb();
    const all = Buffer.concat(this.#buf);
    let off = 0;
    for (; all.length - off >= PIECE; off += PIECE) this.#start(all.subarray(off, off + PIECE));
    this.#buf = off < all.length ? [all.subarray(off)] : [];
    this.#size = all.length - off;
    this.#drainTo(this.#parallel - 1).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#size > 0) this.#start(Buffer.concat(this.#buf));
    this.#buf = [];
    this.#drainTo(0).then(() => {
      this.push(FINAL_EMPTY_BLOCK);
      cb();
    }, cb);
  }
}
