/**
 * Metadata fidelity (issue 21), what is done so far: sparse files restore with holes.
 */
import { describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';
import { bytes } from '../helpers/tree.js';

const tmp = tempDirs();
const MiB = 1 << 20;

const sha = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');
const allocated = (p: string) => fs.statSync(p).blocks * 512;

describe('sparse files', () => {
  test('restore writes runs of zeros as holes (also after a delta); --no-sparse writes them out', async () => {
    const dir = tmp('sparse');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    const img = join(src, 'disk.img');
    const fd = fs.openSync(img, 'w');
    fs.writeSync(fd, bytes(MiB, 1), 0, MiB, 16 * MiB);
    fs.writeSync(fd, bytes(5000, 2), 0, 5000, 64 * MiB - 5000);
    fs.closeSync(fd);
    const env = { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    const target = join(dir, 't');
    expect((await runCli(['backup', src, target], env)).code).toBe(0);

    const out = join(dir, 'r');
    expect((await runCli(['restore', target, out], env)).code).toBe(0);
    expect(sha(join(out, 'disk.img'))).toBe(sha(img));
    expect(allocated(join(out, 'disk.img'))).toBeLessThan(4 * MiB);

    const dense = join(dir, 'dense');
    expect((await runCli(['restore', '--no-sparse', target, dense], env)).code).toBe(0);
    expect(sha(join(dense, 'disk.img'))).toBe(sha(img));
    expect(allocated(join(dense, 'disk.img'))).toBeGreaterThan(60 * MiB);

    // a delta: some bytes changed in the data, the size the same
    const fd2 = fs.openSync(img, 'r+');
    fs.writeSync(fd2, bytes(3000, 3), 0, 3000, 16 * MiB + 100_000);
    fs.closeSync(fd2);
    fs.utimesSync(img, 1_800_000_000, 1_800_000_000);
    expect((await runCli(['backup', src, target], env)).stdout).toMatch(/^Incremental/);
    const out2 = join(dir, 'r2');
    const r = await runCli(['restore', target, out2], env);
    expect(r.stdout).toMatch(/1 patched/);
    expect(sha(join(out2, 'disk.img'))).toBe(sha(img));
    expect(allocated(join(out2, 'disk.img'))).toBeLessThan(4 * MiB);
  });
});
