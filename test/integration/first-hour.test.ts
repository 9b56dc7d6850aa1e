/**
 * The first hour and the bad night: Ctrl-C and systemd's SIGTERM stop runs cleanly,
 * kill -9 leftovers are removed by the next run, plaintext temp files are private, and
 * the mistakes a new user makes get one clear line.
 */
import { describe, expect, test } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { classifyS3Error } from '../../src/backend/s3.js';
import { ExitCode } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { setTimes } from '../helpers/chain.js';
import { killWhen, signalWhen } from '../helpers/kill.js';
import { tempDirs } from '../helpers/tmp.js';
import { describeTree, treeDiff } from '../helpers/tree.js';
import { lockObjects, storedVolumes } from '../helpers/target.js';

const tmp = tempDirs();
const bin = join(process.cwd(), 'bin/tapechain');

interface Setup {
  dir: string;
  src: string;
  target: string;
  /** TMPDIR of the runs: must be empty after each. */
  temp: string;
  env: NodeJS.ProcessEnv;
}

function setup(name: string, mib = 24): Setup {
  const dir = tmp(name);
  const src = join(dir, 'src');
  fs.mkdirSync(join(src, 'd'), { recursive: true });
  for (let i = 0; i < mib; i++) fs.writeFileSync(join(src, i % 2 ? 'd' : '', `f${i}.bin`), randomBytes(1 << 20));
  const temp = join(dir, 'tmp');
  fs.mkdirSync(temp);
  return { dir, src, target: join(dir, 't'), temp, env: { ...process.env, PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache'), TMPDIR: temp } };
}

const volumes = storedVolumes;
const cacheLocks = (s: Setup) => (fs.existsSync(join(s.dir, 'cache', 'tapechain')) ? fs.readdirSync(join(s.dir, 'cache', 'tapechain')).filter((d) => fs.existsSync(join(s.dir, 'cache', 'tapechain', d, 'lockfile'))) : []);

/** Whether the child holds a file matching `re` open (a read-only run shows nothing else). */
function holdsOpen(child: ChildProcess, re: RegExp): boolean {
  return fs.readdirSync(`/proc/${child.pid}/fd`).some((f) => re.test(fs.readlinkSync(`/proc/${child.pid}/fd/${f}`)));
}

function expectClean(s: Setup): void {
  expect(lockObjects(s.target)).toEqual([]);
  expect(cacheLocks(s)).toEqual([]);
  expect(fs.readdirSync(s.temp)).toEqual([]);
}

describe('SIGINT and SIGTERM', () => {
  test.each([
    ['SIGINT', 130, 'before the first volume', 0],
    ['SIGTERM', 143, 'before the first volume', 0],
    ['SIGINT', 130, 'after two volumes', 2],
    ['SIGTERM', 143, 'after three volumes', 3],
  ] as const)('%s (exit %d) %s of a backup: locks released, temp files gone, the next run continues the set', async (sig, code, _when, after) => {
    const s = setup('sigbackup');
    const child = spawn(bin, ['backup', '--volsize', '1', '--compress-level', '9', s.src, s.target], { env: s.env });
    const ready = after === 0 ? () => lockObjects(s.target).length > 0 : () => volumes(s.target) >= after;
    const r = await signalWhen(child, sig, ready);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(new RegExp(`interrupted by ${sig}.*run the same backup again to continue the set`));
    expectClean(s);
    expect(setTimes(s.target)).toEqual([]); // no set that looks complete
    const next = spawnSync(bin, ['backup', '--volsize', '1', s.src, s.target], { env: s.env });
    expect(next.status).toBe(0);
    if (after > 0) expect(next.stderr.toString()).toMatch(/Resuming the interrupted set after volume \d+/);
    expectClean(s);
    const out = join(s.dir, 'out');
    expect((await runCli(['restore', s.target, out], { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(s.dir, 'cache') })).code).toBe(0);
    expect(treeDiff(describeTree(s.src, { ignoreRootMeta: true }), describeTree(out, { ignoreRootMeta: true }))).toEqual([]);
  });

  test.each([
    ['SIGINT', 130, 'staged files in place', '1', 'tree/d'],
    ['SIGTERM', 143, 'staged files in place', '1', 'tree/d'],
    ['SIGINT', 130, 'worker threads writing volumes', '2', 'scratch'],
    ['SIGTERM', 143, 'worker threads writing volumes', '2', 'scratch'],
  ] as const)('%s (exit %d) during a restore, %s (--jobs %s): DEST as it was, staging and temp files gone', async (sig, code, _when, jobs, staging) => {
    const s = setup('sigrestore', 64);
    expect(spawnSync(bin, ['backup', '--volsize', '8', '--compress-level', '0', s.src, s.target], { env: s.env }).status).toBe(0);
    const dest = join(s.dir, 'dest');
    fs.mkdirSync(dest);
    fs.writeFileSync(join(dest, 'mine'), 'mine');
    const before = describeTree(dest);
    const child = spawn(bin, ['restore', '--force', '--jobs', jobs, s.target, dest], { env: s.env });
    const staged = () => {
      try {
        const st = fs.readdirSync(dest).find((n) => n.startsWith('.tapechain-restore-'));
        return st !== undefined && fs.readdirSync(join(dest, st, staging)).length >= 2;
      } catch {
        return false; // not there yet, or already gone
      }
    };
    const r = await signalWhen(child, sig, staged);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(new RegExp(`interrupted by ${sig}`));
    expect(treeDiff(before, describeTree(dest))).toEqual([]);
    expect(fs.readdirSync(s.temp)).toEqual([]);
  });

  test.each([
    ['SIGINT', 130, 'reading a volume', /\.vol\d+\.difftar\.gpg$/],
    ['SIGTERM', 143, 'comparing the live tree', /\/src\/(d\/)?f\d+\.bin$/],
  ] as const)('%s (exit %d) during verify --compare, %s: temp dir empty', async (sig, code, _phase, openFile) => {
    const s = setup('sigverify', 32);
    expect(spawnSync(bin, ['backup', '--compress-level', '0', s.src, s.target], { env: s.env }).status).toBe(0);
    const child = spawn(bin, ['verify', '--compare', s.src, s.target], { env: s.env });
    const r = await signalWhen(child, sig, () => holdsOpen(child, openFile));
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(new RegExp(`interrupted by ${sig}`));
    expect(fs.readdirSync(s.temp)).toEqual([]);
    // an interrupted verify records nothing (the archive and the live tree are read at once)
    expect(spawnSync(bin, ['status', s.target], { env: s.env }).stdout.toString()).not.toMatch(/Last verify/);
  });
});

describe('SIGINT and SIGTERM during a parallel verify', () => {
  test.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s (exit %d) while workers read volumes: the signature spool and the temp dir are gone', async (sig, code) => {
    const s = setup('sigpverify', 16);
    expect(spawnSync(bin, ['backup', '--volsize', '1', '--compress-level', '0', s.src, s.target], { env: s.env }).status).toBe(0);
    const child = spawn(bin, ['verify', '--jobs', '2', s.target], { env: s.env });
    // cut once the decoded signature file is spooled and a worker reads a volume
    const spooled = () => fs.readdirSync(s.temp).some((d) => fs.readdirSync(join(s.temp, d)).some((f) => f.startsWith('signatures-')));
    const r = await signalWhen(child, sig, () => spooled() && holdsOpen(child, /\.vol([2-9]|1\d)\.difftar\.gpg$/));
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(new RegExp(`interrupted by ${sig}`));
    expect(fs.readdirSync(s.temp)).toEqual([]);
  });
});

