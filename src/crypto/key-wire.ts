/**
 * Decryption keys as a message to a worker thread: openpgp.js key objects do not survive
 * a structured clone, so keys cross as armored text (a secret key as it is held, already
 * unlocked; it never leaves the process) and are read back once per thread.
 */
import type { DecryptKeys } from './decrypt.js';
import { loadOpenpgp } from './keys.js';

export interface WireKeys {
  passphrase?: Uint8Array;
  secretKeys?: string[];
  verifyKeys?: string[];
  requireSignature?: boolean;
  tolerateUnknownSigners?: boolean;
}

export function keysToWire(k: DecryptKeys): WireKeys {
  return {
    ...(k.passphrase ? { passphrase: k.passphrase } : {}),
    ...(k.secretKeys ? { secretKeys: k.secretKeys.map((s) => s.armor()) } : {}),
    ...(k.verifyKeys ? { verifyKeys: k.verifyKeys.map((s) => s.armor()) } : {}),
    ...(k.requireSignature ? { requireSignature: true } : {}),
    ...(k.tolerateUnknownSigners ? { tolerateUnknownSigners: true } : {}),
  };
}

/** Reads wire keys back (the signer policy from `w`; key objects reused while the armor is the same). */
export async function keysFromWire(w: WireKeys, reuse?: { wire: WireKeys; keys: DecryptKeys }): Promise<DecryptKeys> {
  const flags = { requireSignature: w.requireSignature ?? false, tolerateUnknownSigners: w.tolerateUnknownSigners ?? false };
  if (reuse && sameArmor(reuse.wire, w)) return { ...reuse.keys, ...flags };
  const openpgp = await loadOpenpgp();
  const keys: DecryptKeys = { ...flags };
  if (w.passphrase) keys.passphrase = Buffer.from(w.passphrase);
  if (w.secretKeys) keys.secretKeys = await Promise.all(w.secretKeys.map((armoredKey) => openpgp.readPrivateKey({ armoredKey })));
  if (w.verifyKeys) keys.verifyKeys = await Promise.all(w.verifyKeys.map((armoredKey) => openpgp.readKey({ armoredKey })));
  return keys;
}

function sameArmor(a: WireKeys, b: WireKeys): boolean {
  const pass = (x?: Uint8Array) => (x ? Buffer.from(x).toString('hex') : '');
  return pass(a.passphrase) === pass(b.passphrase) && (a.secretKeys ?? []).join() === (b.secretKeys ?? []).join() && (a.verifyKeys ?? []).join() === (b.verifyKeys ?? []).join();
}
