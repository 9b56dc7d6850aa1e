/**
 * Bad input gets one clear line and a stable exit code, and never half-written
 * results; restore can never write outside DEST.
 */
import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ExitCode } from '../../src/errors.js';
import type { TarHeader } from '../../src/volume/tar-header.js';
import { h, rawSet } from '../helpers/raw-set.js';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';
import { describeTree } from '../helpers/tree.js';

const tmp = tempDirs();
const PASS = { PASSPHRASE: 'pw' };

describe('restore never writes outside DEST', () => {
  const root = { type: 'directory' as const, mode: 0o755 };
  test.each([
    ['a .. component', [[h('snapshot/./', root)], [h('snapshot/../escaped'), 'x']]],
    ['an absolute path', [[h('snapshot/./', root)], [h('snapshot//tmp/escaped'), 'x']]],
    ['a file through a symlink restored earlier', [[h('snapshot/./', root)], [h('snapshot/link', { type: 'symlink', linkname: Buffer.from('..') })], [h('snapshot/link/escaped'), 'x']]],
    ['a file through an absolute symlink', [[h('snapshot/./', root)], [h('snapshot/abs', { type: 'symlink', linkname: Buffer.from('/tmp') })], [h('snapshot/abs/escaped'), 'x']]],
  ] as [string, [TarHeader, string?][]][])('%s is refused, DEST untouched', async (_l, entries) => {
    const dir = tmp('hostile');
    rawSet(join(dir, 'target'), entries);
    const dest = join(dir, 'box', 'dest');
    mkdirSync(dest, { recursive: true });
    writeFileSync(join(dest, 'keep'), 'mine');
    const r = await runCli(['restore', '--force', join(dir, 'target'), dest], PASS);
    expect(r.code).toBe(ExitCode.FORMAT);
    expect(r.stderr).toMatch(/unsafe/);
    expect(r.stderr.trim().split('\n').length).toBe(2); // the picked-set line and one error line
    expect(existsSync(join(dir, 'box', 'escaped'))).toBe(false);
    expect(existsSync('/tmp/escaped')).toBe(false);
    expect(readdirSync(dest)).toEqual(['keep']);
  });

  test('a well-formed raw set restores (the helper itself is sound)', async () => {
    const dir = tmp('ok');
    rawSet(join(dir, 'target'), [[h('snapshot/./', root)], [h('snapshot/a'), 'hello']]);
    const r = await runCli(['restore', join(dir, 'target'), join(dir, 'out')], PASS);
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'out', 'a'), 'utf8')).toBe('hello');
  });
});

describe('a damaged archive fails the restore and leaves DEST as it was', () => {
  test('flipped byte in a volume: hash mismatch naming the volume', async () => {
    const dir = tmp('flip');
    const src = join(dir, 'src');
    mkdirSync(src);
    for (let i = 0; i < 20; i++) writeFileSync(join(src, `f${i}`), randomBytes(200000));
    expect((await runCli(['backup', '--volsize', '1', src, join(dir, 't')], PASS)).code).toBe(0);
    const vol = readdirSync(join(dir, 't')).find((n) => n.includes('.vol2.'))!;
    const p = join(dir, 't', vol);
    const b = readFileSync(p);
    const mid = Math.floor(b.length / 2);
    b[mid] = b[mid]! ^ 0x40;
    writeFileSync(p, b);
    const out = join(dir, 'out');
    const r = await runCli(['restore', join(dir, 't'), out], PASS);
    expect(r.code).toBe(ExitCode.INTEGRITY);
    expect(r.stderr).toContain(`${vol}: hash mismatch`);
    expect(existsSync(out)).toBe(false);
  });
});

