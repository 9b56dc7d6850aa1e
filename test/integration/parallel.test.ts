/**
 * The parallel engine: a set cut into batches encoded on worker threads (--jobs) is the
 * same set as the single lane writes, restores exactly (tapechain and duplicity), and a
 * worker that fails mid-volume fails the run cleanly.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { ExitCode } from '../../src/errors.js';
import { expectDuplicityRestore, expectTapechainRestore, setTimes } from '../helpers/chain.js';
import { runCli } from '../helpers/cli.js';
import { leftRunTempDirs, tempDirs } from '../helpers/tmp.js';
import { requireTool } from '../helpers/tools.js';
import { rawSet, h, ROOT, type RawEntrySpec } from '../helpers/raw-set.js';
import { bytes, describeTree, makeTrickyTree, treeDiff } from '../helpers/tree.js';

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

/** The bytes of the files under `dir` now (files may go while it looks). */
function bytesUnder(dir: string): number {
  let n = 0;
  try {
    for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += fs.statSync(join(e.parentPath, e.name)).size;
  } catch {
    return n; // a file or directory removed while it looked: the next look counts again
  }
  return n;
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

  test('--jobs 0 is refused (backup, verify and restore)', async () => {
    const dir = tmp('jobs0');
    fs.mkdirSync(join(dir, 'src'));
    const r = await runCli(['backup', '--jobs', '0', join(dir, 'src'), join(dir, 't')], { PASSPHRASE: 'pw' });
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.stderr).toMatch(/--jobs: expected a whole number >= 1, got 0/);
    for (const bad of ['0', '1.5']) {
      for (const args of [['verify', join(dir, 't')], ['restore', join(dir, 't'), join(dir, 'out')]]) {
        const v = await runCli([args[0]!, '--jobs', bad, ...args.slice(1)], { PASSPHRASE: 'pw' });
        expect(v.code).toBe(ExitCode.USAGE);
        expect(v.stderr).toMatch(new RegExp(`--jobs: expected a whole number >= 1, got ${bad}`));
      }
    }
  });
});

/** Names of the first tar entry of each stored volume (gzip: --no-encryption), by volume file. */
function firstEntries(target: string): string[] {
  return fs.readdirSync(target).filter((n) => /\.vol\d+\.difftar\.gz$/.test(n)).map((n) => tarEntries(gunzipSync(fs.readFileSync(join(target, n)))).next().value!.name);
}

