/**
 * Which keys read a chain: the policy, apart from where the keys come from (the CLI
 * reads them from files and the environment). A secret key decrypts and also vouches
 * for its own signatures; the keys data was encrypted to may have signed it too; and
 * naming a signer (or a public key to check against) makes signatures mandatory, so a
 * chain without them, or signed by another key, is refused rather than trusted. With
 * none named, the signer pinned for the target (by this machine's backups) takes that
 * place; with none pinned either, signatures are read unchecked and their signers
 * collected for the caller to report — unless signatures are required.
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
  signersNamed: boolean;
  /** The signer pinned for the target, if any: checked against when none is named. */
  pinned?: PublicKey;
  /** Refuse a file no key can check, even with none named or pinned. @default false */
  requireSignatures?: boolean;
}

export function readingKeys(m: KeyMaterial): DecryptKeys {
  const keys: DecryptKeys = {};
  if (m.passphrase) keys.passphrase = m.passphrase;
  if (m.secretKeys.length) keys.secretKeys = m.secretKeys;
  const pinned = !m.signersNamed && m.pinned ? [m.pinned] : [];
  const verify = [...m.publicKeys, ...pinned, ...m.secretKeys];
  if (verify.length) keys.verifyKeys = verify;
  if (m.signersNamed || pinned.length > 0 || m.requireSignatures) keys.requireSignature = true;
  else {
    keys.tolerateUnknownSigners = true;
    keys.unverifiedSigners = new Set();
  }
  return keys;
}
