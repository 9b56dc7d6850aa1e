/**
 * Temp directories of one run: `tapechain-<kind>.<pid>.XXXXXX` under the temp parent,
 * mode 0700 (mkdtemp), so what a run stages there — encrypted volumes, plaintext
 * signatures — is readable by its user only. The name carries the owner's pid: a run
 * that died by kill -9 cannot remove its own, so the next run removes those whose
 * process is gone, and leftovers never pile up.
 */
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { processAlive } from './fs-facts.js';

const OWNED = /^tapechain-[a-z]+\.(\d+)\.[A-Za-z0-9]{6}$/;

export async function makeTempDir(parent: string, kind: string): Promise<string> {
  return fs.mkdtemp(path.join(parent, `tapechain-${kind}.${process.pid}.`));
}

/** Removes the temp directories of runs whose process is gone; returns how many. */
export async function removeStaleTempDirs(parent: string): Promise<number> {
  let names: string[];
  try {
    names = await fs.readdir(parent);
  } catch {
    return 0; // no temp parent yet: nothing left over
  }
  let removed = 0;
  for (const n of names) {
    const pid = Number(OWNED.exec(n)?.[1]);
    if (!pid || pid === process.pid || processAlive(pid)) continue;
    // another user's leftovers (a shared /tmp) cannot be removed by us: not our concern
    await fs.rm(path.join(parent, n), { recursive: true, force: true }).then(
      () => removed++,
      () => undefined,
    );
  }
  return removed;
}

/** Runs `f` with a fresh temp directory (what it holds may be plaintext), removed after. */
export async function withTempDir<T>(parent: string | undefined, kind: string, f: (dir: string) => Promise<T>): Promise<T> {
  const p = parent ?? tmpdir();
  await removeStaleTempDirs(p);
  const dir = await makeTempDir(p, kind);
  try {
    return await f(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
