/**
 * `status --check`: a target's health in one verdict for monitoring (Nagios-style
 * checks, systemd timers, cron mail): the newest complete set's age, the last verify's
 * age and result, incomplete sets, broken chains. Read from the listing and the local
 * cache's verify record only: nothing is downloaded or decrypted.
 */
import type { TargetStatus } from './status.js';

/** Ordered from worst to best: the verdict is the worst finding. */
export type HealthState = 'broken-chain' | 'verify-failed' | 'stale-backup' | 'incomplete-set' | 'stale-verify' | 'ok';
const SEVERITY: HealthState[] = ['broken-chain', 'verify-failed', 'stale-backup', 'incomplete-set', 'stale-verify', 'ok'];

export interface HealthOptions {
  now: number;
  /** The newest complete set must be at most this old (seconds). @default no limit */
  maxAge?: number;
  /** A verify must have run this recently (seconds), and found nothing. @default no limit */
  maxVerifyAge?: number;
}

export interface Health {
  state: HealthState;
  /** Every finding, worst first; empty when all is well. */
  findings: string[];
  /** End time of the newest complete set. */
  lastBackup: number;
  lastVerify?: { time: number; ok: boolean; problems: number };
}

/** Seconds as the largest whole unit: 26h, 3D, 90s. */
export function age(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 2 * 86400) return `${Math.floor(s / 86400)}D`;
  if (s >= 2 * 3600) return `${Math.floor(s / 3600)}h`;
  if (s >= 120) return `${Math.floor(s / 60)}m`;
  return `${s}s`;
}

/** The verdict for a target with at least one complete chain. */
export function targetHealth(st: TargetStatus, o: HealthOptions): Health {
  const found: { state: HealthState; text: string }[] = [];
  const lastBackup = Math.max(...st.chains.map((c) => c.end));
  if (st.orphans.length) found.push({ state: 'broken-chain', text: `${st.orphans.length} incremental set(s) that no chain accepts (a broken chain: the next backup should be a full)` });
  const v = st.lastVerify;
  if (v && !v.ok) found.push({ state: 'verify-failed', text: `the last verify (${age(o.now - v.time)} ago) found ${v.problems} problem(s)` });
  if (o.maxAge !== undefined && o.now - lastBackup > o.maxAge) found.push({ state: 'stale-backup', text: `the last backup is ${age(o.now - lastBackup)} old (at most ${age(o.maxAge)} wanted)` });
  if (st.incomplete.length) found.push({ state: 'incomplete-set', text: `${st.incomplete.length} incomplete set(s) (an interrupted backup: the next run continues it, or cleanup removes it)` });
  if (o.maxVerifyAge !== undefined && (!v || o.now - v.time > o.maxVerifyAge)) {
    found.push({ state: 'stale-verify', text: v ? `the last verify is ${age(o.now - v.time)} old (at most ${age(o.maxVerifyAge)} wanted)` : 'no verify of these sets is recorded in the local cache' });
  }
  found.sort((a, b) => SEVERITY.indexOf(a.state) - SEVERITY.indexOf(b.state));
  return {
    state: found[0]?.state ?? 'ok',
    findings: found.map((f) => f.text),
    lastBackup,
    ...(v ? { lastVerify: { time: v.time, ok: v.ok, problems: v.problems } } : {}),
  };
}
