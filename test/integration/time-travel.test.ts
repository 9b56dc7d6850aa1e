/**
 * Time travel over a crafted two-month history (set times set through the clock, no
 * sleeping): calendar retention; file history, diff, cat and export.
 */
import { describe, expect, test, beforeAll } from '@jest/globals';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { parseName } from '../../src/chain/file-naming.js';
import { formatTimestamp } from '../../src/chain/time.js';
import { runCli } from '../helpers/cli.js';
import { expectDuplicityRestore, expectTapechainRestore } from '../helpers/chain.js';
import { historyEnv, makeHistory, write, type Point, type Step } from '../helpers/history.js';
import { tempDirs } from '../helpers/tmp.js';
import { runOk } from '../helpers/tools.js';
import { bytes, describeTree, makeTrickyTree, treeDiff } from '../helpers/tree.js';

const tmp = tempDirs();
const DAY = 86400;
const T0 = Math.floor(new Date(2026, 5, 1, 2, 0, 0).getTime() / 1000); // 1 June 2026, 02:00 local

/** 31 sets over 60 days: a full every 20 days, an incremental every second day between. */
function steps(): Step[] {
  const out: Step[] = [];
  for (let d = 0; d <= 60; d += 2) {
    const t = T0 + d * DAY;
    out.push({
      time: t,
      full: d % 20 === 0,
      change: (src) => {
        write(`daily/day-${d}.txt`, `made on day ${d}\n`, t)(src);
        write('notes.txt', `notes as of day ${d}\n`.repeat(d + 1), t)(src);
        if (d % 6 === 0) fs.rmSync(join(src, 'daily', `day-${d - 6}.txt`), { force: true });
        if (d === 30) fs.chmodSync(join(src, 'notes.txt'), 0o600);
      },
    });
  }
  return out;
}

let dir: string;
let target: string;
let points: Point[];
let env: Record<string, string>;

beforeAll(async () => {
  dir = tmp('history');
  target = join(dir, 'target');
  const src = join(dir, 'src');
  fs.mkdirSync(src);
  points = await makeHistory(src, target, steps());
  env = historyEnv(dir);
}, 120_000);

/** A copy of the history's target, for tests that change it. */
function copyTarget(name: string): string {
  const t = join(dir, name);
  fs.cpSync(target, t, { recursive: true });
  return t;
}

