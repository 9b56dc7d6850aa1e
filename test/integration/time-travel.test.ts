/**
 * Time travel over a crafted two-month history (set times set through the clock, no
 * sleeping): calendar retention; file history, diff, cat and export.
 */
import { describe, expect, test, beforeAll } from '@jest/globals';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { parseName } from '../../src/chain/file-naming.js';
import { formatTimestamp } from '../../src/chain/time.js';
import { runCli } from '../helpers/cli.js';
import { expectDuplicityRestore, expectTapechainRestore } from '../helpers/chain.js';
import { historyEnv, makeHistory, write, type Point, type Step } from '../helpers/history.js';
import { tempDirs } from '../helpers/tmp.js';

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
