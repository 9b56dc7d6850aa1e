import { describe, expect, test } from '@jest/globals';
import { age, targetHealth } from '../../../src/inspect/health.js';
import type { SetStatus, TargetStatus } from '../../../src/inspect/status.js';

const H = 3600;
const NOW = 1_800_000_000;
const set = (end: number, type: 'full' | 'inc' = 'full'): SetStatus => ({ type, start: end - 60, end, volumes: 1, bytes: 1, encrypted: true, sealed: false });

function target(o: { lastEnd?: number; incomplete?: number; orphans?: number; verify?: { time: number; ok: boolean; problems: number } } = {}): TargetStatus {
  const end = o.lastEnd ?? NOW - H;
  return {
    target: 'file:///t',
    chains: [{ start: end - 2 * H, end, sets: [set(end - 2 * H), set(end, 'inc')] }],
    incomplete: Array.from({ length: o.incomplete ?? 0 }, () => set(NOW - 60)),
    orphans: Array.from({ length: o.orphans ?? 0 }, () => set(NOW - 120, 'inc')),
    strays: [],
    unknown: [],
    recoverable: [],
    future: [],
    ...(o.verify ? { lastVerify: { ...o.verify, volumes: 3, offline: false } } : {}),
  };
}

describe('status --check verdicts', () => {
  test('ok within the limits; each limit and finding gives its state', () => {
    const verified = { time: NOW - 2 * H, ok: true, problems: 0 };
    expect(targetHealth(target({ verify: verified }), { now: NOW, maxAge: 26 * H, maxVerifyAge: 8 * 24 * H })).toMatchObject({ state: 'ok', findings: [] });
    expect(targetHealth(target({ lastEnd: NOW - 30 * H }), { now: NOW, maxAge: 26 * H }).state).toBe('stale-backup');
    expect(targetHealth(target({ lastEnd: NOW - 30 * H }), { now: NOW }).state).toBe('ok'); // no --max-age: no age limit
    expect(targetHealth(target(), { now: NOW, maxVerifyAge: 24 * H }).findings).toEqual(['no verify of these sets is recorded in the local cache']);
    expect(targetHealth(target({ verify: { ...verified, time: NOW - 9 * 24 * H } }), { now: NOW, maxVerifyAge: 8 * 24 * H }).state).toBe('stale-verify');
    expect(targetHealth(target({ verify: { ...verified, ok: false, problems: 2 } }), { now: NOW }).state).toBe('verify-failed');
    expect(targetHealth(target({ incomplete: 1 }), { now: NOW }).state).toBe('incomplete-set');
    expect(targetHealth(target({ orphans: 2 }), { now: NOW }).state).toBe('broken-chain');
  });

  test('the worst finding wins, and every finding is told, worst first', () => {
    const h = targetHealth(target({ lastEnd: NOW - 30 * H, incomplete: 1, orphans: 1 }), { now: NOW, maxAge: 26 * H, maxVerifyAge: H });
    expect(h.state).toBe('broken-chain');
    expect(h.findings).toEqual([
      expect.stringMatching(/^1 incremental set\(s\) that no chain accepts/),
      'the last backup is 30h old (at most 26h wanted)',
      expect.stringMatching(/^1 incomplete set\(s\)/),
      'no verify of these sets is recorded in the local cache',
    ]);
  });

  test('ages read as the largest whole unit', () => {
    expect([age(59), age(150), age(3 * H), age(50 * H)]).toEqual(['59s', '2m', '3h', '2D']);
  });
});