describe('prune by calendar', () => {
  test('lists every point with its verdict, deletes only removed points, and every kept point restores (tapechain and duplicity)', async () => {
    const t = copyTarget('pruned');
    const rules = ['--keep-daily', '3', '--keep-weekly', '3', '--keep-monthly', '2'];
    const dry = await runCli(['prune', ...rules, '--json', t], env);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout) as { points: { time: string; type: string; keep: boolean; reasons: string[]; bytes: number }[]; files: { name: string; size: number }[]; bytes: number; deleted: boolean };
    expect(plan.points.map((p) => p.time)).toEqual(points.map((p) => formatTimestamp(p.time)));
    expect(plan.deleted).toBe(false);
    const kept = plan.points.filter((p) => p.keep);
    const removed = plan.points.filter((p) => !p.keep);
    expect(removed.length).toBeGreaterThan(0);
    expect(kept.length).toBeGreaterThan(6);
    expect(plan.bytes).toBe(removed.reduce((a, p) => a + p.bytes, 0));
    expect(plan.files.reduce((a, f) => a + f.size, 0)).toBe(plan.bytes);
    // the text form shows the same verdicts, one line per point
    const text = await runCli(['prune', ...rules, t], env);
    expect(text.stdout).toContain(`${points.length} restore point(s): ${kept.length} kept, ${removed.length} removed`);
    expect(text.stdout.match(/^ {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}(full|incremental) .*(keep|remove) {2}/gm)).toHaveLength(points.length);
    expect(fs.readdirSync(t).sort()).toEqual(fs.readdirSync(target).sort()); // listing deletes nothing

    const del = await runCli(['prune', ...rules, '--force', t], env);
    expect(del.code).toBe(0);
    const left = new Set(fs.readdirSync(t).map((n) => parseName(n)).filter((p) => p?.kind === 'manifest').map((p) => formatTimestamp(p!.end)));
    expect([...left].sort()).toEqual(kept.map((p) => p.time).sort());
    for (const f of plan.files) expect(fs.existsSync(join(t, f.name))).toBe(false);

    for (const p of points.filter((x) => left.has(formatTimestamp(x.time)))) {
      await expectTapechainRestore(t, p.time, join(dir, `r-${p.time}`), p.tree, env);
    }
    const oldestKept = points.find((x) => left.has(formatTimestamp(x.time)))!;
    expectDuplicityRestore(dir, t, oldestKept.time, join(dir, 'dup-oldest'), oldestKept.tree, env);
    expectDuplicityRestore(dir, t, points[points.length - 1]!.time, join(dir, 'dup-newest'), points[points.length - 1]!.tree, env);
  }, 180_000);

  test('a bad count or duration is a usage error naming the option', async () => {
    for (const [args, msg] of [
      [['--keep-daily', '0'], /--keep-daily: expected a whole number/],
      [['--keep-weekly', 'many'], /--keep-weekly: expected a whole number/],
      [['--keep-within', '3 days'], /--keep-within: expected a duration/],
      [[], /prune: give a rule/],
    ] as const) {
      const r = await runCli(['prune', ...args, target], env);
      expect({ code: r.code, err: r.stderr }).toEqual({ code: 2, err: expect.stringMatching(msg) });
    }
  });
});

/** Path (as in the tree maps: raw bytes as latin1, '' the root) → its description at each point. */
type Tree = Map<string, string>;
const isFile = (d: string) => d.startsWith('f ');
/** Content = type, size and hash (files) or target; the rest (mode, mtime) is metadata. */
function what(a: string, b: string): 'type' | 'content' | 'metadata' {
  const [x, y] = [a.split(' '), b.split(' ')];
  if (x[0] !== y[0]) return 'type';
  if (isFile(a) ? x.slice(3).join() !== y.slice(3).join() : x[0] === 'l' && a !== b) return 'content';
  return 'metadata';
}

/** The versions the trees imply (the oracle for find): time, change and path, sorted. */
function versionsBetween(trees: { time: number; tree: Tree }[]): string[] {
  const out: string[] = [];
  let prev: Tree = new Map();
  for (const { time, tree } of trees) {
    for (const [p, d] of tree) {
      if (p === '') continue;
      const old = prev.get(p);
      if (old === undefined) out.push(`${formatTimestamp(time)} new ${p}`);
      else if (old !== d) out.push(`${formatTimestamp(time)} changed/${what(old, d)} ${p}`);
    }
    for (const p of prev.keys()) if (p !== '' && !tree.has(p)) out.push(`${formatTimestamp(time)} deleted ${p}`);
    prev = tree;
  }
  return out.sort();
}

interface FoundJson {
  time: string;
  change: string;
  what?: string;
  path: string;
  type: string;
  size?: number;
}

const asLines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as FoundJson);

