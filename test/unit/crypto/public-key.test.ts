import { beforeAll, describe, expect, test } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptMessage, keyPacketInfo, type DecryptKeys } from '../../../src/crypto/decrypt.js';
import { PublicKeyEncryptor, SymmetricEncryptor, type MessageEncryptor } from '../../../src/crypto/encrypt.js';
import { readPublicKeys, readSecretKey } from '../../../src/crypto/keys.js';
import { Signer, type SigningKeyLike } from '../../../src/crypto/signature-packet.js';
import { DecryptError, IntegrityError } from '../../../src/errors.js';
import { makeKey, type TestKey } from '../../helpers/keys.js';
import { tempDirs } from '../../helpers/tmp.js';
import { run, runOk } from '../../helpers/tools.js';

const tmp = tempDirs();
let dir: string;
let rsa: TestKey;
let ed: TestKey;
let other: TestKey;

beforeAll(() => {
  dir = tmp('keys');
  rsa = makeKey(dir, 'rsa');
  ed = makeKey(dir, 'ed25519', 'key pass');
  other = makeKey(dir, 'ed25519');
});

const data = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + (i >> 9)) & 0xff));

async function encryptWith(enc: MessageEncryptor, plain: Buffer, level = 6): Promise<Buffer> {
  const parts: Buffer[] = [];
  const ts: Transform[] = await enc.transforms({ compressLevel: level });
  await pipeline([Readable.from([plain]), ...ts, new Writable({ write(c, _e, cb) { parts.push(c); cb(); } })]);
  return Buffer.concat(parts);
}

async function decrypt(msg: Buffer, keys: DecryptKeys): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of decryptMessage([msg], keys)) out.push(c);
  return Buffer.concat(out);
}

async function signerOf(k: TestKey, pass = ''): Promise<Signer> {
  const key = await readSecretKey(k.sec, pass);
  return new Signer((await key.getSigningKey()) as unknown as SigningKeyLike);
}

function gpg(env: NodeJS.ProcessEnv, msg: Buffer, extra: string[] = []) {
  const f = join(dir, `m-${Math.random()}.gpg`);
  writeFileSync(f, msg);
  return run('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', 'key pass', '--status-fd', '2', ...extra, '--decrypt', f], { env });
}

describe('public-key encryption and signatures', () => {
  test.each([
    ['rsa', 6],
    ['ed25519', 0],
  ] as const)('%s: gpg decrypts, verifies "Good signature"; we decrypt and verify', async (type, level) => {
    const k = type === 'rsa' ? rsa : ed;
    const pass = type === 'rsa' ? '' : 'key pass';
    const plain = data(300_000);
    const enc = new PublicKeyEncryptor(await readPublicKeys(k.pub), { signer: await signerOf(k, pass) });
    const msg = await encryptWith(enc, plain, level);
    const g = gpg(k.env, msg);
    expect(g.status).toBe(0);
    expect(g.stderr).toMatch(/GOODSIG/);
    expect(g.stdout.equals(plain)).toBe(true);
    const keys: DecryptKeys = { secretKeys: [await readSecretKey(k.sec, pass)], verifyKeys: await readPublicKeys(k.pub), requireSignature: true };
    expect((await decrypt(msg, keys)).equals(plain)).toBe(true);
    const info = await keyPacketInfo([msg]);
    expect(info.symmetric).toBe(false);
    expect(info.recipients).toHaveLength(1);
  });

  test('symmetric + signed: gpg verifies it', async () => {
    const plain = data(5000);
    const msg = await encryptWith(new SymmetricEncryptor(Buffer.from('pw'), { codedCount: 96, signer: await signerOf(rsa) }), plain);
    const g = gpg(rsa.env, msg, ['--passphrase', 'pw']);
    expect(g.stderr).toMatch(/GOODSIG/);
    expect(g.stdout.equals(plain)).toBe(true);
  });

  test('two recipients each decrypt', async () => {
    const plain = data(10_000);
    const msg = await encryptWith(new PublicKeyEncryptor([...(await readPublicKeys(rsa.pub)), ...(await readPublicKeys(other.pub))]), plain);
    expect((await decrypt(msg, { secretKeys: [await readSecretKey(rsa.sec, '')] })).equals(plain)).toBe(true);
    expect((await decrypt(msg, { secretKeys: [await readSecretKey(other.sec, '')] })).equals(plain)).toBe(true);
    expect((await keyPacketInfo([msg])).recipients).toHaveLength(2);
  });

  test('the wrong secret key: one clear DecryptError, no plaintext', async () => {
    const msg = await encryptWith(new PublicKeyEncryptor(await readPublicKeys(rsa.pub)), data(1000));
    const it = decryptMessage([msg], { secretKeys: [await readSecretKey(other.sec, '')] });
    await expect(it.next()).rejects.toThrow(DecryptError);
    await expect(decryptMessage([msg], {}).next()).rejects.toMatchObject({ code: 'NO_KEY', message: expect.stringMatching(/no secret key was given/) });
  });

  test('a signature by another key, a missing signature, an unverifiable one', async () => {
    const plain = data(1000);
    const byOther = await encryptWith(new SymmetricEncryptor(Buffer.from('pw'), { codedCount: 96, signer: await signerOf(other) }), plain);
    const unsigned = await encryptWith(new SymmetricEncryptor(Buffer.from('pw'), { codedCount: 96 }), plain);
    const verifyKeys = await readPublicKeys(rsa.pub);
    await expect(decrypt(byOther, { passphrase: Buffer.from('pw'), verifyKeys })).rejects.toThrow(/public key was not given/);
    await expect(decrypt(unsigned, { passphrase: Buffer.from('pw'), verifyKeys, requireSignature: true })).rejects.toThrow(/not signed/);
    await expect(decrypt(byOther, { passphrase: Buffer.from('pw') })).rejects.toThrow(/public key was not given/);
    expect((await decrypt(byOther, { passphrase: Buffer.from('pw'), tolerateUnknownSigners: true })).equals(plain)).toBe(true);
  });

  test('a signature over modified data fails (signed by us, data altered before encryption)', async () => {
    // Build a message whose signature covers other data: sign A, then splice the
    // signature packet after literal B. The MDC is fine; only the signature can tell.
    const signer = await signerOf(rsa);
    const h = signer.newHash().update(Buffer.from('original'));
    const sigBody = signer.finish(h);
    const { packet, TAG } = await import('../../../src/crypto/packets.js');
    const lit = packet(TAG.LITERAL, Buffer.concat([Buffer.from([0x62, 0, 0, 0, 0, 0]), Buffer.from('tampered')]));
    const inner = Buffer.concat([packet(TAG.ONE_PASS_SIG, signer.onePassBody()), lit, packet(TAG.SIGNATURE, sigBody)]);
    // Encrypt `inner` verbatim with gpg-compatible framing via our SEIPD path: reuse gpg itself.
    const f = join(dir, 'inner.bin');
    writeFileSync(f, inner);
    const env = rsa.env;
    const msg = runOk('sh', ['-c', `gpg --batch --pinentry-mode loopback --passphrase pw --symmetric --compress-algo none -o - ${f}`], { env });
    // gpg wraps our packets in its own literal packet; unwrap by decrypting to the raw inner packets
    const raw = runOk('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', 'pw', '--decrypt'], { env, input: msg });
    expect(raw.equals(inner)).toBe(true);
    const { parseSignature, verifySignature } = await import('../../../src/crypto/signature-packet.js');
    const pub = (await readPublicKeys(rsa.pub))[0]!;
    const sub = pub.getKeys().find((k) => k.getKeyID().toHex() === signer.keyId.toString('hex'))!;
    expect(() => verifySignature(parseSignature(sigBody), signer.newHash().update(Buffer.from('tampered')), sub as unknown as SigningKeyLike)).toThrow(IntegrityError);
    expect(() => verifySignature(parseSignature(sigBody), signer.newHash().update(Buffer.from('original')), sub as unknown as SigningKeyLike)).not.toThrow();
  });
});

