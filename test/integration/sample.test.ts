/**
 * Format regression: volumes-sample/archive, a chain an earlier tapechain wrote, must
 * keep decoding to the recorded state at every point in time (states.json), and to
 * the committed final tree; damaged copies must fail with errors that name the file.
 */
import { describe, expect, test } from '@jest/globals';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeTree } from '../../scripts/describe-tree.mjs';
import { formatTimestamp } from '../../src/chain/time.js';
import { runCli } from '../helpers/cli.js';
import { setTimes } from '../helpers/chain.js';
import { tempDirs } from '../helpers/tmp.js';
import { runOk } from '../helpers/tools.js';

const tmp = tempDirs();
const SAMPLE = path.resolve('volumes-sample');
const ARCHIVE = path.join(SAMPLE, 'archive');
const states = JSON.parse(fs.readFileSync(path.join(SAMPLE, 'states.json'), 'utf8')) as Record<string, string>[];

const describe2 = describeTree; // the same record the sample script wrote

const env = (dir: string) => ({ PASSPHRASE: 'tapechain-sample', XDG_CACHE_HOME: path.join(dir, 'cache') });
/** The sample is signed with a test-only key: restores must check it. */
const PUB = path.join(SAMPLE, 'keys', 'sample-signing.pub.asc');

describe('volumes-sample', () => {
  const times = setTimes(ARCHIVE);

  test('holds a full and at least two incrementals, several volumes in the full', () => {
    expect(times.length).toBe(states.length);
    expect(times.length).toBeGreaterThanOrEqual(3);
    expect(fs.readdirSync(ARCHIVE).filter((n) => n.startsWith('duplicity-full.') && n.includes('.vol')).length).toBeGreaterThan(1);
  });

  test.each(states.map((s, i) => [i, s] as const))('state %d restores exactly', async (i, want) => {
    const dir = tmp('sample');
    const out = path.join(dir, 'out');
    const r = await runCli(['restore', '--sign-key', PUB, '--time', formatTimestamp(times[i]!), ARCHIVE, out], env(dir));
    expect(r.code).toBe(0);
    expect(describe2(out)).toEqual(want);
  });

  test.each(states.map((s, i) => [i, s] as const))('ls at state %d lists it', async (i, want) => {
    const dir = tmp('sample-ls');
    const r = await runCli(['ls', '--sign-key', PUB, '--json', '--time', formatTimestamp(times[i]!), ARCHIVE], env(dir));
    expect(r.code).toBe(0);
    const paths = r.stdout.trim().split('\n').map((l) => JSON.parse(l).path as string);
    expect(paths).toEqual(['.', ...Object.keys(want).sort((a, b) => Buffer.compare(Buffer.from(a.replace(/\//g, '\0')), Buffer.from(b.replace(/\//g, '\0'))))]);
  });

  test('the latest state has the content of volumes-sample/source', async () => {
    const dir = tmp('sample-src');
    const out = path.join(dir, 'out');
    expect((await runCli(['restore', '--sign-key', PUB, ARCHIVE, out], env(dir))).code).toBe(0);
    const strip = (d: Record<string, string>) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.startsWith('f') ? v.split(' ').slice(3).join(' ') : v[0]!]));
    expect(strip(describe2(out))).toEqual(strip(describe2(path.join(SAMPLE, 'source'))));
  });

  test('verifies with the passphrase and key, and offline with the public key alone', async () => {
    const dir = tmp('sample-verify');
    const v = await runCli(['verify', '--all', '--sign-key', PUB, ARCHIVE], env(dir));
    expect(v.stdout).toMatch(/0 problem\(s\)/);
    expect(v.code).toBe(0);
    const o = await runCli(['verify', '--offline', '--public-key', PUB, ARCHIVE], { XDG_CACHE_HOME: path.join(dir, 'c2') });
    expect(o.stdout).toMatch(/3 set\(s\), \d+ file\(s\) checked against their seals, 0 problem\(s\)/);
    expect(o.code).toBe(0);
  });

  test('manual recovery with only gpg, tar and rdiff (the README procedure) gives the latest state', () => {
    const dir = tmp('manual');
    const out = path.join(dir, 'out');
    const gnupg = path.join(dir, 'g');
    fs.mkdirSync(gnupg, { mode: 0o700 });
    const env = { ...process.env, PASSPHRASE: 'tapechain-sample', GNUPGHOME: gnupg };
    runOk('gpg', ['--batch', '--import', PUB], { env }); // step 0 of the procedure: the signer's key
    runOk('bash', ['scripts/manual-recovery.sh', ARCHIVE, out], { env });
    const want = states[states.length - 1]!;
    const got = describe2(out);
    // Files and symlinks exactly (content, mode, mtime); directory mtimes are not kept by the procedure.
    const strip = (d: Record<string, string>) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.startsWith('d') ? v.split(' ').slice(0, 2).join(' ') : v]));
    expect(strip(got)).toEqual(strip(want));
  });

  describe('damaged copies', () => {
    const copy = (dir: string) => {
      const t = path.join(dir, 'archive');
      fs.cpSync(ARCHIVE, t, { recursive: true });
      return t;
    };

    test('a missing volume is named', async () => {
      const dir = tmp('dmg');
      const t = copy(dir);
      const vol = fs.readdirSync(t).find((n) => n.startsWith('duplicity-full.') && n.includes('.vol2.'))!;
      fs.rmSync(path.join(t, vol));
      const r = await runCli(['restore', '--sign-key', PUB, t, path.join(dir, 'out')], env(dir));
      expect(r.code).toBe(6);
      expect(r.stderr).toMatch(/volume 2 is listed but missing/);
      expect(fs.existsSync(path.join(dir, 'out'))).toBe(false);
    });

    test('a truncated manifest is named', async () => {
      const dir = tmp('dmg');
      const t = copy(dir);
      const man = fs.readdirSync(t).find((n) => n.startsWith('duplicity-inc.') && n.endsWith('.manifest.gpg'))!;
      const b = fs.readFileSync(path.join(t, man));
      fs.writeFileSync(path.join(t, man), b.subarray(0, b.length - 30));
      const r = await runCli(['restore', '--sign-key', PUB, t, path.join(dir, 'out')], env(dir));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(man);
      expect(fs.existsSync(path.join(dir, 'out'))).toBe(false);
    });

    test('a wrong passphrase is one clear line', async () => {
      const dir = tmp('dmg');
      const r = await runCli(['restore', ARCHIVE, path.join(dir, 'out')], { ...env(dir), PASSPHRASE: 'wrong' });
      expect(r.code).toBe(7);
      expect(r.stderr.trim().split('\n').pop()).toMatch(/^tapechain: duplicity-full\.\d{8}T\d{6}Z\.manifest\.gpg: wrong passphrase/);
    });
  });
});
