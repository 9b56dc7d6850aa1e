/**
 * Backups a user can trust: files rewritten while read are reported and stored again,
 * targets that would land in / or in the source are refused or kept out, a clock behind
 * the newest set is said loudly, names print on one line and can be named back, and
 * small things (volume size floor, sockets, pre-1970 times) behave.
 */
import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { FileBackend } from '../../src/backend/file.js';
import { runBackup } from '../../src/backup/backup.js';
import { ArchiveCache } from '../../src/repo/archive-cache.js';
import { formatTimestamp } from '../../src/chain/time.js';
import { SymmetricEncryptor } from '../../src/crypto/encrypt.js';
import { ExitCode } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { setTimes } from '../helpers/chain.js';
import { tempDirs } from '../helpers/tmp.js';
import { duplicity } from '../helpers/tools.js';
import { describeTree, treeDiff } from '../helpers/tree.js';

const tmp = tempDirs();
const bin = 'bin/tapechain';

function envFor(dir: string): Record<string, string> {
  return { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') };
}

describe('a file rewritten in place while it is read', () => {
  test('is reported (exit 1 as a warning), and the next incremental stores it again', async () => {
    const dir = tmp('torn');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    const big = join(src, 'big.db');
    fs.writeFileSync(big, randomBytes(24 << 20));
    const mtime = new Date(Math.floor(Date.now() / 1000 - 100) * 1000);
    fs.utimesSync(big, mtime, mtime);
    const target = join(dir, 't');
    const cache = new ArchiveCache(join(dir, 'cache', 'c'));
    const warnings: string[] = [];
    let rewritten = false;
    // The first stored volume comes back while the 24 MiB file is still being read (at
    // most two finished volumes wait for upload): rewrite its tail then, same size, same
    // mtime — only the ctime tells.
    const r = await runBackup({
      source: src,
      backend: new FileBackend(target),
      encryptor: new SymmetricEncryptor(Buffer.from('pw'), { codedCount: 96 }),
      keys: { passphrase: Buffer.from('pw') },
      cache,
      volsize: 1 << 20,
      compressLevel: 0,
      onWarning: (w) => warnings.push(`${w.path.toString()}: ${w.message}`),
      onStored: () => {
        if (rewritten) return;
        rewritten = true;
        const fd = fs.openSync(big, 'r+');
        fs.writeSync(fd, Buffer.alloc(1 << 20, 0x41), 0, 1 << 20, 20 << 20);
        fs.closeSync(fd);
        fs.utimesSync(big, mtime, mtime);
      },
    });
    expect(rewritten).toBe(true);
    expect(warnings).toEqual([expect.stringMatching(/big\.db: changed while being read \(rewritten during the read.*the next backup stores it again/)]);
    expect(r.warnings).toBe(1);
    // the next incremental stores it again, although size and mtime are as before
    const env = { PASSPHRASE: 'pw' };
    const inc = await runCli(['backup', '--archive-dir', join(dir, 'cache'), src, target], env);
    expect(inc.code).toBe(0);
    const out = join(dir, 'out');
    expect((await runCli(['restore', target, out], env)).code).toBe(0);
    expect(fs.readFileSync(join(out, 'big.db')).equals(fs.readFileSync(big))).toBe(true);
  });

  test('a socket beside it is a note, not a warning: exit 0 and "Warnings 0" agree', async () => {
    const dir = tmp('socket');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'a'), 'a');
    const sock = net.createServer().listen(join(src, 'app.sock'));
    await new Promise((r) => sock.once('listening', r));
    try {
      const r = await runCli(['backup', src, join(dir, 't')], envFor(dir));
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/^note: .*app\.sock: socket skipped/m);
      expect(r.stderr).not.toMatch(/^warning:/m);
      expect(r.stdout).toMatch(/^Warnings +0$/m);
      expect(r.stdout).toMatch(/^SkippedSockets +1$/m);
    } finally {
      sock.close();
    }
  });
});

