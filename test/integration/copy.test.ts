/**
 * copy: sets replicated as stored, each file checked on the way (seal or manifest
 * hashes), manifest last; file → S3 and S3 → file on the real S3 server; resumed after
 * kill -9; a damaged source file refused; duplicity restores the copy.
 */
import { beforeAll, describe, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { parseName } from '../../src/chain/file-naming.js';
import { ExitCode } from '../../src/errors.js';
import { expectDuplicityRestore } from '../helpers/chain.js';
import { runCli } from '../helpers/cli.js';
import { makeKey, type TestKey } from '../helpers/keys.js';
import { killWhen } from '../helpers/kill.js';
import { describeS3, newBucket, S3_ENDPOINT, S3_ENV } from '../helpers/s3.js';
import { tempDirs } from '../helpers/tmp.js';
import { duplicity } from '../helpers/tools.js';
import { bytes, describeTree, treeDiff } from '../helpers/tree.js';

const tmp = tempDirs();
const bin = 'bin/tapechain';

let dir: string;
let key: TestKey;
let sealed: string; // full + incremental, signed and sealed
let unsealed: string; // the same, without a signing key
let tree: Map<string, string>;

beforeAll(async () => {
  dir = tmp('copy');
  key = makeKey(dir, 'ed25519');
  const src = join(dir, 'src');
  fs.mkdirSync(src);
  for (const n of ['a', 'b', 'c']) fs.writeFileSync(join(src, n), bytes(600_000, n.charCodeAt(0)));
  sealed = join(dir, 'sealed');
  unsealed = join(dir, 'unsealed');
  const both = async () => {
    for (const [t, extra] of [[sealed, ['--sign-key', key.sec]], [unsealed, []]] as const) {
      const env = { PASSPHRASE: 'pw', SIGN_PASSPHRASE: '', XDG_CACHE_HOME: join(dir, `cache-${t.split('/').pop()}`) };
      expect((await runCli(['backup', '--volsize', '1', ...extra, src, t], env)).code).toBe(0);
    }
  };
  await both();
  fs.appendFileSync(join(src, 'b'), 'more');
  await both();
  tree = describeTree(src);
}, 120_000);

const names = (t: string) => fs.readdirSync(t).filter((n) => parseName(n) || n.startsWith('tapechain-seal')).sort();
const env = (name: string, extra: Record<string, string> = {}) => ({ XDG_CACHE_HOME: join(dir, `c-${name}`), ...extra });

async function expectRestores(target: string, name: string): Promise<void> {
  const out = join(dir, `r-${name}`);
  const r = await runCli(['restore', '--public-key', key.pub, target, out], env(name, { PASSPHRASE: 'pw' }));
  expect(r.code).toBe(0);
  expect(treeDiff(tree, describeTree(out))).toEqual([]);
}

describe('copy between local targets', () => {
  test('a sealed chain needs no passphrase: every file copied, checked against the seal; a rerun copies nothing', async () => {
    const t = join(dir, 'to-sealed');
    const r = await runCli(['copy', '--public-key', key.pub, sealed, t], env('s1'));
    expect({ code: r.code, err: r.stderr }).toEqual({ code: 0, err: '' });
    expect(names(t)).toEqual(names(sealed));
    for (const n of names(t)) expect(fs.readFileSync(join(t, n)).equals(fs.readFileSync(join(sealed, n)))).toBe(true);
    const again = await runCli(['copy', '--public-key', key.pub, '--json', sealed, t], env('s1'));
    const summary = JSON.parse(again.stdout.trim().split('\n').pop()!) as { copied: number; present: number };
    expect(summary).toMatchObject({ copied: 0, present: names(sealed).length });
    await expectRestores(t, 'sealed');
    const v = await runCli(['verify', '--offline', '--public-key', key.pub, t], env('s2'));
    expect(v.code).toBe(0);
  });

  test('an unsealed chain: the manifest is read with the passphrase (without it: exit 3); duplicity restores the copy', async () => {
    const t = join(dir, 'to-unsealed');
    const none = await runCli(['copy', unsealed, t], env('u0'));
    expect({ code: none.code, err: none.stderr }).toEqual({ code: ExitCode.CONFIG, err: expect.stringMatching(/has no seal.*PASSPHRASE/) });
    const r = await runCli(['copy', unsealed, t], env('u1', { PASSPHRASE: 'pw' }));
    expect(r.code).toBe(0);
    expect(names(t)).toEqual(names(unsealed));
    expectDuplicityRestore(dir, t, Math.floor(Date.now() / 1000) + 3600, join(dir, 'dup-r'), tree, { PASSPHRASE: 'pw' });
  });

  test.each([['sealed'], ['unsealed']])('a flipped byte in a %s source volume: that file is refused and named, its set and the rest of its chain stay out (exit 6)', async (kind) => {
    const from = join(dir, `flipped-${kind}`);
    fs.cpSync(kind === 'sealed' ? sealed : unsealed, from, { recursive: true });
    const vol = names(from).find((n) => parseName(n)?.kind === 'volume' && parseName(n)?.type === 'full' && parseName(n)?.volume === 2)!;
    const buf = fs.readFileSync(join(from, vol));
    buf[1000]! ^= 0x40;
    fs.writeFileSync(join(from, vol), buf);
    const t = join(dir, `to-flipped-${kind}`);
    const r = await runCli(['copy', ...(kind === 'sealed' ? ['--public-key', key.pub] : []), from, t], env(`f-${kind}`, { PASSPHRASE: 'pw' }));
    expect(r.code).toBe(ExitCode.INTEGRITY);
    expect(r.stdout).toMatch(new RegExp(`^refused ${vol.replace(/\./g, '\\.')}: (SHA256|SHA1) \\w+ differs from the (seal|manifest)`, 'm'));
    expect(fs.existsSync(join(t, vol))).toBe(false);
    expect(names(t).filter((n) => parseName(n)?.kind === 'manifest')).toEqual([]); // no set looks complete
    expect(r.stdout).toMatch(/refused duplicity-inc\..*manifest\.gpg: not copied: an earlier set of its chain failed its checks/);
  });

  test('kill -9 in the middle, then a rerun: it resumes (what is there is kept) and the copy restores', async () => {
    const t = join(dir, 'to-killed');
    const child = spawn(bin, ['copy', '--public-key', key.pub, sealed, t], { env: { ...process.env, ...env('k') }, stdio: ['ignore', 'ignore', 'pipe'] });
    // killed once two files are in place and before the first manifest
    await killWhen(child, () => fs.existsSync(t) && names(t).length >= 2);
    expect(names(t).filter((n) => parseName(n)?.kind === 'manifest')).toEqual([]);
    const r = await runCli(['copy', '--public-key', key.pub, '--json', sealed, t], env('k'));
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { copied: number; present: number };
    expect(summary.present).toBeGreaterThanOrEqual(2);
    expect(summary.copied + summary.present).toBe(names(sealed).length);
    await expectRestores(t, 'killed');
  }, 60_000);
});

describeS3('copy with S3', () => {
  test('file → S3 → file, and each copy restores (tapechain; duplicity from the last)', async () => {
    const bucket = await newBucket('copy');
    const s3 = `s3://${bucket}/home`;
    const e = { ...S3_ENV, ...env('s3') };
    const up = await runCli(['copy', '--s3-endpoint', S3_ENDPOINT!, '--public-key', key.pub, sealed, s3], e);
    expect({ code: up.code, err: up.stderr }).toEqual({ code: 0, err: '' });
    const back = join(dir, 'from-s3');
    const down = await runCli(['copy', '--s3-endpoint', S3_ENDPOINT!, '--public-key', key.pub, s3, back], e);
    expect({ code: down.code, err: down.stderr }).toEqual({ code: 0, err: '' });
    expect(names(back)).toEqual(names(sealed));
    for (const n of names(back)) expect(fs.readFileSync(join(back, n)).equals(fs.readFileSync(join(sealed, n)))).toBe(true);
    const out = join(dir, 'r-s3');
    expect((await runCli(['restore', '--public-key', key.pub, '--s3-endpoint', S3_ENDPOINT!, s3, out], { ...e, PASSPHRASE: 'pw' })).code).toBe(0);
    expect(treeDiff(tree, describeTree(out))).toEqual([]);
    const d = duplicity(['restore', '--archive-dir', join(dir, 'dupcache-s3'), '--name', 's3', `file://${back}`, join(dir, 'dup-s3')], dir, { PASSPHRASE: 'pw' });
    expect({ status: d.status, err: d.stderr }).toEqual({ status: 0, err: expect.not.stringMatching(/Traceback/) });
    expect(treeDiff(tree, describeTree(join(dir, 'dup-s3')))).toEqual([]);
  }, 120_000);
});