describe('find', () => {
  test('every version of every path across three chains, as the source trees imply, without reading a volume', async () => {
    const r = await runCli(['find', '**', '--json', target], env);
    expect(r.code).toBe(0);
    const got = asLines(r.stdout).map((v) => `${v.time} ${v.change}${v.what ? `/${v.what}` : ''} ${v.path}`);
    expect(got.sort()).toEqual(versionsBetween(points));
    expect(asLines(r.stdout).find((v) => v.path === 'notes.txt' && v.time === formatTimestamp(points[3]!.time))).toMatchObject({ type: 'file', size: 'notes as of day 6\n'.length * 7 });
  });

  test('volumes are not read: find and diff answer with every volume gone', async () => {
    const t = copyTarget('no-volumes');
    for (const n of fs.readdirSync(t)) if (parseName(n)?.kind === 'volume') fs.rmSync(join(t, n));
    const f = await runCli(['find', 'day-1?.txt', t], env);
    expect(f.code).toBe(0);
    expect(f.stderr).toMatch(/no volume was read/);
    expect(f.stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(2, 3)[0])).toContain('deleted');
    const d = await runCli(['diff', '--from', formatTimestamp(points[2]!.time), t], env);
    expect(d.code).toBe(0);
  });

  test('a pattern without "/" matches names anywhere; with one, the whole path; --time-range adds what was there unchanged', async () => {
    const byName = asLines((await runCli(['find', 'day-1[02].txt', '--json', target], env)).stdout);
    expect([...new Set(byName.map((v) => v.path))].sort()).toEqual(['daily/day-10.txt', 'daily/day-12.txt']);
    expect(asLines((await runCli(['find', 'day-*', '--json', '--ignore-case', target], env)).stdout).length).toBeGreaterThan(0);
    expect((await runCli(['find', 'daily/day-1[02].txt', '--json', target], env)).stdout).toBe((await runCli(['find', '/daily/day-1[02].txt', '--json', target], env)).stdout);
    expect((await runCli(['find', 'nope/day-10.txt', '--json', target], env)).stdout).toBe('');

    const [a, b] = [points[10]!, points[20]!];
    const r = await runCli(['find', '**', '--json', '--time-range', `${formatTimestamp(a.time)}..${formatTimestamp(b.time)}`, target], env);
    const got = asLines(r.stdout);
    const inRange = versionsBetween(points.slice(0, 21)).filter((l) => l.split(' ')[0]! >= formatTimestamp(a.time));
    expect(got.filter((v) => v.change !== 'unchanged').map((v) => `${v.time} ${v.change}${v.what ? `/${v.what}` : ''} ${v.path}`).sort()).toEqual(inRange);
    const touched = new Set(inRange.map((l) => l.split(' ')[2]));
    const before = points[9]!.tree;
    expect(got.filter((v) => v.change === 'unchanged').map((v) => v.path).sort()).toEqual([...before.keys()].filter((p) => p !== '' && !touched.has(p)).sort());
  });

  test('bad ranges are usage errors', async () => {
    for (const range of ['..', 'yesterday..', '2026-02-01..2026-01-01']) {
      const r = await runCli(['find', '*', '--time-range', range, target], env);
      expect({ code: r.code, err: r.stderr }).toEqual({ code: 2, err: expect.stringMatching(/--time-range|bad time/) });
    }
  });
});

describe('diff', () => {
  /** The oracle: added, removed and changed paths between two trees. */
  function treeChanges(a: Tree, b: Tree): string[] {
    const out: string[] = [];
    for (const [p, d] of b) {
      const old = a.get(p);
      if (old === undefined) out.push(`added ${p}`);
      else if (old !== d) out.push(`${what(old, d)} ${p}`);
    }
    for (const p of a.keys()) if (!b.has(p)) out.push(`removed ${p}`);
    return out.sort();
  }

  test.each([
    [5, 7, 'in one chain'],
    [3, 25, 'across chains'],
    [12, 12, 'a point with itself'],
    [0, 30, 'the first point with the last'],
  ])('points %i and %i (%s): what the trees say', async (i, j) => {
    const args = ['diff', '--from', formatTimestamp(points[i]!.time), '--json', ...(j === points.length - 1 ? [] : ['--to', formatTimestamp(points[j]!.time)]), target];
    const r = await runCli(args, env);
    expect(r.code).toBe(0);
    const got = asLines(r.stdout).map((v) => `${v.change} ${v.path === '.' ? '' : v.path}`);
    expect(got.sort()).toEqual(treeChanges(points[i]!.tree, points[j]!.tree));
  });

  test('the text form marks each path and counts them', async () => {
    const r = await runCli(['diff', '--from', formatTimestamp(points[5]!.time), '--to', formatTimestamp(points[8]!.time), target], env);
    expect(r.stdout).toMatch(/^\+ {2}daily\/day-12\.txt$/m);
    expect(r.stdout).toMatch(/^- {2}daily\/day-6\.txt$/m);
    expect(r.stdout).toMatch(/^M {2}notes\.txt$/m);
    expect(r.stdout).toMatch(/^\d+ added, \d+ removed, \d+ changed, \d+ metadata only, 0 type changed$/m);
    expect(r.stderr).toMatch(/^comparing .* with /m);
  });
});

