/**
 * OpenPGP encryption for volumes, manifests and sigtars, as gpg 2.2 reads it:
 * v4 SKESK (iterated+salted S2K, encrypted session key) + SEIPD v1 with MDC, around an
 * optional ZIP-compressed packet around a binary literal packet. No AEAD, no v5/v6.
 *
 * The bulk path is node:crypto's AES-CFB and node:zlib, streamed with partial packet
 * lengths, so a volume never sits in memory. The S2K derivation runs once per
 * encryptor (one random salt per run); each message gets a fresh random session key.
 */
import { createCipheriv, createHash, randomBytes, type Cipher, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { createDeflateRaw } from 'node:zlib';
import { AES256, cipherInfo } from './ciphers.js';
import { PartialPacketFramer, TAG, packet } from './packets.js';
import { DEFAULT_CODED_COUNT, decodeCount, deriveKey, encodeSpec, type S2kSpec } from './s2k.js';

const S2K_SHA256 = 8;

/**
 * Encrypts the plaintext of SEIPD v1: a random prefix (one block plus its last two
 * bytes repeated, the "quick check"), the data, then the MDC packet (0xD3 0x14 and
 * SHA-1 of everything before it including those two bytes), all in CFB with a zero IV.
 */
class SeipdEncryptor extends Transform {
  readonly #cipher: Cipher;
  readonly #sha1: Hash;
  #started = false;
  readonly #blockLen: number;

  constructor(algo: number, sessionKey: Buffer) {
    super();
    const info = cipherInfo(algo);
    this.#blockLen = info.blockLen;
    this.#cipher = createCipheriv(info.name, sessionKey, Buffer.alloc(info.blockLen));
    this.#sha1 = createHash('sha1');
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    const rnd = randomBytes(this.#blockLen);
    const prefix = Buffer.concat([rnd, rnd.subarray(this.#blockLen - 2)]);
    this.#sha1.update(prefix);
    this.push(this.#cipher.update(prefix));
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.#start();
    this.#sha1.update(chunk);
    this.push(this.#cipher.update(chunk));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.#start();
    const mdcHead = Buffer.from([0xd3, 0x14]);
    this.#sha1.update(mdcHead);
    this.push(this.#cipher.update(Buffer.concat([mdcHead, this.#sha1.digest()])));
    this.push(this.#cipher.final());
    cb();
  }
}

/** Emits `head` before the first byte of the stream (or alone for an empty one). */
class Prepend extends Transform {
  #head: Buffer | null;
  constructor(head: Buffer) {
    super();
    this.#head = head;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.#head) {
      this.push(this.#head);
      this.#head = null;
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.#head) this.push(this.#head);
    this.#head = null;
    cb();
  }
}

export interface EncryptStreamOptions {
  /** zlib level for the compressed packet; 0 writes no compressed packet. @default 6 */
  compressLevel?: number;
}

/** Something that can open an OpenPGP message: the key-packet part differs by mode. */
export interface MessageEncryptor {
  /** The transforms that turn plaintext into one OpenPGP message, in pipeline order. */
  transforms(opts?: EncryptStreamOptions): Transform[];
}

/** Passphrase (symmetric) encryption, duplicity's default mode. */
export class SymmetricEncryptor implements MessageEncryptor {
  readonly #kek: Buffer;
  readonly #spec: S2kSpec;
  readonly #codedCount: number;

  /** @param codedCount S2K iteration count byte; tests may lower it. @default 255 (gpg's) */
  constructor(passphrase: Buffer, codedCount = DEFAULT_CODED_COUNT) {
    this.#codedCount = codedCount;
    this.#spec = { type: 3, hashAlgo: S2K_SHA256, salt: randomBytes(8), count: decodeCount(codedCount) };
    this.#kek = deriveKey(passphrase, this.#spec, cipherInfo(AES256).keyLen);
  }

  #skesk(sessionKey: Buffer): Buffer {
    const info = cipherInfo(AES256);
    const c = createCipheriv(info.name, this.#kek, Buffer.alloc(info.blockLen));
    const esk = Buffer.concat([c.update(Buffer.concat([Buffer.from([AES256]), sessionKey])), c.final()]);
    return packet(TAG.SKESK, Buffer.concat([Buffer.from([4, AES256]), encodeSpec(this.#spec, this.#codedCount), esk]));
  }

  transforms(opts: EncryptStreamOptions = {}): Transform[] {
    const sessionKey = randomBytes(cipherInfo(AES256).keyLen);
    return messageTransforms(this.#skesk(sessionKey), AES256, sessionKey, opts.compressLevel ?? 6);
  }
}

/** Literal → (compressed) → SEIPD → key packets first. */
export function messageTransforms(keyPackets: Buffer, algo: number, sessionKey: Buffer, compressLevel: number): Transform[] {
  const date = Buffer.alloc(4);
  date.writeUInt32BE(Math.floor(Date.now() / 1000));
  const literal = new PartialPacketFramer(TAG.LITERAL, Buffer.concat([Buffer.from([0x62, 0]), date]));
  const inner: Transform[] =
    compressLevel > 0
      ? [literal, createDeflateRaw({ level: compressLevel }), new PartialPacketFramer(TAG.COMPRESSED, Buffer.from([1]))]
      : [literal];
  return [...inner, new SeipdEncryptor(algo, sessionKey), new PartialPacketFramer(TAG.SEIPD, Buffer.from([1])), new Prepend(keyPackets)];
}
