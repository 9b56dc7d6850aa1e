import { describe, expect, test } from '@jest/globals';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DeltaBuilder } from '../../../src/diff/delta.js';
import { SignatureIndex } from '../../../src/diff/signature-index.js';
import { SignatureBuilder } from '../../../src/diff/signature.js';
import { TreeWriter } from '../../../src/restore/tree-writer.js';
import { pathToIndex } from '../../../src/volume/entry-name.js';
import type { TarHeader } from '../../../src/volume/tar-header.js';
import { tempDirs } from '../../helpers/tmp.js';

const tmp = tempDirs();
const MTIME = Date.UTC(2025, 5, 1) / 1000;

const header = (type: TarHeader['type'], o: Partial<TarHeader> = {}): TarHeader => ({
  name: Buffer.alloc(0), type, mode: type === 'directory' ? 0o750 : 0o640, uid: 0, gid: 0, uname: '', gname: '', size: 0, mtime: MTIME, linkname: Buffer.alloc(0), devmajor: 0, devminor: 0, ...o,
});
async function* of(...bs: Buffer[]): AsyncGenerator<Buffer> {
  yield* bs;
}
const ix = (p: string) => pathToIndex(Buffer.from(p));
const writer = (root: string) => new TreeWriter(Buffer.from(root), { restoreOwnership: false });

describe('TreeWriter', () => {
  test('writes files, directories and symlinks with their modes and times; directories are listed deepest first for their metadata', async () => {
    const root = tmp('tw');
    const w = writer(root);
    await w.snapshot(ix('d'), header('directory'), of());
    await w.snapshot(ix('d/e'), header('directory'), of());
    await w.snapshot(ix('d/e/f.txt'), header('file', { size: 5 }), of(Buffer.from('hello')));
    await w.snapshot(ix('big.bin'), header('file', { mode: 0o600, size: 3 << 20 }), of(Buffer.alloc(1 << 20, 1), Buffer.alloc(2 << 20, 2)));
    await w.snapshot(ix('link'), header('symlink', { linkname: Buffer.from('d/e/f.txt') }), of());
    await w.finish();
    expect(fs.readFileSync(join(root, 'd/e/f.txt'), 'utf8')).toBe('hello');
    const big = fs.readFileSync(join(root, 'big.bin'));
    expect(big.length).toBe(3 << 20);
    expect(big[(1 << 20) - 1]).toBe(1);
    expect(big[1 << 20]).toBe(2);
    expect(fs.statSync(join(root, 'big.bin')).mode & 0o7777).toBe(0o600);
    expect(fs.statSync(join(root, 'd/e/f.txt')).mtimeMs / 1000).toBe(MTIME);
    expect(fs.readlinkSync(join(root, 'link'))).toBe('d/e/f.txt');
    expect(w.directories().map((d) => d.rel.toString())).toEqual(['d/e', 'd']);
    expect(fs.readdirSync(root).filter((n) => n.startsWith('.tapechain'))).toEqual([]); // no scratch or part files left
  });

  test('never writes through a symlink the archive made: a/b after a -> outside is refused', async () => {
    const root = tmp('tw-unsafe');
    const outside = tmp('tw-outside');
    const w = writer(root);
    await w.snapshot(ix('a'), header('symlink', { linkname: Buffer.from(outside) }), of());
    await expect(w.snapshot(ix('a/b'), header('file', { size: 1 }), of(Buffer.from('x')))).rejects.toMatchObject({ code: 'UNSAFE_PATH' });
    expect(fs.readdirSync(outside)).toEqual([]);
  });

  test('a snapshot of another type replaces the entry; delete removes a subtree; deleting below it again is a no-op', async () => {
    const root = tmp('tw-replace');
    const w = writer(root);
    await w.snapshot(ix('x'), header('directory'), of());
    await w.snapshot(ix('x/y'), header('file', { size: 1 }), of(Buffer.from('y')));
    w.nextSet();
    await w.snapshot(ix('x'), header('file', { size: 4 }), of(Buffer.from('file')));
    expect(fs.readFileSync(join(root, 'x'), 'utf8')).toBe('file');
    await w.delete(ix('x'));
    await w.delete(ix('x/y'));
    expect(fs.readdirSync(root)).toEqual([]);
  });

  test('patch applies a delta to the earlier version; a delta without one is refused', async () => {
    const root = tmp('tw-patch');
    const w = writer(root);
    const old = Buffer.alloc(200_000, 7);
    await w.snapshot(ix('f'), header('file', { size: old.length }), of(old));
    const next = Buffer.concat([old.subarray(0, 100_000), Buffer.from('inserted'), old.subarray(100_000)]);
    const sig: Buffer[] = [];
    const sb = new SignatureBuilder(2048, (b) => sig.push(b));
    sb.update(old);
    sb.finish();
    const delta: Buffer[] = [];
    const db = new DeltaBuilder(new SignatureIndex(Buffer.concat(sig)), (b) => delta.push(b));
    db.update(next);
    db.finish();
    w.nextSet();
    await w.patch(ix('f'), header('file', { size: next.length }), of(...delta));
    expect(fs.readFileSync(join(root, 'f')).equals(next)).toBe(true);
    await expect(w.patch(ix('nothing-here'), header('file'), of(...delta))).rejects.toMatchObject({ code: 'DIFF_WITHOUT_BASIS' });
  });
});
