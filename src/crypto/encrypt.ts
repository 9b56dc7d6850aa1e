/**
 * OpenPGP encryption for volumes, manifests and sigtars, as gpg 2.2 reads it: key
 * packets (v4 SKESK with iterated+salted S2K and an encrypted session key, or v3
 * PKESK per recipient) + SEIPD v1 with MDC, around an optional ZIP-compressed packet,
 * around (when signing) one-pass signature + literal + signature — what
 * `gpg --sign --encrypt` writes. No AEAD, no v5/v6 packets.
 *
 * The bulk path is node:crypto (AES-CFB, SHA-1 MDC, the signature digest) and node:zlib,
 * streamed with partial packet lengths, so a volume never sits in memory. openpgp.js
 * only wraps the session key for public keys; each message gets a fresh session key.
 */
import { createCipheriv, createHash, randomBytes, type Cipher, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { ChunkedDeflate, DEFAULT_COMPRESS_LEVEL } from './chunked-deflate.js';
import { AES256, cipherInfo } from './ciphers.js';
import { loadOpenpgp, type PublicKey } from './keys.js';
import { PartialPacketFramer, TAG, packet } from './packets.js';
import { DEFAULT_CODED_COUNT, decodeCount, deriveKey, encodeSpec, type S2kSpec } from './s2k.js';
import { Signer, type SignerWire } from './signature-packet.js';
import { UsageError } from '../errors.js';

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

/** Emits `head` before the stream and `tail()` after it (also for an empty stream). */
class Wrap extends Transform {
  #head: Buffer | null;
  readonly #tail: () => Buffer;
  constructor(head: Buffer, tail: () => Buffer = () => Buffer.alloc(0)) {
    super();
    this.#head = head;
    this.#tail = tail;
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
    try {
      const t = this.#tail();
      if (t.length) this.push(t);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }
}

/** Passes data through while feeding a hash (the signature's digest). */
class HashTap extends Transform {
  constructor(private readonly hash: Hash) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

export interface EncryptStreamOptions {
  /** zlib level for the compressed packet; 0 writes no compressed packet. @default DEFAULT_COMPRESS_LEVEL */
  compressLevel?: number;
}

/** Something that can open an OpenPGP message: the key-packet part differs by mode. */
export interface MessageEncryptor {
  /** The transforms that turn plaintext into one OpenPGP message, in pipeline order. */
  transforms(opts?: EncryptStreamOptions): Promise<Transform[]>;
  readonly mode: 'symmetric' | 'public-key';
  /** Key IDs the session key is encrypted to (public-key mode), 16 upper-case hex digits. */
  recipientKeyIds(): Promise<string[]>;
  /** The encryptor as data a worker thread rebuilds it from (encryptorFromWire). */
  wire(): EncryptorWire;
}

/**
 * An encryptor as structured-clone data. The symmetric form carries the derived key,
 * not the passphrase: workers skip the deliberately slow S2K (and each message still
 * gets a fresh session key).
 */
export type EncryptorWire =
  | { mode: 'symmetric'; kek: Uint8Array; spec: S2kSpec; codedCount: number; signer?: SignerWire }
  | { mode: 'public-key'; recipients: string[]; signer?: SignerWire };

export async function encryptorFromWire(w: EncryptorWire): Promise<MessageEncryptor> {
  const signer = w.signer ? new Signer(w.signer) : undefined;
  if (w.mode === 'symmetric') return SymmetricEncryptor.fromDerived(Buffer.from(w.kek), { ...w.spec, ...(w.spec.salt ? { salt: Buffer.from(w.spec.salt) } : {}) }, w.codedCount, signer);
  const openpgp = await loadOpenpgp();
  const keys = await Promise.all(w.recipients.map((armoredKey) => openpgp.readKey({ armoredKey })));
  return new PublicKeyEncryptor(keys, signer ? { signer } : {});
}

/** Passphrase (symmetric) encryption, duplicity's default mode; optionally signed. */
export class SymmetricEncryptor implements MessageEncryptor {
  readonly mode = 'symmetric' as const;
  readonly #kek: Buffer;
  readonly #spec: S2kSpec;
  readonly #codedCount: number;
  readonly #signer: Signer | undefined;

  /** @param codedCount S2K iteration count byte; tests may lower it. @default 255 (gpg's) */
  constructor(passphrase: Buffer | { kek: Buffer; spec: S2kSpec }, opts: { codedCount?: number; signer?: Signer } = {}) {
    this.#codedCount = opts.codedCount ?? DEFAULT_CODED_COUNT;
    this.#signer = opts.signer;
    if (Buffer.isBuffer(passphrase)) {
      this.#spec = { type: 3, hashAlgo: S2K_SHA256, salt: randomBytes(8), count: decodeCount(this.#codedCount) };
      this.#kek = deriveKey(passphrase, this.#spec, cipherInfo(AES256).keyLen);
    } else {
      this.#spec = passphrase.spec;
      this.#kek = passphrase.kek;
    }
  }

  /** The encryptor of another thread, from its derived key (no S2K again). */
  static fromDerived(kek: Buffer, spec: S2kSpec, codedCount: number, signer?: Signer): SymmetricEncryptor {
    return new SymmetricEncryptor({ kek, spec }, { codedCount, ...(signer ? { signer } : {}) });
  }

  wire(): EncryptorWire {
    return { mode: 'symmetric', kek: this.#kek, spec: this.#spec, codedCount: this.#codedCount, ...(this.#signer ? { signer: this.#signer.wire() } : {}) };
  }

  async recipientKeyIds(): Promise<string[]> {
    return [];
  }

  async transforms(opts: EncryptStreamOptions = {}): Promise<Transform[]> {
    const info = cipherInfo(AES256);
    const sessionKey = randomBytes(info.keyLen);
    const c = createCipheriv(info.name, this.#kek, Buffer.alloc(info.blockLen));
    const esk = Buffer.concat([c.update(Buffer.concat([Buffer.from([AES256]), sessionKey])), c.final()]);
    const skesk = packet(TAG.SKESK, Buffer.concat([Buffer.from([4, AES256]), encodeSpec(this.#spec, this.#codedCount), esk]));
    return messageTransforms(skesk, AES256, sessionKey, opts.compressLevel ?? DEFAULT_COMPRESS_LEVEL, this.#signer);
  }
}

/** Encryption to one or more public keys (each recipient can decrypt); optionally signed. */
export class PublicKeyEncryptor implements MessageEncryptor {
  readonly mode = 'public-key' as const;
  readonly #keys: PublicKey[];
  readonly #signer: Signer | undefined;

  constructor(recipients: PublicKey[], opts: { signer?: Signer } = {}) {
    if (recipients.length === 0) throw new UsageError('public-key encryption: expected at least one recipient key, got none');
    this.#keys = recipients;
    this.#signer = opts.signer;
  }

  wire(): EncryptorWire {
    return { mode: 'public-key', recipients: this.#keys.map((k) => (k.isPrivate() ? k.toPublic() : k).armor()), ...(this.#signer ? { signer: this.#signer.wire() } : {}) };
  }

  async recipientKeyIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const k of this.#keys) ids.push((await k.getEncryptionKey()).getKeyID().toHex().toUpperCase());
    return ids;
  }

  async transforms(opts: EncryptStreamOptions = {}): Promise<Transform[]> {
    const sessionKey = randomBytes(cipherInfo(AES256).keyLen);
    const openpgp = await loadOpenpgp();
    const pkesk = await openpgp.encryptSessionKey({ data: sessionKey, algorithm: 'aes256', encryptionKeys: this.#keys, format: 'binary' });
    return messageTransforms(Buffer.from(pkesk), AES256, sessionKey, opts.compressLevel ?? DEFAULT_COMPRESS_LEVEL, this.#signer);
  }
}

/** (One-pass sig +) literal (+ sig) → (compressed) → SEIPD → key packets first. */
export function messageTransforms(keyPackets: Buffer, algo: number, sessionKey: Buffer, compressLevel: number, signer?: Signer): Transform[] {
  const date = Buffer.alloc(4);
  date.writeUInt32BE(Math.floor(Date.now() / 1000));
  const literal: Transform[] = [new PartialPacketFramer(TAG.LITERAL, Buffer.concat([Buffer.from([0x62, 0]), date]))];
  if (signer) {
    const h = signer.newHash();
    literal.unshift(new HashTap(h));
    literal.push(new Wrap(packet(TAG.ONE_PASS_SIG, signer.onePassBody()), () => packet(TAG.SIGNATURE, signer.finish(h))));
  }
  const inner: Transform[] =
    compressLevel > 0 ? [...literal, new ChunkedDeflate({ level: compressLevel }), new PartialPacketFramer(TAG.COMPRESSED, Buffer.from([1]))] : literal;
  return [...inner, new SeipdEncryptor(algo, sessionKey), new PartialPacketFramer(TAG.SEIPD, Buffer.from([1])), new Wrap(keyPackets)];
}
