/**
 * The parallel engine: a set cut into batches encoded on worker threads (--jobs) is the
 * same set as the single lane writes, restores exactly (tapechain and duplicity), and a
 * worker that fails mid-volume fails the run cleanly.
 */
import { spawnSync } from 'node:child_process';
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

  test('--jobs 0 is refused (backup and verify)', async () => {
    const dir = tmp('jobs0');
    fs.mkdirSync(join(dir, 'src'));
    const r = await runCli(['backup', '--jobs', '0', join(dir, 'src'), join(dir, 't')], { PASSPHRASE: 'pw' });
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.stderr).toMatch(/--jobs: expected a whole number >= 1, got 0/);
    for (const bad of ['0', '1.5']) {
      const v = await runCli(['verify', '--jobs', bad, join(dir, 't')], { PASSPHRASE: 'pw' });
      expect(v.code).toBe(ExitCode.USAGE);
      expect(v.stderr).toMatch(new RegExp(`--jobs: expected a whole number >= 1, got ${bad}`));
    }
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
