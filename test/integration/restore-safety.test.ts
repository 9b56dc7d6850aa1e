/**
 * Restore never loses data: --force merges into DEST, broken multivol runs are refused,
 * read-only directories and killed restores are handled, and ordinary failures get
 * their own exit codes, never 70.
 */
import { describe, expect, test } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ExitCode } from '../../src/errors.js';
import { pathToIndex } from '../../src/volume/entry-name.js';
import { runCli } from '../helpers/cli.js';
import { chunks, h, rawSet, ROOT, type RawEntrySpec } from '../helpers/raw-set.js';
import { killWhen } from '../helpers/kill.js';
import { tempDirs } from '../helpers/tmp.js';
import { describeTree, treeDiff } from '../helpers/tree.js';

const tmp = tempDirs();
const PASS = { PASSPHRASE: 'pw' };
const bin = 'bin/tapechain';
const isRoot = process.getuid?.() === 0;

function write(p: string, data: string | Buffer): void {
  fs.mkdirSync(join(p, '..'), { recursive: true });
  fs.writeFileSync(p, data);
}

describe('restore --force merges into DEST', () => {
  async function backedUp(dir: string): Promise<string> {
    const src = join(dir, 'src');
    write(join(src, 'd', 'a'), 'backup a');
    write(join(src, 'd', 'b'), 'backup b');
    write(join(src, 'top'), 'backup top');
    write(join(src, 'wasdir'), 'a file in the backup');
    fs.mkdirSync(join(src, 'wasfile'));
    write(join(src, 'wasfile', 'x'), 'x');
    fs.mkdirSync(join(src, 'waslink'));
    write(join(src, 'waslink', 'y'), 'y');
    expect((await runCli(['backup', src, join(dir, 't')], PASS)).code).toBe(0);
    return join(dir, 't');
  }

  test('entries of the backup replace those of the same name; nothing else in DEST is touched', async () => {
    const dir = tmp('merge');
    const target = await backedUp(dir);
    const dest = join(dir, 'dest');
    write(join(dest, 'd', 'a'), 'old a');
    write(join(dest, 'd', 'extra'), 'only in DEST');
    write(join(dest, 'd', 'sub', 'deep'), 'deep in DEST');
    write(join(dest, 'mine'), 'mine');
    write(join(dest, 'wasdir', 'inner'), 'DEST dir where the backup has a file');
    write(join(dest, 'wasfile'), 'DEST file where the backup has a dir');
    const outside = join(dir, 'outside');
    write(join(outside, 'precious'), 'outside DEST');
    fs.symlinkSync(outside, join(dest, 'waslink'));
    const r = await runCli(['restore', '--force', target, dest], PASS);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const read = (...p: string[]) => fs.readFileSync(join(dest, ...p), 'utf8');
    expect([read('d', 'a'), read('d', 'b'), read('top')]).toEqual(['backup a', 'backup b', 'backup top']);
    expect([read('d', 'extra'), read('d', 'sub', 'deep'), read('mine')]).toEqual(['only in DEST', 'deep in DEST', 'mine']);
    expect(read('wasdir')).toBe('a file in the backup');
    expect(read('wasfile', 'x')).toBe('x');
    expect(fs.lstatSync(join(dest, 'waslink')).isDirectory()).toBe(true);
    expect(read('waslink', 'y')).toBe('y');
    // the symlink was replaced, not followed
    expect(fs.readdirSync(outside)).toEqual(['precious']);
    expect(fs.readdirSync(dest).filter((n) => n.startsWith('.tapechain'))).toEqual([]);
  });

  test('--path dir/file replaces that file only, its siblings stay', async () => {
    const dir = tmp('mergepath');
    const target = await backedUp(dir);
    const dest = join(dir, 'dest');
    write(join(dest, 'd', 'a'), 'old a');
    write(join(dest, 'd', 'sibling'), 'sibling');
    const r = await runCli(['restore', '--force', '--path', 'd/a', target, dest], PASS);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(join(dest, 'd', 'a'), 'utf8')).toBe('backup a');
    expect(fs.readFileSync(join(dest, 'd', 'sibling'), 'utf8')).toBe('sibling');
    expect(fs.existsSync(join(dest, 'd', 'b'))).toBe(false);
  });

  test('a restore that fails while merging leaves DEST exactly as it was', async () => {
    if (!isRoot) throw new Error('this test needs root (chattr)');
    const dir = tmp('mergefail');
    const target = await backedUp(dir);
    const dest = join(dir, 'dest');
    write(join(dest, 'd', 'a'), 'old a');
    write(join(dest, 'mine'), 'mine');
    write(join(dest, 'wasdir', 'inner'), 'inner');
    // The merge goes in name order: `d/a` is replaced first, then the immutable `top`
    // cannot be moved aside, so the replacement of `d/a` must be undone.
    write(join(dest, 'top'), 'immutable top');
    const before = describeTree(dest);
    const chattr = spawnSync('chattr', ['+i', join(dest, 'top')]);
    if (chattr.status !== 0) throw new Error(`chattr failed: ${chattr.stderr}`);
    try {
      const r = await runCli(['restore', '--force', target, dest], PASS);
      expect(r.code).toBe(ExitCode.DESTINATION);
      expect(r.stderr).toMatch(/top|DEST/);
    } finally {
      spawnSync('chattr', ['-i', join(dest, 'top')]);
    }
    expect(treeDiff(before, describeTree(dest))).toEqual([]);
  });
});

