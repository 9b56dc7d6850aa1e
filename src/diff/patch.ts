/**
 * Applies a librsync delta to a basis file (the rs_job "patch" half), streaming: the
 * delta is parsed command by command, literal bytes pass through, COPY reads the basis
 * at the given offset in bounded pieces. A COPY outside the basis, a reserved opcode
 * or a delta without END is a FormatError: a hostile delta can neither read beyond
 * the basis nor make memory grow.
 */
import type { FileHandle } from 'node:fs/promises';
import { FormatError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { DELTA_MAGIC } from './delta.js';

const PIECE = 1 << 16;

/** Random-access basis: a file handle and its size. */
export interface Basis {
  size: number;
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
}

export function fileBasis(fh: FileHandle, size: number): Basis {
  return { size, read: async (b, o, l, p) => (await fh.read(b, o, l, p)).bytesRead };
}

export function bufferBasis(data: Buffer): Basis {
  return { size: data.length, read: async (b, o, l, p) => data.copy(b, o, p, Math.min(data.length, p + l)) };
}

async function readUInt(r: ByteReader, w: number): Promise<number> {
  const b = await r.readExact(w, () => new FormatError('delta truncated inside a command'));
  if (w === 1) return b[0]!;
  if (w === 2) return b.readUInt16BE(0);
  if (w === 4) return b.readUInt32BE(0);
  const v = b.readBigUInt64BE(0);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError('delta number too large');
  return Number(v);
}

const WIDTHS = [1, 2, 4, 8];

/** Yields the new file's bytes. */
export async function* applyDelta(delta: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, basis: Basis): AsyncGenerator<Buffer> {
  const r = new ByteReader(delta);
  const magic = await r.readExact(4, () => new FormatError('delta truncated (no magic)'));
  if (magic.readUInt32BE(0) !== DELTA_MAGIC) throw new FormatError(`not a librsync delta (magic 0x${magic.toString('hex')})`);
  for (;;) {
    const op = await r.readByte();
    if (op < 0) throw new FormatError('delta ends without END command');
    if (op === 0) {
      await r.skip(Number.MAX_SAFE_INTEGER); // bytes after END are ignored, as librsync does
      return;
    }
    if (op <= 0x40 || (op >= 0x41 && op <= 0x44)) {
      const len = op <= 0x40 ? op : await readUInt(r, WIDTHS[op - 0x41]!);
      yield* r.chunks(len, () => new FormatError('delta truncated inside a literal'));
      continue;
    }
    if (op >= 0x45 && op <= 0x54) {
      const k = op - 0x45;
      const offset = await readUInt(r, WIDTHS[k >> 2]!);
      const len = await readUInt(r, WIDTHS[k & 3]!);
      if (offset + len > basis.size) throw new FormatError(`delta COPY out of range (offset ${offset}, length ${len}, basis ${basis.size} bytes)`, { code: 'BAD_DELTA' });
      let done = 0;
      while (done < len) {
        const n = Math.min(PIECE, len - done);
        const buf = Buffer.allocUnsafe(n);
        const got = await basis.read(buf, 0, n, offset + done);
        if (got !== n) throw new FormatError('basis file shorter than expected');
        done += n;
        yield buf;
      }
      continue;
    }
    throw new FormatError(`reserved delta opcode 0x${op.toString(16)}`, { code: 'BAD_DELTA' });
  }
}