describe('kill -9 leftovers and private temp files', () => {
  test("a killed backup's temp directory is removed by the next run; temp files are 0600 in a 0700 directory", async () => {
    const s = setup('k9', 12);
    const child = spawn(bin, ['backup', '--volsize', '1', s.src, s.target], { env: s.env });
    // cut while volumes and signature spools are staged: what it left shows their modes
    expect(await killWhen(child, () => volumes(s.target) >= 2)).toBe('SIGKILL');
    const left = fs.readdirSync(s.temp);
    expect(left).toEqual([expect.stringMatching(new RegExp(`^tapechain-backup\\.${child.pid}\\.`))]);
    const modes: string[] = [];
    const look = (p: string) => {
      const st = fs.lstatSync(p);
      const want = st.isDirectory() ? 0o700 : 0o600;
      if ((st.mode & 0o777) !== want) modes.push(`${p} ${(st.mode & 0o777).toString(8)}`);
      if (st.isDirectory()) for (const n of fs.readdirSync(p)) look(join(p, n));
    };
    look(join(s.temp, left[0]!));
    expect(modes).toEqual([]);
    expect(fs.readdirSync(join(s.temp, left[0]!)).length).toBeGreaterThan(0);
    expect(spawnSync(bin, ['backup', '--volsize', '1', s.src, s.target], { env: s.env }).status).toBe(0);
    expect(fs.readdirSync(s.temp)).toEqual([]);
  });
});

