/**
 * Streaming OpenPGP decryption for what gpg, duplicity and tapechain write, with the
 * bulk work on node:crypto.
 *
 * Data flow (each stage an async generator pulled by the consumer, so memory stays
 * bounded): key packets (SKESK: S2K on the passphrase; PKESK: openpgp.js unwraps the
 * session key with a secret key) → SEIPD body (partial lengths) → CFB decipher → quick
 * check of the random prefix (a wrong key fails here, before any plaintext) → MDC
 * hold-back of the last 22 bytes with a running SHA-1 → inner packets: compressed
 * (ZIP, ZLIB, BZip2) → one-pass signature, literal data (hashed for the signature),
 * signature. The MDC and the signature are checked when the data ends: consumers stage
 * the plaintext and commit nothing before the generator has finished without error.
 */
import { createDecipheriv, createHash, timingSafeEqual, type Hash } from 'node:crypto';
import { Duplex, PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isMainThread } from 'node:worker_threads';
import { createInflate, createInflateRaw } from 'node:zlib';
import unbzip2Stream from 'unbzip2-stream';
import { ConfigError, DecryptError, EngineError, FormatError, IntegrityError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { CfbDecryptor } from './cfb-decrypt.js';
import { cipherInfo, isKnownCipher } from './ciphers.js';
import { loadOpenpgp, type PublicKey, type SecretKey } from './keys.js';
import { TAG, packet, packetBody, readBody, readPacketHead, type PacketHead } from './packets.js';
import { HASH_NAMES, decodeCount, deriveKey, type S2kSpec } from './s2k.js';
import { parseSignature, verifySignature, type ParsedSignature, type SigningKeyLike } from './signature-packet.js';

export interface DecryptKeys {
  /** Passphrase for SKESK (symmetric) messages. */
  passphrase?: Buffer;
  /** Unlocked secret keys for PKESK (public-key) messages. */
  secretKeys?: SecretKey[];
  /** Keys whose signatures are accepted. A signature by another key is an error. */
  verifyKeys?: PublicKey[];
  /** Every message must carry a good signature by one of `verifyKeys`. @default false */
  requireSignature?: boolean;
  /**
   * A signature whose key is not among `verifyKeys` is reported (verified: false)
   * instead of failing. For reading a chain to extend it; never for restores. @default false
   */
  tolerateUnknownSigners?: boolean;
  /** Told the key ID of each signer tolerated (tolerateUnknownSigners), for the caller to report. */
  unverifiedSigners?: Set<string>;
}

export interface SignatureReport {
  /** Issuer key ID, 16 upper-case hex digits. */
  keyId: string;
  /** False when no key was given to check it with. */
  verified: boolean;
}

export interface DecryptOptions {
  /** Told about each signature after it was checked (or could not be). */
  onSignature?: (r: SignatureReport) => void;
  onWarning?: (message: string) => void;
}

interface SessionKey {
  algo: number;
  key: Buffer;
}

function parseS2k(b: Buffer, off: number): [S2kSpec, number] {
  const type = b[off];
  const hashAlgo = b[off + 1]!;
  if (type === 0) return [{ type: 0, hashAlgo }, off + 2];
  if (type === 1) return [{ type: 1, hashAlgo, salt: b.subarray(off + 2, off + 10) }, off + 10];
  if (type === 3) return [{ type: 3, hashAlgo, salt: b.subarray(off + 2, off + 10), count: decodeCount(b[off + 10]!) }, off + 11];
  throw new FormatError(`unsupported S2K type ${type}`);
}

/** The session key from one SKESK packet and a passphrase. */
function sessionKeyFromSkesk(body: Buffer, passphrase: Buffer): SessionKey {
  if (body[0] !== 4) throw new FormatError(`unsupported SKESK version ${body[0]}`);
  const algo = body[1]!;
  const [spec, off] = parseS2k(body, 2);
  const info = cipherInfo(algo);
  const kek = deriveKey(passphrase, spec, info.keyLen);
  const esk = body.subarray(off);
  if (esk.length === 0) return { algo, key: kek };
  const d = createDecipheriv(info.name, kek, Buffer.alloc(info.blockLen));
  const plain = Buffer.concat([d.update(esk), d.final()]);
  const sAlgo = plain[0]!;
  // A wrong passphrase decrypts to garbage: an unknown algorithm or a wrong key size.
  if (!isKnownCipher(sAlgo) || plain.length - 1 !== cipherInfo(sAlgo).keyLen) {
    throw new DecryptError('wrong passphrase', { code: 'BAD_PASSPHRASE' });
  }
  return { algo: sAlgo, key: plain.subarray(1) };
}

const ALGO_IDS: Record<string, number> = { aes128: 7, aes192: 8, aes256: 9, camellia128: 11, camellia192: 12, camellia256: 13 };

/** The session key from PKESK packets, unwrapped by openpgp.js with a secret key. */
async function sessionKeyFromPkesk(pkesks: Buffer[], keys: SecretKey[]): Promise<SessionKey> {
  const wanted = pkesks.map((b) => b.subarray(1, 9).toString('hex').toUpperCase());
  if (keys.length === 0) throw new DecryptError(`encrypted to public key ${wanted.join(', ')}, and no secret key was given`, { code: 'NO_KEY' });
  const openpgp = await loadOpenpgp();
  const message = await openpgp.readMessage({ binaryMessage: Buffer.concat(pkesks.map((b) => packet(TAG.PKESK, b))) });
  let res;
  try {
    res = await openpgp.decryptSessionKeys({ message, decryptionKeys: keys });
  } catch (e) {
    throw new DecryptError(`none of the given secret keys can decrypt it (encrypted to ${wanted.join(', ')})`, { code: 'WRONG_KEY', cause: e });
  }
  const sk = res[0]!;
  const algo = ALGO_IDS[String(sk.algorithm)];
  if (algo === undefined) throw new FormatError(`unsupported session key algorithm ${sk.algorithm}`);
  return { algo, key: Buffer.from(sk.data) };
}

/**
 * Runs chunks through a Node duplex (zlib, bzip2) as an async generator. A codec error
 * inside encrypted data means the data was changed (the MDC would say so at the end),
 * so it is reported as an integrity failure, not as a crash of the decompressor.
 */
export async function* through(src: AsyncIterable<Buffer>, t: Duplex, what = 'compressed data'): AsyncGenerator<Buffer> {
  let failure: unknown;
  const done = pipeline(Readable.from(src, { objectMode: false }), t).catch((e: unknown) => {
    failure = e;
  });
  const classify = (e: unknown) =>
    e instanceof EngineError ? e : new IntegrityError(`${what} is corrupt (${(e as Error).message ?? e}): damaged or modified`, { code: 'CORRUPT_DATA', cause: e });
  try {
    for await (const c of t) yield c as Buffer;
  } catch (e) {
    await done;
    throw classify(failure ?? e);
  }
  await done;
  if (failure) throw classify(failure);
}

/** unbzip2-stream is an old-style stream; wrap it as a modern Duplex. */
function bunzip2(): Duplex {
  const input = new PassThrough();
  const output = new PassThrough();
  const bz = unbzip2Stream() as unknown as NodeJS.ReadWriteStream & { on(ev: 'error', f: (e: Error) => void): unknown };
  bz.on('error', (e: Error) => output.destroy(new FormatError(`BZip2 data: ${e.message}`)));
  input.pipe(bz).pipe(output);
  return Duplex.from({ writable: input, readable: output });
}

/** Inflate output in 64 KiB pieces (zlib's default, 16 KiB, quadruples the work per byte downstream). */
const INFLATE = { chunkSize: 64 * 1024 };

/**
 * Inflate output pieces on a worker thread: 1 MiB. A piece is a thread-pool round trip
 * (a futex wake and two context switches each way), which cost more than the work on a
 * VM; a worker has no event loop to keep responsive, and its pieces stay in the thread.
 */
const WORKER_INFLATE = { chunkSize: 1024 * 1024 };

/** Inflated data (zlib or raw deflate). */
function inflated(src: AsyncIterable<Buffer>, raw: boolean): AsyncGenerator<Buffer> {
  const o = isMainThread ? INFLATE : WORKER_INFLATE;
  return through(src, raw ? createInflateRaw(o) : createInflate(o));
}

/** Holds back the trailing MDC packet, hashing everything before it. */
async function* stripMdc(src: AsyncIterable<Buffer>, prefix: Buffer): AsyncGenerator<Buffer> {
  const sha1 = createHash('sha1').update(prefix);
  // The previous chunk is held back until the next one shows it does not hold the last
  // 22 bytes; chunks pass through without being copied.
  let held: Buffer = Buffer.alloc(0);
  for await (const c of src) {
    if (c.length < 22) {
      held = Buffer.concat([held, c]); // rare: a short final piece
      continue;
    }
    if (held.length > 0) {
      sha1.update(held);
      yield held;
    }
    held = c;
  }
  const data = held.subarray(0, Math.max(0, held.length - 22));
  if (data.length > 0) {
    sha1.update(data);
    yield data;
  }
  const tail = held.subarray(data.length);
  if (tail.length !== 22 || tail[0] !== 0xd3 || tail[1] !== 0x14) {
    throw new IntegrityError('OpenPGP modification detection code missing (truncated or modified)', { code: 'MDC' });
  }
  sha1.update(tail.subarray(0, 2));
  if (!timingSafeEqual(sha1.digest(), tail.subarray(2))) {
    throw new IntegrityError('OpenPGP modification detection code mismatch (data was modified)', { code: 'MDC' });
  }
}

async function* decryptSeipd(r: ByteReader, head: PacketHead, sk: SessionKey): AsyncGenerator<Buffer> {
  const body = new ByteReader(packetBody(r, head));
  const version = await body.readByte();
  if (version !== 1) throw new FormatError(`unsupported SEIPD version ${version} (AEAD is not supported)`);
  const info = cipherInfo(sk.algo);
  const d = new CfbDecryptor(info.ecb, sk.key, Buffer.alloc(info.blockLen));
  const plain = (async function* () {
    for await (const c of body.rest()) yield d.update(c);
    const f = d.final();
    if (f.length) yield f;
  })();
  const pr = new ByteReader(plain);
  const prefix = await pr.readExact(info.blockLen + 2, () => new FormatError('encrypted data truncated'));
  if (prefix[info.blockLen] !== prefix[info.blockLen - 2] || prefix[info.blockLen + 1] !== prefix[info.blockLen - 1]) {
    throw new DecryptError('wrong passphrase or key (session key check failed)', { code: 'BAD_PASSPHRASE' });
  }
  yield* stripMdc(pr.rest(), prefix);
}

/** Signature state of one message: hashes started by one-pass packets, checked at the end. */
class SignatureCheck {
  hashes: { hash: Hash; algo: number }[] = [];
  /** Signatures that came before the literal data (old style, no one-pass packet). */
  early: ParsedSignature[] = [];
  checked = 0;
  /** Signatures present but by a key not given (tolerated): the message is signed, unverified. */
  unverified = 0;
  constructor(
    private readonly keys: DecryptKeys,
    private readonly opts: DecryptOptions,
  ) {}

  startHash(algo: number): void {
    const name = HASH_NAMES[algo];
    if (!name) throw new FormatError(`unsupported signature hash algorithm ${algo}`);
    this.hashes.push({ hash: createHash(name), algo });
  }

  update(data: Buffer): void {
    for (const h of this.hashes) h.hash.update(data);
  }

  check(sig: ParsedSignature): void {
    const idx = this.hashes.findIndex((h) => h.algo === sig.hashAlgo);
    if (idx < 0) throw new FormatError('signature without matching one-pass packet or data');
    const { hash } = this.hashes.splice(idx, 1)[0]!;
    const keyId = (sig.issuer ?? '').toUpperCase();
    const candidates: SigningKeyLike[] = [];
    for (const k of this.keys.verifyKeys ?? []) {
      for (const sub of k.getKeys()) if (sub.getKeyID().toHex().toUpperCase() === keyId) candidates.push(sub as unknown as SigningKeyLike);
    }
    if (candidates.length === 0 && this.keys.tolerateUnknownSigners) {
      this.unverified++;
      this.keys.unverifiedSigners?.add(keyId || '(unknown)');
      this.opts.onSignature?.({ keyId, verified: false });
      return;
    }
    if (candidates.length === 0) {
      throw new IntegrityError(`signed by key ${keyId || '(unknown)'}, whose public key was not given`, { code: 'SIGNATURE_UNKNOWN_KEY' });
    }
    verifySignature(sig, hash, candidates[0]!);
    this.checked++;
    this.opts.onSignature?.({ keyId, verified: true });
  }
}

/** Parses the inner packets and yields literal data. */
async function* innerLiteral(src: AsyncIterable<Buffer>, sigs: SignatureCheck, depth = 0): AsyncGenerator<Buffer> {
  if (depth > 4) throw new FormatError('OpenPGP compression nested too deeply');
  const r = new ByteReader(src);
  let sawLiteral = false;
  for (;;) {
    const head = await readPacketHead(r);
    if (!head) break;
    switch (head.tag) {
      case TAG.COMPRESSED: {
        const body = new ByteReader(packetBody(r, head));
        const algo = await body.readByte();
        const data =
          algo === 0 ? body.rest() : algo === 1 ? inflated(body.rest(), true) : algo === 2 ? inflated(body.rest(), false) : algo === 3 ? through(body.rest(), bunzip2()) : null;
        if (!data) throw new FormatError(`unknown OpenPGP compression algorithm ${algo}`);
        yield* innerLiteral(data, sigs, depth + 1);
        sawLiteral = true;
        break;
      }
      case TAG.LITERAL: {
        const body = new ByteReader(packetBody(r, head));
        const hdr = await body.readExact(2, () => new FormatError('literal packet truncated'));
        await body.readExact(hdr[1]! + 4, () => new FormatError('literal packet truncated'));
        for (const s of sigs.early) sigs.startHash(s.hashAlgo);
        for await (const c of body.rest()) {
          sigs.update(c);
          yield c;
        }
        for (const s of sigs.early.splice(0)) sigs.check(s);
        sawLiteral = true;
        break;
      }
      case TAG.ONE_PASS_SIG: {
        const b = await readBody(r, head);
        if (b[0] !== 3) throw new FormatError(`unsupported one-pass signature version ${b[0]}`);
        sigs.startHash(b[2]!);
        break;
      }
      case TAG.SIGNATURE: {
        const sig = parseSignature(await readBody(r, head));
        if (sawLiteral) sigs.check(sig);
        else sigs.early.push(sig);
        break;
      }
      case TAG.MARKER:
        await readBody(r, head);
        break;
      default:
        throw new FormatError(`unexpected OpenPGP packet type ${head.tag} inside the encrypted data`);
    }
  }
  if (depth === 0 && !sawLiteral) throw new FormatError('OpenPGP message holds no data');
}

/** Legacy SED (no integrity protection, e.g. CAST5 from GnuPG 1.x): openpgp.js, in memory. */
async function* decryptLegacy(keyPackets: Buffer[], r: ByteReader, head: PacketHead, keys: DecryptKeys, opts: DecryptOptions): AsyncGenerator<Buffer> {
  opts.onWarning?.('old OpenPGP encryption without integrity protection (SED): modification cannot be detected');
  const body = await readBody(r, head, 1 << 30);
  const openpgp = await loadOpenpgp();
  const message = await openpgp.readMessage({ binaryMessage: Buffer.concat([...keyPackets, packet(TAG.SED, body)]) });
  try {
    const res = await openpgp.decrypt({
      message,
      ...(keys.passphrase ? { passwords: [keys.passphrase.toString('utf8')] } : {}),
      ...(keys.secretKeys?.length ? { decryptionKeys: keys.secretKeys } : {}),
      format: 'binary',
      config: { allowUnauthenticatedMessages: true },
    });
    yield Buffer.from(res.data as Uint8Array);
  } catch (e) {
    throw new DecryptError(`cannot decrypt old SED data: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Decrypts one OpenPGP message and yields its literal data. Throws DecryptError for a
 * wrong passphrase/key (before yielding anything), IntegrityError when the MDC or a
 * signature fails (at the end), FormatError for malformed packets.
 */
export async function* decryptMessage(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, keys: DecryptKeys, opts: DecryptOptions = {}): AsyncGenerator<Buffer> {
  const r = new ByteReader(source);
  const skesks: Buffer[] = [];
  const pkesks: Buffer[] = [];
  for (;;) {
    const head = await readPacketHead(r);
    if (!head) throw new FormatError('OpenPGP message has no encrypted data');
    if (head.tag === TAG.SKESK) skesks.push(await readBody(r, head));
    else if (head.tag === TAG.PKESK) pkesks.push(await readBody(r, head));
    else if (head.tag === TAG.MARKER) await readBody(r, head);
    else if (head.tag === TAG.SED) {
      yield* decryptLegacy([...skesks.map((b) => packet(TAG.SKESK, b)), ...pkesks.map((b) => packet(TAG.PKESK, b))], r, head, keys, opts);
      return;
    } else if (head.tag === TAG.SEIPD) {
      let sk: SessionKey | undefined;
      const errors: unknown[] = [];
      if (skesks.length && keys.passphrase) {
        for (const body of skesks) {
          try {
            sk = sessionKeyFromSkesk(body, keys.passphrase);
            break;
          } catch (e) {
            errors.push(e);
          }
        }
      }
      if (!sk && pkesks.length && (keys.secretKeys?.length || !skesks.length)) {
        try {
          sk = await sessionKeyFromPkesk(pkesks, keys.secretKeys ?? []);
        } catch (e) {
          errors.push(e);
        }
      }
      if (!sk) {
        if (errors.length) throw errors[0];
        throw new ConfigError('passphrase-encrypted: no passphrase given', { code: 'NO_PASSPHRASE' });
      }
      const sigs = new SignatureCheck(keys, opts);
      yield* innerLiteral(decryptSeipd(r, head, sk), sigs);
      if (sigs.hashes.length) throw new IntegrityError('one-pass signature without a signature packet (truncated or stripped)', { code: 'SIGNATURE_MISSING' });
      // a tolerated signature by an unknown key still counts as one: a message stripped of its signature does not
      if (keys.requireSignature && sigs.checked === 0 && sigs.unverified === 0) throw new IntegrityError('not signed, but a signature is required', { code: 'SIGNATURE_MISSING' });
      // gpg writes nothing after the encrypted packet; bytes there were appended or
      // are damage (a signature file has no manifest hash that would catch them)
      if (!(await r.atEnd())) throw new IntegrityError('data after the end of the OpenPGP message (appended or damaged)', { code: 'TRAILING_DATA' });
      return;
    } else if (head.tag === TAG.LITERAL || head.tag === TAG.COMPRESSED) {
      throw new FormatError('OpenPGP message is not encrypted');
    } else {
      throw new FormatError(`unexpected OpenPGP packet type ${head.tag}`);
    }
  }
}

export interface KeyPacketInfo {
  /** Passphrase-encrypted (has a SKESK packet). */
  symmetric: boolean;
  /** Key IDs (16 upper-case hex digits) the message is encrypted to. */
  recipients: string[];
}

/** Which keys a message is encrypted for, from its key packets alone (nothing decrypted). */
export async function keyPacketInfo(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<KeyPacketInfo> {
  const r = new ByteReader(source);
  const info: KeyPacketInfo = { symmetric: false, recipients: [] };
  for (;;) {
    const head = await readPacketHead(r);
    if (!head || head.tag === TAG.SEIPD || head.tag === TAG.SED) return info;
    const body = await readBody(r, head);
    if (head.tag === TAG.SKESK) info.symmetric = true;
    else if (head.tag === TAG.PKESK) info.recipients.push(body.subarray(1, 9).toString('hex').toUpperCase());
  }
}
