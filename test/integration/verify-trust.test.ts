/**
 * verify checks what is stored at the target, never the local cache's copies, and no
 * read-only command deletes the cache's only good copy of a file the target lost.
 */
import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ExitCode } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';
import { describeTree, treeDiff } from '../helpers/tree.js';

const tmp = tempDirs();

function setup(name: string): { dir: string; src: string; target: string; env: Record<string, string> } {
  const dir = tmp(name);
  const src = join(dir, 'src');
  fs.mkdirSync(src);
  for (let i = 0; i < 5; i++) fs.writeFileSync(join(src, `f${i}`), randomBytes(100_000 + i));
  return { dir, src, target: join(dir, 't'), env: { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') } };
}

const find = (dir: string, re: RegExp) => fs.readdirSync(dir).find((n) => re.test(n))!;
const cacheFiles = (dir: string) => fs.readdirSync(join(dir, 'cache', 'tapechain')).flatMap((d) => fs.readdirSync(join(dir, 'cache', 'tapechain', d)));

describe('verify reads the target', () => {
  test("a damaged signature file at the target fails verify although the cache's copy is intact", async () => {
    const { src, target, env } = setup('sigtar');
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    const sig = find(target, /sigtar\.gpg$/);
    const b = fs.readFileSync(join(target, sig));
    b[Math.floor(b.length / 2)]! ^= 0x01;
    fs.writeFileSync(join(target, sig), b);
    const v = await runCli(['verify', target], env);
    expect(v.code).toBe(ExitCode.INTEGRITY);
    expect(v.stdout + v.stderr).toContain(sig);
    // a sampled verify checks the stored signature file too
    const s = await runCli(['verify', '--sample', '1', target], env);
    expect(s.code).toBe(ExitCode.INTEGRITY);
    expect(s.stdout + s.stderr).toContain(sig);
  });

  test("a cache copy that differs from the target's signature file is named and dropped", async () => {
    const { dir, src, target, env } = setup('sigcache');
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    const cached = cacheFiles(dir).find((n) => n.endsWith('.sigtar.gz'))!;
    const cdir = join(dir, 'cache', 'tapechain', fs.readdirSync(join(dir, 'cache', 'tapechain'))[0]!);
    const { gzipSync } = await import('node:zlib');
    fs.writeFileSync(join(cdir, cached), gzipSync(Buffer.alloc(10240)));
    const v = await runCli(['verify', target], env);
    expect(v.code).toBe(ExitCode.INTEGRITY);
    expect(v.stdout + v.stderr).toMatch(/local cache's copy differs/);
    expect(fs.existsSync(join(cdir, cached))).toBe(false);
    expect((await runCli(['verify', target], env)).code).toBe(0);
  });
});

describe('a manifest lost at the target', () => {
  test('verify names it (exit 6) and keeps the cached copy; status offers it; cleanup keeps the set; repair puts it back', async () => {
    const { dir, src, target, env } = setup('lostman');
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    const man = find(target, /manifest\.gpg$/);
    fs.rmSync(join(target, man));
    const local = man.replace(/\.gpg$/, '');
    for (const cmd of [['verify', target], ['ls', target], ['status', target]]) {
      await runCli(cmd, env);
      expect({ cmd, cached: cacheFiles(dir).includes(local) }).toEqual({ cmd, cached: true });
    }
    const v = await runCli(['verify', target], env);
    expect(v.code).toBe(ExitCode.INTEGRITY);
    expect(v.stdout + v.stderr).toContain(`${man}: missing at the target`);
    expect(v.stdout + v.stderr).toMatch(/cache holds a copy/);
    const st = await runCli(['status', target], env);
    expect(st.stdout).toContain(`the local cache holds a copy: ${local}`);
    const c = await runCli(['cleanup', '--force', target], env);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/keeping the incomplete set/);
    expect(fs.readdirSync(target).filter((n) => n.includes('.vol'))).toHaveLength(1);
    const dry = await runCli(['repair', target], env);
    expect(dry.stdout).toContain(`would put back ${man}`);
    expect(fs.existsSync(join(target, man))).toBe(false);
    const wrong = await runCli(['repair', '--force', target], { ...env, PASSPHRASE: 'not the chain key' });
    expect(wrong.code).toBe(ExitCode.DECRYPT);
    expect(fs.existsSync(join(target, man))).toBe(false);
    const r = await runCli(['repair', '--force', target], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(fs.existsSync(join(target, man))).toBe(true);
    expect((await runCli(['verify', target], env)).code).toBe(0);
    // restore from another machine (no cache) works from the repaired target
    const out = join(dir, 'out');
    expect((await runCli(['restore', target, out], { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'other-cache') })).code).toBe(0);
    expect(treeDiff(describeTree(src, { ignoreRootMeta: true }), describeTree(out, { ignoreRootMeta: true }))).toEqual([]);
  });

  test('repair refuses a cached manifest that does not describe the stored volumes', async () => {
    const { dir, src, target, env } = setup('badcopy');
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    const man = find(target, /manifest\.gpg$/);
    fs.rmSync(join(target, man));
    const vol = find(target, /vol1\.difftar\.gpg$/);
    fs.appendFileSync(join(target, vol), 'x');
    const r = await runCli(['repair', '--force', target], env);
    expect(r.code).toBe(ExitCode.INTEGRITY);
    expect(r.stderr).toContain(`${vol} does not have the hash`);
    expect(fs.existsSync(join(target, man))).toBe(false);
    expect(cacheFiles(dir)).toContain(man.replace(/\.gpg$/, ''));
  });
});

describe('status', () => {
  test('a new target at a previously used URL does not show the old target\'s last verify', async () => {
    const { src, target, env } = setup('newtarget');
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    expect((await runCli(['verify', target], env)).code).toBe(0);
    expect((await runCli(['status', target], env)).stdout).toMatch(/Last verify: .*OK/);
    fs.rmSync(target, { recursive: true });
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    expect((await runCli(['status', target], env)).stdout).not.toMatch(/Last verify/);
  });
});
