/**
 * How stored files are encoded: OpenPGP (`.gpg`), gzip (`.gz`, --no-encryption) or
 * plain. Encoders give the transforms for one file; decoders pick by the name's suffix
 * only, as duplicity does.
 */
import { Readable, type Transform } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { decryptMessage, through, type DecryptKeys, type DecryptOptions } from './decrypt.js';
import { DEFAULT_COMPRESS_LEVEL } from './chunked-deflate.js';
import type { MessageEncryptor } from './encrypt.js';

export type StoredEncoding = 'gpg' | 'gz' | 'plain';

export interface Encoder {
  readonly encoding: StoredEncoding;
  /** Fresh transforms for one file. */
  transforms(): Promise<Transform[]>;
}

export function gpgEncoder(enc: MessageEncryptor, compressLevel: number): Encoder {
  return { encoding: 'gpg', transforms: () => enc.transforms({ compressLevel }) };
}

export function gzipEncoder(level = DEFAULT_COMPRESS_LEVEL): Encoder {
  return { encoding: 'gz', transforms: async () => [createGzip({ level })] };
}

export const plainEncoder: Encoder = { encoding: 'plain', transforms: async () => [] };

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
