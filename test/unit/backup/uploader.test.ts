import { describe, expect, test } from '@jest/globals';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { PutSource } from '../../../src/backend/backend.js';
import { FaultyBackend } from '../../../src/backend/faulty.js';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { Uploader } from '../../../src/backup/uploader.js';
import { tempDirs } from '../../helpers/tmp.js';
import { turns } from '../../helpers/wait.js';

const tmp = tempDirs();

function file(dir: string, name: string, size = 1000): string {
  const p = join(dir, name);
  fs.writeFileSync(p, Buffer.alloc(size, name));
  return p;
}

/** A memory backend whose puts wait for a permit each: `release()` gives one. */
class GatedBackend extends MemoryBackend {
  #permits = 0;
  #waiting: (() => void)[] = [];
  override async put(name: string, source: PutSource): Promise<void> {
    if (this.#permits > 0) this.#permits--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    return super.put(name, source);
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#permits++;
  }
}

describe('Uploader', () => {
  test('stores in order with one upload at a time, removes each temp file once stored, tells onStored', async () => {
    const dir = tmp('up');
    const backend = new MemoryBackend();
    const told: string[] = [];
    const u = new Uploader(backend, { concurrency: 1, maxStaged: 3, onStored: (n) => told.push(n) });
    const paths = ['v1', 'v2', 'v3', 'v4'].map((n) => file(dir, n));
    for (const [i, p] of paths.entries()) await u.enqueue(`vol${i + 1}`, p, 1000);
    await u.drain();
    expect(told).toEqual(['vol1', 'vol2', 'vol3', 'vol4']);
    expect(u.stored).toEqual(told);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect((await backend.stat('vol3')).size).toBe(1000);
  });

  test('enqueue waits while maxStaged files are queued or in flight', async () => {
    const dir = tmp('up-staged');
    const backend = new GatedBackend();
    const u = new Uploader(backend, { concurrency: 1, maxStaged: 2 });
    await u.enqueue('a', file(dir, 'a'), 1000);
    await u.enqueue('b', file(dir, 'b'), 1000);
    let third = false;
    const c = u.enqueue('c', file(dir, 'c'), 1000).then(() => (third = true));
    await turns(20);
    expect(third).toBe(false); // two staged: the third waits
    backend.release();
    await c;
    expect(third).toBe(true);
    backend.release();
    backend.release();
    await u.drain();
    expect(u.stored).toEqual(['a', 'b', 'c']);
  });

  test('the first failure stops later uploads and is rethrown, naming the file', async () => {
    const dir = tmp('up-fail');
    const backend = new FaultyBackend(new MemoryBackend(), [{ method: 'put', match: /^b$/, kind: 'permanent' }]);
    const u = new Uploader(backend, { concurrency: 1, maxStaged: 1 });
    await u.enqueue('a', file(dir, 'a'), 1000);
    await u.enqueue('b', file(dir, 'b'), 1000);
    await expect(u.enqueue('c', file(dir, 'c'), 1000)).rejects.toThrow(/^uploading b: injected permanent fault/);
    await expect(u.drain()).rejects.toThrow(/uploading b/);
    expect(backend.calls.put).toEqual(['a', 'b']);
    expect(u.stored).toEqual(['a']);
  });
});
