/**
 * OpenPGP symmetric algorithm ids mapped to node:crypto CFB ciphers. The bulk data
 * path runs on node:crypto (OpenSSL), several times faster than a JS cipher.
 */
import { FormatError } from '../errors.js';

interface CipherInfo {
  /** node:crypto name of the CFB cipher. */
  name: string;
  /** The same cipher in ECB mode (for CfbDecryptor). */
  ecb: string;
  keyLen: number;
  blockLen: number;
}

const CIPHERS: Record<number, CipherInfo> = {
  7: { name: 'aes-128-cfb', ecb: 'aes-128-ecb', keyLen: 16, blockLen: 16 },
  8: { name: 'aes-192-cfb', ecb: 'aes-192-ecb', keyLen: 24, blockLen: 16 },
  9: { name: 'aes-256-cfb', ecb: 'aes-256-ecb', keyLen: 32, blockLen: 16 },
  11: { name: 'camellia-128-cfb', ecb: 'camellia-128-ecb', keyLen: 16, blockLen: 16 },
  12: { name: 'camellia-192-cfb', ecb: 'camellia-192-ecb', keyLen: 24, blockLen: 16 },
  13: { name: 'camellia-256-cfb', ecb: 'camellia-256-ecb', keyLen: 32, blockLen: 16 },
};

export const AES256 = 9;

export function cipherInfo(algo: number): CipherInfo {
  const c = CIPHERS[algo];
  if (!c) throw new FormatError(`unsupported OpenPGP cipher algorithm ${algo}${algo === 3 ? ' (CAST5)' : ''}`);
  return c;
}

export function isKnownCipher(algo: number): boolean {
  return CIPHERS[algo] !== undefined;
}