describe('parallel restore (--jobs)', () => {
  test('a chain whose files and deltas run across volumes restores the same tree with --jobs 1, 2 and 4 at every point', async () => {
    const dir = tmp('prestore');
    const src = join(dir, 'src');
    makeTree(src);
    makeTrickyTree(join(src, 'tricky'));
    fs.linkSync(join(src, 'dir3', 'mid.bin'), join(src, 'dir4', 'hard.bin'));
    const sparse = fs.openSync(join(src, 'sparse.img'), 'w');
    fs.writeSync(sparse, bytes(100_000, 7), 0, 100_000, 3 << 20);
    fs.closeSync(sparse);
    const target = join(dir, 't');
    const env = { XDG_CACHE_HOME: join(dir, 'cache') };
    const states: Map<string, string>[] = [];
    const backup = async () => {
      const r = await runCli(['backup', '--no-encryption', '--volsize', '1', src, target], env);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      states.push(describeTree(src));
    };
    await backup();
    // a delta of ~1.5 MiB (crosses a 1 MiB volume), deletions, a directory that becomes a file and a link that becomes a directory
    const large = fs.openSync(join(src, 'dir5', 'large.bin'), 'r+');
    fs.writeSync(large, bytes(1536 << 10, 98), 0, 1536 << 10, 1 << 20);
    fs.closeSync(large);
    fs.utimesSync(join(src, 'dir5', 'large.bin'), new Date(), new Date(Date.now() + 5000));
    fs.rmSync(join(src, 'dir6'), { recursive: true });
    fs.writeFileSync(join(src, 'dir6'), 'a file now\n');
    fs.rmSync(join(src, 'link'));
    fs.mkdirSync(join(src, 'link'));
    fs.writeFileSync(join(src, 'link', 'inside'), bytes(2 << 20, 61));
    fs.appendFileSync(join(src, 'dir3', 'mid.bin'), 'grown\n'); // and its hard link with it
    await backup();
    fs.rmSync(join(src, 'dir7'), { recursive: true });
    fs.rmSync(join(src, 'tricky', 'several-mib.bin'));
    await backup();
    const starts = firstEntries(target);
    expect(starts.some((n) => /^multivol_snapshot\/.*\/([2-9]|\d\d+)$/.test(n))).toBe(true); // a file continued from the volume before
    expect(starts.some((n) => /^multivol_diff\/dir5\/large\.bin\/([2-9]|\d\d+)$/.test(n))).toBe(true); // and a delta
    const times = setTimes(target);
    expect(times).toHaveLength(3);
    for (let i = 0; i < times.length; i++) {
      for (const jobs of ['1', '2', '4']) await expectTapechainRestore(target, times[i]!, join(dir, `out${i}-${jobs}`), states[i]!, env, ['--jobs', jobs]);
    }
    expect(leftRunTempDirs('restore')).toEqual([]);
  });

  const full = 65536;
  const big = (n: number, size: number): RawEntrySpec => [h(`multivol_snapshot/big/${n}`), Buffer.alloc(size, 0x60 + n)];
  const cases: [string, RawEntrySpec[][], RegExp][] = [
    ['a gap between volumes', [[ROOT, big(1, full), big(2, full)], [big(4, 10), [h('snapshot/zz'), 'z']]], /vol2\.difftar: .*big chunk 4 where 3 was expected/],
    ['a run that stops at a volume end', [[ROOT, big(1, full)], [[h('snapshot/zz'), 'z']]], /vol1\.difftar: .*big ends with the full chunk 1/],
    ['a run without its first chunks', [[ROOT, [h('snapshot/a'), 'a']], [big(2, 10), [h('snapshot/zz'), 'z']]], /vol2\.difftar: .*big starts at chunk 2/],
    ['a chunk after the final one, in the next volume', [[ROOT, big(1, full), big(2, 5)], [big(3, 5), [h('snapshot/zz'), 'z']]], /vol2\.difftar: .*big chunk 3 follows the final chunk 2/],
    ['a run cut at the end of the set', [[ROOT, big(1, full)], [big(2, full)]], /vol2\.difftar: .*big ends with the full chunk 2/],
    ['entries out of order across volumes', [[ROOT, [h('snapshot/b'), 'b']], [[h('snapshot/a'), 'a']]], /vol2\.difftar: .*has a after b/],
    ['an entry repeated across volumes', [[ROOT, [h('snapshot/a'), 'a']], [[h('snapshot/a'), 'again']]], /vol2\.difftar: .*repeats the entry for a/],
  ];
  test.each(cases)('%s: refused alike by one lane and by two, nothing restored', async (_l, vols, message) => {
    const dir = tmp('prun');
    rawSet(join(dir, 't'), vols);
    const seen = [];
    for (const jobs of ['1', '2']) {
      const out = join(dir, `out${jobs}`);
      const r = await runCli(['restore', '--jobs', jobs, join(dir, 't'), out], {});
      expect(r.stderr).toMatch(message);
      expect(fs.existsSync(out)).toBe(false);
      seen.push({ code: r.code, last: r.stderr.trim().split('\n').pop() });
    }
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[0]!.code).not.toBe(0);
  });

  test('a run over three volumes (the middle one all of it) restores whole', async () => {
    const dir = tmp('prun3');
    const data = [bytes(full, 1), bytes(full, 2), bytes(full, 3), bytes(999, 4)];
    const chunk = (n: number): RawEntrySpec => [h(`multivol_snapshot/big/${n}`, { mode: 0o600, mtime: 1600000000 }), data[n - 1]!];
    rawSet(join(dir, 't'), [[ROOT, [h('snapshot/a'), 'a'], chunk(1)], [chunk(2), chunk(3)], [chunk(4), [h('snapshot/zz'), 'z']]]);
    const r = await runCli(['restore', '--jobs', '2', join(dir, 't'), join(dir, 'out')], {});
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/^Using backup set[^\n]*\n$/) });
    const st = fs.statSync(join(dir, 'out', 'big'));
    expect([st.mode & 0o777, st.mtimeMs / 1000]).toEqual([0o600, 1600000000]);
    expect(fs.readFileSync(join(dir, 'out', 'big')).equals(Buffer.concat(data))).toBe(true);
  });

  test('--limit-download holds for the lanes too: a local target\'s volumes are read at the limited rate, not in place', async () => {
    const dir = tmp('plimit');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'a.bin'), bytes(400 << 10, 31));
    fs.writeFileSync(join(src, 'b.bin'), bytes(400 << 10, 32));
    const target = join(dir, 't');
    const env = { XDG_CACHE_HOME: join(dir, 'cache') };
    expect((await runCli(['backup', '--no-encryption', '--compress-level', '0', '--volsize', '0.25', src, target], env)).code).toBe(0);
    // 800 KiB of incompressible data at 256 KiB/s: at least 3 s less the first 16 KiB step
    const atLeast = (800 - 16) / 256;
    for (const args of [['restore', '--jobs', '2', '--limit-download', '256', target, join(dir, 'out')], ['verify', '--jobs', '2', '--limit-download', '256', target]]) {
      const t0 = performance.now();
      const r = await runCli(args, env);
      expect({ args, code: r.code }).toEqual({ args, code: 0 });
      expect((performance.now() - t0) / 1000).toBeGreaterThanOrEqual(atLeast);
    }
    expect(treeDiff(describeTree(src), describeTree(join(dir, 'out')))).toEqual([]);
    expect(leftRunTempDirs('restore')).toEqual([]);
  });

  test('a damaged volume: one line naming it, DEST as it was, no staging or temp files left', async () => {
    const dir = tmp('pdamage');
    const src = join(dir, 'src');
    makeTree(src);
    const target = join(dir, 't');
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') };
    expect((await runCli(['backup', '--volsize', '1', src, target], env)).code).toBe(0);
    const vol = fs.readdirSync(target).find((n) => /\.vol3\.difftar\.gpg$/.test(n))!;
    const bytesOf = fs.readFileSync(join(target, vol));
    bytesOf.writeUInt8(bytesOf[bytesOf.length >> 1]! ^ 0xff, bytesOf.length >> 1);
    fs.writeFileSync(join(target, vol), bytesOf);
    const dest = join(dir, 'dest');
    fs.mkdirSync(dest);
    fs.writeFileSync(join(dest, 'mine'), 'mine');
    const before = describeTree(dest);
    const r = await runCli(['restore', '--force', '--jobs', '2', target, dest], env);
    expect(r.code).toBe(ExitCode.INTEGRITY);
    expect(r.stderr.trim().split('\n').pop()).toMatch(new RegExp(`^tapechain: ${vol.replace(/\./g, '\\.')}: hash mismatch`));
    expect(treeDiff(before, describeTree(dest))).toEqual([]);
    expect(leftRunTempDirs('restore')).toEqual([]);
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

/**
 * The entries of a tar (ustar headers; pax headers skipped), in order, with where each
 * one's data starts: read here by hand, apart from the tar reader under test.
 */
function* tarEntries(tar: Buffer): Generator<{ name: string; data: number }> {
  const field = (h: Buffer, from: number, to: number) => h.subarray(from, to).toString('latin1').replace(/\0.*$/s, '');
  for (let at = 0; at + 512 <= tar.length; ) {
    const h = tar.subarray(at, at + 512);
    if (h.every((b) => b === 0)) return;
    const size = parseInt(field(h, 124, 136).trim() || '0', 8);
    if (h[156] !== 0x78 /* x: pax */) yield { name: field(h, 0, 100), data: at + 512 };
    at += 512 + Math.ceil(size / 512) * 512;
  }
}

/** A file's librsync signature in a decoded signature file: its block length, strong sum length and first record. */
function signatureRecords(sigtar: Buffer, file: string): { blockLen: number; strongLen: number; records: number } {
  for (const e of tarEntries(sigtar)) {
    if (e.name === `signature/${file}`) return { blockLen: sigtar.readUInt32BE(e.data + 4), strongLen: sigtar.readUInt32BE(e.data + 8), records: e.data + 12 };
  }
  throw new Error(`no signature for ${file}`);
}

describe('parallel verify (--jobs)', () => {
  // random data, so 1 MiB volumes hold ~1 MiB of it: each file spans volumes, with
  // librsync block lengths 512, 1024, 1536 (which does not divide a 64 KiB chunk, so
  // blocks lie across volume boundaries) and 2048 (a signature over 64 KiB: a volume that
  // ends inside the file stops reading it part way)
  const files: Record<string, number> = { 'b512.bin': 900_000, 'b1024.bin': 2_500_000, 'b1536.bin': 3_500_000, 'b2048.bin': 12_000_000 };
  let dir: string;
  let clean: string;
  /** Per file, the byte offsets at which a volume takes over its data. */
  const splits: Record<string, number[]> = {};

  beforeAll(async () => {
    dir = tmp('pverify');
    const src = join(dir, 'src');
    makeTree(src);
    let seed = 300;
    for (const [name, size] of Object.entries(files)) fs.writeFileSync(join(src, name), bytes(size, seed++));
    clean = join(dir, 'clean');
    expect((await runCli(['backup', '--no-encryption', '--volsize', '1', '--compress-level', '1', src, clean], { XDG_CACHE_HOME: join(dir, 'cache') })).code).toBe(0);
    const vols = fs.readdirSync(clean).filter((n) => /\.vol\d+\.difftar\.gz$/.test(n)).sort((a, b) => Number(/vol(\d+)/.exec(a)![1]) - Number(/vol(\d+)/.exec(b)![1]));
    for (const v of vols) {
      const first = tarEntries(gunzipSync(fs.readFileSync(join(clean, v)))).next().value!.name;
      const m = /^multivol_snapshot\/(.+)\/(\d+)$/.exec(first);
      if (m && Number(m[2]) > 1) (splits[m[1]!] ??= []).push((Number(m[2]) - 1) * 65536);
    }
  }, 120_000);

  /** verify with one lane and with two: both must report the same, in the same order. */
  async function bothLanes(target: string): Promise<{ code: number; stdout: string }> {
    const env = { XDG_CACHE_HOME: join(dir, 'vcache') };
    const one = await runCli(['verify', '--jobs', '1', target], env);
    const two = await runCli(['verify', '--jobs', '2', target], env);
    expect(two.stdout).toEqual(one.stdout);
    expect(two.code).toBe(one.code);
    expect(leftRunTempDirs('verify')).toEqual([]); // the spool is gone
    return one;
  }

  /** A copy of the clean target with the strong sum of `block` of each file flipped in its signature file. */
  function flipped(name: string, blocks: Record<string, number>): string {
    const t = join(dir, name);
    fs.cpSync(clean, t, { recursive: true });
    const sigName = fs.readdirSync(t).find((n) => /signatures.*\.sigtar\.gz$/.test(n))!;
    const tar = gunzipSync(fs.readFileSync(join(t, sigName)));
    for (const [file, block] of Object.entries(blocks)) {
      const s = signatureRecords(tar, file);
      tar[s.records + block * (4 + s.strongLen) + 4]! ^= 0x01;
    }
    fs.writeFileSync(join(t, sigName), gzipSync(tar));
    return t;
  }

  test('a clean set: the same verdict with one lane and with two', async () => {
    expect(Object.keys(splits)).toEqual(expect.arrayContaining(['b1024.bin', 'b1536.bin', 'b2048.bin']));
    const r = await bothLanes(clean);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/0 problem\(s\)/);
  });

  test('a strong sum flipped in the block that lies across each volume boundary, or inside a volume, is found by both, reported alike', async () => {
    const tar = gunzipSync(fs.readFileSync(join(clean, fs.readdirSync(clean).find((n) => /signatures.*\.sigtar\.gz$/.test(n))!)));
    const straddling = Object.entries(splits).filter(([f, offs]) => offs.some((o) => o % signatureRecords(tar, f).blockLen !== 0));
    // the case only the main thread can check (a 1536-byte block across 14 chunks)
    expect(straddling.map(([f]) => f)).toContain('dir5/large.bin');
    const rounds = Math.max(...Object.values(splits).map((o) => o.length));
    for (let k = 0; k <= rounds; k++) {
      const blocks: Record<string, number> = {};
      for (const [f, offs] of Object.entries(splits)) {
        const bl = signatureRecords(tar, f).blockLen;
        // round `rounds`: a block inside the file's first volume
        blocks[f] = k < rounds ? Math.floor(offs[Math.min(k, offs.length - 1)]! / bl) : 5;
      }
      const r = await bothLanes(flipped(`flip-${k}`, blocks));
      expect(r.code).toBe(ExitCode.INTEGRITY);
      for (const [f, b] of Object.entries(blocks)) expect(r.stdout).toContain(`signature of ${f} does not match the data stored in the volumes (block ${b} differs)`);
    }
  });

  test('verify --compare (every lane a worker thread: the main thread walks the live tree): the same differences with one lane and two', async () => {
    const live = join(dir, 'live');
    fs.cpSync(join(dir, 'src'), live, { recursive: true, preserveTimestamps: true });
    const f = join(live, 'b1536.bin');
    const st = fs.statSync(f);
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, Buffer.from([0xff ^ fs.readFileSync(f)[2_000_000]!]), 0, 1, 2_000_000); // in the fourth volume of the file
    fs.closeSync(fd);
    fs.utimesSync(f, st.atime, st.mtime);
    const env = { XDG_CACHE_HOME: join(dir, 'ccache') };
    const one = await runCli(['verify', '--jobs', '1', '--compare', live, clean], env);
    const two = await runCli(['verify', '--jobs', '2', '--compare', live, clean], env);
    expect(one.code).toBe(1);
    expect(two.stdout).toEqual(one.stdout);
    expect(one.stdout).toMatch(/^b1536\.bin: content differs$/m);
    expect(one.stdout).toMatch(/ 0 problem\(s\); \d+ difference\(s\)/); // the copy's directories have new mtimes
  });

  test('verify --compare keeps on temp disk the signature slices of the volumes under way, not the whole decoded signature file', async () => {
    // 2,400 files of 4 KiB in 256 KiB volumes: ~40 volumes, and a decoded signature file
    // (a tar header and a signature per file) of about a quarter of the data
    const d = tmp('spool');
    const src = join(d, 'src');
    for (let k = 0; k < 2400; k++) {
      const sub = join(src, `d${k % 24}`);
      fs.mkdirSync(sub, { recursive: true });
      fs.writeFileSync(join(sub, `f${k}`), bytes(4096, 9000 + k));
    }
    const target = join(d, 't');
    expect((await runCli(['backup', '--no-encryption', '--volsize', '0.25', src, target], { XDG_CACHE_HOME: join(d, 'cache') })).code).toBe(0);
    const decoded = gunzipSync(fs.readFileSync(join(target, fs.readdirSync(target).find((n) => /signatures.*\.sigtar\.gz$/.test(n))!))).length;
    const temp = join(d, 'tmp');
    fs.mkdirSync(temp);
    const child = spawn(bin, ['verify', '--jobs', '2', '--compare', src, target], { env: { ...process.env, XDG_CACHE_HOME: join(d, 'vcache'), TMPDIR: temp }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => out.push(c));
    let peak = 0;
    const watch = setInterval(() => (peak = Math.max(peak, bytesUnder(temp))), 2);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearInterval(watch);
    expect({ code, out: Buffer.concat(out).toString() }).toEqual({ code: 0, out: expect.stringMatching(/ 0 problem\(s\); 0 difference\(s\)/) });
    expect(decoded).toBeGreaterThan(2_000_000);
    expect(peak).toBeGreaterThan(0); // the slices were seen
    expect(peak).toBeLessThan(decoded / 4);
    expect(fs.readdirSync(temp)).toEqual([]);
  });

  test('a damaged volume in the middle: the same report as one lane, naming the volume', async () => {
    const t = join(dir, 'damaged');
    fs.cpSync(clean, t, { recursive: true });
    const vol = fs.readdirSync(t).find((n) => /\.vol3\.difftar\.gz$/.test(n))!;
    const data = fs.readFileSync(join(t, vol));
    data[data.length >> 1]! ^= 0xff;
    fs.writeFileSync(join(t, vol), data);
    const r = await bothLanes(t);
    expect(r.code).toBe(ExitCode.INTEGRITY);
    expect(r.stdout).toContain(`${vol}: hash mismatch`);
  });
});
