/**
 * The parallel engine: a set cut into batches encoded on worker threads (--jobs) is the
 * same set as the single lane writes, restores exactly (tapechain and duplicity), and a
 * worker that fails mid-volume fails the run cleanly.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, test } from '@jest/globals';
import { ExitCode } from '../../src/errors.js';
import { expectDuplicityRestore, expectTapechainRestore, setTimes } from '../helpers/chain.js';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';
import { requireTool } from '../helpers/tools.js';
import { bytes, describeTree } from '../helpers/tree.js';

const tmp = tempDirs();
const bin = fileURLToPath(new URL('../../bin/tapechain', import.meta.url));

/** 400 small files in 8 directories, a few files over a volume, one spanning several. */
function makeTree(root: string): void {
  for (let d = 0; d < 8; d++) {
    const dir = join(root, `dir${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 50; f++) fs.writeFileSync(join(dir, `f${f}.txt`), f % 3 === 0 ? bytes(100 + f * 97, d * 100 + f) : `text ${d}/${f}\n`.repeat(f * 20 + 1));
  }
  fs.writeFileSync(join(root, 'dir3', 'mid.bin'), bytes(700 << 10, 1));
  fs.writeFileSync(join(root, 'dir5', 'large.bin'), bytes(3 << 20, 2));
  fs.writeFileSync(join(root, 'large-text.log'), 'a log line that compresses well\n'.repeat(60_000));
  fs.symlinkSync('dir3/mid.bin', join(root, 'link'));
}

/** The decoded content of every stored file of one set (gzip: --no-encryption), by kind and volume. */
function decodedSet(target: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of fs.readdirSync(target).sort()) {
    if (!n.endsWith('.gz') || n.includes('manifest')) continue;
    const kind = n.replace(/^duplicity-[a-z-]+\.[0-9TZ.]+?\.(vol\d+\.difftar|sigtar)\.gz$/, '$1');
    out[kind] = gunzipSync(fs.readFileSync(join(target, n))).toString('base64');
  }
  return out;
}

describe('--jobs', () => {
  test('jobs 1, 2 and 4 write the same volumes and signature file, and each restores exactly', async () => {
    const dir = tmp('jobs');
    const src = join(dir, 'src');
    makeTree(src);
    const want = describeTree(src);
    const sets: Record<string, string>[] = [];
    for (const jobs of ['1', '2', '4']) {
      const target = join(dir, `t${jobs}`);
      const env = { XDG_CACHE_HOME: join(dir, `cache${jobs}`) };
      const r = await runCli(['backup', '--no-encryption', '--volsize', '1', '--jobs', jobs, src, target], env);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      sets.push(decodedSet(target));
      await expectTapechainRestore(target, setTimes(target)[0]!, join(dir, `out${jobs}`), want, env);
    }
    expect(Object.keys(sets[0]!).length).toBeGreaterThan(4); // several volumes: several batches
    expect(sets[1]).toEqual(sets[0]);
    expect(sets[2]).toEqual(sets[0]);
  });

  test('an encrypted chain written with --jobs 2 (full, then incrementals with changes, deletions and new files) restores at every point, with duplicity too', async () => {
    requireTool('duplicity');
    const dir = tmp('jobs-chain');
    const src = join(dir, 'src');
    makeTree(src);
    const target = join(dir, 't');
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') };
    const states: Map<string, string>[] = [];
    const backup = async () => {
      const r = await runCli(['backup', '--volsize', '1', '--jobs', '2', src, target], env);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      states.push(describeTree(src));
    };
    await backup();
    // changes spread over every batch: rewritten, grown, deleted and new files
    for (let d = 0; d < 8; d++) {
      fs.appendFileSync(join(src, `dir${d}`, 'f1.txt'), 'more\n');
      fs.rmSync(join(src, `dir${d}`, 'f2.txt'));
      fs.writeFileSync(join(src, `dir${d}`, 'new.bin'), bytes(300 << 10, 50 + d));
    }
    const large = fs.openSync(join(src, 'dir5', 'large.bin'), 'r+');
    fs.writeSync(large, bytes(4096, 99), 0, 4096, 2 << 20);
    fs.closeSync(large);
    fs.utimesSync(join(src, 'dir5', 'large.bin'), new Date(), new Date(Date.now() + 5000));
    await backup();
    fs.rmSync(join(src, 'dir7'), { recursive: true });
    await backup();
    const times = setTimes(target);
    expect(times).toHaveLength(3);
    for (let i = 0; i < times.length; i++) {
      await expectTapechainRestore(target, times[i]!, join(dir, `out${i}`), states[i]!, env);
      expectDuplicityRestore(dir, target, times[i]!, join(dir, `dup${i}`), states[i]!, env);
    }
  });

  test('--jobs 0 is refused', async () => {
    const dir = tmp('jobs0');
    fs.mkdirSync(join(dir, 'src'));
    const r = await runCli(['backup', '--jobs', '0', join(dir, 'src'), join(dir, 't')], { PASSPHRASE: 'pw' });
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.stderr).toMatch(/--jobs: expected a whole number >= 1, got 0/);
  });
});

const canMount = process.getuid?.() === 0;
(canMount ? describe : describe.skip)('a worker that fails mid-volume (temp disk full, tmpfs)', () => {
  test('fails the run with one line; nothing of the set is complete at the target, temp files are gone, the earlier chain restores', async () => {
    const dir = tmp('worker-fail');
    const src = join(dir, 'src');
    makeTree(src);
    const target = join(dir, 't');
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') };
    expect((await runCli(['backup', '--volsize', '1', src, target], env)).code).toBe(0);
    const before = describeTree(src);
    for (let i = 0; i < 6; i++) fs.writeFileSync(join(src, `big${i}.bin`), bytes(3 << 20, 200 + i));
    const temp = join(dir, 'tmp');
    fs.mkdirSync(temp);
    // room for one 1 MiB volume, not for the two the workers write at once
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1200k', 'tmpfs', temp]).status).toBe(0);
    try {
      const r = spawnSync(bin, ['backup', '--full', '--volsize', '1', '--compress-level', '0', '--jobs', '2', src, target], { env: { ...process.env, ...env, TMPDIR: temp } });
      expect(r.status).toBe(ExitCode.CONFIG);
      const last = r.stderr.toString().trim().split('\n').pop()!;
      expect(last).toMatch(/^tapechain: .*tapechain-backup[^:]*: no space left on the local disk \(ENOSPC\) for working files/);
      expect(fs.readdirSync(temp)).toEqual([]);
    } finally {
      spawnSync('umount', [temp]);
    }
    expect(setTimes(target)).toHaveLength(1);
    await expectTapechainRestore(target, setTimes(target)[0]!, join(dir, 'out'), before, env);
  });
});
