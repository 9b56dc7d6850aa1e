import { describe, expect, test } from '@jest/globals';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { getBytes, listAll } from '../../../src/backend/backend.js';
import { FaultyBackend } from '../../../src/backend/faulty.js';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { SetWriter, type SetWriterOptions } from '../../../src/backup/set-writer.js';
import { parseName } from '../../../src/chain/file-naming.js';
import { parseManifest } from '../../../src/chain/manifest.js';
import { plainEncoder } from '../../../src/crypto/index.js';
import { TarReader } from '../../../src/volume/tar-reader.js';
import type { WalkEntry, WalkWarning } from '../../../src/source/walk.js';
import { pathToIndex } from '../../../src/volume/entry-name.js';
import { tempDirs } from '../../helpers/tmp.js';
import { bytes } from '../../helpers/tree.js';

const tmp = tempDirs();

/** A source of `n` files of `size` bytes each, walked in index order. */
function source(n: number, size: number): { root: string; entries: WalkEntry[] } {
  const root = tmp('sw-src');
  const names = Array.from({ length: n }, (_, i) => `f${String(i).padStart(3, '0')}`);
  for (const [i, name] of names.entries()) fs.writeFileSync(join(root, name), bytes(size, i));
  const entry = (name: string): WalkEntry => ({ index: name === '.' ? [] : pathToIndex(Buffer.from(name)), path: Buffer.from(name === '.' ? root : join(root, name)), stat: fs.lstatSync(name === '.' ? root : join(root, name)) });
  return { root, entries: [entry('.'), ...names.map(entry)] };
}

function options(backend: MemoryBackend | FaultyBackend, jobs: number, warnings: WalkWarning[] = []): SetWriterOptions {
  return {
    backend,
    spec: { type: 'full', start: 1_700_000_000, end: 1_700_000_000, encoding: 'plain' },
    encoder: plainEncoder,
    tmp: tmp('sw-tmp'),
    volsize: 1 << 20,
    hostname: 'host',
    localdir: Buffer.from('/src'),
    uploadConcurrency: 1,
    maxStaged: 2,
    jobs,
    xattrs: true,
    warn: (w) => warnings.push(w),
  };
}

// jobs 1: batches encoded on this thread; 2: on worker threads (the build's, see WorkerPool)
describe.each([1, 2])('SetWriter, jobs %i', (jobs) => {
  test('a set of several volumes: volumes, then the signature file, then the manifest (last), which lists every volume and file', async () => {
    const backend = new MemoryBackend();
    const { entries } = source(6, 400_000);
    const o = options(backend, jobs);
    const w = await SetWriter.open(o);
    for (const e of entries) await w.snapshot(e, true);
    await w.finish();
    const kinds = w.stored.map((n) => parseName(n)!.kind);
    expect(kinds.at(-1)).toBe('manifest');
    expect(kinds.at(-2)).toBe('signature');
    expect(kinds.slice(0, -2).every((k) => k === 'volume')).toBe(true);
    const volumes = w.stored.filter((n) => parseName(n)!.kind === 'volume');
    expect(volumes.length).toBeGreaterThanOrEqual(3);
    const m = parseManifest(await getBytes(backend, w.stored.at(-1)!), w.stored.at(-1)!, { withFiles: true });
    expect(m.volumes.map((v) => v.number)).toEqual(volumes.map((_, i) => i + 1));
    expect(m.files.map((f) => `${f.action} ${f.path}`)).toEqual(entries.slice(1).map((e) => `new ${e.index.join('/')}`));
    expect(w.stats).toMatchObject({ files: 6, bytesRead: 6 * 400_000, volumes: volumes.length });
    // every volume's temp file went with its upload; the run removes the rest with its temp dir
    expect(fs.readdirSync(o.tmp).sort()).toEqual(['filelist', 'plain-manifest']);
  });

  test('the stored volumes hold the data as tar entries in index order', async () => {
    const backend = new MemoryBackend();
    const { entries } = source(2, 70_000); // above 64 KiB: multivol chunks
    const w = await SetWriter.open(options(backend, jobs));
    for (const e of entries) await w.snapshot(e, true);
    await w.finish();
    const names: string[] = [];
    const tar = new TarReader([await getBytes(backend, w.stored[0]!)]);
    for (let h = await tar.next(); h; h = await tar.next()) {
      names.push(h.name.toString());
      await tar.readAll();
    }
    expect(names).toEqual(['snapshot/./', 'multivol_snapshot/f000/1', 'multivol_snapshot/f000/2', 'multivol_snapshot/f001/1', 'multivol_snapshot/f001/2']);
  });

  test('a failed upload fails the set: no signature file, no manifest; abort stops the rest', async () => {
    const backend = new FaultyBackend(new MemoryBackend(), [{ method: 'put', match: /\.vol2\./, kind: 'permanent' }]);
    const { entries } = source(6, 400_000);
    const w = await SetWriter.open(options(backend, jobs));
    await expect(
      (async () => {
        for (const e of entries) await w.snapshot(e, true);
        await w.finish();
      })(),
    ).rejects.toThrow(/uploading .*vol2/);
    await w.abort();
    w.dispose();
    const kinds = (await listAll(backend)).map((o) => parseName(o.name)!.kind);
    expect(kinds).toEqual(['volume']);
  });
});