describe('targets', () => {
  test.each([['file://'], ['file://localhost'], [''], ['s3:bucket'], ['s3:/bucket'], ['file:/srv/x']])('"%s" is a usage error; nothing is created', (target) => {
    const dir = tmp('url');
    const src = join(dir, 'src');
    const cwd = join(dir, 'cwd');
    fs.mkdirSync(cwd);
    // A form that means "/" gets a missing source: code that took it for / would then stop
    // at the source (exit 11, a failed test) before writing into the root directory.
    if (target.startsWith('file://')) fs.rmSync(src, { force: true });
    else {
      fs.mkdirSync(src);
      fs.writeFileSync(join(src, 'a'), 'a');
    }
    const r = spawnSync(join(process.cwd(), bin), ['backup', src, target], { cwd, env: { ...process.env, ...envFor(dir) } });
    expect(r.status).toBe(ExitCode.USAGE);
    expect(r.stderr.toString().trim().split('\n')).toHaveLength(1);
    expect(fs.readdirSync(cwd)).toEqual([]);
  });

  test('./name:with-colon is a plain path', async () => {
    const dir = tmp('colon');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'a'), 'a');
    const target = join(dir, 'b:2026');
    expect((await runCli(['backup', src, target], envFor(dir))).code).toBe(0);
    expect(setTimes(target)).toHaveLength(1);
  });

  test('a target inside the source is left out of the backup, with a warning', async () => {
    const dir = tmp('inside');
    const src = join(dir, 'src');
    fs.mkdirSync(join(src, 'docs'), { recursive: true });
    fs.writeFileSync(join(src, 'docs', 'a'), 'a');
    const target = join(src, 'backups', 'here');
    const env = envFor(dir);
    const first = await runCli(['backup', src, target], env);
    expect(first.stderr).toMatch(/warning: .*backups\/here: the target is inside the source/);
    expect(first.code).toBe(ExitCode.WARNINGS);
    const second = await runCli(['backup', src, `file://${target}`], env);
    expect(second.code).toBe(ExitCode.WARNINGS);
    const ls = await runCli(['ls', target], env);
    expect(ls.stdout).not.toMatch(/duplicity-|backups\/here/);
    expect(ls.stdout).toMatch(/docs\/a/);
  });
});

describe('time', () => {
  test('a backup whose newest set is dated after the clock is refused, or named after it with --allow-clock-skew; status says so', async () => {
    const dir = tmp('skew');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'a'), 'a');
    const target = join(dir, 't');
    const future = Math.floor(Date.now() / 1000) + 30 * 86400;
    // a full made on a machine whose clock was a month ahead
    await runBackup({ source: src, backend: new FileBackend(target), encryptor: new SymmetricEncryptor(Buffer.from('pw'), { codedCount: 96 }), keys: { passphrase: Buffer.from('pw') }, now: () => future });
    const env = envFor(dir);
    const r = await runCli(['backup', src, target], env);
    expect(r.code).toBe(ExitCode.CONFIG);
    expect(r.stderr).toMatch(/dated .* after this machine's clock.*--allow-clock-skew/);
    expect(setTimes(target)).toEqual([future]);
    const st = await runCli(['status', target], env);
    expect(st.stdout).toContain(`set ${formatTimestamp(future)} is dated in the future`);
    const a = await runCli(['backup', '--allow-clock-skew', src, target], env);
    expect(a.code).toBe(ExitCode.WARNINGS);
    expect(a.stderr).toMatch(/warning: .*after this machine's clock/);
    expect(setTimes(target)).toEqual([future, future + 1]);
  });

  test.each([['2026-02-30'], ['2026-13-01'], ['20260230T000000Z'], ['2026-11-21T24:00:00'], ['02/30/2026']])('--time %s is a usage error, not a silent day shift', async (t) => {
    const dir = tmp('badtime');
    const r = await runCli(['ls', '--time', t, join(dir, 't')], envFor(dir));
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.stderr).toMatch(/bad time/);
  });
});