describe('mistakes users make', () => {
  test('the source as typed: /abs/src, /abs/src/, a relative path and . continue one chain; a refused run leaves no cache folder', async () => {
    const s = setup('srcpath', 1);
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(s.dir, 'cache') };
    expect((await runCli(['backup', s.src, s.target], env)).code).toBe(0);
    expect((await runCli(['backup', `${s.src}/`, s.target], env)).code).toBe(0);
    for (const [cwd, src] of [[s.dir, 'src'], [s.src, '.']] as const) {
      const r = spawnSync(bin, ['backup', src, s.target], { cwd, env: { ...process.env, ...env } });
      expect({ src, code: r.status, stderr: r.stderr.toString() }).toEqual({ src, code: 0, stderr: '' });
    }
    expect(setTimes(s.target)).toHaveLength(4);
    const other = join(s.dir, 'other');
    fs.mkdirSync(other);
    const caches = fs.readdirSync(join(s.dir, 'cache', 'tapechain')).length;
    const refused = await runCli(['backup', other, `file://${s.target}`], env);
    expect(refused.code).toBe(ExitCode.CONFIG);
    expect(refused.stderr).toMatch(/--allow-source-mismatch/);
    expect(fs.readdirSync(join(s.dir, 'cache', 'tapechain'))).toHaveLength(caches);
  });

  test('--time before the first backup warns (and fails with --strict-time); restore into /proc/foo fails at once', async () => {
    const s = setup('time', 1);
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(s.dir, 'cache') };
    expect((await runCli(['backup', s.src, s.target], env)).code).toBe(0);
    const ls = await runCli(['ls', '--time', '2001-01-01', s.target], env);
    expect(ls.code).toBe(0);
    expect(ls.stderr).toMatch(/^warning: no backup is as old as 2001-01-01/m);
    const strict = await runCli(['restore', '--strict-time', '--time', '2001-01-01', s.target, join(s.dir, 'out')], env);
    expect(strict.code).toBe(ExitCode.NOT_FOUND);
    expect(fs.existsSync(join(s.dir, 'out'))).toBe(false);
    const r = spawnSync(bin, ['restore', s.target, '/proc/tapechain-test-dest'], { env: { ...process.env, ...env }, timeout: 60000 });
    expect(r.status).toBe(ExitCode.DESTINATION);
    expect(r.stderr.toString()).toMatch(/\/proc\/tapechain-test-dest: cannot create/);
  });

  test('status: no backup exits 4, a file as target exits 3, one line each', async () => {
    const dir = tmp('status');
    const none = await runCli(['status', join(dir, 'nothing')], {});
    expect(none.code).toBe(ExitCode.NOT_FOUND);
    fs.writeFileSync(join(dir, 'afile'), 'x');
    for (const cmd of ['status', 'ls', 'verify']) {
      const r = await runCli([cmd, join(dir, 'afile')], { PASSPHRASE: 'pw' });
      expect({ cmd, code: r.code, lines: r.stderr.trim().split('\n').length }).toEqual({ cmd, code: ExitCode.CONFIG, lines: 1 });
      expect(r.stderr).toMatch(/afile: is a file, not a directory/);
    }
  });

  test('an S3 host that does not exist is a permanent error naming --s3-endpoint, not six retries', () => {
    const e = Object.assign(new Error('getaddrinfo ENOTFOUND my-b2-bucket.s3.amazonaws.com'), { code: 'ENOTFOUND' });
    const c = classifyS3Error(e, 'listing s3://my-b2-bucket/home');
    expect(c.kind).toBe('permanent');
    expect(c.message).toBe('listing s3://my-b2-bucket/home: no such host my-b2-bucket.s3.amazonaws.com (for Backblaze B2, Ceph, MinIO and other S3-compatible services give --s3-endpoint URL)');
    expect(classifyS3Error(Object.assign(new Error('getaddrinfo EAI_AGAIN x'), { code: 'EAI_AGAIN' }), 'x').kind).toBe('transient');
  });
});

