/**
 * Incremental chains: a tree that changes in every way over four sets; every point in
 * time restores exactly, by tapechain and by real duplicity. Chains mixed with
 * duplicity's own incrementals, in both directions.
 */
import { beforeAll, describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { parseName } from '../../src/chain/file-naming.js';
import { formatTimestamp } from '../../src/chain/time.js';
import { runCli } from '../helpers/cli.js';
import { expectDuplicityRestore, expectTapechainRestore, setTimes } from '../helpers/chain.js';
import { tempDirs } from '../helpers/tmp.js';
import { duplicity } from '../helpers/tools.js';
import { describeTree } from '../helpers/tree.js';
import { nextSecond } from '../helpers/wait.js';

const tmp = tempDirs();
const T0 = Date.UTC(2026, 0, 1) / 1000;
let tick = 0;
/** A fresh whole-second mtime for every change, so each change is visible. */
const stamp = (p: string) => {
  const t = T0 + ++tick * 100;
  fs.lutimesSync(p, t, t);
};

function write(p: string, data: Buffer | string, mode = 0o644) {
  fs.mkdirSync(join(p, '..'), { recursive: true });
  fs.writeFileSync(p, data);
  fs.chmodSync(p, mode);
  stamp(p);
}

function state0(s: string) {
  write(join(s, 'big.bin'), randomBytes(3_500_000));
  write(join(s, 'log.txt'), 'line\n'.repeat(20000));
  write(join(s, 'trunc.bin'), randomBytes(300_000));
  write(join(s, 'gone.txt'), 'delete me\n');
  write(join(s, 'olddir/a.txt'), 'a\n');
  write(join(s, 'olddir/sub/b.txt'), 'b\n');
  write(join(s, 'becomes-dir'), 'I am a file\n');
  write(join(s, 'becomes-link/inside.txt'), 'inside\n');
  write(join(s, 'chmod-only.sh'), '#!/bin/sh\n');
  write(join(s, 'mtime-only.txt'), 'same content\n');
  write(join(s, 'project/src/main.c'), 'int main() { return 0; }\n');
  write(join(s, 'project/README'), 'readme\n');
  fs.symlinkSync('log.txt', join(s, 'link'));
}

function state1(s: string) {
  const big = fs.readFileSync(join(s, 'big.bin'));
  randomBytes(10_000).copy(big, 1_700_000); // edit in the middle
  write(join(s, 'big.bin'), big);
  fs.appendFileSync(join(s, 'log.txt'), 'appended\n'.repeat(100));
  stamp(join(s, 'log.txt'));
  write(join(s, 'trunc.bin'), fs.readFileSync(join(s, 'trunc.bin')).subarray(0, 100_001));
  fs.rmSync(join(s, 'gone.txt'));
  fs.rmSync(join(s, 'olddir'), { recursive: true }); // a directory deleted
  fs.rmSync(join(s, 'becomes-dir'));
  write(join(s, 'becomes-dir/now.txt'), 'file → dir\n');
  fs.chmodSync(join(s, 'chmod-only.sh'), 0o755);
  stamp(join(s, 'mtime-only.txt'));
}

function state2(s: string) {
  fs.rmSync(join(s, 'becomes-link'), { recursive: true });
  fs.symlinkSync('project', join(s, 'becomes-link')); // dir → symlink
  fs.renameSync(join(s, 'project'), join(s, 'renamed-project')); // rename of a directory
  stamp(join(s, 'renamed-project'));
  fs.rmSync(join(s, 'link'));
  fs.symlinkSync('big.bin', join(s, 'link'));
  write(join(s, 'new-empty'), '');
  fs.mkdirSync(join(s, 'new-empty-dir'));
  stamp(join(s, 'new-empty-dir'));
}

function state3(s: string) {
  const big = fs.readFileSync(join(s, 'big.bin'));
  write(join(s, 'big.bin'), Buffer.concat([randomBytes(17), big, randomBytes(70_000)])); // shift + append
  fs.chmodSync(join(s, 'log.txt'), 0o600);
  stamp(join(s, 'log.txt'));
  write(join(s, 'trunc.bin'), Buffer.alloc(0)); // truncated to nothing
  fs.rmSync(join(s, 'becomes-dir'), { recursive: true });
  write(join(s, 'becomes-dir'), 'a file again\n');
}

const states = [state0, state1, state2, state3];

describe('a four-set chain over a tree that changes in every way', () => {
  const dir = tmp('chain');
  const src = join(dir, 'src');
  const target = join(dir, 'target');
  const env = { PASSPHRASE: 'chain pw', XDG_CACHE_HOME: join(dir, 'cache') };
  const snapshots: Map<string, string>[] = [];
  const runs: { code: number; stdout: string }[] = [];

  // The chain every test here reads: made once, never changed by a test.
  beforeAll(async () => {
    fs.mkdirSync(src);
    for (const [i, apply] of states.entries()) {
      apply(src);
      fs.utimesSync(src, T0 + i, T0 + i);
      runs.push(await runCli(['backup', '--volsize', '1', src, target], env));
      snapshots.push(describeTree(src));
    }
  }, 300_000);

  test('backup: one full, then three incrementals', () => {
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    for (const [i, r] of runs.entries()) expect(r.stdout).toMatch(i === 0 ? /^Full backup/ : /^Incremental backup/);
    expect(setTimes(target)).toHaveLength(4);
    const incVolumes = fs.readdirSync(target).filter((n) => n.startsWith('duplicity-inc.') && n.includes('.vol'));
    const incBytes = incVolumes.reduce((a, n) => a + fs.statSync(join(target, n)).size, 0);
    // three incrementals of small changes: far smaller than the 3.9 MB tree
    expect(incBytes).toBeLessThan(400_000);
  });

  test('tapechain restores every point in time', async () => {
    const times = setTimes(target);
    for (const [i, t] of times.entries()) await expectTapechainRestore(target, t, join(dir, `tc-${i}`), snapshots[i]!, env);
  });

  test('duplicity restores every point in time', () => {
    const times = setTimes(target);
    for (const [i, t] of times.entries()) expectDuplicityRestore(dir, target, t, join(dir, `dup-${i}`), snapshots[i]!, env);
  });

  test('ls at each point lists that state', async () => {
    const times = setTimes(target);
    for (const [i, t] of times.entries()) {
      const r = await runCli(['ls', '--json', '--time', formatTimestamp(t), target], env);
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n').length).toBe(snapshots[i]!.size);
    }
  });

  test('--path restores one file or subtree, fetching only volumes that can hold it', async () => {
    const t = setTimes(target)[2]!;
    const out = join(dir, 'path-file');
    const r = await runCli(['restore', '--time', formatTimestamp(t), '--path', 'renamed-project/src', target, out], env);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(join(out, 'renamed-project/src/main.c'), 'utf8')).toContain('int main');
    expect(fs.readdirSync(out)).toEqual(['renamed-project']);
    expect(fs.readdirSync(join(out, 'renamed-project'))).toEqual(['src']);
    // the full set has 4+ volumes; big.bin and log.txt live in volumes before "renamed-project"
    const volumes = Number(/from (\d+) volume/.exec(r.stdout)![1]);
    const total = fs.readdirSync(target).filter((n) => parseName(n)?.kind === 'volume' && parseName(n)!.end <= t).length;
    expect(volumes).toBeGreaterThan(0);
    expect(volumes).toBeLessThan(total);
    const big = await runCli(['restore', '--path', 'big.bin', target, join(dir, 'path-big')], env);
    expect(big.code).toBe(0);
    expect(describeTree(join(dir, 'path-big')).get('big.bin')).toBe(snapshots[3]!.get('big.bin'));
    const missing = await runCli(['restore', '--path', 'no/such/file', target, join(dir, 'path-missing')], env);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/no\/such\/file: not in the backup/);
    expect(fs.existsSync(join(dir, 'path-missing'))).toBe(false);
  });

  test('the cache is rebuilt from the target when it is missing', async () => {
    const fresh = join(dir, 'fresh-cache');
    const r = await runCli(['ls', target], { ...env, XDG_CACHE_HOME: fresh });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('renamed-project/src/main.c');
    const cacheDirs = fs.readdirSync(join(fresh, 'tapechain'));
    expect(cacheDirs).toHaveLength(1);
    expect(fs.readdirSync(join(fresh, 'tapechain', cacheDirs[0]!)).filter((n) => n.endsWith('.sigtar.gz'))).toHaveLength(4);
  });
});

