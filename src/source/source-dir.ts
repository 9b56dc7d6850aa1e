/** The source directory a backup or a comparison reads. */
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SourceError } from '../errors.js';

/** Fails with SourceError unless `source` is a readable directory. */
export async function checkSource(source: string): Promise<string> {
  const srcAbs = path.resolve(source);
  let rootStat: Stats;
  try {
    rootStat = await fs.stat(srcAbs);
  } catch (e) {
    throw new SourceError(`source ${source}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (e as Error).message}`, { cause: e });
  }
  if (!rootStat.isDirectory()) throw new SourceError(`source ${source}: not a directory`);
  return srcAbs;
}

/**
 * Whether two source paths as typed name the same directory: `/data/src`, `/data/src/`,
 * `src` and `.` are one source when they resolve (symlinks too) to the same place. A
 * relative path recorded by an earlier run is resolved against today's working
 * directory: the best that can be known of it; `last` is what the cache remembers of
 * the last run (the path as typed, and where it led).
 */
export async function sameSource(recorded: string, given: string, last?: { typed: string; real: string }): Promise<boolean> {
  if (path.normalize(recorded + '/') === path.normalize(given + '/')) return true;
  const real = (p: string) => fs.realpath(path.resolve(p)).catch(() => path.resolve(p));
  const then = last?.typed === recorded ? last.real : await real(recorded);
  return then === (await real(given));
}
