/**
 * A backup history with crafted set times (no sleeping): each step changes the source
 * tree, then backs it up through the API with the clock set to the step's time. Keeps
 * the described tree of every point, for restores at any of them.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { FileBackend } from '../../src/backend/file.js';
import { runBackup } from '../../src/backup/backup.js';
import { SymmetricEncryptor } from '../../src/crypto/encrypt.js';
import { ArchiveCache } from '../../src/repo/archive-cache.js';
import { describeTree } from './tree.js';

export const PASSPHRASE = 'pw';

export interface Step {
  /** The set's time (epoch seconds). */
  time: number;
  full?: boolean;
  /** Changes the source before the backup. */
  change?: (src: string) => void;
}

export interface Point {
  time: number;
  type: 'full' | 'inc';
  tree: Map<string, string>;
}

export function historyEnv(dir: string): Record<string, string> {
  return { PASSPHRASE, XDG_CACHE_HOME: join(dir, 'cache') };
}

/** Runs the steps against `target` (a local directory); returns every point made. */
export async function makeHistory(src: string, target: string, steps: Step[], cacheDir?: string): Promise<Point[]> {
  const points: Point[] = [];
  const key = Buffer.from(PASSPHRASE);
  for (const s of steps) {
    s.change?.(src);
    const r = await runBackup({
      source: src,
      backend: new FileBackend(target),
      encryptor: new SymmetricEncryptor(key, { codedCount: 96 }),
      keys: { passphrase: key },
      now: () => s.time,
      full: s.full ?? false,
      jobs: 1,
      ...(cacheDir ? { cache: new ArchiveCache(cacheDir) } : {}),
    });
    points.push({ time: s.time, type: r.type, tree: describeTree(src) });
  }
  return points;
}

/** A step's change: write (or rewrite) a file with text, mtime set to `time`. */
export function write(rel: string, text: string, time: number): (src: string) => void {
  return (src) => {
    fs.mkdirSync(join(src, rel, '..'), { recursive: true });
    fs.writeFileSync(join(src, rel), text);
    fs.utimesSync(join(src, rel), time, time);
  };
}