describe('incomplete multivol runs are refused by restore and verify', () => {
  const full = 65536;
  const cases: [string, RawEntrySpec[]][] = [
    ['a gap', chunks('big', [[1, full], [3, 100]])],
    ['a repeated chunk', chunks('big', [[1, full], [2, full], [2, full], [3, 10]])],
    ['a missing first chunk', chunks('big', [[2, full], [3, 10]])],
    ['a missing final chunk', chunks('big', [[1, full], [2, full]])],
    ['a chunk after the final one', chunks('big', [[1, full], [2, 5], [3, 5]])],
  ];
  test.each(cases)('%s: exit 6 naming the file, nothing restored', async (_l, run) => {
    const dir = tmp('mv');
    rawSet(join(dir, 't'), [ROOT, ...run, [h('snapshot/zz'), 'after']]);
    const out = join(dir, 'out');
    const r = await runCli(['restore', join(dir, 't'), out], PASS);
    expect(r.stderr).toMatch(/multivol data of big/);
    expect(r.code).toBe(ExitCode.INTEGRITY);
    expect(fs.existsSync(out)).toBe(false);
    const p = await runCli(['restore', '--path', 'big', join(dir, 't'), join(dir, 'out2')], PASS);
    expect(p.code).toBe(ExitCode.INTEGRITY);
    const v = await runCli(['verify', join(dir, 't')], PASS);
    expect(v.code).toBe(ExitCode.INTEGRITY);
    expect(v.stdout + v.stderr).toMatch(/multivol data of big/);
  });

  test('a run cut at the end of the set is refused', async () => {
    const dir = tmp('mvend');
    rawSet(join(dir, 't'), [ROOT, ...chunks('big', [[1, full], [2, full]])]);
    const r = await runCli(['restore', join(dir, 't'), join(dir, 'out')], PASS);
    expect(r.code).toBe(ExitCode.INTEGRITY);
    expect(r.stderr).toMatch(/big .*chunks after it are missing/);
  });

  test('repeated and out-of-order entries: exit 9 naming the volume', async () => {
    for (const [label, entries] of [
      ['repeat', [ROOT, [h('snapshot/a'), 'one'], [h('snapshot/a'), 'two']]],
      ['order', [ROOT, [h('snapshot/b'), 'b'], [h('snapshot/a'), 'a']]],
    ] as [string, RawEntrySpec[]][]) {
      const dir = tmp(label);
      rawSet(join(dir, 't'), entries);
      const r = await runCli(['restore', join(dir, 't'), join(dir, 'out')], PASS);
      expect({ label, code: r.code }).toEqual({ label, code: ExitCode.FORMAT });
      expect(r.stderr).toMatch(/vol1\.difftar: .*(repeats|out of index order)/);
      expect(fs.existsSync(join(dir, 'out'))).toBe(false);
    }
  });

  test('--path reads on past a manifest range that hides the end of a run', async () => {
    const dir = tmp('mvlie');
    const data = [randomBytes(full), randomBytes(full), randomBytes(1000)];
    const vol1: RawEntrySpec[] = [ROOT, [h('snapshot/a'), 'a'], [h('multivol_snapshot/big/1'), data[0]!], [h('multivol_snapshot/big/2'), data[1]!]];
    const vol2: RawEntrySpec[] = [[h('multivol_snapshot/big/3'), data[2]!], [h('snapshot/zz'), 'z']];
    // volume 2 claims to start after `big`: a --path restore would not read it
    rawSet(join(dir, 't'), [vol1, vol2], { ranges: { 1: { start: pathToIndex(Buffer.from('c')), end: pathToIndex(Buffer.from('zz')) } } });
    const r = await runCli(['restore', '--path', 'big', join(dir, 't'), join(dir, 'out')], PASS);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(join(dir, 'out', 'big')).equals(Buffer.concat(data))).toBe(true);
    const v = await runCli(['verify', join(dir, 't')], PASS);
    expect(v.code).toBe(ExitCode.INTEGRITY);
    expect(v.stdout + v.stderr).toMatch(/vol2\.difftar: .*manifest says .*starts at c.* but .*big/);
  });
});

