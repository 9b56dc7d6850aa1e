/**
 * OpenPGP v4 binary-document signatures (type 0x00), made and checked on node:crypto.
 *
 * openpgp.js would buffer a whole volume to sign it (its RSA path hashes the complete
 * data in one call), so the digest is computed here as the data streams by and only
 * the public-key operation runs at the end: RSA PKCS#1 v1.5 (gpg 2.2's default keys)
 * and EdDSA over Ed25519 (gpg 2.3+ defaults). Key material comes from openpgp.js key
 * objects. Layout per RFC 4880 5.2.3/5.2.4:
 *   hashed = version 4, type, pk algo, hash algo, hashed-subpacket length, subpackets
 *   digest = H(data || hashed || 0x04 0xFF || uint32(hashed.length))
 */
import { createHash, createPrivateKey, createPublicKey, privateEncrypt, publicDecrypt, sign as edSign, verify as edVerify, constants, type Hash, type JsonWebKey, type KeyObject } from 'node:crypto';
import { ConfigError, FormatError, IntegrityError, InternalError } from '../errors.js';
import { HASH_NAMES } from './s2k.js';

const SHA512 = 10;
const ALGO = { RSA: 1, RSA_SIGN: 3, EDDSA_LEGACY: 22, ED25519: 27 } as const;
const ED25519_OID = '2b06010401da470f01';

/** DER DigestInfo prefixes for PKCS#1 v1.5 (RFC 8017 9.2 note 1). */
const DIGEST_INFO: Record<number, string> = {
  2: '3021300906052b0e03021a05000414',
  8: '3031300d060960864801650304020105000420',
  9: '3041300d060960864801650304020205000430',
  10: '3051300d060960864801650304020305000440',
  11: '302d300d06096086480165030402040500041c',
};

interface KeyPacketLike {
  algorithm: number;
  publicParams: Record<string, unknown>;
  privateParams?: Record<string, unknown> | null;
  getKeyID(): { toHex(): string; write(): Uint8Array };
  getFingerprintBytes(): Uint8Array | null;
}

/** The part of an openpgp.js (sub)key these functions use. */
export interface SigningKeyLike {
  keyPacket: KeyPacketLike;
  getKeyID(): { toHex(): string; write(): Uint8Array };
}

