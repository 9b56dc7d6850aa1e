/** Test-only OpenPGP keys made with real gpg in a private keyring. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gpgEnv, requireTool, runOk } from './tools.js';

export interface TestKey {
  fpr: string;
  pub: string;
  sec: string;
  env: NodeJS.ProcessEnv;
}

let n = 0;

/** Generates a key in `dir`'s keyring (rsa: sign+encrypt; ed25519: + cv25519 subkey). */
export function makeKey(dir: string, type: 'rsa' | 'ed25519', passphrase = ''): TestKey {
  requireTool('gpg');
  const env = gpgEnv(dir);
  const uid = `tapechain test ${type} ${++n} <test${n}@tapechain.invalid>`;
  const base = ['--batch', '--pinentry-mode', 'loopback', '--passphrase', passphrase];
  if (type === 'rsa') runOk('gpg', [...base, '--quick-gen-key', uid, 'rsa2048', 'sign,encrypt', 'never'], { env });
  else runOk('gpg', [...base, '--quick-gen-key', uid, 'ed25519', 'sign', 'never'], { env });
  const fpr = runOk('gpg', ['--list-keys', '--with-colons', uid], { env })
    .toString()
    .split('\n')
    .find((l) => l.startsWith('fpr'))!
    .split(':')[9]!;
  if (type === 'ed25519') runOk('gpg', [...base, '--quick-add-key', fpr, 'cv25519', 'encr', 'never'], { env });
  const pub = join(dir, `${fpr}.pub.asc`);
  const sec = join(dir, `${fpr}.sec.asc`);
  writeFileSync(pub, runOk('gpg', ['--armor', '--export', fpr], { env }));
  writeFileSync(sec, runOk('gpg', [...base, '--armor', '--export-secret-keys', fpr], { env }));
  return { fpr, pub, sec, env };
}