describe('chains mixed with duplicity', () => {
  test('duplicity extends a tapechain chain and tapechain extends it again; all points restore with both', async () => {
    const dir = tmp('mixed');
    const src = join(dir, 'src');
    const target = join(dir, 'target');
    const env = { PASSPHRASE: 'mixed', XDG_CACHE_HOME: join(dir, 'cache') };
    const snaps: Map<string, string>[] = [];
    fs.mkdirSync(src);
    const runners = [
      async () => expect((await runCli(['backup', '--volsize', '1', src, target], env)).code).toBe(0),
      async () => expect(duplicity(['incr', '--volsize', '1', '--archive-dir', join(dir, 'dc'), '--name', 'm', src, `file://${target}`], dir, env).status).toBe(0),
      async () => expect((await runCli(['backup', '--volsize', '1', src, target], env)).stdout).toMatch(/^Incremental/),
      async () => expect(duplicity(['incr', '--volsize', '1', '--archive-dir', join(dir, 'dc'), '--name', 'm', src, `file://${target}`], dir, env).status).toBe(0),
    ];
    for (const [i, apply] of states.entries()) {
      apply(src);
      fs.utimesSync(src, T0 + 10 + i, T0 + 10 + i);
      await runners[i]!();
      snaps.push(describeTree(src));
      await nextSecond(); // duplicity needs a new second per set
    }
    const times = setTimes(target);
    expect(times).toHaveLength(4);
    for (const [i, t] of times.entries()) {
      await expectTapechainRestore(target, t, join(dir, `tc-${i}`), snaps[i]!, env);
      expectDuplicityRestore(dir, target, t, join(dir, `dup-${i}`), snaps[i]!, env);
    }
  });

  test('tapechain extends a chain duplicity started', async () => {
    const dir = tmp('dupfirst');
    const src = join(dir, 'src');
    const target = join(dir, 'target');
    const env = { PASSPHRASE: 'dupfirst', XDG_CACHE_HOME: join(dir, 'cache') };
    fs.mkdirSync(src);
    state0(src);
    expect(duplicity(['full', '--volsize', '1', '--archive-dir', join(dir, 'dc'), '--name', 'f', src, `file://${target}`], dir, env).status).toBe(0);
    const s0 = describeTree(src);
    state1(src);
    await nextSecond();
    const r = await runCli(['backup', src, target], env);
    expect(r.stdout).toMatch(/^Incremental/);
    const s1 = describeTree(src);
    const [t0, t1] = setTimes(target);
    await expectTapechainRestore(target, t1!, join(dir, 'latest'), s1, env);
    expectDuplicityRestore(dir, target, t1!, join(dir, 'dup-latest'), s1, env);
    await expectTapechainRestore(target, t0!, join(dir, 'first'), s0, env);
  });
});