const b64u = (b: Uint8Array | bigint): string => {
  if (typeof b === 'bigint') {
    let hex = b.toString(16);
    if (hex.length % 2) hex = '0' + hex;
    return Buffer.from(hex, 'hex').toString('base64url');
  }
  return Buffer.from(b).toString('base64url');
};
const big = (b: Uint8Array): bigint => BigInt('0x' + (Buffer.from(b).toString('hex') || '0'));

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [a % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

function nodeKey(p: KeyPacketLike, priv: boolean): KeyObject {
  const pub = p.publicParams as Record<string, Uint8Array>;
  if (p.algorithm === ALGO.RSA || p.algorithm === ALGO.RSA_SIGN) {
    const jwk: Record<string, string> = { kty: 'RSA', n: b64u(pub['n']!), e: b64u(pub['e']!) };
    if (!priv) return createPublicKey({ key: jwk, format: 'jwk' });
    const s = p.privateParams as Record<string, Uint8Array>;
    const d = big(s['d']!);
    const P = big(s['p']!);
    const Q = big(s['q']!);
    Object.assign(jwk, { d: b64u(d), p: b64u(P), q: b64u(Q), dp: b64u(d % (P - 1n)), dq: b64u(d % (Q - 1n)), qi: b64u(modInverse(Q, P)) });
    return createPrivateKey({ key: jwk, format: 'jwk' });
  }
  if (p.algorithm === ALGO.EDDSA_LEGACY || p.algorithm === ALGO.ED25519) {
    let x: Uint8Array;
    if (p.algorithm === ALGO.EDDSA_LEGACY) {
      const oid = (pub['oid'] as unknown as { toHex(): string }).toHex();
      if (oid !== ED25519_OID) throw new ConfigError('only Ed25519 EdDSA keys are supported for signatures');
      x = pub['Q']!.subarray(1); // 0x40 prefix
    } else x = pub['A']!;
    const jwk: Record<string, string> = { kty: 'OKP', crv: 'Ed25519', x: b64u(x) };
    if (!priv) return createPublicKey({ key: jwk, format: 'jwk' });
    const s = p.privateParams as Record<string, Uint8Array>;
    jwk['d'] = b64u(s['seed']!);
    return createPrivateKey({ key: jwk, format: 'jwk' });
  }
  throw new ConfigError(`signing/verifying with OpenPGP key algorithm ${p.algorithm} is not supported (use an RSA or Ed25519 key)`);
}

function mpi(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  const bits = v.length === 0 ? 0 : (v.length - 1) * 8 + (32 - Math.clz32(v[0]!));
  const head = Buffer.alloc(2);
  head.writeUInt16BE(bits);
  return Buffer.concat([head, v]);
}

function subpacket(type: number, body: Buffer): Buffer {
  if (body.length + 1 >= 192) throw new InternalError('signature subpacket too long for a one-byte length');
  return Buffer.concat([Buffer.from([body.length + 1, type]), body]);
}

/**
 * What a worker thread needs to sign as the main thread's Signer does: structured-clone
 * data (a KeyObject does not cross threads; its JWK does). It holds the unlocked key.
 */
export interface SignerWire {
  pkAlgo: number;
  keyId: Uint8Array;
  fingerprint: Uint8Array | null;
  privateJwk: JsonWebKey;
}

/** A streaming signer: feed the literal data, then take the signature packet body. */
export class Signer {
  readonly #node: KeyObject;
  readonly #fingerprint: Uint8Array | null;
  readonly keyId: Buffer;
  readonly pkAlgo: number;
  readonly hashAlgo = SHA512;

  constructor(key: SigningKeyLike | SignerWire) {
    if ('keyPacket' in key) {
      this.pkAlgo = key.keyPacket.algorithm;
      this.#node = nodeKey(key.keyPacket, true);
      this.keyId = Buffer.from(key.getKeyID().write());
      this.#fingerprint = key.keyPacket.getFingerprintBytes();
    } else {
      this.pkAlgo = key.pkAlgo;
      this.#node = createPrivateKey({ key: key.privateJwk, format: 'jwk' });
      this.keyId = Buffer.from(key.keyId);
      this.#fingerprint = key.fingerprint;
    }
  }

  /** The signer as data for a worker thread. */
  wire(): SignerWire {
    return { pkAlgo: this.pkAlgo, keyId: this.keyId, fingerprint: this.#fingerprint, privateJwk: this.#node.export({ format: 'jwk' }) };
  }

  /** The one-pass signature packet body that precedes the literal packet. */
  onePassBody(): Buffer {
    return Buffer.concat([Buffer.from([3, 0x00, this.hashAlgo, this.pkAlgo]), this.keyId, Buffer.from([1])]);
  }

  newHash(): Hash {
    return createHash(HASH_NAMES[this.hashAlgo]!);
  }

  /** The signature packet body, given the hash that has seen all literal data. */
  finish(h: Hash, created = Math.floor(Date.now() / 1000)): Buffer {
    const time = Buffer.alloc(4);
    time.writeUInt32BE(created);
    const fpr = this.#fingerprint;
    const hashedSub = Buffer.concat([subpacket(2, time), ...(fpr ? [subpacket(33, Buffer.concat([Buffer.from([4]), Buffer.from(fpr)]))] : [])]);
    const hashedLen = Buffer.alloc(2);
    hashedLen.writeUInt16BE(hashedSub.length);
    const hashed = Buffer.concat([Buffer.from([4, 0x00, this.pkAlgo, this.hashAlgo]), hashedLen, hashedSub]);
    const trailer = Buffer.alloc(6);
    trailer[0] = 4;
    trailer[1] = 0xff;
    trailer.writeUInt32BE(hashed.length, 2);
    const digest = h.update(hashed).update(trailer).digest();
    let mpis: Buffer;
    if (this.pkAlgo === ALGO.RSA || this.pkAlgo === ALGO.RSA_SIGN) {
      const em = Buffer.concat([Buffer.from(DIGEST_INFO[this.hashAlgo]!, 'hex'), digest]);
      mpis = mpi(privateEncrypt({ key: this.#node, padding: constants.RSA_PKCS1_PADDING }, em));
    } else {
      const sig = edSign(null, digest, this.#node);
      mpis = this.pkAlgo === ALGO.ED25519 ? sig : Buffer.concat([mpi(sig.subarray(0, 32)), mpi(sig.subarray(32))]);
    }
    const unhashed = subpacket(16, this.keyId);
    const unhashedLen = Buffer.alloc(2);
    unhashedLen.writeUInt16BE(unhashed.length);
    return Buffer.concat([hashed, unhashedLen, unhashed, digest.subarray(0, 2), mpis]);
  }
}

export interface ParsedSignature {
  sigType: number;
  pkAlgo: number;
  hashAlgo: number;
  /** The hashed part (version … hashed subpackets), hashed after the data. */
  hashed: Buffer;
  /** Issuer key ID (hex) from subpacket 16, or the tail of the fingerprint (33). */
  issuer?: string;
  created?: number;
  left16: Buffer;
  mpis: Buffer[];
}

function readMpis(b: Buffer, off: number, count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    if (off + 2 > b.length) throw new FormatError('signature packet truncated');
    const bits = b.readUInt16BE(off);
    const len = Math.ceil(bits / 8);
    out.push(b.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return out;
}

function scanSubpackets(b: Buffer, into: { issuer?: string; created?: number }): void {
  let off = 0;
  while (off < b.length) {
    let len = b[off]!;
    off++;
    if (len >= 192 && len < 255) {
      len = ((len - 192) << 8) + b[off]! + 192;
      off++;
    } else if (len === 255) {
      len = b.readUInt32BE(off);
      off += 4;
    }
    const type = b[off]! & 0x7f;
    const body = b.subarray(off + 1, off + len);
    if (type === 16 && body.length === 8) into.issuer ??= body.toString('hex');
    if (type === 33 && body.length >= 9) into.issuer ??= body.subarray(body.length - 8).toString('hex');
    if (type === 2 && body.length === 4) into.created = body.readUInt32BE(0);
    off += len;
  }
}

export function parseSignature(body: Buffer): ParsedSignature {
  if (body[0] !== 4) throw new FormatError(`unsupported OpenPGP signature version ${body[0]}`);
  const hashedLen = body.readUInt16BE(4);
  const hashed = body.subarray(0, 6 + hashedLen);
  const unLen = body.readUInt16BE(6 + hashedLen);
  const un = body.subarray(8 + hashedLen, 8 + hashedLen + unLen);
  const rest = 8 + hashedLen + unLen;
  const out: ParsedSignature = { sigType: body[1]!, pkAlgo: body[2]!, hashAlgo: body[3]!, hashed, left16: body.subarray(rest, rest + 2), mpis: [] };
  scanSubpackets(hashed.subarray(6), out);
  scanSubpackets(un, out);
  const n = out.pkAlgo === ALGO.RSA || out.pkAlgo === ALGO.RSA_SIGN ? 1 : out.pkAlgo === ALGO.ED25519 ? 0 : 2;
  out.mpis = n === 0 ? [body.subarray(rest + 2, rest + 66)] : readMpis(body, rest + 2, n);
  return out;
}

/** Checks a parsed signature against the hash of the data and a candidate key. */
export function verifySignature(sig: ParsedSignature, h: Hash, key: SigningKeyLike): void {
  const trailer = Buffer.alloc(6);
  trailer[0] = 4;
  trailer[1] = 0xff;
  trailer.writeUInt32BE(sig.hashed.length, 2);
  const digest = h.update(sig.hashed).update(trailer).digest();
  const bad = () => new IntegrityError(`bad OpenPGP signature (key ${key.getKeyID().toHex().toUpperCase()})`, { code: 'SIGNATURE_INVALID' });
  if (!digest.subarray(0, 2).equals(sig.left16)) throw bad();
  const pub = nodeKey(key.keyPacket, false);
  if (sig.pkAlgo === ALGO.RSA || sig.pkAlgo === ALGO.RSA_SIGN) {
    const prefix = DIGEST_INFO[sig.hashAlgo];
    if (!prefix) throw new FormatError(`unsupported signature hash algorithm ${sig.hashAlgo}`);
    let em: Buffer;
    const size = Math.ceil((pub.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
    const s = sig.mpis[0]!;
    try {
      em = publicDecrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, s.length < size ? Buffer.concat([Buffer.alloc(size - s.length), s]) : s);
    } catch {
      throw bad();
    }
    if (!em.equals(Buffer.concat([Buffer.from(prefix, 'hex'), digest]))) throw bad();
    return;
  }
  const pad = (b: Buffer) => Buffer.concat([Buffer.alloc(Math.max(0, 32 - b.length)), b]);
  const raw = sig.pkAlgo === ALGO.ED25519 ? sig.mpis[0]! : Buffer.concat([pad(sig.mpis[0]!), pad(sig.mpis[1]!)]);
  if (!edVerify(null, digest, pub, raw)) throw bad();
}