describe('output', () => {
  test('--version and -V print the version; no arguments prints help on stderr and exits 2', () => {
    const version = (JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const r = spawnSync(bin, [flag]);
      expect({ flag, status: r.status, out: r.stdout.toString() }).toEqual({ flag, status: 0, out: `${version}\n` });
    }
    const none = spawnSync(bin, []);
    expect(none.status).toBe(ExitCode.USAGE);
    expect(none.stdout.toString()).toBe('');
    expect(none.stderr.toString()).toMatch(/Usage: tapechain/);
  });

  test('-q prints nothing at all on success', async () => {
    const s = setup('quiet', 1);
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(s.dir, 'cache') };
    for (let i = 0; i < 2; i++) {
      const r = await runCli(['backup', '-q', s.src, s.target], env);
      expect({ i, code: r.code, stdout: r.stdout, stderr: r.stderr, bytes: r.bytes.length }).toEqual({ i, code: 0, stdout: '', stderr: '', bytes: 0 });
    }
  });

  test.each([[60], [80], [120]])('the progress line fits a %d-column terminal (tmux): no stale rows', (cols) => {
    const s = setup(`tty${cols}`, 64);
    const name = `tapechain-test-${process.pid}-${cols}`;
    const log = join(s.dir, 'pane.log');
    const vars = `PASSPHRASE=pw XDG_CACHE_HOME='${join(s.dir, 'cache')}' TMPDIR='${s.temp}'`;
    fs.writeFileSync(join(s.dir, 'run'), `#!/bin/sh\n${vars} exec ${bin} backup --compress-level 9 --volsize 8 src t >/dev/null\n`, { mode: 0o755 });
    // a server of its own (-L), started and stopped by this test
    const tmux = (...a: string[]) => spawnSync('tmux', ['-L', name, ...a], { env: s.env, timeout: 120000 });
    if (spawnSync('tmux', ['-V']).status !== 0) throw new Error('tmux is not installed: apt-get install -y tmux (see README)');
    expect(tmux('new-session', '-d', '-s', name, '-x', String(cols), '-y', '20', '-c', s.dir).status).toBe(0);
    try {
      tmux('set-option', '-t', name, 'remain-on-exit', 'on');
      tmux('pipe-pane', '-t', name, '-o', `cat >> '${log}'`);
      tmux('respawn-pane', '-k', '-t', name, '-c', s.dir, `./run; tmux wait-for -S ${name}`);
      expect(tmux('wait-for', name).status).toBe(0);
      const screen = tmux('capture-pane', '-p', '-t', name).stdout.toString();
      const raw = fs.readFileSync(log, 'latin1');
      const updates = raw.split('\r\x1b[K').filter((u) => /files, /.test(u));
      // progress was shown (the test is about it), each update within the width…
      expect(updates.length).toBeGreaterThan(2);
      for (const u of updates) expect(u.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r?\n.*$/s, '').length).toBeLessThan(cols);
      // …and nothing is left on the screen: a wrapped line leaves its first rows behind
      expect(screen.split('\n').filter((l) => l.trim() !== '' && !/^Pane is dead/.test(l))).toEqual([]);
    } finally {
      tmux('kill-server');
    }
  });
});
