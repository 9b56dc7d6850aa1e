import { describe, expect, test } from '@jest/globals';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { parseManifest } from '../../src/chain/manifest.js';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';
import { nextSecond } from '../helpers/wait.js';

const tmp = tempDirs();

describe('the manifest file list, written line by line from disk', () => {
  test('lists every new, changed and deleted file; the cache keeps the same manifest', async () => {
    const dir = tmp('manifest');
    const src = join(dir, 'src');
    const target = join(dir, 't');
    const cache = join(dir, 'cache');
    // enough files that the list is written in several batches
    for (let d = 0; d < 30; d++) {
      fs.mkdirSync(join(src, `dir ${d}`), { recursive: true });
      for (let f = 0; f < 50; f++) fs.writeFileSync(join(src, `dir ${d}`, `file "${f}".txt`), `${d}/${f}\n`);
    }
    const manifests = () => fs.readdirSync(target).filter((n) => n.endsWith('.manifest')).sort();
    expect((await runCli(['backup', '--no-encryption', '--archive-dir', cache, src, target])).code).toBe(0);
    const full = parseManifest(fs.readFileSync(join(target, manifests()[0]!)), 'full', { withFiles: true });
    const listed = full.files.map((f) => `${f.action} ${f.path.toString()}`);
    expect(listed).toHaveLength(1500);
    expect(listed).toContain('new dir 7/file "42".txt');

    // A later second: like duplicity, change detection compares whole-second mtimes.
    await nextSecond();
    fs.writeFileSync(join(src, 'dir 3', 'file "1".txt'), 'changed, and longer\n');
    fs.rmSync(join(src, 'dir 29'), { recursive: true });
    expect((await runCli(['backup', '--no-encryption', '--archive-dir', cache, src, target])).code).toBe(0);
    const incName = manifests().find((n) => n.includes('-inc.'))!;
    const inc = parseManifest(fs.readFileSync(join(target, incName)), 'inc', { withFiles: true });
    const changes = inc.files.map((f) => `${f.action} ${f.path.toString()}`);
    expect(changes).toContain('changed dir 3/file "1".txt');
    expect(changes.filter((c) => c.startsWith('deleted dir 29/'))).toHaveLength(50);
    const cached = fs.readdirSync(cache, { recursive: true }).map(String).find((n) => n.endsWith(incName));
    expect(cached).toBeDefined();
    expect(fs.readFileSync(join(cache, cached!)).equals(fs.readFileSync(join(target, incName)))).toBe(true);
  });
});
