/**
 * verify (with keys and offline with only the public key), status, restore --plan,
 * prune and cleanup, on real chains with real damage.
 */
import { beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { formatTimestamp } from '../../src/chain/time.js';
import { runCli } from '../helpers/cli.js';
import { setTimes } from '../helpers/chain.js';
import { makeKey, type TestKey } from '../helpers/keys.js';
import { tempDirs } from '../helpers/tmp.js';
import { duplicity, runOk } from '../helpers/tools.js';
import { describeTree, makeTrickyTree, treeDiff } from '../helpers/tree.js';
import { nextSecond } from '../helpers/wait.js';

const tmp = tempDirs();
let dir: string;
let key: TestKey;
let other: TestKey;
let clean: string; // a sealed chain: full + 2 incrementals, never modified
const states: Map<string, string>[] = [];

async function chain(target: string, src: string, extra: string[] = []): Promise<void> {
  const env = { PASSPHRASE: 'verify pw', SIGN_PASSPHRASE: '', XDG_CACHE_HOME: join(dir, 'cache-' + target.split('/').pop()) };
  for (let i = 0; i < 3; i++) {
    if (i > 0) {
      fs.writeFileSync(join(src, `added-${i}.bin`), Buffer.alloc(300_000 + i, i));
      fs.utimesSync(join(src, 'name with spaces.txt'), 1_700_000_000 + i, 1_700_000_000 + i);
    }
    const r = await runCli(['backup', '--volsize', '1', '--sign-key', key.sec, ...extra, src, target], env);
    expect(r.code).toBe(0);
    if (target === clean) states.push(describeTree(src));
  }
}

/** verify with the passphrase and the signer's public key (a signed chain must verify). */
const V = (target: string, args: string[] = [], env: Record<string, string> = {}) =>
  runCli(['verify', '--public-key', key.pub, ...args, target], { PASSPHRASE: 'verify pw', XDG_CACHE_HOME: join(dir, 'vcache'), ...env });
const offline = (target: string, pub = key.pub) => runCli(['verify', '--offline', '--public-key', pub, target], { XDG_CACHE_HOME: join(dir, 'ocache') });
const copyOf = (name: string) => {
  const t = join(dir, name);
  fs.cpSync(clean, t, { recursive: true });
  return t;
};
const find = (t: string, re: RegExp) => fs.readdirSync(t).find((n) => re.test(n))!;

beforeAll(async () => {
  dir = tmp('verify');
  key = makeKey(dir, 'ed25519');
  other = makeKey(dir, 'rsa');
  const src = join(dir, 'src');
  makeTrickyTree(src);
  clean = join(dir, 'clean');
  await chain(clean, src);
}, 300_000);

describe('verify a clean chain', () => {
  test('with the passphrase and the public key: every volume decrypted and checked, exit 0', async () => {
    const r = await V(clean, ['--all']);
    expect(r.stdout).toMatch(/Verified 3 set\(s\).* (\d+) of \1 volume\(s\) decrypted and checked, 0 problem\(s\)/);
    expect(r.code).toBe(0);
  });

  test('offline: no passphrase, no secret key, every file against its seal', async () => {
    const r = await offline(clean);
    expect(r.stdout).toMatch(/3 set\(s\), \d+ file\(s\) checked against their seals, 0 problem\(s\)/);
    expect(r.code).toBe(0);
  });

  test('status shows the chain sealed and the last verify', async () => {
    const r = await runCli(['status', '--json', clean], { XDG_CACHE_HOME: join(dir, 'ocache') });
    const st = JSON.parse(r.stdout);
    expect(st.chains[0].sets.map((s: { sealed: boolean; encryption: string }) => [s.sealed, s.encryption])).toEqual([
      [true, 'passphrase'],
      [true, 'passphrase'],
      [true, 'passphrase'],
    ]);
    expect(st.lastVerify).toMatchObject({ ok: true, offline: true });
  });

  test('--sample covers every volume over repeated runs, least recently checked first', async () => {
    const vols = fs.readdirSync(clean).filter((n) => n.includes('.vol')).length;
    const seen = new Set<string>();
    const env = { XDG_CACHE_HOME: join(dir, 'sample-cache') };
    const runs = Math.ceil(100 / 30);
    for (let i = 0; i < runs; i++) {
      const r = await runCli(['verify', '--public-key', key.pub, '--all', '--sample', '30', '--json', clean], { PASSPHRASE: 'verify pw', ...env });
      expect(r.code).toBe(0);
      const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(summary.volumesChecked).toBe(Math.ceil((vols * 30) / 100));
      const state = JSON.parse(fs.readFileSync(join(dir, 'sample-cache', 'tapechain', fs.readdirSync(join(dir, 'sample-cache', 'tapechain'))[0]!, 'verify-state.json'), 'utf8'));
      for (const n of Object.keys(state.checked)) seen.add(n);
      await nextSecond(); // the cursor has whole-second resolution
    }
    expect(seen.size).toBe(vols);
  });

  test('--compare finds a difference with the live tree', async () => {
    const live = join(dir, 'live');
    runOk('cp', ['-a', join(dir, 'src'), live]);
    const same = await V(clean, ['--compare', live]);
    expect(same.code).toBe(0);
    fs.writeFileSync(join(live, 'mode600'), 'changed!');
    fs.utimesSync(join(live, 'mode600'), new Date('1985-06-15T12:00:00Z'), new Date('1985-06-15T12:00:00Z'));
    const diff = await V(clean, ['--compare', live]);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toMatch(/^mode600: content differs$/m);
  });

  test('restore --plan lists what would be fetched and writes nothing', async () => {
    const out = join(dir, 'plan-out');
    const r = await runCli(['restore', '--plan', '--public-key', key.pub, clean, out], { PASSPHRASE: 'verify pw' });
    const unverified = await runCli(['restore', '--plan', clean, out], { PASSPHRASE: 'verify pw' });
    expect(unverified.code).toBe(1); // signed chain, no key to check it with: planned, the signer named
    expect(unverified.stderr).toMatch(/^warning: signed by key [0-9A-F]{16}, not checked/m);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/difftar\.gpg +\d/);
    expect(r.stdout).toMatch(/file\(s\), .* to fetch from 3 set\(s\); nothing written/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('duplicity 0.8.22 lists, restores and extends a chain with seals present', async () => {
    const t = copyOf('dup-with-seals');
    const env = { PASSPHRASE: 'verify pw' };
    const c = duplicity(['collection-status', '--archive-dir', join(dir, 'dupc'), '--name', 'v', `file://${t}`], dir, env);
    expect(c.status).toBe(0);
    expect(c.stdout.toString()).toMatch(/No orphaned or incomplete backup sets found/);
    const ls = duplicity(['list-current-files', '--archive-dir', join(dir, 'dupc'), '--name', 'v', `file://${t}`], dir, env);
    expect(ls.stdout.toString()).toContain('added-2.bin');
    const r = duplicity(['restore', '--archive-dir', join(dir, 'dupc'), '--name', 'v', `file://${t}`, join(dir, 'dup-out')], dir, env);
    expect(r.status).toBe(0);
    expect(treeDiff(states[2]!, describeTree(join(dir, 'dup-out')))).toEqual([]);
    await nextSecond(); // duplicity names sets by the second
    const inc = duplicity(['incr', '--archive-dir', join(dir, 'dupc'), '--name', 'v', join(dir, 'src'), `file://${t}`], dir, env);
    expect(inc.status).toBe(0);
    expect(setTimes(t)).toHaveLength(4);
  });
});

describe('damage is detected and named', () => {
  test('flipped byte: hash mismatch (online), SHA-256 differs (offline)', async () => {
    const t = copyOf('flip');
    const vol = find(t, /^duplicity-full\..*\.vol2\./);
    const b = fs.readFileSync(join(t, vol));
    b[5000] = b[5000]! ^ 0x10;
    fs.writeFileSync(join(t, vol), b);
    const r = await V(t, ['--all']);
    expect(r.code).toBe(6);
    expect(r.stdout).toContain(`${vol}: hash mismatch`);
    const o = await offline(t);
    expect(o.code).toBe(6);
    expect(o.stdout).toContain(`${vol}: SHA-256 differs from the seal`);
  });

  test('truncated volume', async () => {
    const t = copyOf('trunc');
    const vol = find(t, /^duplicity-full\..*\.vol1\./);
    const b = fs.readFileSync(join(t, vol));
    fs.writeFileSync(join(t, vol), b.subarray(0, b.length - 777));
    expect((await V(t, ['--all'])).stdout).toContain(`${vol}: hash mismatch`);
    expect((await offline(t)).stdout).toContain(`${vol}: truncated`);
  });

  test('missing volume', async () => {
    const t = copyOf('missing');
    const vol = find(t, /^duplicity-full\..*\.vol3\./);
    fs.rmSync(join(t, vol));
    const r = await V(t, ['--all']);
    expect(r.stdout).toMatch(/manifest\.gpg: volume 3 is listed but missing at the target/);
    expect((await offline(t)).stdout).toContain(`${vol}: missing`);
  });

  test('a volume swapped in from another chain', async () => {
    const t = copyOf('swap');
    const t2 = join(dir, 'other-chain');
    await chain(t2, join(dir, 'src'));
    const mine = find(t, /^duplicity-full\..*\.vol2\./);
    const theirs = find(t2, /^duplicity-full\..*\.vol2\./);
    fs.copyFileSync(join(t2, theirs), join(t, mine));
    expect((await V(t, ['--all'])).stdout).toContain(`${mine}: hash mismatch`);
    // Volumes of random data differ in size by a few bytes: the swapped-in one may be
    // shorter (named as truncated), longer, or the same size (then its hash differs).
    expect((await offline(t)).stdout).toMatch(new RegExp(`${mine.replace(/\./g, "\\.")}: (SHA-256 differs|size \\d+, sealed \\d+|truncated \\(\\d+ of \\d+ bytes\\))`));
  });

  test('a seal signed by another key', async () => {
    const t = copyOf('seal-other');
    const t2 = join(dir, 'other-signer');
    const src = join(dir, 'src');
    const env = { PASSPHRASE: 'verify pw', SIGN_PASSPHRASE: '', XDG_CACHE_HOME: join(dir, 'c-other-signer') };
    expect((await runCli(['backup', '--sign-key', other.sec, src, t2], env)).code).toBe(0);
    const seal = find(t, /^tapechain-seal\.full\./);
    // The forged seal lists this chain's files correctly but is signed by another key.
    const { signSeal, parseSeal } = await import('../../src/crypto/seal.js');
    const { readSecretKey } = await import('../../src/crypto/keys.js');
    const text = fs.readFileSync(join(t, seal), 'utf8');
    const body = text.split('\n\n').slice(1).join('\n\n').split('-----BEGIN PGP SIGNATURE-----')[0]!.trim() + '\n';
    fs.writeFileSync(join(t, seal), await signSeal(parseSeal(body), await readSecretKey(other.sec, '')));
    const o = await offline(t);
    expect(o.code).toBe(6);
    expect(o.stdout).toMatch(new RegExp(`${seal.replace(/\./g, '\\.')}: signed by key [0-9A-F]{16}, not by the given public key`));
  });

  test('a missing manifest, and an unknown extra file', async () => {
    const t = copyOf('noman');
    const man = find(t, /^duplicity-inc\..*\.manifest\.gpg$/);
    fs.rmSync(join(t, man));
    fs.writeFileSync(join(t, 'notes.txt'), 'who put this here');
    const r = await V(t, ['--all']);
    expect(r.code).toBe(6);
    expect(r.stdout).toMatch(/set has no manifest/);
    expect(r.stdout).toContain('notes.txt: unknown file at the target');
    const o = await offline(t);
    expect(o.stdout).toContain(`${man}: missing`);
    expect(o.stdout).toContain('notes.txt: unknown file');
  });

  test('a signature file whose strong sum does not describe the stored data', async () => {
    // --no-encryption: the signature file is a gzip'd tar that the test can edit in place.
    const src = join(dir, 'sig-src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'data.bin'), Buffer.alloc(200_000, 7));
    const t = join(dir, 'sig-target');
    expect((await runCli(['backup', '--no-encryption', src, t], { XDG_CACHE_HOME: join(dir, 'sig-cache') })).code).toBe(0);
    const sigName = find(t, /signatures.*\.sigtar\.gz$/);
    const tar = gunzipSync(fs.readFileSync(join(t, sigName)));
    let at = 0;
    while (tar.subarray(at, at + 100).toString('latin1').replace(/\0.*$/s, '') !== 'signature/data.bin') at += 512;
    const sum = at + 512 + 12 + 3 * 12 + 4; // block 3's strong sum
    tar[sum]! ^= 0x40;
    fs.writeFileSync(join(t, sigName), gzipSync(tar));
    const r = await runCli(['verify', t], { XDG_CACHE_HOME: join(dir, 'sig-vcache') });
    expect(r.code).toBe(6);
    expect(r.stdout + r.stderr).toContain(`${sigName}: signature of data.bin does not match the data stored in the volumes (block 3 differs)`);
  });

  test('a removed incremental breaks the seal hash chain', async () => {
    const t = copyOf('hashchain');
    // drop the middle incremental entirely (all its files) and rename nothing: the last
    // set becomes orphaned; then re-point it... simpler: swap the two incrementals' seals
    const seals = fs.readdirSync(t).filter((n) => n.startsWith('tapechain-seal.inc.')).sort();
    const a = fs.readFileSync(join(t, seals[0]!));
    const b = fs.readFileSync(join(t, seals[1]!));
    fs.writeFileSync(join(t, seals[0]!), b);
    fs.writeFileSync(join(t, seals[1]!), a);
    const o = await offline(t);
    expect(o.code).toBe(6);
    expect(o.stdout).toMatch(/seal describes another set than its name says/);
  });
});

describe('prune and cleanup', () => {
  test('prune keeps every promised point restorable and removes the rest', async () => {
    const t = join(dir, 'prune');
    const src = join(dir, 'prune-src');
    fs.mkdirSync(src);
    const env = { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'prune-cache') };
    const snaps: Map<string, string>[] = [];
    for (let i = 0; i < 6; i++) {
      fs.writeFileSync(join(src, `f${i}`), `${i}`.repeat(1000));
      fs.utimesSync(join(src, `f${i}`), 1_700_000_000 + i, 1_700_000_000 + i);
      // chains: [0,1] [2,3] [4,5]
      const r = await runCli(['backup', ...(i % 2 === 0 ? ['--full'] : []), src, t], env);
      expect(r.code).toBe(0);
      snaps.push(describeTree(src));
    }
    const times = setTimes(t);
    expect(times).toHaveLength(6);
    const dry = await runCli(['prune', '--keep-full', '2', t], env);
    expect(dry.stdout).toMatch(/would delete .*\n[\s\S]*run again with --force/);
    expect(setTimes(t)).toHaveLength(6);
    const del = await runCli(['prune', '--keep-full', '2', '--force', t], env);
    expect(del.code).toBe(0);
    expect(setTimes(t)).toEqual(times.slice(2));
    const inc = await runCli(['prune', '--keep-inc-of', '1', '--force', t], env);
    expect(inc.code).toBe(0);
    expect(setTimes(t)).toEqual([times[2], times[4], times[5]]);
    // every kept point restores exactly
    for (const i of [2, 4, 5]) {
      const out = join(dir, `prune-out-${i}`);
      const r = await runCli(['restore', '--time', formatTimestamp(times[i]!), t, out], env);
      expect(r.code).toBe(0);
      expect(treeDiff(snaps[i]!, describeTree(out))).toEqual([]);
    }
    // the newest chain is never removed
    await runCli(['prune', '--older-than', 'now', '--force', t], env);
    expect(setTimes(t)).toEqual([times[4], times[5]]);
    expect((await runCli(['verify', '--all', t], env)).code).toBe(0);
  });

  test('cleanup removes incomplete sets and strays, only with --force', async () => {
    const t = copyOf('cleanup');
    const man = find(t, /^duplicity-inc\..*\.manifest\.gpg$/);
    fs.rmSync(join(t, man));
    const before = fs.readdirSync(t).length;
    const dry = await runCli(['cleanup', t]);
    expect(dry.stdout).toMatch(/would delete duplicity-inc\..*incomplete set/);
    expect(fs.readdirSync(t).length).toBe(before);
    // the set without its manifest goes, and so does the incremental after it (it
    // cannot be restored without it), with their signature files and seals; the full
    // set stays untouched
    const fullSet = (n: string) => /^(duplicity-full\.|duplicity-full-signatures\.|tapechain-seal\.full\.)/.test(n);
    const kept = fs.readdirSync(t).filter(fullSet);
    expect(kept.length).toBeLessThan(before);
    const r = await runCli(['cleanup', '--force', t]);
    expect(r.code).toBe(0);
    expect(fs.readdirSync(t)).toEqual(kept);
    const st = JSON.parse((await runCli(['status', '--json', t])).stdout);
    expect(st.incomplete).toEqual([]);
    expect(st.strays).toEqual([]);
    expect(st.orphans).toEqual([]);
    expect((await runCli(['cleanup', t])).stdout).toMatch(/^Nothing to clean up/);
  });
});

describe('verify --compare of large files (checked on worker threads)', () => {
  test('a changed byte inside a large file is found; reports come in path order, large and small files mixed; a large file gone or grown is named', async () => {
    const dir = tmp('cmp-large');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    for (const [name, size] of [['a-small', 900], ['b-large', 3 << 20], ['c-small', 500], ['d-large', 1 << 20], ['e-large', 600_000], ['f-small', 10]] as const) fs.writeFileSync(join(src, name), randomBytes(size));
    const env = { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    const target = join(dir, 't');
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    const keepTimes = (name: string, change: () => void) => {
      const st = fs.statSync(join(src, name));
      change();
      fs.utimesSync(join(src, name), st.atime, st.mtime);
    };
    expect((await runCli(['verify', '--compare', src, target], env)).stdout).toMatch(/0 difference\(s\)/);
    keepTimes('b-large', () => {
      const fd = fs.openSync(join(src, 'b-large'), 'r+');
      fs.writeSync(fd, Buffer.from([0]), 0, 1, 2_000_000);
      fs.closeSync(fd);
    });
    keepTimes('c-small', () => fs.writeFileSync(join(src, 'c-small'), randomBytes(500)));
    keepTimes('e-large', () => fs.appendFileSync(join(src, 'e-large'), 'more'));
    fs.rmSync(join(src, 'd-large'));
    const r = await runCli(['verify', '--compare', src, target], env);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').filter((l) => l.includes(': '))).toEqual([
      'b-large: content differs',
      'c-small: content differs',
      'd-large: in the backup, not in the source',
      'e-large: content differs',
      expect.stringMatching(/^Verified .*; 4 difference\(s\)/),
    ]);
  });
});
