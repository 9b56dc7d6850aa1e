/**
 * A nightly job meets concurrent runs, stale locks, files that change under it,
 * sockets, full disks and kill -9. Each case: a clear result, the earlier chain intact.
 */
import { afterEach, describe, expect, test } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FaultyBackend } from '../../src/backend/faulty.js';
import { FileBackend } from '../../src/backend/file.js';
import { runBackup } from '../../src/backup/backup.js';
import { ArchiveCache } from '../../src/repo/archive-cache.js';
import { SymmetricEncryptor } from '../../src/crypto/encrypt.js';
import { ExitCode } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { setTimes } from '../helpers/chain.js';
import { killWhen } from '../helpers/kill.js';
import { leftRunTempDirs, tempDirs } from '../helpers/tmp.js';
import { describeTree, treeDiff } from '../helpers/tree.js';
import { lockObjects, storedVolumes } from '../helpers/target.js';
import { until } from '../helpers/wait.js';

const tmp = tempDirs();
const bin = 'bin/tapechain';

function source(dir: string, mib = 4): string {
  const src = join(dir, 'src');
  fs.mkdirSync(src, { recursive: true });
  for (let i = 0; i < mib; i++) fs.writeFileSync(join(src, `f${i}.bin`), randomBytes(1 << 20));
  return src;
}

