/**
 * What verify remembers between runs, in the cache folder of the target: when each
 * volume was last checked (the cursor that makes --sample cover every volume over
 * repeated runs, least recently checked first) and the last run's result (for status).
 */
import { readFile, rename, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface VerifyState {
  /** Volume name → epoch seconds of its last deep check. */
  checked: Record<string, number>;
  last?: LastVerify;
}

export interface LastVerify {
  time: number;
  ok: boolean;
  problems: number;
  volumes: number;
  offline: boolean;
  /**
   * The sets verified (`type:start:end`): a later status shows this result only while
   * one of them is still at the target, not for a new target at the same URL.
   */
  sets?: string[];
  /**
   * SHA-256 of the stored manifests verified: names repeat when a target is made anew
   * within a second, stored bytes never (every OpenPGP message has its own salt/IV).
   */
  manifests?: string[];
}

/**
 * Whether a remembered result is about the target as it is now: one of the sets it
 * verified is still there (by the stored manifest's digest, where both sides know it).
 */
export function lastVerifyApplies(last: LastVerify, now: { sets: Set<string>; manifests: Set<string> }): boolean {
  if (last.manifests?.length && now.manifests.size) return last.manifests.some((d) => now.manifests.has(d));
  return last.sets !== undefined && last.sets.some((k) => now.sets.has(k));
}

const FILE = 'verify-state.json';

export async function loadVerifyState(dir: string): Promise<VerifyState> {
  try {
    const s = JSON.parse(await readFile(join(dir, FILE), 'utf8')) as VerifyState;
    return { checked: s.checked ?? {}, ...(s.last ? { last: s.last } : {}) };
  } catch {
    return { checked: {} }; // never verified from this cache (or the record is damaged): start over
  }
}

export async function saveVerifyState(dir: string, s: VerifyState): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${FILE}.tmp`);
  await writeFile(tmp, JSON.stringify(s));
  await rename(tmp, join(dir, FILE));
}

/** The `percent` % of `names` checked longest ago (never-checked first), at least one. */
export function pickSample(names: string[], state: VerifyState, percent: number): Set<string> {
  const n = Math.min(names.length, Math.max(1, Math.ceil((names.length * percent) / 100)));
  const sorted = [...names].sort((a, b) => (state.checked[a] ?? 0) - (state.checked[b] ?? 0) || a.localeCompare(b));
  return new Set(sorted.slice(0, n));
}
