import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptMessage } from '../../../src/crypto/decrypt.js';
import { SymmetricEncryptor } from '../../../src/crypto/encrypt.js';
import { DecryptError, FormatError, IntegrityError } from '../../../src/errors.js';
import { tempDirs } from '../../helpers/tmp.js';
import { gpgEnv, requireTool, runOk } from '../../helpers/tools.js';

const tmp = tempDirs();
requireTool('gpg');

function data(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

async function encrypt(plain: Buffer, pass: string, level: number, codedCount = 96): Promise<Buffer> {
  const parts: Buffer[] = [];
  const enc = new SymmetricEncryptor(Buffer.from(pass), { codedCount });
  await pipeline([Readable.from([plain]), ...(await enc.transforms({ compressLevel: level })), new Writable({ write(c, _e, cb) { parts.push(c); cb(); } })]);
  return Buffer.concat(parts);
}

async function decrypt(msg: Buffer, pass: string, chunk = 1 << 16): Promise<Buffer> {
  async function* src() {
    for (let i = 0; i < msg.length; i += chunk) yield msg.subarray(i, i + chunk);
  }
  const out: Buffer[] = [];
  for await (const c of decryptMessage(src(), { passphrase: Buffer.from(pass) })) out.push(c);
  return Buffer.concat(out);
}

function gpgDecrypt(dir: string, msg: Buffer, pass: string): Buffer {
  const f = join(dir, 'msg.gpg');
  writeFileSync(f, msg);
  return runOk('gpg', ['--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase', pass, '--decrypt', f], { env: gpgEnv(dir) });
}

describe('our OpenPGP output', () => {
  test.each([
    [0, 0],
    [1, 6],
    [70000, 0],
    [70000, 6],
    [3 * 1024 * 1024 + 5, 1],
  ])('%d bytes, compress level %d: gpg decrypts it, and so do we', async (n, level) => {
    const dir = tmp('pgp');
    const plain = data(n);
    const msg = await encrypt(plain, 'pässword', level);
    expect(gpgDecrypt(dir, msg, 'pässword').equals(plain)).toBe(true);
    expect((await decrypt(msg, 'pässword', 513)).equals(plain)).toBe(true);
  });

  test('incompressible data spans several 1 MiB partial bodies in every layer: gpg decrypts it, and so do we', async () => {
    const dir = tmp('pgp-partial');
    const plain = randomBytes(2.5 * 1024 * 1024);
    const msg = await encrypt(plain, 'pw', 1);
    // After the SKESK packet: SEIPD (0xd2) with a partial length of 2^20 (0xe0 | 20).
    const seipd = 2 + msg[1]!;
    expect([msg[0], msg[seipd], msg[seipd + 1]]).toEqual([0xc3, 0xd2, 0xf4]);
    expect(gpgDecrypt(dir, msg, 'pw').equals(plain)).toBe(true);
    expect((await decrypt(msg, 'pw', 100_000)).equals(plain)).toBe(true);
  });

  test('packets are v4 SKESK, SEIPD v1 with MDC, no AEAD', async () => {
    const dir = tmp('pkt');
    const f = join(dir, 'm.gpg');
    writeFileSync(f, await encrypt(data(1000), 'pw', 6));
    const dump = runOk('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', 'pw', '--list-packets', f], { env: gpgEnv(dir) }).toString();
    expect(dump).toMatch(/symkey enc packet: version 4, cipher 9, aead 0,s2k 3/);
    expect(dump).toMatch(/mdc_method: 2/);
    expect(dump).not.toMatch(/aead encrypted/i);
  });

  test('wrong passphrase fails before any plaintext, as DecryptError', async () => {
    const msg = await encrypt(data(100000), 'right', 6);
    const it = decryptMessage([msg], { passphrase: Buffer.from('wrong') });
    await expect(it.next()).rejects.toBeInstanceOf(DecryptError);
  });

  test('a flipped byte is detected', async () => {
    const msg = await encrypt(data(100000), 'pw', 0);
    const bad = Buffer.from(msg);
    bad[bad.length - 5000] = bad[bad.length - 5000]! ^ 1;
    await expect(decrypt(bad, 'pw')).rejects.toBeInstanceOf(IntegrityError);
  });

  test('a truncated message is detected', async () => {
    const msg = await encrypt(data(100000), 'pw', 0);
    await expect(decrypt(msg.subarray(0, msg.length - 3000), 'pw')).rejects.toThrow(/truncated|modification/);
  });

  test('garbage is a FormatError', async () => {
    await expect(decrypt(Buffer.from('not openpgp at all'), 'pw')).rejects.toBeInstanceOf(FormatError);
  });
});

describe('reading what gpg wrote', () => {
  test.each([
    ['AES256', 'zip', 'SHA1'],
    ['AES256', 'zlib', 'SHA256'],
    ['AES128', 'uncompressed', 'SHA512'],
    ['AES192', 'zip', 'SHA1'],
  ])('%s, %s, S2K %s', async (cipher, algo, digest) => {
    const dir = tmp('gpg');
    const plain = data(300000);
    const f = join(dir, 'plain');
    writeFileSync(f, plain);
    runOk(
      'gpg',
      ['--batch', '--pinentry-mode', 'loopback', '--passphrase', 'pw', '--symmetric', '--cipher-algo', cipher, '--compress-algo', algo, '--s2k-digest-algo', digest, '--force-mdc', '-o', join(dir, 'out.gpg'), f],
      { env: gpgEnv(dir) },
    );
    expect((await decrypt(readFileSync(join(dir, 'out.gpg')), 'pw', 511)).equals(plain)).toBe(true);
  });

  test('streamed from a pipe (partial lengths, indeterminate compressed packet)', async () => {
    const dir = tmp('pipe');
    const plain = data(1 << 20);
    const out = runOk('sh', ['-c', `cat | gpg --batch --pinentry-mode loopback --passphrase pw --symmetric --compress-algo zip`], { env: gpgEnv(dir), input: plain });
    expect((await decrypt(out, 'pw')).equals(plain)).toBe(true);
  });
});
