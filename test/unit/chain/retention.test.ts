/**
 * Calendar retention over a synthetic 400-day history (names only, crafted times),
 * checked against an independent expectation: periods from local date strings, the
 * newest point per period, and the chain closure computed by hand.
 */
process.env.TZ = 'Europe/Berlin'; // local time with DST shifts: periods are not UTC days

import { describe, expect, test } from '@jest/globals';
import { UNLIMITED, type KeepRules } from '../../../src/chain/calendar.js';
import { buildCollection, type RemoteFile } from '../../../src/chain/collection.js';
import { formatName } from '../../../src/chain/file-naming.js';
import { planRetention } from '../../../src/chain/retention.js';

interface Planned {
  type: 'full' | 'inc';
  start: number;
  end: number;
}

/** A history of backups at local times: a full every `fullEvery` days, otherwise incrementals. */
function history(days: number, fullEvery: number): Planned[] {
  const out: Planned[] = [];
  let prev = 0;
  for (let day = 0; day < days; day++) {
    if (day % 11 === 5) continue; // some days have no backup
    const hours = day % 9 === 3 ? [2, 14] : [2]; // some have two
    for (const h of hours) {
      const t = new Date(2025, 0, 1 + day, h, 7, 0).getTime() / 1000;
      const full = out.length === 0 || (day % fullEvery === 0 && h === 2);
      out.push(full ? { type: 'full', start: t, end: t } : { type: 'inc', start: prev, end: t });
      prev = t;
    }
  }
  return out;
}

function files(h: Planned[]): RemoteFile[] {
  return h.flatMap((s) => [
    { name: formatName({ kind: 'manifest', type: s.type, start: s.start, end: s.end, encoding: 'gpg' }), size: 100 },
    { name: formatName({ kind: 'volume', type: s.type, start: s.start, end: s.end, volume: 1, encoding: 'gpg' }), size: 1000 },
    { name: formatName({ kind: 'signature', type: s.type, start: s.start, end: s.end, encoding: 'gpg' }), size: 10 },
  ]);
}

const pad = (n: number) => String(n).padStart(2, '0');
const day = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const PERIOD: Record<string, (t: number) => string> = {
  hourly: (t) => `${day(new Date(t * 1000))} ${new Date(t * 1000).getHours()}`,
  daily: (t) => day(new Date(t * 1000)),
  // the Monday that starts the week
  weekly: (t) => {
    const d = new Date(t * 1000);
    return day(new Date(d.getFullYear(), d.getMonth(), d.getDate() - ((d.getDay() + 6) % 7)));
  },
  monthly: (t) => day(new Date(t * 1000)).slice(0, 7),
  yearly: (t) => String(new Date(t * 1000).getFullYear()),
};

/** The points the rules keep by themselves (before chain closure), computed naively. */
function expectedByRules(ends: number[], rules: KeepRules): Set<number> {
  const newestFirst = [...ends].sort((a, b) => b - a);
  const kept = new Set<number>();
  if (rules.last !== undefined) newestFirst.slice(0, rules.last === UNLIMITED ? undefined : rules.last).forEach((t) => kept.add(t));
  for (const rule of Object.keys(PERIOD)) {
    const n = rules[rule as keyof KeepRules];
    if (n === undefined) continue;
    const groups = new Map<string, number>(); // period → its newest point (insertion: newest period first)
    for (const t of newestFirst) if (!groups.has(PERIOD[rule]!(t))) groups.set(PERIOD[rule]!(t), t);
    const picked = [...groups.values()].slice(0, n === UNLIMITED ? undefined : n);
    picked.forEach((t) => kept.add(t));
    if (n === UNLIMITED || groups.size < n) kept.add(newestFirst[newestFirst.length - 1]!);
  }
  if (rules.within !== undefined) for (const t of newestFirst) if (t > newestFirst[0]! - rules.within) kept.add(t);
  return kept;
}

