/**
 * OpenPGP keys from armored files, via openpgp.js: public keys to encrypt to or verify
 * with, secret keys to decrypt or sign with (unlocked with their passphrase). Key
 * handling stays in openpgp.js; the bulk data path never touches it.
 */
import { readFile } from 'node:fs/promises';
import type * as openpgp from 'openpgp';

/** openpgp.js is loaded only when keys are used (it costs ~16 MB of memory at import). */
export const loadOpenpgp = (): Promise<typeof openpgp> => import('openpgp');
import { ConfigError, DecryptError } from '../errors.js';

export type PublicKey = openpgp.PublicKey | openpgp.PrivateKey;
export type SecretKey = openpgp.PrivateKey;

async function readArmored(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

/** Reads one or more public keys (a secret key file works too: its public part is used). */
export async function readPublicKeys(file: string, what = 'key file'): Promise<PublicKey[]> {
  const text = await readArmored(file, what);
  const openpgp = await loadOpenpgp();
  try {
    if (text.includes('PRIVATE KEY BLOCK')) return await openpgp.readPrivateKeys({ armoredKeys: text });
    return await openpgp.readKeys({ armoredKeys: text });
  } catch (e) {
    throw new ConfigError(`${what} ${file}: not an armored OpenPGP key (${(e as Error).message})`, { cause: e });
  }
}

/** Reads a secret key and unlocks it with `passphrase` when it is protected. */
export async function readSecretKey(file: string, passphrase: string | undefined, what = 'secret key'): Promise<SecretKey> {
  const text = await readArmored(file, what);
  const openpgp = await loadOpenpgp();
  let key: SecretKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: text });
  } catch (e) {
    throw new ConfigError(`${what} ${file}: not an armored OpenPGP secret key (${(e as Error).message})`, { cause: e });
  }
  if (key.isDecrypted()) return key;
  if (!passphrase) throw new ConfigError(`${what} ${file} is protected: give its passphrase`);
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase });
  } catch (e) {
    throw new DecryptError(`${what} ${file}: wrong passphrase for the key`, { code: 'BAD_KEY_PASSPHRASE', cause: e });
  }
}

/** 16-hex-digit key IDs of every key and subkey (for matching PKESK and issuers). */
export function keyIds(keys: PublicKey[]): Set<string> {
  const out = new Set<string>();
  for (const k of keys) for (const id of k.getKeyIDs()) out.add(id.toHex());
  return out;
}

export function fingerprint(k: PublicKey): string {
  return k.getFingerprint().toUpperCase();
}
