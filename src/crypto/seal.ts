/**
 * Seals: a cleartext-signed list of every file of a backup set with its size and
 * SHA-256, plus the SHA-256 of the previous set's seal (a hash chain through the
 * chain). They let anyone holding only the public key check a target offline: no
 * passphrase, no secret key, nothing decrypted. Format (UTF-8 text, signed with the
 * OpenPGP cleartext signature framework):
 *
 *   tapechain-seal 1
 *   set <full|inc> <start> <end>
 *   previous <sha256 hex | none>
 *   file <sha256 hex> <size> <name>      (one per stored file of the set)
 */
import { FormatError, IntegrityError } from '../errors.js';
import { loadOpenpgp, type PublicKey, type SecretKey } from './keys.js';

export interface SealFile {
  name: string;
  size: number;
  sha256: string;
}

export interface Seal {
  type: 'full' | 'inc';
  start: number;
  end: number;
  previous: string | null;
  files: SealFile[];
}

export function formatSeal(s: Seal): string {
  const lines = ['tapechain-seal 1', `set ${s.type} ${s.start} ${s.end}`, `previous ${s.previous ?? 'none'}`];
  for (const f of s.files) lines.push(`file ${f.sha256} ${f.size} ${f.name}`);
  return lines.join('\n') + '\n';
}

export function parseSeal(text: string, what = 'seal'): Seal {
  const bad = (m: string) => new FormatError(`${m}`, { context: { file: what }, code: 'BAD_SEAL' });
  const lines = text.replace(/\r\n/g, '\n').split('\n').filter((l) => l !== '');
  if (lines[0] !== 'tapechain-seal 1') throw bad('not a tapechain seal (version 1)');
  const set = /^set (full|inc) (\d+) (\d+)$/.exec(lines[1] ?? '');
  const prev = /^previous ([0-9a-f]{64}|none)$/.exec(lines[2] ?? '');
  if (!set || !prev) throw bad('malformed header');
  const files: SealFile[] = [];
  for (const l of lines.slice(3)) {
    const m = /^file ([0-9a-f]{64}) (\d+) (\S+)$/.exec(l);
    if (!m) throw bad(`malformed line "${l}"`);
    files.push({ sha256: m[1]!, size: Number(m[2]), name: m[3]! });
  }
  return { type: set[1] as 'full' | 'inc', start: Number(set[2]), end: Number(set[3]), previous: prev[1] === 'none' ? null : prev[1]!, files };
}

export async function signSeal(s: Seal, key: SecretKey): Promise<string> {
  const openpgp = await loadOpenpgp();
  return openpgp.sign({ message: await openpgp.createCleartextMessage({ text: formatSeal(s) }), signingKeys: key, format: 'armored' });
}

/** Checks the seal's signature against `keys`; returns the sealed list and signer. */
export async function verifySeal(armored: string, keys: PublicKey[], what = 'seal'): Promise<{ seal: Seal; keyId: string }> {
  const openpgp = await loadOpenpgp();
  let message;
  try {
    message = await openpgp.readCleartextMessage({ cleartextMessage: armored });
  } catch (e) {
    throw new FormatError(`not a cleartext-signed message (${(e as Error).message})`, { context: { file: what }, code: 'BAD_SEAL', cause: e });
  }
  const res = await openpgp.verify({ message, verificationKeys: keys, expectSigned: false });
  const sig = res.signatures[0];
  if (!sig) throw new IntegrityError(`not signed`, { context: { file: what }, code: 'SEAL_UNSIGNED' });
  try {
    await sig.verified;
  } catch (e) {
    const known = keys.some((k) => k.getKeys(sig.keyID).length > 0);
    throw new IntegrityError(known ? `${what}: bad signature` : `${what}: signed by key ${sig.keyID.toHex().toUpperCase()}, not by the given public key`, { code: 'SEAL_SIGNATURE', cause: e });
  }
  return { seal: parseSeal(String(res.data), what), keyId: sig.keyID.toHex().toUpperCase() };
}

/**
 * The seal's list without checking who signed it: for a reader with no key to check
 * against, whose hashes still catch damage (not forgery). Callers say it is unchecked.
 */
export async function readSealUnchecked(armored: string, what = 'seal'): Promise<Seal> {
  const openpgp = await loadOpenpgp();
  try {
    return parseSeal((await openpgp.readCleartextMessage({ cleartextMessage: armored })).getText(), what);
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(`not a cleartext-signed message (${(e as Error).message})`, { context: { file: what }, code: 'BAD_SEAL', cause: e });
  }
}