/** Chain closure: a kept point keeps what precedes it in its chain; the newest chain stays. */
function expectedKept(h: Planned[], rules: KeepRules): Set<number> {
  const byRules = expectedByRules(h.map((s) => s.end), rules);
  const chains: Planned[][] = [];
  for (const s of h) (s.type === 'full' ? chains.push([s]) : chains[chains.length - 1]!.push(s));
  const kept = new Set<number>();
  chains.forEach((c, i) => {
    const last = i === chains.length - 1 ? c.length - 1 : Math.max(-1, ...c.map((s, j) => (byRules.has(s.end) ? j : -1)));
    c.slice(0, last + 1).forEach((s) => kept.add(s.end));
  });
  return kept;
}

const RULES: KeepRules[] = [
  { daily: 7, weekly: 5, monthly: 12, yearly: 3 },
  { last: 3, hourly: 30 },
  { within: 20 * 86400, monthly: UNLIMITED },
  { weekly: 100 }, // more weeks than the history has: the oldest point is kept too
  { yearly: 1 },
  { last: 1 },
];

describe('calendar retention (400 days, local time)', () => {
  const h = history(400, 35);
  const col = buildCollection(files(h));

  test.each(RULES)('rules %j keep what the independent expectation keeps', (rules) => {
    const plan = planRetention(col, { keep: rules });
    const kept = new Set(plan.points.filter((p) => p.keep).map((p) => p.set.end));
    expect([...kept].sort()).toEqual([...expectedKept(h, rules)].sort());
    expect(plan.points).toHaveLength(h.length);
    // removals are exactly the points not kept, newest first within each chain
    expect(plan.removals.map((r) => r.set.end).sort()).toEqual(h.map((s) => s.end).filter((t) => !kept.has(t)).sort());
    const chainOf = new Map(plan.points.map((p) => [p.set, p.chain]));
    for (let i = 1; i < plan.removals.length; i++) {
      const [a, b] = [plan.removals[i - 1]!.set, plan.removals[i]!.set];
      if (chainOf.get(a) === chainOf.get(b)) expect(b.end).toBeLessThan(a.end);
    }
  });

  test('no kept point loses a set it depends on', () => {
    const plan = planRetention(col, { keep: { weekly: 8 } });
    for (const p of plan.points.filter((x) => x.keep)) {
      const chainPoints = plan.points.filter((x) => x.chain === p.chain && x.set.end <= p.set.end);
      expect(chainPoints.every((x) => x.keep)).toBe(true);
    }
  });

  test('reasons: the rules, the oldest point, dependencies, the newest chain', () => {
    const plan = planRetention(col, { keep: { weekly: 4, yearly: 5 } });
    const byEnd = new Map(plan.points.map((p) => [p.set.end, p]));
    const oldest = h[0]!.end;
    expect(byEnd.get(oldest)!.reasons).toEqual(['oldest yearly']);
    const newest = plan.points[plan.points.length - 1]!;
    expect(newest.reasons).toEqual(['weekly', 'yearly']);
    expect(plan.points.some((p) => p.keep && p.reasons[0]!.startsWith('needed by '))).toBe(true);
    expect(plan.points.filter((p) => p.chain === newest.chain).every((p) => p.keep)).toBe(true);
    expect(plan.points.some((p) => !p.keep && p.reasons[0] === 'no rule keeps a point of its chain')).toBe(true);
    expect(plan.points.some((p) => !p.keep && p.reasons[0] === 'no rule keeps it or a later point of its chain')).toBe(true);
  });

  test('--older-than and --keep-full remove on top of the calendar rules', () => {
    const cutoff = h[200]!.end;
    const plan = planRetention(col, { keep: { monthly: UNLIMITED }, olderThan: cutoff, keepFull: 5 });
    const chains = [...new Set(plan.points.map((p) => p.chain))];
    for (const p of plan.points) {
      const ci = chains.indexOf(p.chain);
      if (ci < chains.length - 1 && (p.chain.end < cutoff || ci < chains.length - 5)) expect(p.keep).toBe(false);
    }
    expect(plan.points.some((p) => p.keep && p.set.end < cutoff)).toBe(false);
  });

  test('without calendar rules, the chain rules work as before', () => {
    const plan = planRetention(col, { keepIncOf: 2 });
    const chains = [...new Set(plan.points.map((p) => p.chain))];
    for (const p of plan.points) expect(p.keep).toBe(p.set.type === 'full' || chains.indexOf(p.chain) >= chains.length - 2);
  });
});
