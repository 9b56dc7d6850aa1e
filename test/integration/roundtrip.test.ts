/**
 * Core round trip on the local target through the CLI (in-process), and the same
 * archives restored by real duplicity 0.8.22; duplicity's archives restored by us.
 */
import { beforeAll, describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';
import { duplicity } from '../helpers/tools.js';
import { describeTree, makeTrickyTree, treeDiff } from '../helpers/tree.js';

const tmp = tempDirs();
const PASS = { PASSPHRASE: 'correct horse' };

describe.each([
  ['encrypted', [] as string[]],
  ['--no-encryption', ['--no-encryption']],
])('full backup and restore (%s)', (_label, flags) => {
  const dir = tmp('rt');
  const src = join(dir, 'src');
  const target = join(dir, 'target');
  let before: Map<string, string>;
  let r: { code: number; stdout: string; stderr: string };
  // The set every test here reads: made once, never changed by a test.
  beforeAll(async () => {
    makeTrickyTree(src);
    before = describeTree(src);
    r = await runCli(['backup', ...flags, '--volsize', '1', src, target], PASS);
  }, 120_000);

  test('backup writes a complete set with several volumes', () => {
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const names = readdirSync(target);
    const ext = flags.length ? '.gz' : '.gpg';
    expect(names.filter((n) => n.includes('.vol')).length).toBeGreaterThan(3);
    expect(names.every((n) => n.endsWith(ext) || (flags.length > 0 && n.endsWith('.manifest')))).toBe(true);
    expect(names.filter((n) => n.includes('manifest'))).toHaveLength(1);
  });

  test('tapechain restores it exactly', async () => {
    const out = join(dir, 'out-tapechain');
    const r = await runCli(['restore', target, out], PASS);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/Using backup set full/);
    expect(treeDiff(before, describeTree(out))).toEqual([]);
  });

  test('ls lists every path', async () => {
    const r = await runCli(['ls', '--json', target], PASS);
    expect(r.code).toBe(0);
    const paths = r.stdout.trim().split('\n').map((l) => JSON.parse(l).path as string);
    expect(paths[0]).toBe('.');
    expect(paths).toContain('name with spaces.txt');
    expect(paths).toContain('new\nline');
    expect(paths.length).toBe(before.size);
  });

  test('real duplicity restores it byte-identical', () => {
    const out = join(dir, 'out-duplicity');
    const r = duplicity(['restore', '--archive-dir', join(dir, 'dupcache'), '--name', 'x', `file://${target}`, out], dir, PASS);
    expect(r.stderr).not.toMatch(/Error|Traceback/);
    expect(r.status).toBe(0);
    expect(treeDiff(before, describeTree(out))).toEqual([]);
  });

  test('duplicity verify --compare-data finds no difference', () => {
    const r = duplicity(['verify', '--compare-data', '--archive-dir', join(dir, 'dupcache2'), '--name', 'y', `file://${target}`, src], dir, PASS);
    expect(r.status).toBe(0);
  });
});

describe('reading what duplicity wrote', () => {
  test.each([
    ['encrypted', [] as string[]],
    ['--no-encryption', ['--no-encryption']],
  ])('tapechain restores and lists a duplicity full set (%s)', async (_l, flags) => {
    const dir = tmp('dup');
    const src = join(dir, 'src');
    const target = join(dir, 'target');
    makeTrickyTree(src);
    const before = describeTree(src);
    const b = duplicity(['full', ...flags, '--volsize', '1', '--archive-dir', join(dir, 'cache'), '--name', 'd', src, `file://${target}`], dir, PASS);
    expect(b.status).toBe(0);
    const out = join(dir, 'out');
    const r = await runCli(['restore', target, out], PASS);
    expect(r.stderr).toMatch(/Using backup set/);
    expect(r.code).toBe(0);
    expect(treeDiff(before, describeTree(out))).toEqual([]);
    const ls = await runCli(['ls', '--json', target], PASS);
    expect(ls.stdout.trim().split('\n').length).toBe(before.size);
  });
});

describe('status', () => {
  test('shows the chain, its set and volume count', async () => {
    const dir = tmp('st');
    const src = join(dir, 'src');
    makeTrickyTree(src);
    await runCli(['backup', '--volsize', '1', src, join(dir, 't')], PASS);
    const r = await runCli(['status', '--json', `file://${join(dir, 't')}`]);
    expect(r.code).toBe(0);
    const st = JSON.parse(r.stdout);
    expect(st.chains).toHaveLength(1);
    const vols = readdirSync(join(dir, 't')).filter((n) => n.includes('.vol')).length;
    expect(st.chains[0].sets[0]).toMatchObject({ type: 'full', volumes: vols, encrypted: true });
    const text = await runCli(['status', join(dir, 't')]);
    expect(text.stdout).toMatch(new RegExp(`Full +\\d{8}T\\d{6}Z +${vols} volume`));
    expect(readFileSync(join(dir, 't', readdirSync(join(dir, 't'))[0]!)).length).toBeGreaterThan(0);
  });
});
