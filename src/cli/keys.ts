/**
 * Passphrases and key files from the command line and environment, as duplicity names
 * them: PASSPHRASE (or TAPECHAIN_PASSPHRASE, --passphrase-file) for symmetric encryption
 * and to unlock --decrypt-key; SIGN_PASSPHRASE (or --sign-passphrase-file) for --sign-key.
 */
import { readFileSync } from 'node:fs';
import { loadOpenpgp, readPublicKeys, readSecretKey, type PublicKey, type SecretKey } from '../crypto/keys.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { Signer, type SigningKeyLike } from '../crypto/signature-packet.js';
import type { DecryptKeys } from '../crypto/decrypt.js';
import { PublicKeyEncryptor, SymmetricEncryptor, type MessageEncryptor } from '../crypto/encrypt.js';
import { ConfigError, ExitCode, UsageError } from '../errors.js';
import { readingKeys as policyKeys } from '../repo/reading-keys.js';
import type { CliIo } from './io.js';

export interface KeyFlags {
  passphraseFile?: string;
  signPassphraseFile?: string;
  encryptKey?: string[];
  signKey?: string;
  decryptKey?: string;
  publicKey?: string[];
  requireSignatures?: boolean;
}

function fromFile(file: string, what: string): string {
  try {
    // One trailing newline is not part of the passphrase (files made with echo).
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new ConfigError(`${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

export function findPassphrase(flags: KeyFlags, io: CliIo): Buffer | undefined {
  if (flags.passphraseFile) return Buffer.from(fromFile(flags.passphraseFile, '--passphrase-file'), 'utf8');
  const v = io.env['PASSPHRASE'] ?? io.env['TAPECHAIN_PASSPHRASE'];
  return v === undefined || v === '' ? undefined : Buffer.from(v, 'utf8');
}

function signPassphrase(flags: KeyFlags, io: CliIo): string | undefined {
  if (flags.signPassphraseFile) return fromFile(flags.signPassphraseFile, '--sign-passphrase-file');
  return io.env['SIGN_PASSPHRASE'] || findPassphrase(flags, io)?.toString('utf8');
}

export async function signingKey(flags: KeyFlags, io: CliIo): Promise<{ key: SecretKey; signer: Signer } | undefined> {
  if (!flags.signKey) return undefined;
  const key = await readSecretKey(flags.signKey, signPassphrase(flags, io), '--sign-key');
  const sub = await key.getSigningKey();
  return { key, signer: new Signer(sub as unknown as SigningKeyLike) };
}

export async function encryptionKeys(flags: KeyFlags): Promise<PublicKey[]> {
  const out: PublicKey[] = [];
  for (const f of flags.encryptKey ?? []) out.push(...(await readPublicKeys(f, '--encrypt-key')));
  return out;
}

/**
 * Keys to read archives with, from the flags: the passphrase, secret keys
 * (--decrypt-key, and a --sign-key, which is often the same key), and the public keys
 * signatures may come from; which of them read a chain is repo/reading-keys.ts's rule.
 * With no signer named, the one pinned in `cache` (by this machine's backups) is
 * required; with none pinned either, signatures are read unchecked and their signers
 * collected (reportUnverified) — unless --require-signatures.
 */
export async function readingKeys(flags: KeyFlags, io: CliIo, signing?: SecretKey, cache?: ArchiveCache): Promise<DecryptKeys> {
  const pass = findPassphrase(flags, io);
  const secretKeys: SecretKey[] = [];
  if (flags.decryptKey) secretKeys.push(await readSecretKey(flags.decryptKey, pass?.toString('utf8'), '--decrypt-key'));
  if (signing) secretKeys.push(signing);
  const publicKeys: PublicKey[] = [];
  // a --sign-key given without its secret (the signing key of a reading command): its public part
  if (!signing && flags.signKey) publicKeys.push(...(await readPublicKeys(flags.signKey, '--sign-key')));
  publicKeys.push(...(await encryptionKeys(flags)));
  for (const f of flags.publicKey ?? []) publicKeys.push(...(await readPublicKeys(f, '--public-key')));
  const signersNamed = flags.signKey !== undefined || (flags.publicKey?.length ?? 0) > 0;
  // named keys replace the pin: it is not even read then
  const pinned = !signersNamed && cache ? await pinnedKey(cache) : undefined;
  return policyKeys({
    ...(pass ? { passphrase: pass } : {}),
    secretKeys,
    publicKeys,
    signersNamed,
    ...(pinned ? { pinned } : {}),
    requireSignatures: flags.requireSignatures === true,
  });
}

async function pinnedKey(cache: ArchiveCache): Promise<PublicKey | undefined> {
  const armored = await cache.pinnedSigner();
  if (!armored) return undefined;
  try {
    const openpgp = await loadOpenpgp();
    return await openpgp.readKey({ armoredKey: armored });
  } catch (e) {
    throw new ConfigError(`the signer pinned in ${cache.signerFile} cannot be read (${(e as Error).message}): remove that file, or give --sign-key/--public-key`, { cause: e });
  }
}

/**
 * After a read without any key to check signatures: the signers once, exit 1 (the data
 * decrypted and its hashes held; who signed it is unproven).
 */
export function reportUnverified(keys: DecryptKeys, io: CliIo, setExit: (c: number) => void): void {
  const ids = [...(keys.unverifiedSigners ?? [])];
  if (ids.length === 0) return;
  io.stderr(
    `warning: signed by key ${ids.join(', ')}, not checked: no public key was given or pinned for this target. ` +
      `Check them with --public-key FILE (or --sign-key FILE); --require-signatures makes an unchecked signature an error\n`,
  );
  setExit(ExitCode.WARNINGS);
}

/**
 * The encryptor a writing command (backup, repair) uses: public keys (--encrypt-key),
 * else the passphrase; none with --no-encryption. The signer signs inside it.
 */
export async function writingKeys(flags: KeyFlags & { encryption: boolean }, io: CliIo): Promise<{ signing: Awaited<ReturnType<typeof signingKey>>; encryptor: MessageEncryptor | null }> {
  const signing = await signingKey(flags, io);
  const recipients = await encryptionKeys(flags);
  const signer = signing ? { signer: signing.signer } : {};
  if (!flags.encryption) {
    if (recipients.length || signing) throw new UsageError('--no-encryption cannot be combined with --encrypt-key or --sign-key');
    return { signing, encryptor: null };
  }
  if (recipients.length) return { signing, encryptor: new PublicKeyEncryptor(recipients, signer) };
  const pass = findPassphrase(flags, io);
  if (!pass) throw new ConfigError('no passphrase: set PASSPHRASE or use --passphrase-file (or --encrypt-key, or --no-encryption)');
  return { signing, encryptor: new SymmetricEncryptor(pass, signer) };
}
