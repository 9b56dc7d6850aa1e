/**
 * Streaming OpenPGP decryption for what gpg and duplicity write, on node:crypto.
 *
 * Data flow (each stage an async generator, pulled by the consumer, so memory stays
 * bounded): key packets → SEIPD body (partial lengths) → CFB decipher → quick check
 * on the random prefix (wrong passphrase fails here, before any plaintext) → MDC
 * hold-back of the last 22 bytes with a running SHA-1 → inner packets (compressed →
 * inflate → literal data). The MDC is checked when the data ends: consumers stage the
 * plaintext and commit nothing before the generator has finished without error.
 */
import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflate, createInflateRaw } from 'node:zlib';
import { DecryptError, FormatError, IntegrityError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { cipherInfo, isKnownCipher } from './ciphers.js';
import { TAG, packetBody, readBody, readPacketHead, type PacketHead } from './packets.js';
import { decodeCount, deriveKey, type S2kSpec } from './s2k.js';

export interface DecryptKeys {
  /** Passphrase for SKESK (symmetric) messages. */
  passphrase?: Buffer;
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

/** Session key candidates from one SKESK packet and a passphrase. */
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

/** Runs chunks through a Node duplex (zlib) as an async generator. */
async function* through(src: AsyncIterable<Buffer>, t: Duplex): AsyncGenerator<Buffer> {
  let failure: unknown;
  const done = pipeline(Readable.from(src, { objectMode: false }), t).catch((e: unknown) => {
    failure = e;
  });
  try {
    for await (const c of t) yield c as Buffer;
  } catch (e) {
    await done;
    throw failure ?? e;
  }
  await done;
  if (failure) throw failure;
}

/** Holds back the trailing MDC packet, hashing everything before it. */
async function* stripMdc(src: AsyncIterable<Buffer>, prefix: Buffer): AsyncGenerator<Buffer> {
  const sha1 = createHash('sha1').update(prefix);
  let tail = Buffer.alloc(0);
  for await (const c of src) {
    const all = tail.length === 0 ? c : Buffer.concat([tail, c]);
    if (all.length <= 22) {
      tail = Buffer.from(all);
      continue;
    }
    const out = all.subarray(0, all.length - 22);
    tail = Buffer.from(all.subarray(all.length - 22));
    sha1.update(out);
    yield out;
  }
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
  const d = createDecipheriv(info.name, sk.key, Buffer.alloc(info.blockLen));
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

/** Parses the inner packets and yields literal data. */
async function* innerLiteral(src: AsyncIterable<Buffer>, depth = 0): AsyncGenerator<Buffer> {
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
        if (algo === 0) yield* innerLiteral(body.rest(), depth + 1);
        else if (algo === 1) yield* innerLiteral(through(body.rest(), createInflateRaw()), depth + 1);
        else if (algo === 2) yield* innerLiteral(through(body.rest(), createInflate()), depth + 1);
        else throw new FormatError(algo === 3 ? 'BZip2-compressed OpenPGP data is not supported' : `unknown OpenPGP compression algorithm ${algo}`);
        sawLiteral = true;
        break;
      }
      case TAG.LITERAL: {
        const body = new ByteReader(packetBody(r, head));
        const hdr = await body.readExact(2, () => new FormatError('literal packet truncated'));
        await body.readExact(hdr[1]! + 4, () => new FormatError('literal packet truncated'));
        yield* body.rest();
        sawLiteral = true;
        break;
      }
      case TAG.ONE_PASS_SIG:
      case TAG.SIGNATURE:
      case TAG.MARKER:
        await readBody(r, head);
        break;
      default:
        throw new FormatError(`unexpected OpenPGP packet type ${head.tag} inside the encrypted data`);
    }
  }
  if (depth === 0 && !sawLiteral) throw new FormatError('OpenPGP message holds no data');
}

/**
 * Decrypts one OpenPGP message and yields its literal data. Throws DecryptError for a
 * wrong passphrase/key (before yielding anything), IntegrityError when the MDC fails
 * (at the end), FormatError for malformed packets.
 */
export async function* decryptMessage(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, keys: DecryptKeys): AsyncGenerator<Buffer> {
  const r = new ByteReader(source);
  const skesks: Buffer[] = [];
  let pkesks = 0;
  for (;;) {
    const head = await readPacketHead(r);
    if (!head) throw new FormatError('OpenPGP message has no encrypted data');
    if (head.tag === TAG.SKESK) skesks.push(await readBody(r, head));
    else if (head.tag === TAG.PKESK) {
      await readBody(r, head);
      pkesks++;
    } else if (head.tag === TAG.MARKER) await readBody(r, head);
    else if (head.tag === TAG.SEIPD || head.tag === TAG.SED) {
      if (head.tag === TAG.SED) throw new FormatError('old OpenPGP data without integrity protection (SED) is not supported');
      if (skesks.length === 0) {
        throw new DecryptError(pkesks > 0 ? 'encrypted to a public key: a secret key is needed (--decrypt-key)' : 'no key packet found', { code: 'NO_KEY' });
      }
      if (!keys.passphrase) throw new DecryptError('passphrase-encrypted: set PASSPHRASE or --passphrase-file', { code: 'NO_PASSPHRASE' });
      let lastErr: unknown;
      let sk: SessionKey | undefined;
      for (const body of skesks) {
        try {
          sk = sessionKeyFromSkesk(body, keys.passphrase);
          break;
        } catch (e) {
          lastErr = e;
        }
      }
      if (!sk) throw lastErr;
      yield* innerLiteral(decryptSeipd(r, head, sk));
      return;
    } else if (head.tag === TAG.LITERAL || head.tag === TAG.COMPRESSED) {
      throw new FormatError('OpenPGP message is not encrypted');
    } else {
      throw new FormatError(`unexpected OpenPGP packet type ${head.tag}`);
    }
  }
}
