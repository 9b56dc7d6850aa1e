/**
 * Which keys read a chain: the policy, apart from where the keys come from (the CLI
 * reads them from files and the environment). A secret key decrypts and also vouches
 * for its own signatures; the keys data was encrypted to may have signed it too; and
 * naming a signer (or a public key to check against) makes signatures mandatory, so a
 * chain without them, or signed by another key, is refused rather than trusted.
 */
import type { DecryptKeys } from '../crypto/decrypt.js';
import type { PublicKey, SecretKey } from '../crypto/keys.js';

export interface KeyMaterial {
  passphrase?: Buffer;
  /** Secret keys to decrypt with (a decryption key, the signing key). */
  secretKeys: SecretKey[];
  /** Public keys signatures may come from: a named signer's, other trusted ones, the recipients'. */
  publicKeys: PublicKey[];
  /** A signer or a key to check against was named: every file must be signed by one of the keys. */
  signaturesRequired: boolean;
}

export function readingKeys(m: KeyMaterial): DecryptKeys {
  const keys: DecryptKeys = {};
  if (m.passphrase) keys.passphrase = m.passphrase;
  if (m.secretKeys.length) keys.secretKeys = m.secretKeys;
  const verify = [...m.publicKeys, ...m.secretKeys];
  if (verify.length) keys.verifyKeys = verify;
  if (m.signaturesRequired) keys.requireSignature = true;
  return keys;
}
