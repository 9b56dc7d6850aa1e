/** --metrics-file: the textfile node_exporter reads, checked with promtool, through backup, verify, prune and a failure. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { ExitCode } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';
import { requireTool } from '../helpers/tools.js';
import { nextSecond } from '../helpers/wait.js';

const tmp = tempDirs();

/** The file's samples: `name{labels}` → value; promtool must accept it (lint included). */
function samples(file: string): Map<string, number> {
  const text = fs.readFileSync(file, 'utf8');
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: text });
  expect({ status: lint.status, out: `${lint.stdout}${lint.stderr}` }).toEqual({ status: 0, out: '' });
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe('--metrics-file', () => {
  test('backup, verify and prune share one file, each replacing its own series; a failed backup keeps the last success', async () => {
    requireTool('promtool');
    const dir = tmp('metrics');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'a'), Buffer.alloc(3000, 1));
    fs.writeFileSync(join(src, 'b'), Buffer.alloc(2000, 2));
    const target = join(dir, 't');
    const prom = join(dir, 'textfile', 'tapechain.prom');
    fs.mkdirSync(join(dir, 'textfile'));
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') };
    const series = (name: string) => `tapechain_${name}{target="${target}"}`;

    const before = Math.floor(Date.now() / 1000);
    expect((await runCli(['backup', '--metrics-file', prom, src, target], env)).code).toBe(0);
    let m = samples(prom);
    expect(m.get(series('backup_read_bytes'))).toBe(5000);
    expect(m.get(series('backup_files'))).toBe(2);
    expect(m.get(series('backup_full'))).toBe(1);
    expect(m.get(series('backup_chain_sets'))).toBe(1);
    expect(m.get(series('backup_last_exit_code'))).toBe(0);
    const success = m.get(series('backup_last_success_timestamp_seconds'))!;
    expect(success).toBeGreaterThanOrEqual(before);

    expect((await runCli(['verify', '--metrics-file', prom, target], env)).code).toBe(0);
    m = samples(prom);
    expect(m.get(series('verify_problems'))).toBe(0);
    expect(m.get(series('verify_coverage_ratio'))).toBe(1);
    expect(m.get(series('backup_read_bytes'))).toBe(5000); // kept

    await nextSecond();
    fs.appendFileSync(join(src, 'a'), 'more');
    expect((await runCli(['backup', '--metrics-file', prom, src, target], env)).code).toBe(0);
    m = samples(prom);
    expect([m.get(series('backup_full')), m.get(series('backup_chain_sets')), m.get(series('backup_files'))]).toEqual([0, 2, 1]);
    const success2 = m.get(series('backup_last_success_timestamp_seconds'))!;

    await nextSecond();
    const failed = await runCli(['backup', '--metrics-file', prom, join(dir, 'gone'), target], env);
    expect(failed.code).toBe(ExitCode.SOURCE);
    m = samples(prom);
    expect(m.get(series('backup_last_exit_code'))).toBe(ExitCode.SOURCE);
    expect(m.get(series('backup_last_run_timestamp_seconds'))).toBeGreaterThan(success2);
    expect(m.get(series('backup_last_success_timestamp_seconds'))).toBe(success2);
    expect(m.get(series('backup_chain_sets'))).toBe(2);

    expect((await runCli(['prune', '--keep-full', '1', '--metrics-file', prom, target], env)).code).toBe(0);
    expect(samples(prom).get(series('prune_deleted_files'))).toBe(0);
    // replaced atomically: nothing but the file in its directory
    expect(fs.readdirSync(join(dir, 'textfile'))).toEqual(['tapechain.prom']);
  });

  test('a metrics file that cannot be written is a warning; the run keeps its exit code', async () => {
    const dir = tmp('metrics-bad');
    fs.mkdirSync(join(dir, 'src'));
    const r = await runCli(['backup', '--metrics-file', join(dir, 'no-such-dir', 'x.prom'), join(dir, 'src'), join(dir, 't')], { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: could not write the metrics file .*x\.prom: ENOENT/m);
  });
});