describe('locking', () => {
  test('a held lock stops a second backup at once, naming the holder; a stale one is broken', async () => {
    const dir = tmp('lock');
    const src = source(dir, 1);
    const target = join(dir, 't');
    const env = { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    // a live holder: this very process, on this host
    fs.writeFileSync(join(target, 'tapechain-lock.json'), JSON.stringify({ host: hostname(), pid: process.pid, started: Math.floor(Date.now() / 1000), operation: 'backup', token: 'x' }));
    const r = await runCli(['backup', src, target], env);
    expect(r.code).toBe(ExitCode.LOCKED);
    expect(r.stderr).toMatch(new RegExp(`locked: backup by pid ${process.pid} on ${hostname()}`));
    expect(setTimes(target)).toHaveLength(1);
    // a dead pid on this host: stale, broken with a warning
    fs.writeFileSync(join(target, 'tapechain-lock.json'), JSON.stringify({ host: hostname(), pid: 2 ** 22 + 7, started: Math.floor(Date.now() / 1000), operation: 'backup', token: 'y' }));
    const s = await runCli(['backup', src, target], env);
    expect(s.code).toBe(0);
    expect(s.stderr).toMatch(/breaking the stale lock .*process \d+ is gone/);
    // another host's lock, older than --lock-stale-after
    fs.writeFileSync(join(target, 'tapechain-lock.json'), JSON.stringify({ host: 'elsewhere', pid: 1, started: Math.floor(Date.now() / 1000) - 7200, operation: 'prune', token: 'z' }));
    const young = await runCli(['backup', src, target], env);
    expect(young.code).toBe(ExitCode.LOCKED);
    const old = await runCli(['backup', '--lock-stale-after', '1h', src, target], env);
    expect(old.code).toBe(0);
    expect(old.stderr).toMatch(/older than 3600 s/);
    expect(lockObjects(target)).toEqual([]);
  });

  test('two backups started together: one runs, the other fails fast with exit 10', async () => {
    const dir = tmp('race');
    const src = source(dir, 24);
    const target = join(dir, 't');
    const env = { ...process.env, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    const a = spawn(bin, ['backup', '--compress-level', '9', src, target], { env });
    const aDone = new Promise<number>((r) => a.on('exit', (c) => r(c ?? -1)));
    await until(() => lockObjects(target).length > 0, 'the first backup to take its lock');
    // a holds the lock, stopped so it is still running however slowly b starts
    a.kill('SIGSTOP');
    const b = spawnSync(bin, ['backup', src, target], { env });
    a.kill('SIGCONT');
    expect(b.status).toBe(ExitCode.LOCKED);
    expect(b.stderr.toString()).toMatch(new RegExp(`locked: backup by pid ${a.pid}`));
    expect(await aDone).toBe(0);
    expect(setTimes(target)).toHaveLength(1);
  });
});

describe('a closed output', () => {
  test.each([['ls'], ['find', '*'], ['export']])('%s | head: the reader stops quietly (exit 0) and releases its lock', (...cmd) => {
    const dir = tmp('epipe');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    // more output than a pipe holds, so the writer meets the closed end
    for (let i = 0; i < 4000; i++) fs.writeFileSync(join(src, `file-with-a-longish-name-${i}`), `${i}`);
    const target = join(dir, 't');
    const env = { ...process.env, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    expect(spawnSync(bin, ['backup', src, target], { env }).status).toBe(0);
    const args = [...cmd, target].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('bash', ['-c', `${bin} ${args} | head -c 100 >/dev/null; echo "exit=\${PIPESTATUS[0]}"`], { env });
    expect(r.stdout.toString()).toBe('exit=0\n');
    expect(r.stderr.toString()).not.toMatch(/tapechain: /);
    expect(lockObjects(target)).toEqual([]);
  });
});

describe('readers and writers together', () => {
  /** Two full chains at `target`, so prune --keep-full 1 has a set to delete. */
  function twoChains(name: string) {
    const dir = tmp(name);
    const src = source(dir, 3);
    const target = join(dir, 't');
    const env = { ...process.env, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    for (let i = 0; i < 2; i++) expect(spawnSync(bin, ['backup', '--full', src, target], { env }).status).toBe(0);
    return { dir, src, target, env };
  }

  // A child left stopped by a failed assertion must not outlive its test.
  const stopped: ChildProcess[] = [];
  afterEach(() => {
    for (const c of stopped.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  /** Starts `args`, stops it once it holds its lock on `target`; the caller continues it. */
  async function heldStopped(args: string[], target: string, env: NodeJS.ProcessEnv) {
    const before = new Set(lockObjects(target));
    const child = spawn(bin, args, { env });
    stopped.push(child);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const done = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    while (!lockObjects(target).some((n) => !before.has(n))) {
      if (child.exitCode !== null) throw new Error(`${args[0]} ended before it took its lock: ${stderr}`);
      await new Promise((r) => setImmediate(r));
    }
    child.kill('SIGSTOP');
    return { child, done: () => (child.kill('SIGCONT'), done), stderr: () => stderr };
  }

  test('prune --force refuses while a restore reads the target; the restore completes; prune runs after', async () => {
    const { dir, src, target, env } = twoChains('prune-restore');
    const restore = await heldStopped(['restore', '--time', String(setTimes(target)[0]), target, join(dir, 'out')], target, env);
    const prune = spawnSync(bin, ['prune', '--keep-full', '1', '--force', target], { env });
    expect(prune.status).toBe(ExitCode.LOCKED);
    expect(prune.stderr.toString()).toMatch(new RegExp(`locked: restore by pid ${restore.child.pid}`));
    expect(setTimes(target)).toHaveLength(2);
    expect(await restore.done()).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(join(dir, 'out')))).toEqual([]);
    expect(lockObjects(target)).toEqual([]);
    expect(spawnSync(bin, ['prune', '--keep-full', '1', '--force', target], { env }).status).toBe(0);
    expect(setTimes(target)).toHaveLength(1);
  });

  test('a restore refuses while prune --force holds the target', async () => {
    const { dir, target, env } = twoChains('restore-prune');
    const prune = await heldStopped(['prune', '--keep-full', '1', '--force', target], target, env);
    const restore = spawnSync(bin, ['restore', target, join(dir, 'out')], { env });
    expect(restore.status).toBe(ExitCode.LOCKED);
    expect(restore.stderr.toString()).toMatch(new RegExp(`locked: prune by pid ${prune.child.pid}`));
    expect(fs.existsSync(join(dir, 'out'))).toBe(false);
    expect(await prune.done()).toBe(0);
  });

  test('a backup goes on while a verify reads, and a verify while a backup writes', async () => {
    const { src, target, env } = twoChains('read-append');
    const verify = await heldStopped(['verify', target], target, env);
    fs.writeFileSync(join(src, 'more.bin'), randomBytes(1000));
    expect(spawnSync(bin, ['backup', src, target], { env }).status).toBe(0);
    expect(await verify.done()).toBe(0);
    const backup = await heldStopped(['backup', src, target], target, env);
    const v = spawnSync(bin, ['verify', target], { env });
    expect(v.status).toBe(0);
    expect(await backup.done()).toBe(0);
    expect(lockObjects(target)).toEqual([]);
  });
});

describe('changing and odd input', () => {
  test('a file growing while read is stored as read and reported; exit 1; --strict fails without a new set', async () => {
    const dir = tmp('grow');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'growing.log'), randomBytes(30 << 20));
    fs.writeFileSync(join(src, 'steady.txt'), 'steady');
    const server = net.createServer().listen(join(src, 'app.sock'));
    await new Promise((r) => server.once('listening', r));
    const target = join(dir, 't');
    const env = { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    // a writer appends while the backup reads
    const writer = spawn('sh', ['-c', `while true; do head -c 65536 /dev/urandom >> '${join(src, 'growing.log')}'; done`]);
    try {
      await until(() => fs.statSync(join(src, 'growing.log')).size > 30 << 20, 'the writer to append');
      const r = await runCli(['backup', '--compress-level', '0', src, target], env);
      expect(r.stderr).toMatch(/growing\.log: changed while being read \(grew past its \d+ bytes at stat; stored the first \d+ bytes\)/);
      expect(r.stderr).not.toMatch(/app\.sock.*warning|warning.*steady/);
      expect(r.code).toBe(ExitCode.WARNINGS);
      expect(r.stdout).toMatch(/1 file\(s\) skipped or changed/);
      const strict = await runCli(['backup', '--strict', '--full', '--compress-level', '0', src, target], env);
      expect(strict.code).toBe(ExitCode.SOURCE);
      expect(strict.stderr).toMatch(/growing\.log: changed while being read.*--strict/);
      expect(setTimes(target)).toHaveLength(1);
    } finally {
      writer.kill('SIGKILL');
      server.close();
    }
    // what was stored is consistent: it verifies, and restores to a prefix of the file now
    expect((await runCli(['verify', target], env)).code).toBe(0);
    const out = join(dir, 'out');
    expect((await runCli(['restore', target, out], env)).code).toBe(0);
    const restored = fs.readFileSync(join(out, 'growing.log'));
    expect(fs.readFileSync(join(src, 'growing.log')).subarray(0, restored.length).equals(restored)).toBe(true);
    expect(fs.existsSync(join(out, 'app.sock'))).toBe(false);
  });
});

/** Runs `f` with a small tmpfs mounted at `dir` (root only); skipped visibly otherwise. */
function withTmpfs(dir: string, size: string): boolean {
  fs.mkdirSync(dir, { recursive: true });
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).status === 0;
}
const canMount = process.getuid?.() === 0;
const describeRoot = canMount ? describe : describe.skip;

describeRoot('full disks (tmpfs)', () => {
  test('target full: one clear line, no manifest, temp files removed', async () => {
    const dir = tmp('enospc-t');
    const src = source(dir, 6);
    const target = join(dir, 'small');
    expect(withTmpfs(target, '3m')).toBe(true);
    try {
      const r = await runCli(['backup', '--compress-level', '0', '--volsize', '1', src, target], { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') });
      expect(r.code).toBe(ExitCode.BACKEND);
      expect(r.stderr.trim().split('\n').pop()).toMatch(/^tapechain: .*no space left on the target/);
      expect(fs.readdirSync(target).some((n) => n.includes('manifest'))).toBe(false);
      expect(fs.readdirSync(target).filter((n) => n.startsWith('.tapechain-tmp'))).toEqual([]);
      expect(leftRunTempDirs('backup')).toEqual([]); // the run's staged volumes (runCli runs it in this process)
    } finally {
      spawnSync('umount', [target]);
    }
  });

  test('destination full: one clear line, nothing left in DEST', async () => {
    const dir = tmp('enospc-d');
    const src = source(dir, 6);
    const target = join(dir, 't');
    const env = { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    const dest = join(dir, 'dest');
    expect(withTmpfs(dest, '3m')).toBe(true);
    try {
      const r = await runCli(['restore', target, dest], env);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n').pop()).toMatch(/^tapechain: .*(ENOSPC|no space)/i);
      expect(fs.readdirSync(dest)).toEqual([]);
    } finally {
      spawnSync('umount', [dest]);
    }
  });
});

describe('kill -9', () => {
  test('an interrupted backup leaves the chain intact; the next run completes and restores exactly', async () => {
    const dir = tmp('kill');
    const src = source(dir, 12);
    const target = join(dir, 't');
    const env = { ...process.env, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    expect(spawnSync(bin, ['backup', '--volsize', '1', src, target], { env }).status).toBe(0);
    const before = describeTree(src);
    for (let i = 0; i < 3; i++) fs.writeFileSync(join(src, `new${i}.bin`), randomBytes(1 << 20));
    const volumes = () => storedVolumes(target);
    for (const after of [0, 2, 5]) {
      // cut at a different point each time: before the first volume, and after 2 and 5
      const base = volumes();
      const p = spawn(bin, ['backup', '--full', '--volsize', '1', '--compress-level', '9', src, target], { env });
      const ready = after === 0 ? () => lockObjects(target).length > 0 : () => volumes() >= base + after;
      expect(await killWhen(p, ready)).toBe('SIGKILL');
      // the first chain still restores exactly at its time
      const t0 = setTimes(target)[0]!;
      const out = join(dir, `out-${after}`);
      const r = await runCli(['restore', '--time', String(t0), target, out], { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') });
      expect(r.code).toBe(0);
      expect(treeDiff(before, describeTree(out))).toEqual([]);
    }
    // a leftover lock from the killed run is stale (dead pid) and does not block
    const next = spawnSync(bin, ['backup', '--volsize', '1', src, target], { env });
    expect(next.status).toBe(0);
    const out = join(dir, 'out-final');
    expect((await runCli(['restore', target, out], { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') })).code).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(out))).toEqual([]);
  });
});

describe('resume after kill -9', () => {
  /** Kills the backup four times, each after 1-3 more volumes were stored; a last run completes it. */
  async function killLoop(target: string, src: string, extraArgs: string[], env: NodeJS.ProcessEnv): Promise<{ resumed: number }> {
    let resumed = 0;
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const volumes = () => storedVolumes(target);
    for (let i = 0; i < 4; i++) {
      const base = volumes();
      const p = spawn(bin, ['backup', '--volsize', '1', '--compress-level', '9', ...extraArgs, src, target], { env });
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      // each run is cut after 1-3 more volumes are stored: the next one must continue the set
      const more = 1 + Math.floor(rnd() * 3);
      expect(await killWhen(p, () => volumes() >= base + more)).toBe('SIGKILL');
      if (/Resuming the interrupted set after volume \d+/.test(err)) resumed++;
    }
    // a last run without interruption
    const last = spawnSync(bin, ['backup', '--volsize', '1', ...extraArgs, src, target], { env });
    if (/Resuming/.test(last.stderr.toString())) resumed++;
    expect(last.status).toBe(0);
    return { resumed };
  }

  test('a run that stored every volume but not the manifest is finished by the next, each entry once', async () => {
    // The last volume's checkpoint already holds the last file's signature: the resumed
    // run must not write it again (verify would find the file twice in the signature file).
    const dir = tmp('resume-last');
    const src = source(dir, 5);
    const target = join(dir, 't');
    const cacheDir = join(dir, 'cache');
    const enc = () => new SymmetricEncryptor(Buffer.from('p'), { codedCount: 96 });
    const common = { source: src, keys: { passphrase: Buffer.from('p') }, volsize: 1 << 20, cache: new ArchiveCache(cacheDir) };
    const failing = new FaultyBackend(new FileBackend(target), [{ method: 'put', match: /manifest/, kind: 'permanent' }]);
    await expect(runBackup({ ...common, backend: failing, encryptor: enc() })).rejects.toThrow(/manifest/);
    expect(storedVolumes(target)).toBeGreaterThanOrEqual(5);
    const plans: { resumed?: boolean }[] = [];
    await runBackup({ ...common, backend: new FileBackend(target), encryptor: enc(), onPlan: (p) => plans.push(p) });
    expect(plans[0]?.resumed).toBe(true);
    const v = await runCli(['verify', '--archive-dir', join(dir, 'verify-cache'), target], { PASSPHRASE: 'p' });
    expect(v.stdout).toMatch(/, 0 problem\(s\)/);
    const out = join(dir, 'out');
    expect((await runCli(['restore', '--archive-dir', join(dir, 'verify-cache'), target, out], { PASSPHRASE: 'p' })).code).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(out))).toEqual([]);
  });

  test('resume: false (--no-resume) starts the interrupted set over, and says why', async () => {
    const dir = tmp('no-resume');
    const src = source(dir, 4);
    const target = join(dir, 't');
    const enc = () => new SymmetricEncryptor(Buffer.from('p'), { codedCount: 96 });
    const common = { source: src, keys: { passphrase: Buffer.from('p') }, volsize: 1 << 20, cache: new ArchiveCache(join(dir, 'cache')) };
    const failing = new FaultyBackend(new FileBackend(target), [{ method: 'put', match: /manifest/, kind: 'permanent' }]);
    await expect(runBackup({ ...common, backend: failing, encryptor: enc() })).rejects.toThrow(/manifest/);
    const plans: { reason: string; resumed?: boolean }[] = [];
    const r = await runBackup({ ...common, backend: new FileBackend(target), encryptor: enc(), resume: false, onPlan: (p) => plans.push(p) });
    expect(plans[0]).toMatchObject({ resumed: false, reason: 'not resuming the interrupted set: resuming was turned off for this run' });
    expect(plans.at(-1)?.resumed).toBe(false);
    expect(r.volumes).toBeGreaterThanOrEqual(4); // every volume written again, in a set of its own
    const out = join(dir, 'out');
    expect((await runCli(['restore', '--archive-dir', join(dir, 'c2'), target, out], { PASSPHRASE: 'p' })).code).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(out))).toEqual([]);
  });

  describe.each([
    ['stored, its reply lost', true, 3],
    ['not stored', false, 2],
  ])('a run that ends while volume 3 is uploaded (%s)', (_what, afterStoring, resumeAfter) => {
    test(`is continued after volume ${resumeAfter}, and restores exactly`, async () => {
      // The checkpoint names each volume before its upload starts: a volume that reached
      // the target is not written again, one that did not is.
      const dir = tmp('resume-pending');
      const src = source(dir, 6);
      const target = join(dir, 't');
      const cacheDir = join(dir, 'cache');
      const enc = () => new SymmetricEncryptor(Buffer.from('p'), { codedCount: 96 });
      const common = { source: src, keys: { passphrase: Buffer.from('p') }, volsize: 1 << 20, cache: new ArchiveCache(cacheDir) };
      const failing = new FaultyBackend(new FileBackend(target), [{ method: 'put', match: /\.vol3\./, kind: 'permanent', afterStoring }]);
      await expect(runBackup({ ...common, backend: failing, encryptor: enc() })).rejects.toThrow(/vol3/);
      expect(fs.existsSync(join(target, failing.calls.put.find((n) => /\.vol3\./.test(n))!))).toBe(afterStoring);
      const plans: { reason: string }[] = [];
      const resumed = new FaultyBackend(new FileBackend(target));
      await runBackup({ ...common, backend: resumed, encryptor: enc(), onPlan: (p) => plans.push(p) });
      expect(plans[0]?.reason).toBe(`resuming the interrupted set after volume ${resumeAfter}`);
      expect(resumed.calls.put.filter((n) => /\.vol[123]\./.test(n))).toHaveLength(3 - resumeAfter);
      const v = await runCli(['verify', '--archive-dir', join(dir, 'verify-cache'), target], { PASSPHRASE: 'p' });
      expect(v.stdout).toMatch(/, 0 problem\(s\)/);
      const out = join(dir, 'out');
      expect((await runCli(['restore', '--archive-dir', join(dir, 'verify-cache'), target, out], { PASSPHRASE: 'p' })).code).toBe(0);
      expect(treeDiff(describeTree(src), describeTree(out))).toEqual([]);
    });
  });

  test('local target, volumes built on two threads: the interrupted set is continued, not thrown away, and restores exactly', async () => {
    const dir = tmp('resume');
    // 48 volumes: room for four cuts of 1-3 volumes each.
    const src = source(dir, 48);
    const target = join(dir, 't');
    const env = { ...process.env, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    const { resumed } = await killLoop(target, src, ['--jobs', '2'], env);
    expect(resumed).toBe(4); // every run after the first continued the set
    const out = join(dir, 'out');
    const r = await runCli(['restore', target, out], { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') });
    expect(r.code).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(out))).toEqual([]);
    expect((await runCli(['verify', '--all', target], { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') })).stdout).toMatch(/, 0 problem\(s\)/);
    // one full set: the interrupted one was completed, not restarted under another name
    expect(fs.readdirSync(target).filter((n) => /^duplicity-full\..*\.manifest/.test(n))).toHaveLength(1);
    const dup = spawnSync('duplicity', ['restore', '--archive-dir', join(dir, 'dupc'), '--name', 'r', `file://${target}`, join(dir, 'dup-out')], { env });
    expect(dup.status).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(join(dir, 'dup-out')))).toEqual([]);
  });
});