describe('export', () => {
  test.each([
    [0, 'the first full'],
    [7, 'mid-chain'],
    [10, 'a new chain\'s full'],
    [30, 'the newest point'],
  ])('point %i (%s) as a pax tar that GNU tar and bsdtar extract to the tree', async (i) => {
    const p = points[i]!;
    const out = join(dir, `export-${i}.tar`);
    const r = await runCli(['export', '--time', formatTimestamp(p.time), '-o', out, target], env);
    expect({ code: r.code, err: r.stderr }).toEqual({ code: 0, err: expect.stringMatching(/Exported \d+ entries/) });
    const want = new Map([...p.tree].filter(([k]) => k !== ''));
    for (const tool of ['tar', 'bsdtar']) {
      const x = join(dir, `x-${tool}-${i}`);
      fs.mkdirSync(x);
      runOk(tool, ['-x', '-f', out, '-C', x]);
      expect(treeDiff(want, describeTree(x, { ignoreRootMeta: true }))).toEqual([]);
    }
  });

  test('--path exports that part; to standard output; a path not there is exit 4', async () => {
    const r = await runCli(['export', '--path', 'daily', target], env);
    expect(r.code).toBe(0);
    const names = runOk('tar', ['-t'], { input: r.bytes }).toString().trim().split('\n');
    const want = [...points[points.length - 1]!.tree.keys()].filter((k) => k.startsWith('daily')).map((k) => (k === 'daily' ? 'daily/' : k));
    expect(names.sort()).toEqual(want.sort());
    const missing = await runCli(['export', '--path', 'nope', '-o', join(dir, 'nope.tar'), target], env);
    expect({ code: missing.code, err: missing.stderr }).toEqual({ code: 4, err: expect.stringMatching(/nope: not in the backup at that time/) });
    expect(fs.existsSync(join(dir, 'nope.tar'))).toBe(false);
  });
});

describe('export of odd names and types', () => {
  test('spaces, quotes, newlines, non-UTF-8 and long names, long link targets, a fifo, old and future mtimes: GNU tar and bsdtar extract them as they were', async () => {
    const d = tmp('tricky-export');
    const src = join(d, 'src');
    makeTrickyTree(src);
    const t = join(d, 't');
    const e = historyEnv(d);
    expect((await runCli(['backup', src, t], e)).code).toBe(0);
    const out = join(d, 'x.tar');
    expect((await runCli(['export', '-o', out, t], e)).code).toBe(0);
    for (const tool of ['tar', 'bsdtar']) {
      const x = join(d, tool);
      fs.mkdirSync(x);
      runOk(tool, ['-x', '-f', out, '-C', x]);
      expect(treeDiff(describeTree(src, { ignoreRootMeta: true }), describeTree(x, { ignoreRootMeta: true }))).toEqual([]);
    }
  });
});

describe('cat', () => {
  const hashOf = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 16);

  test.each([[1], [9], [10], [30]])('notes.txt at point %i is the file as it was', async (i) => {
    const p = points[i]!;
    const r = await runCli(['cat', '--time', formatTimestamp(p.time), 'notes.txt', target], env);
    expect(r.code).toBe(0);
    expect(p.tree.get('notes.txt')).toMatch(new RegExp(` ${r.bytes.length} ${hashOf(r.bytes)}$`));
  });

  test('a directory, a deleted file and no path are refused with one line each', async () => {
    const d = await runCli(['cat', 'daily', target], env);
    expect({ code: d.code, err: d.stderr }).toEqual({ code: 2, err: expect.stringMatching(/daily: is a directory, not a regular file/) });
    const gone = await runCli(['cat', 'daily/day-0.txt', target], env);
    expect({ code: gone.code, err: gone.stderr }).toEqual({ code: 4, err: expect.stringMatching(/day-0\.txt: not in the backup at that time/) });
    expect(gone.bytes.length).toBe(0);
  });
});