describe('names with newline, CR and non-UTF-8 bytes', () => {
  test('ls prints one line per entry, escaped; JSON keeps the bytes; restore --path takes the escaped form', async () => {
    const dir = tmp('names');
    const src = Buffer.from(join(dir, 'src'));
    fs.mkdirSync(src);
    const names = [Buffer.from('two\nlines'), Buffer.from('carriage\rreturn'), Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe]), Buffer.from('back\\slash'), Buffer.from('plain é')];
    for (const n of names) fs.writeFileSync(Buffer.concat([src, Buffer.from('/'), n]), n);
    const target = join(dir, 't');
    const env = envFor(dir);
    expect((await runCli(['backup', src.toString(), target], env)).code).toBe(0);
    const ls = await runCli(['ls', target], env);
    const lines = ls.stdout.trim().split('\n');
    expect(lines).toHaveLength(names.length + 1);
    expect(ls.stdout).not.toMatch(/\r/);
    expect(ls.stdout).toContain('two\\nlines');
    expect(ls.stdout).toContain('carriage\\rreturn');
    expect(ls.stdout).toContain('bad\\xff\\xfe');
    expect(ls.stdout).toContain('back\\\\slash');
    expect(ls.stdout).toContain('plain é');
    const json = (await runCli(['ls', '--json', target], env)).stdout.trim().split('\n').map((l) => JSON.parse(l) as { path: string; path_escaped?: string });
    const bad = json.find((e) => e.path.startsWith('bad'))!;
    expect(bad.path_escaped).toBe('bad\\xff\\xfe');
    for (const [i, n] of names.entries()) {
      const entry = json.find((e) => Buffer.from(e.path).equals(n) || e.path_escaped !== undefined && e.path === n.toString())!;
      const out = join(dir, `out${i}`);
      const r = await runCli(['restore', '--path', entry.path_escaped ?? entry.path, target, out], env);
      expect({ i, code: r.code, stderr: r.stderr }).toEqual({ i, code: 0, stderr: expect.any(String) });
      expect(fs.readdirSync(out, { encoding: 'buffer' })).toEqual([n]);
    }
  });
});

describe('small things', () => {
  test.each([['1e-9'], ['0.001'], ['0'], ['-1'], ['abc']])('--volsize %s is refused', async (v) => {
    const dir = tmp('volsize');
    fs.mkdirSync(join(dir, 'src'));
    const r = await runCli(['backup', '--volsize', v, join(dir, 'src'), join(dir, 't')], envFor(dir));
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.stderr).toMatch(/--volsize: expected (at least 0\.25 MiB|a number)/);
    expect(fs.existsSync(join(dir, 't'))).toBe(false);
  });

  test('pre-1970 mtimes are stored as they are, and not stored again by the next incremental', async () => {
    const dir = tmp('old');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'ancient'), 'from 1960');
    const t = new Date('1960-03-01T12:00:00Z');
    fs.utimesSync(join(src, 'ancient'), t, t);
    const target = join(dir, 't');
    const env = envFor(dir);
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    const inc = await runCli(['backup', '--json', src, target], env);
    const summary = JSON.parse(inc.stdout.trim().split('\n').pop()!) as { changedEntries: number; filesStored: number };
    expect(summary.filesStored).toBe(0);
    const out = join(dir, 'out');
    expect((await runCli(['restore', target, out], env)).code).toBe(0);
    expect(fs.statSync(join(out, 'ancient')).mtime.toISOString()).toBe(t.toISOString());
    expect(treeDiff(describeTree(src, { ignoreRootMeta: true }), describeTree(out, { ignoreRootMeta: true }))).toEqual([]);
    // duplicity 0.8 crashes on a negative mtime in a volume: it must still restore this one
    const dup = duplicity(['restore', '--archive-dir', join(dir, 'dupcache'), `file://${target}`, join(dir, 'dup-out')], dir, { PASSPHRASE: 'pw' });
    expect(dup.stderr).not.toMatch(/Traceback/);
    expect(dup.status).toBe(0);
    expect(fs.readFileSync(join(dir, 'dup-out', 'ancient'), 'utf8')).toBe('from 1960');
  });

  test('a corruption message names the file once', async () => {
    const dir = tmp('once');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'a'), randomBytes(300_000));
    const target = join(dir, 't');
    const env = envFor(dir);
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    const sig = fs.readdirSync(target).find((n) => n.includes('sigtar'))!;
    fs.truncateSync(join(target, sig), 300);
    const vol = fs.readdirSync(target).find((n) => n.includes('.vol1.'))!;
    const b = fs.readFileSync(join(target, vol));
    b[b.length >> 1]! ^= 1;
    fs.writeFileSync(join(target, vol), b);
    const v = await runCli(['verify', target], env);
    const r = await runCli(['restore', target, join(dir, 'out')], env);
    for (const line of [...(v.stdout + v.stderr).split('\n'), ...r.stderr.split('\n')]) {
      for (const name of [sig, vol]) expect(line.split(name).length - 1).toBeLessThanOrEqual(1);
    }
    expect(v.stdout + v.stderr).toContain(sig);
    expect(r.stderr).toContain(vol);
  });
});
