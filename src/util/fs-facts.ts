/** Small facts about the file system and processes that several layers ask for. */
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';

/** lstat, or null when nothing is there; other errors are thrown. */
export async function lstatOrNull(p: Buffer | string): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Whether a process with this pid runs on this host (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
