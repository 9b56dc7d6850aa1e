/**
 * Metadata fidelity (issue 21): sparse files are read by their data and restore with
 * holes; hard links restore as one file with several names (duplicity restores
 * copies). Extended attributes, ACLs and capabilities: xattrs.test.ts.
 */
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';
import { duplicity } from '../helpers/tools.js';
import { bytes, describeTree, fileSha256, treeDiff } from '../helpers/tree.js';

const tmp = tempDirs();
const MiB = 1 << 20;

const sha = fileSha256;
const allocated = (p: string) => fs.statSync(p).blocks * 512;

/** A sparse file in a new `src` under `dir`: `size` long, with data (pseudo-random) only at these [offset, bytes]. */
function sparseSource(dir: string, name: string, size: number, data: [number, number][]): { src: string; img: string } {
  const src = join(dir, 'src');
  fs.mkdirSync(src);
  const img = join(src, name);
  const fd = fs.openSync(img, 'w');
  data.forEach(([at, n], i) => fs.writeSync(fd, bytes(n, i + 1), 0, n, at));
  fs.ftruncateSync(fd, size);
  fs.closeSync(fd);
  return { src, img };
}

describe('sparse files', () => {
  test('restore writes runs of zeros as holes (also after a delta); --no-sparse writes them out', async () => {
    const dir = tmp('sparse');
    const { src, img } = sparseSource(dir, 'disk.img', 64 * MiB, [[16 * MiB, MiB], [64 * MiB - 5000, 5000]]);
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

  test("backup reads a sparse file's data, not its holes: 1 GiB with 3 MiB of data costs a few MiB of reads; tapechain and duplicity restore it", async () => {
    const dir = tmp('sparse-read');
    const { src, img } = sparseSource(dir, 'vm.img', 1024 * MiB, [[100 * MiB, MiB], [700 * MiB + 123, 2 * MiB]]);
    // the process's read bytes (all threads, pipes and modules included), written as it exits
    const io = join(dir, 'io');
    const hook = join(dir, 'hook.mjs');
    fs.writeFileSync(hook, `import { readFileSync, writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(io)}, readFileSync('/proc/self/io')));\n`);
    const target = join(dir, 't');
    const r = spawnSync(process.execPath, ['--import', hook, 'bin/tapechain', 'backup', src, target], { env: { ...process.env, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') } });
    expect({ code: r.status, err: r.stderr.toString() }).toEqual({ code: 0, err: '' });
    const rchar = Number(/rchar: (\d+)/.exec(fs.readFileSync(io, 'utf8'))![1]);
    expect(rchar).toBeLessThan(128 * MiB);

    const env = { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    const out = join(dir, 'r');
    expect((await runCli(['restore', target, out], env)).code).toBe(0);
    expect(sha(join(out, 'vm.img'))).toBe(sha(img));
    expect(allocated(join(out, 'vm.img'))).toBeLessThan(8 * MiB);
    const d = duplicity(['restore', '--archive-dir', join(dir, 'dupc'), '--name', 's', `file://${target}`, join(dir, 'dup')], dir, { PASSPHRASE: 'p' });
    expect({ status: d.status, err: d.stderr }).toEqual({ status: 0, err: expect.not.stringMatching(/Traceback/) });
    expect(sha(join(dir, 'dup', 'vm.img'))).toBe(sha(img));
  }, 60_000);
});

describe('hard links', () => {
  /** Path → inode number, for the regular files of a tree. */
  const inodes = (root: string, names: string[]) => names.map((n) => fs.statSync(join(root, n)).ino);
  const links = (root: string, names: string[]) => names.map((n) => fs.statSync(join(root, n)).nlink);

  test('names of one file restore as one inode, through full and incremental, multivol too; --path of a later name and duplicity get the content', async () => {
    const dir = tmp('hardlinks');
    const src = join(dir, 'src');
    fs.mkdirSync(join(src, 'd'), { recursive: true });
    fs.writeFileSync(join(src, 'a'), 'shared content\n');
    fs.linkSync(join(src, 'a'), join(src, 'c'));
    fs.linkSync(join(src, 'a'), join(src, 'd', 'b'));
    fs.writeFileSync(join(src, 'big'), bytes(3 * MiB, 5)); // split over volumes
    fs.linkSync(join(src, 'big'), join(src, 'd', 'big-too'));
    fs.writeFileSync(join(src, 'solo'), 'one name\n');
    const env = { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    const target = join(dir, 't');
    expect((await runCli(['backup', '--volsize', '1', src, target], env)).code).toBe(0);

    const out = join(dir, 'r');
    expect((await runCli(['restore', target, out], env)).code).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(out))).toEqual([]);
    expect(new Set(inodes(out, ['a', 'c', 'd/b'])).size).toBe(1);
    expect(links(out, ['a', 'c', 'd/b', 'big', 'd/big-too', 'solo'])).toEqual([3, 3, 3, 2, 2, 1]);
    expect(new Set(inodes(out, ['big', 'd/big-too'])).size).toBe(1);

    // the content changes (every name), a name is added, one removed
    fs.writeFileSync(join(src, 'a'), 'changed, still shared\n');
    fs.utimesSync(join(src, 'a'), 1_800_000_000, 1_800_000_000);
    fs.linkSync(join(src, 'a'), join(src, 'e'));
    fs.rmSync(join(src, 'c'));
    expect((await runCli(['backup', '--volsize', '1', src, target], env)).stdout).toMatch(/^Incremental/);
    const out2 = join(dir, 'r2');
    expect((await runCli(['restore', target, out2], env)).code).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(out2))).toEqual([]);
    expect(new Set(inodes(out2, ['a', 'd/b', 'e'])).size).toBe(1);
    expect(links(out2, ['a', 'd/b', 'e'])).toEqual([3, 3, 3]);

    // a later name alone: its own stored content
    const one = join(dir, 'one');
    expect((await runCli(['restore', '--path', 'd/b', target, one], env)).code).toBe(0);
    expect(fs.readFileSync(join(one, 'd', 'b'), 'utf8')).toBe('changed, still shared\n');

    // duplicity restores the same content, as separate files
    const d = duplicity(['restore', '--archive-dir', join(dir, 'dupc'), '--name', 'h', `file://${target}`, join(dir, 'dup')], dir, { PASSPHRASE: 'p' });
    expect({ status: d.status, err: d.stderr }).toEqual({ status: 0, err: expect.not.stringMatching(/Traceback/) });
    expect(treeDiff(describeTree(src), describeTree(join(dir, 'dup')))).toEqual([]);
  }, 60_000);

  test('a link record naming a path outside the tree, or after the entry, is not followed', async () => {
    const { TreeWriter } = await import('../../src/restore/tree-writer.js');
    const dir = tmp('hostile-link');
    const root = join(dir, 'root');
    fs.mkdirSync(root);
    fs.writeFileSync(join(dir, 'outside'), 'secret');
    const w = new TreeWriter(Buffer.from(root), { restoreOwnership: false });
    const h = (name: string, hardlinkTo: string) => ({ name: Buffer.from(name), type: 'file' as const, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', size: 4, mtime: 1_700_000_000, linkname: Buffer.alloc(0), devmajor: 0, devminor: 0, hardlinkTo: Buffer.from(hardlinkTo) });
    const data = async function* () {
      yield Buffer.from('mine');
    };
    await w.snapshot([Buffer.from('x')], h('snapshot/x', '../outside'), data());
    await w.snapshot([Buffer.from('y')], h('snapshot/y', 'z'), data());
    await w.finish();
    for (const n of ['x', 'y']) expect({ n, text: fs.readFileSync(join(root, n), 'utf8'), links: fs.statSync(join(root, n)).nlink }).toEqual({ n, text: 'mine', links: 1 });
  });
});
