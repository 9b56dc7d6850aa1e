/**
 * OpenPGP packet framing (RFC 4880 4.2): new-format headers with fixed or partial
 * body lengths for writing; old and new formats, partial and indeterminate lengths
 * for reading (gpg writes its compressed packet with an indeterminate old-format
 * header and streams with partial lengths).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { FormatError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { BufferQueue, coalesce } from '../util/buffer-queue.js';

export const TAG = {
  PKESK: 1,
  SIGNATURE: 2,
  SKESK: 3,
  ONE_PASS_SIG: 4,
  COMPRESSED: 8,
  SED: 9,
  MARKER: 10,
  LITERAL: 11,
  SEIPD: 18,
  MDC: 19,
} as const;

/** New-format header with a definite length. */
export function packetHeader(tag: number, length: number): Buffer {
  const first = 0xc0 | tag;
  if (length < 192) return Buffer.from([first, length]);
  if (length < 8384) {
    const l = length - 192;
    return Buffer.from([first, (l >> 8) + 192, l & 0xff]);
  }
  const b = Buffer.alloc(6);
  b[0] = first;
  b[1] = 0xff;
  b.writeUInt32BE(length, 2);
  return b;
}

export function packet(tag: number, body: Buffer): Buffer {
  return Buffer.concat([packetHeader(tag, body.length), body]);
}

/**
 * Partial body chunk size: 2^20. Readers cut the data at every partial boundary of
 * every layer (encrypted, compressed, literal), so with 64 KiB chunks the inflate
 * stage of a restore got pieces of ~20 KiB on average; 1 MiB chunks made restore and
 * verify ~10 % faster. gpg accepts any size up to 2^30.
 */
const PARTIAL_POWER = 20;
const PARTIAL_SIZE = 1 << PARTIAL_POWER;
const PARTIAL_LENGTH = Buffer.from([0xe0 | PARTIAL_POWER]);

/**
 * Wraps a byte stream as the body of one packet with partial body lengths, so the
 * total length need not be known in advance. `bodyPrefix` is written first
 * (e.g. the literal packet's format byte, name and date).
 */
export class PartialPacketFramer extends Transform {
  readonly #tag: number;
  readonly #queue = new BufferQueue();
  #started = false;

  constructor(tag: number, bodyPrefix: Buffer) {
    super();
    this.#tag = tag;
    this.#queue.push(bodyPrefix);
  }

  /** Bytes held until a whole partial body is there (counted against the volume size). */
  get pendingBytes(): number {
    return this.#queue.size;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#queue.push(chunk);
    if (this.#queue.size >= PARTIAL_SIZE) this.#emitPartials();
    cb();
  }

  /** Pushes whole partial bodies: a length byte, then the buffers that make them up (not copied). */
  #emitPartials(): void {
    while (this.#queue.size >= PARTIAL_SIZE) {
      if (!this.#started) {
        this.push(Buffer.from([0xc0 | this.#tag]));
        this.#started = true;
      }
      this.push(PARTIAL_LENGTH);
      for (const b of this.#queue.take(PARTIAL_SIZE)) this.push(b);
    }
  }

  override _flush(cb: TransformCallback): void {
    const rest = Buffer.concat(this.#queue.takeAll());
    if (!this.#started) {
      this.push(packetHeader(this.#tag, rest.length));
    } else {
      // The final chunk of a partial stream carries a normal length (may be 0).
      this.push(packetHeader(this.#tag, rest.length).subarray(1));
    }
    this.push(rest);
    cb();
  }
}

export interface PacketHead {
  tag: number;
  /** Definite length, or undefined for partial/indeterminate bodies. */
  length?: number;
  /** First partial chunk length when the body uses partial lengths. */
  partial?: number;
  indeterminate?: boolean;
}

/** Reads a new-format length; returns [length, isPartial], or null at EOF. */
async function readNewLength(r: ByteReader, what: string): Promise<[number, boolean]> {
  const short = () => new FormatError(`packet length truncated`, { context: { file: what } });
  const b0 = await r.readByte();
  if (b0 < 0) throw short();
  if (b0 < 192) return [b0, false];
  if (b0 < 224) {
    const b1 = await r.readByte();
    if (b1 < 0) throw short();
    return [((b0 - 192) << 8) + b1 + 192, false];
  }
  if (b0 === 255) return [(await r.readExact(4, short)).readUInt32BE(0), false];
  return [1 << (b0 & 0x1f), true];
}

/** Reads a packet header, or null at end of input. */
export async function readPacketHead(r: ByteReader): Promise<PacketHead | null> {
  const ctb = await r.readByte();
  if (ctb < 0) return null;
  if ((ctb & 0x80) === 0) throw new FormatError(`not an OpenPGP packet (byte 0x${ctb.toString(16)} at offset ${r.offset - 1})`);
  if (ctb & 0x40) {
    const tag = ctb & 0x3f;
    const [len, partial] = await readNewLength(r, `packet ${tag}`);
    return partial ? { tag, partial: len } : { tag, length: len };
  }
  const tag = (ctb >> 2) & 0x0f;
  const lt = ctb & 3;
  const short = () => new FormatError(`packet ${tag}: length truncated`);
  if (lt === 3) return { tag, indeterminate: true };
  const n = lt === 0 ? 1 : lt === 1 ? 2 : 4;
  const lb = await r.readExact(n, short);
  return { tag, length: n === 1 ? lb[0]! : n === 2 ? lb.readUInt16BE(0) : lb.readUInt32BE(0) };
}

/**
 * Small partial bodies are joined into pieces of at least this size. gpg writes 8 KiB
 * partial bodies, in the encrypted packet and again in the literal one inside it, and
 * every later stage (CFB, the MDC hash, inflate, tar, block sums) pays per piece:
 * passed on one by one, they made verify and restore of a duplicity archive ~20 %
 * slower, and kept block sums of 2 KiB blocks from being computed four at a time.
 * Larger partial bodies (tapechain's are 1 MiB) pass through uncopied.
 */
const PARTIAL_PIECE = 64 * 1024;

/** Yields a packet's body, following partial lengths and indeterminate bodies. */
export async function* packetBody(r: ByteReader, head: PacketHead): AsyncGenerator<Buffer> {
  const short = () => new FormatError(`OpenPGP packet ${head.tag} truncated`);
  if (head.indeterminate) {
    yield* r.rest();
    return;
  }
  if (head.length !== undefined) {
    yield* r.chunks(head.length, short);
    return;
  }
  const body = partialBody(r, head, short);
  yield* head.partial! < PARTIAL_PIECE ? coalesce(body, PARTIAL_PIECE) : body;
}

/** The body of a packet with partial lengths, as the reads carry it. */
async function* partialBody(r: ByteReader, head: PacketHead, short: () => Error): AsyncGenerator<Buffer> {
  let len = head.partial!;
  for (;;) {
    yield* r.chunks(len, short);
    const [next, partial] = await readNewLength(r, `packet ${head.tag}`);
    if (!partial) {
      yield* r.chunks(next, short);
      return;
    }
    len = next;
  }
}

/** Reads a whole (small) packet body. */
export async function readBody(r: ByteReader, head: PacketHead, max = 1 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of packetBody(r, head)) {
    n += c.length;
    if (n > max) throw new FormatError(`OpenPGP packet ${head.tag} larger than expected`);
    parts.push(c);
  }
  return Buffer.concat(parts);
}
