/**
 * The staging area of a restore, inside DEST (so moving staged entries into place is a
 * rename on one filesystem): `.tapechain-restore-<pid>-<random>/` holding `tree/`
 * (what the archive entries are applied to) and `trash/` (DEST entries the restore
 * replaced, kept until the restore has succeeded so a failure can put them back).
 *
 * A staging directory whose owner process is gone (killed restore) is tapechain's own
 * leftover: it is removed before a restore starts and does not make DEST "not empty".
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { DestinationError } from '../errors.js';
import { processAlive } from '../util/fs-facts.js';

const PREFIX = '.tapechain-restore-';
/** `<pid>-<hex>` since staging names carry their owner; bare `<hex>` from older versions. */
const NAME = /^\.tapechain-restore-(?:(\d+)-)?[0-9a-f]{12}$/;
const OWNER_FILE = 'owner.json';

export interface Staging {
  root: string;
  tree: string;
  trash: string;
}

/** Whether `name` in DEST is a staging directory whose restore is no longer running. */
async function isStale(dest: string, name: string): Promise<boolean> {
  const m = NAME.exec(name);
  if (!m) return false;
  let owner: { host?: string; pid?: number } = {};
  try {
    owner = JSON.parse(await fs.readFile(path.join(dest, name, OWNER_FILE), 'utf8')) as typeof owner;
  } catch {
    // killed before the owner file was written, or made by an older version
  }
  const pid = owner.pid ?? (m[1] === undefined ? undefined : Number(m[1]));
  if (owner.host !== undefined && owner.host !== hostname()) return false; // another host's: cannot tell
  if (pid === undefined) return true;
  return pid !== process.pid && !processAlive(pid);
}

/**
 * Removes a tree even where earlier restores left directories without write or search
 * permission (a restored 0555 or 0000 directory): such directories are opened up first.
 */
export async function removeTree(p: string | Buffer): Promise<void> {
  try {
    await fs.rm(p, { recursive: true, force: true });
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'ENOTEMPTY') throw e;
  }
  await openUp(typeof p === 'string' ? Buffer.from(p) : p);
  await fs.rm(p, { recursive: true, force: true });
}

async function openUp(dir: Buffer): Promise<void> {
  const st = await fs.lstat(dir).catch(() => null);
  if (!st?.isDirectory()) return;
  await fs.chmod(dir, 0o700).catch(() => undefined); // not ours: the rm that follows names it
  const names = (await fs.readdir(dir, { encoding: 'buffer' }).catch(() => [])) as Buffer[];
  for (const n of names) await openUp(Buffer.concat([dir, Buffer.from('/'), n]));
}

/** Removes the stale staging directories of earlier, killed restores; returns their names. */
export async function removeStaleStaging(dest: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dest);
  } catch {
    return []; // no DEST yet: nothing left over in it
  }
  const removed: string[] = [];
  for (const n of names) {
    if (!n.startsWith(PREFIX) || !(await isStale(dest, n))) continue;
    try {
      await removeTree(path.join(dest, n));
    } catch (e) {
      throw new DestinationError(`cannot remove the leftover of an interrupted restore: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { context: { path: path.join(dest, n) }, cause: e });
    }
    removed.push(n);
  }
  return removed;
}

/** Creates the staging directory for this process inside `dest`. */
export async function createStaging(dest: string): Promise<Staging> {
  const root = path.join(dest, `${PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
  await fs.mkdir(root, { mode: 0o700 });
  await fs.writeFile(path.join(root, OWNER_FILE), JSON.stringify({ host: hostname(), pid: process.pid, started: Math.floor(Date.now() / 1000) }), { mode: 0o600 });
  const staging = { root, tree: path.join(root, 'tree'), trash: path.join(root, 'trash') };
  await fs.mkdir(staging.tree, { mode: 0o700 });
  await fs.mkdir(staging.trash, { mode: 0o700 });
  return staging;
}

/** Whether a DEST entry name is a staging directory (this run's or another's). */
export function isStagingName(name: string): boolean {
  return NAME.test(name);
}