describe('reading what gpg wrote with keys', () => {
  test.each([
    ['rsa, zlib', 'rsa', ['--compress-algo', 'zlib']],
    ['ed25519/cv25519, bzip2', 'ed25519', ['--compress-algo', 'bzip2']],
    ['rsa, uncompressed', 'rsa', ['--compress-algo', 'none']],
  ] as const)('%s, signed', async (_n, type, extra) => {
    const k = type === 'rsa' ? rsa : ed;
    const pass = type === 'rsa' ? '' : 'key pass';
    const plain = data(200_000);
    const f = join(dir, `p-${type}-${extra[1]}`);
    writeFileSync(f, plain);
    runOk('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', pass, '--trust-model', 'always', '-r', k.fpr, '-u', k.fpr, ...extra, '--sign', '--encrypt', '-o', `${f}.gpg`, f], { env: k.env });
    const keys: DecryptKeys = { secretKeys: [await readSecretKey(k.sec, pass)], verifyKeys: await readPublicKeys(k.pub), requireSignature: true };
    const out: Buffer[] = [];
    let signed = '';
    for await (const c of decryptMessage([readFileSync(`${f}.gpg`)], keys, { onSignature: (r) => (signed = r.keyId) })) out.push(c);
    expect(Buffer.concat(out).equals(plain)).toBe(true);
    expect(signed).toHaveLength(16);
  });

  test('SHA-1 S2K with the largest count, and BZip2 in symmetric mode', async () => {
    const plain = data(100_000);
    const f = join(dir, 'bz');
    writeFileSync(f, plain);
    runOk('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', 'pw', '--s2k-digest-algo', 'SHA1', '--s2k-count', '65011712', '--compress-algo', 'bzip2', '--symmetric', '-o', `${f}.gpg`, f], { env: rsa.env });
    expect((await decrypt(readFileSync(`${f}.gpg`), { passphrase: Buffer.from('pw') })).equals(plain)).toBe(true);
  });
});

describe('old archives', () => {
  test('CAST5 without integrity protection (SED) decrypts, with a warning', async () => {
    const plain = data(100_000);
    const f = join(dir, 'legacy');
    writeFileSync(f, plain);
    runOk('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', 'pw', '--rfc2440', '--cipher-algo', 'CAST5', '--symmetric', '-o', `${f}.gpg`, f], { env: rsa.env });
    const warnings: string[] = [];
    const out: Buffer[] = [];
    for await (const c of decryptMessage([readFileSync(`${f}.gpg`)], { passphrase: Buffer.from('pw') }, { onWarning: (w) => warnings.push(w) })) out.push(c);
    expect(Buffer.concat(out).equals(plain)).toBe(true);
    expect(warnings.join()).toMatch(/without integrity protection/);
  });
});