describe('export and cat of big files: split over volumes, rebuilt from deltas', () => {
  let big: { dir: string; target: string; src: string; env: Record<string, string> };

  beforeAll(async () => {
    const d = tmp('big');
    const src = join(d, 'src');
    fs.mkdirSync(src);
    for (const n of ['a', 'b', 'c', 'd']) fs.writeFileSync(join(src, n), bytes(700_000, n.charCodeAt(0)));
    const t = join(d, 't');
    const e = historyEnv(d);
    expect((await runCli(['backup', '--volsize', '1', src, t], e)).code).toBe(0);
    // a delta for b, a new d split over volumes
    fs.appendFileSync(join(src, 'b'), bytes(50_000, 99));
    fs.writeFileSync(join(src, 'd'), bytes(1_500_000, 7));
    expect((await runCli(['backup', '--volsize', '1', src, t], e)).code).toBe(0);
    big = { dir: d, target: t, src, env: e };
  }, 60_000);

  test('export extracts to the source; cat prints each file', async () => {
    const r = await runCli(['export', big.target], big.env);
    expect(r.code).toBe(0);
    const x = join(big.dir, 'x');
    fs.mkdirSync(x);
    runOk('tar', ['-x', '-C', x], { input: r.bytes });
    expect(treeDiff(describeTree(big.src, { ignoreRootMeta: true }), describeTree(x, { ignoreRootMeta: true }))).toEqual([]);
    for (const n of ['a', 'b', 'd']) expect((await runCli(['cat', n, big.target], big.env)).bytes.equals(fs.readFileSync(join(big.src, n)))).toBe(true);
  });

  test('cat reads only the volumes that can hold the file: the others may be gone', async () => {
    const t = join(big.dir, 'few');
    fs.cpSync(big.target, t, { recursive: true });
    const vols = fs.readdirSync(t).filter((n) => parseName(n)?.kind === 'volume' && parseName(n)?.type === 'full').sort((a, b) => parseName(a)!.volume! - parseName(b)!.volume!);
    expect(vols.length).toBeGreaterThan(2);
    fs.rmSync(join(t, vols[vols.length - 1]!)); // the last full volume: holds d's old version, not a
    const a = await runCli(['cat', 'a', t], big.env);
    expect({ code: a.code, same: a.bytes.equals(fs.readFileSync(join(big.src, 'a'))) }).toEqual({ code: 0, same: true });
  });

  test('a damaged volume: cat writes nothing and exits 6; export -o leaves no file', async () => {
    const t = join(big.dir, 'damaged');
    fs.cpSync(big.target, t, { recursive: true });
    const first = fs.readdirSync(t).find((n) => parseName(n)?.kind === 'volume' && parseName(n)?.type === 'full' && parseName(n)?.volume === 1)!;
    const f = join(t, first);
    const buf = fs.readFileSync(f);
    buf[buf.length - 40]! ^= 0x01; // past a's data: only the volume's checks can tell
    fs.writeFileSync(f, buf);
    const c = await runCli(['cat', 'a', t], big.env);
    expect({ code: c.code, bytes: c.bytes.length }).toEqual({ code: 6, bytes: 0 });
    expect(c.stderr).toContain(first);
    const out = join(big.dir, 'damaged.tar');
    const e = await runCli(['export', '-o', out, t], big.env);
    expect(e.code).toBe(6);
    expect(fs.readdirSync(big.dir).filter((n) => n.includes('damaged.tar'))).toEqual([]);
  });
});
