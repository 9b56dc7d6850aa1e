/** Helpers for chain tests: set times at a target, and restores by both tools. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from '@jest/globals';
import { parseName } from '../../src/chain/file-naming.js';
import { formatTimestamp } from '../../src/chain/time.js';
import { runCli } from './cli.js';
import { duplicity } from './tools.js';
import { describeTree, treeDiff } from './tree.js';

/** END times of the complete sets at a local target, ascending. */
export function setTimes(target: string): number[] {
  return readdirSync(target)
    .map((n) => parseName(n))
    .filter((p) => p?.kind === 'manifest')
    .map((p) => p!.end)
    .sort((a, b) => a - b);
}

export async function expectTapechainRestore(target: string, time: number, out: string, want: Map<string, string>, env: Record<string, string>, args: string[] = []): Promise<void> {
  const r = await runCli(['restore', ...args, '--time', formatTimestamp(time), target, out], env);
  expect(r.stderr).toMatch(/Using backup set/);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/^Using backup set[^\n]*\n$/) });
  expect(treeDiff(want, describeTree(out))).toEqual([]);
}

export function expectDuplicityRestore(dir: string, target: string, time: number, out: string, want: Map<string, string>, env: Record<string, string>): void {
  const r = duplicity(['restore', '--time', formatTimestamp(time), '--archive-dir', join(dir, 'dupcache'), '--name', 'c', `file://${target}`, out], dir, env);
  expect(r.stderr).not.toMatch(/Traceback/);
  expect(r.status).toBe(0);
  expect(treeDiff(want, describeTree(out))).toEqual([]);
}
