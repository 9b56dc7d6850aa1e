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