describe('clear errors', () => {
  test('missing SOURCE', async () => {
    const dir = tmp('e');
    const r = await runCli(['backup', join(dir, 'nope'), join(dir, 't')], PASS);
    expect(r.code).toBe(ExitCode.SOURCE);
    expect(r.stderr).toMatch(/^tapechain: source .*nope: no such directory\n$/);
    expect(existsSync(join(dir, 't'))).toBe(false);
  });

  test('no passphrase', async () => {
    const dir = tmp('e');
    mkdirSync(join(dir, 'src'));
    const r = await runCli(['backup', join(dir, 'src'), join(dir, 't')], {});
    expect(r.code).toBe(ExitCode.CONFIG);
    expect(r.stderr).toMatch(/^tapechain: no passphrase.*\n$/);
    expect(existsSync(join(dir, 't'))).toBe(false);
  });

  test('wrong passphrase on restore: one line, nothing written', async () => {
    const dir = tmp('e');
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'a'), 'a');
    await runCli(['backup', join(dir, 'src'), join(dir, 't')], PASS);
    const r = await runCli(['restore', join(dir, 't'), join(dir, 'out')], { PASSPHRASE: 'nope' });
    expect(r.code).toBe(ExitCode.DECRYPT);
    expect(r.stderr).toMatch(/tapechain: duplicity-full\.\d+T\d+Z\.manifest\.gpg: wrong passphrase/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
    // no passphrase at all is a configuration error (exit 3), as the README's table says
    const r2 = await runCli(['restore', join(dir, 't'), join(dir, 'out')], {});
    expect(r2.code).toBe(ExitCode.CONFIG);
    expect(r2.stderr).toMatch(/set PASSPHRASE/);
    // ls and verify prove the passphrase against the target first
    for (const cmd of [['ls'], ['verify'], ['verify', '--compare', join(dir, 'src')]]) {
      const wrong = await runCli([...cmd, join(dir, 't')], { PASSPHRASE: 'nope' });
      expect({ cmd, code: wrong.code }).toEqual({ cmd, code: ExitCode.DECRYPT });
      expect(wrong.stderr).toMatch(/wrong passphrase/);
      const none = await runCli([...cmd, join(dir, 't')], {});
      expect({ cmd, code: none.code }).toEqual({ cmd, code: ExitCode.CONFIG });
    }
  });

  test('unwritable DEST', async () => {
    const dir = tmp('e');
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'a'), 'a');
    writeFileSync(join(dir, 'afile'), 'x');
    await runCli(['backup', join(dir, 'src'), join(dir, 't')], PASS);
    const r = await runCli(['restore', join(dir, 't'), join(dir, 'afile', 'sub')], PASS);
    expect(r.code).toBe(ExitCode.DESTINATION);
    expect(r.stderr.split('\n').filter(Boolean).pop()).toMatch(/^tapechain: .*afile\/sub: cannot create or use: ENOTDIR$/);
  });

  test('non-empty DEST is refused without --force and replaced with it', async () => {
    const dir = tmp('e');
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'a'), 'new');
    await runCli(['backup', join(dir, 'src'), join(dir, 't')], PASS);
    const dest = join(dir, 'dest');
    mkdirSync(dest);
    writeFileSync(join(dest, 'a'), 'old');
    const r = await runCli(['restore', join(dir, 't'), dest], PASS);
    expect(r.code).toBe(ExitCode.DESTINATION);
    expect(r.stderr).toMatch(/not empty.*--force/);
    expect(readFileSync(join(dest, 'a'), 'utf8')).toBe('old');
    const f = await runCli(['restore', '--force', join(dir, 't'), dest], PASS);
    expect(f.code).toBe(0);
    expect(readFileSync(join(dest, 'a'), 'utf8')).toBe('new');
  });

  test('no backup at the target', async () => {
    const dir = tmp('e');
    const r = await runCli(['restore', dir, join(dir, 'out')], PASS);
    expect(r.code).toBe(ExitCode.NOT_FOUND);
    expect(r.stderr).toMatch(/no complete backup found/);
  });

  test('unknown option is a usage error', async () => {
    const r = await runCli(['backup', '--bogus', 'a', 'b']);
    expect(r.code).toBe(ExitCode.USAGE);
  });
});

describe('the bin/ launcher', () => {
  test('spawned, it backs up and restores', () => {
    const dir = tmp('bin');
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'hello.txt'), 'hello\n');
    const env = { ...process.env, PASSPHRASE: 'pw' };
    const b = spawnSync('bin/tapechain', ['backup', join(dir, 'src'), `file://${join(dir, 't')}`], { env });
    expect(b.status).toBe(0);
    expect(b.stdout.toString()).toMatch(/Full backup/);
    const r = spawnSync('bin/tapechain', ['restore', join(dir, 't'), join(dir, 'out')], { env });
    expect(r.status).toBe(0);
    const a = describeTree(join(dir, 'src'));
    const o = describeTree(join(dir, 'out'));
    expect([...o.entries()]).toEqual([...a.entries()]);
    const bad = spawnSync('bin/tapechain', ['restore', join(dir, 'nothing-here'), join(dir, 'out2')], { env });
    expect(bad.status).toBe(ExitCode.NOT_FOUND);
    expect(bad.stderr.toString()).toMatch(/^tapechain: no complete backup found/);
  });
});
