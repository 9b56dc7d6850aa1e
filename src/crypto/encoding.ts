/**
 * How stored files are encoded: OpenPGP (`.gpg`), gzip (`.gz`, --no-encryption) or
 * plain. Encoders give the transforms for one file; decoders pick by the name's suffix
 * only, as duplicity does.
 */
import { Readable, type Transform } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { decryptMessage, through, type DecryptKeys, type DecryptOptions } from './decrypt.js';
import { DEFAULT_COMPRESS_LEVEL } from './chunked-deflate.js';
import { encryptorFromWire, type EncryptorWire, type MessageEncryptor } from './encrypt.js';

export type StoredEncoding = 'gpg' | 'gz' | 'plain';

export interface Encoder {
  readonly encoding: StoredEncoding;
  /** Fresh transforms for one file. */
  transforms(): Promise<Transform[]>;
  /** The encoder as data a worker thread rebuilds it from (encoderFromWire). */
  wire(): EncoderWire;
}

export type EncoderWire = { encoding: 'gpg'; encryptor: EncryptorWire; compressLevel: number } | { encoding: 'gz'; level: number } | { encoding: 'plain' };

export function gpgEncoder(enc: MessageEncryptor, compressLevel: number): Encoder {
  return { encoding: 'gpg', transforms: () => enc.transforms({ compressLevel }), wire: () => ({ encoding: 'gpg', encryptor: enc.wire(), compressLevel }) };
}

export function gzipEncoder(level = DEFAULT_COMPRESS_LEVEL): Encoder {
  return { encoding: 'gz', transforms: async () => [createGzip({ level })], wire: () => ({ encoding: 'gz', level }) };
}

export const plainEncoder: Encoder = { encoding: 'plain', transforms: async () => [], wire: () => ({ encoding: 'plain' }) };

export async function encoderFromWire(w: EncoderWire): Promise<Encoder> {
  if (w.encoding === 'gpg') return gpgEncoder(await encryptorFromWire(w.encryptor), w.compressLevel);
  return w.encoding === 'gz' ? gzipEncoder(w.level) : plainEncoder;
}

/** Decodes a stored file's bytes by its encoding. */
export async function* decodeStored(encoding: StoredEncoding, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, keys: DecryptKeys, opts: DecryptOptions = {}): AsyncGenerator<Buffer> {
  if (encoding === 'gpg') {
    yield* decryptMessage(source, keys, opts);
  } else if (encoding === 'gz') {
    yield* through(Readable.from(source) as AsyncIterable<Buffer>, createGunzip(), 'gzip data');
  } else {
    for await (const c of source) yield Buffer.from(c);
  }
}