describe('restores that must simply work', () => {
  test.each([
    ['0555', 0o555],
    ['0000', 0o000],
  ])('non-root restore of a %s directory: exit 0, modes applied last, no staging left; a rerun with --force too', async (_l, mode) => {
    if (!isRoot) throw new Error('this test needs root (to run the CLI as nobody)');
    const dir = tmp('ro');
    fs.chmodSync(dir, 0o755);
    const src = join(dir, 'src');
    write(join(src, 'ro', 'sub', 'f'), 'inside a read-only directory');
    fs.chmodSync(join(src, 'ro', 'sub'), 0o555);
    fs.chmodSync(join(src, 'ro'), mode);
    fs.chownSync(join(src, 'ro'), 1, 1); // owned by another user (daemon)
    const target = join(dir, 't');
    expect((await runCli(['backup', src, target], PASS)).code).toBe(0);
    spawnSync('chmod', ['-R', 'a+rX', target]);
    const home = join(dir, 'home');
    fs.mkdirSync(home);
    const dest = join(dir, 'dest');
    fs.mkdirSync(dest);
    spawnSync('chown', ['nobody', home, dest]);
    const asNobody = (args: string[]) =>
      spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', bin, ...args], { env: { ...process.env, ...PASS, XDG_CACHE_HOME: home, HOME: home } });
    for (const args of [['restore', target, dest], ['restore', '--force', target, dest]]) {
      const r = asNobody(args);
      expect({ args, code: r.status, stderr: r.stderr.toString() }).toEqual({ args, code: 0, stderr: expect.not.stringMatching(/error/) });
      expect(fs.statSync(join(dest, 'ro')).mode & 0o7777).toBe(mode);
      expect(fs.statSync(join(dest, 'ro', 'sub')).mode & 0o7777).toBe(0o555);
      expect(fs.readFileSync(join(dest, 'ro', 'sub', 'f'), 'utf8')).toBe('inside a read-only directory');
      expect(fs.readdirSync(dest)).toEqual(['ro']);
    }
    spawnSync('chmod', ['-R', 'u+rwx', dest]);
  });

  test('a killed restore leaves staging that the next restore recognises and removes', async () => {
    const dir = tmp('killres');
    const src = join(dir, 'src');
    for (let i = 0; i < 40; i++) write(join(src, `f${i}.bin`), randomBytes(1 << 20));
    const target = join(dir, 't');
    expect((await runCli(['backup', '--compress-level', '0', src, target], PASS)).code).toBe(0);
    const dest = join(dir, 'dest');
    const child = spawn(bin, ['restore', target, dest], { env: { ...process.env, ...PASS, XDG_CACHE_HOME: join(dir, 'cache') } });
    // kill it once it has staged some data
    const staged = () => {
      const s = fs.readdirSync(dest).find((n) => n.startsWith('.tapechain-restore-'));
      return s !== undefined && fs.readdirSync(join(dest, s, 'tree')).length >= 3;
    };
    expect(await killWhen(child, staged)).toBe('SIGKILL'); // really cut by the signal
    expect(fs.readdirSync(dest).some((n) => n.startsWith('.tapechain-restore-'))).toBe(true);
    const r = await runCli(['restore', target, dest], PASS);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/removed 1 leftover staging directory/);
    expect(treeDiff(describeTree(src, { ignoreRootMeta: true }), describeTree(dest, { ignoreRootMeta: true }))).toEqual([]);
  });
});

describe('ordinary failures have their own exit codes, never 70', () => {
  test('DEST out of space: exit 8, DEST as it was', async () => {
    if (!isRoot) throw new Error('this test needs root (tmpfs mount)');
    const dir = tmp('full');
    const src = join(dir, 'src');
    for (let i = 0; i < 6; i++) write(join(src, `f${i}.bin`), randomBytes(1 << 20));
    expect((await runCli(['backup', src, join(dir, 't')], PASS)).code).toBe(0);
    const mnt = join(dir, 'mnt');
    fs.mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    if (m.status !== 0) throw new Error(`mount failed: ${m.stderr}`);
    try {
      write(join(mnt, 'keep'), 'keep');
      const r = await runCli(['restore', '--force', join(dir, 't'), mnt], PASS);
      expect(r.code).toBe(ExitCode.DESTINATION);
      expect(r.stderr).toMatch(/no space left/);
      expect(fs.readdirSync(mnt)).toEqual(['keep']);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  test('EACCES and ENOTDIR in DEST: exit 8', async () => {
    if (!isRoot) throw new Error('this test needs root (to run the CLI as nobody)');
    const dir = tmp('eacces');
    fs.chmodSync(dir, 0o755);
    const src = join(dir, 'src');
    write(join(src, 'd', 'f'), 'f');
    const target = join(dir, 't');
    expect((await runCli(['backup', src, target], PASS)).code).toBe(0);
    spawnSync('chmod', ['-R', 'a+rX', target]);
    const dest = join(dir, 'dest');
    write(join(dest, 'd', 'other'), 'root-owned, read-only for nobody');
    spawnSync('chown', ['nobody', dest]);
    const home = join(dir, 'home');
    fs.mkdirSync(home);
    spawnSync('chown', ['nobody', home]);
    const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', bin, 'restore', '--force', target, dest], { env: { ...process.env, ...PASS, XDG_CACHE_HOME: home } });
    expect(r.stderr.toString()).not.toMatch(/internal error/);
    expect(r.status).toBe(ExitCode.DESTINATION);
    expect(fs.readdirSync(join(dest, 'd'))).toEqual(['other']);
    // a DEST that is below a file
    write(join(dir, 'afile'), 'x');
    const n = await runCli(['restore', target, join(dir, 'afile', 'sub')], PASS);
    expect(n.code).toBe(ExitCode.DESTINATION);
  });
});
