/**
 * Whether a run's key is the one a stored file was encrypted with: before a backup
 * continues a chain or an interrupted set, and before repair puts files back. Public
 * keys are compared by the recipients in the file's key packets (no secret needed); a
 * passphrase is proven by decrypting (the head of a volume: its session key and check
 * bytes; or a whole file).
 */
import type { ReadBackend } from '../backend/backend.js';
import { parseName } from '../chain/file-naming.js';
import { decodeStored, decryptMessage, type DecryptKeys } from '../crypto/index.js';
import { keyPacketInfo } from '../crypto/decrypt.js';
import type { MessageEncryptor } from '../crypto/encrypt.js';
import { DecryptError } from '../errors.js';

/** How a passphrase is proven: by the file's first packets, or by the whole file. */
export type PassphraseProof = 'head' | 'whole';

/** The key packets lead a message: 64 KiB holds those of dozens of recipients. */
const KEY_PACKETS_MAX = 64 * 1024;

/**
 * Why `encryptor` (null: no encryption) is not the key of stored file `name`, as a
 * predicate of it ("is not encrypted", "does not decrypt with the passphrase given");
 * undefined when it is. Data that fails otherwise than by the key (IntegrityError,
 * FormatError) is thrown.
 */
export async function keyMismatch(backend: ReadBackend, name: string, encryptor: MessageEncryptor | null, keys: DecryptKeys, proof: PassphraseProof): Promise<string | undefined> {
  const encrypted = parseName(name)?.encoding === 'gpg';
  if (!encryptor) return encrypted ? 'is encrypted, and this run is not' : undefined;
  if (!encrypted) return 'is not encrypted';
  const head: Buffer[] = [];
  for await (const c of await backend.get(name, { range: { start: 0, end: KEY_PACKETS_MAX } })) head.push(c as Buffer);
  const info = await keyPacketInfo([Buffer.concat(head)]);
  if (encryptor.mode === 'public-key') {
    const mine = [...new Set(await encryptor.recipientKeyIds())].sort();
    const theirs = [...new Set(info.recipients)].sort();
    return info.symmetric || mine.join() !== theirs.join() ? `is encrypted to ${theirs.join(', ') || 'a passphrase'}, this run to ${mine.join(', ')}` : undefined;
  }
  if (!info.symmetric) return `is encrypted to public key ${info.recipients.join(', ')}, not a passphrase`;
  const failed = await decryptFailure(backend, name, keys, proof);
  return failed === undefined ? undefined : `does not decrypt with the passphrase given (${failed})`;
}

/** Why decrypting `name` with `keys` fails; undefined when it does not. */
async function decryptFailure(backend: ReadBackend, name: string, keys: DecryptKeys, proof: PassphraseProof): Promise<string | undefined> {
  const stored = (await backend.get(name)) as AsyncIterable<Buffer>;
  const it = proof === 'whole' ? decodeStored('gpg', stored, keys)[Symbol.asyncIterator]() : decryptMessage(stored, keys);
  try {
    if (proof === 'head') await it.next(); // the session key and its check; nothing more is read
    else while (!(await it.next()).done); // decrypting the whole file proves the passphrase
    return undefined;
  } catch (e) {
    if (e instanceof DecryptError) return e.detail;
    throw e;
  } finally {
    await it.return?.(undefined);
  }
}