describe('choosing full or incremental', () => {
  const mk = () => {
    const dir = tmp('choose');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'a'), 'a');
    return { dir, src, target: join(dir, 't'), env: { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') } };
  };

  test('--full starts a new chain; --full-if-older-than too when the full is old', async () => {
    const { src, target, env } = mk();
    expect((await runCli(['backup', src, target], env)).stdout).toMatch(/^Full/);
    expect((await runCli(['backup', src, target], env)).stdout).toMatch(/^Incremental/);
    expect((await runCli(['backup', '--full-if-older-than', '1D', src, target], env)).stdout).toMatch(/^Incremental/);
    await nextSecond();
    const old = await runCli(['backup', '--full-if-older-than', '1s', src, target], env);
    expect(old.stdout).toMatch(/^Full/);
    expect(old.stderr).toMatch(/older than the age given for a new full/);
    expect((await runCli(['backup', '--full', src, target], env)).stdout).toMatch(/^Full/);
    const st = JSON.parse((await runCli(['status', '--json', target], env)).stdout);
    expect(st.chains.map((c: { sets: unknown[] }) => c.sets.length)).toEqual([3, 1, 1]);
  });

  test('a file whose size changed but not its mtime nor its block count is stored again (the size recorded beside its signature)', async () => {
    const { dir, src, target, env } = mk();
    const f = join(src, 'a');
    fs.writeFileSync(f, Buffer.alloc(10_000, 1));
    fs.utimesSync(f, T0, T0);
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    fs.writeFileSync(f, Buffer.alloc(10_001, 2)); // same number of signature blocks
    fs.utimesSync(f, T0, T0);
    await nextSecond(); // the incremental's own time, not the file's
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    const out = join(dir, 'r');
    expect((await runCli(['restore', target, out], env)).code).toBe(0);
    expect(fs.readFileSync(join(out, 'a')).equals(fs.readFileSync(f))).toBe(true);
  });

  test('an incremental from another source path is refused unless --allow-source-mismatch', async () => {
    const { dir, src, target, env } = mk();
    await runCli(['backup', src, target], env);
    // a symlink to the same directory is the same source (paths are compared resolved)
    fs.symlinkSync(src, join(dir, 'alias'));
    expect((await runCli(['backup', join(dir, 'alias'), target], env)).code).toBe(0);
    expect(setTimes(target)).toHaveLength(2);
    fs.cpSync(src, join(dir, 'copy'), { recursive: true });
    const r = await runCli(['backup', join(dir, 'copy'), target], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/backs up ".*alias", not ".*copy" \(use --allow-source-mismatch/);
    expect(setTimes(target)).toHaveLength(2);
    const ok = await runCli(['backup', '--allow-source-mismatch', join(dir, 'copy'), target], env);
    expect(ok.stdout).toMatch(/^Incremental/);
  });

  test('an incremental with another passphrase is refused before anything is written', async () => {
    const { src, target, env } = mk();
    await runCli(['backup', src, target], env);
    const before = fs.readdirSync(target).sort();
    const r = await runCli(['backup', src, target], { ...env, PASSPHRASE: 'other' });
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/must use the chain's key.*--full/);
    expect(fs.readdirSync(target).sort()).toEqual(before);
  });
});
