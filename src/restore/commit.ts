/**
 * Moves a finished staging tree into DEST by merging, as duplicity, GNU tar and restic
 * do: an entry of the backup replaces the DEST entry of the same name, directories that
 * exist on both sides are merged, and nothing else in DEST is touched.
 *
 * Every step is journalled so a failure part-way puts DEST back as it was: replaced
 * DEST entries are moved (never deleted) into the staging trash until the whole merge
 * has succeeded, added entries are taken out again, and directories that had to be
 * opened for writing get their mode back. A DEST symlink is an entry like any other: it
 * is replaced, never followed.
 */
import * as fs from 'node:fs/promises';
import { DestinationError } from '../errors.js';
import { removeTree } from './staging.js';
import { lstatOrNull } from '../util/fs-facts.js';

const SLASH = Buffer.from('/');

type Step =
  | { kind: 'added'; to: Buffer }
  | { kind: 'replaced'; to: Buffer; trash: Buffer }
  | { kind: 'opened'; dir: Buffer; mode: number }
  | { kind: 'touched'; dir: Buffer; atime: Date; mtime: Date };

function join(a: Buffer, n: Buffer): Buffer {
  return Buffer.concat([a, SLASH, n]);
}

export class Commit {
  readonly #trash: Buffer;
  readonly #journal: Step[] = [];
  #trashed = 0;

  constructor(trash: string) {
    this.#trash = Buffer.from(trash);
  }

  /** Merges the entries of staged directory `from` into DEST directory `to`. */
  async merge(from: Buffer, to: Buffer, skip: (name: Buffer) => boolean = () => false): Promise<void> {
    const names = ((await fs.readdir(from, { encoding: 'buffer' })) as Buffer[]).sort(Buffer.compare);
    if (names.length > 0) {
      const st = await fs.stat(to);
      this.#journal.push({ kind: 'touched', dir: to, atime: st.atime, mtime: st.mtime });
      await this.#makeWritable(to, st.mode & 0o7777);
    }
    for (const n of names) {
      if (skip(n)) continue;
      const src = join(from, n);
      const dst = join(to, n);
      const [s, d] = await Promise.all([fs.lstat(src), lstatOrNull(dst)]);
      if (s.isDirectory() && d?.isDirectory()) {
        await this.merge(src, dst);
        continue;
      }
      if (d) {
        const trash = join(this.#trash, Buffer.from(String(this.#trashed++)));
        await fs.rename(dst, trash);
        this.#journal.push({ kind: 'replaced', to: dst, trash });
      }
      await fs.rename(src, dst);
      this.#journal.push({ kind: 'added', to: dst });
    }
  }

  /** A DEST directory we must write into (e.g. restored 0555 before) is opened for us. */
  async #makeWritable(dir: Buffer, mode: number): Promise<void> {
    try {
      await fs.access(dir, fs.constants.W_OK | fs.constants.X_OK);
      return;
    } catch {
      // not writable: open it if it is ours
    }
    await fs.chmod(dir, mode | 0o700);
    this.#journal.push({ kind: 'opened', dir, mode });
  }

  /**
   * Gives directories opened for the merge their modes back, deepest first, except those
   * in `restored` (latin1 paths) whose metadata the backup has just set.
   */
  async closeOpened(restored: Set<string>): Promise<void> {
    const opened = this.#journal.filter((s) => s.kind === 'opened' && !restored.has(s.dir.toString('latin1')));
    // a directory gone since (removed by the restored tree) has no mode to put back
    for (const s of opened.reverse()) if (s.kind === 'opened') await fs.chmod(s.dir, s.mode).catch(() => undefined);
  }

  /**
   * Undoes the merge, newest step first: DEST is as it was. Failures to undo a step are
   * collected and named, since the user must then look at those paths.
   */
  async rollback(): Promise<string[]> {
    const failed: string[] = [];
    for (const s of this.#journal.reverse()) {
      try {
        if (s.kind === 'added') await removeTree(s.to);
        else if (s.kind === 'replaced') await fs.rename(s.trash, s.to);
        else if (s.kind === 'opened') await fs.chmod(s.dir, s.mode);
        else await fs.utimes(s.dir, s.atime, s.mtime);
      } catch {
        failed.push(s.kind === 'opened' || s.kind === 'touched' ? s.dir.toString() : s.to.toString());
      }
    }
    this.#journal.length = 0;
    return failed;
  }
}

/** An errno failure while writing DEST becomes a destination error naming the path. */
export function destinationFailure(e: unknown, where: string | undefined, doing?: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return e;
  const what = code === 'ENOSPC' || code === 'EDQUOT' ? 'no space left' : code === 'EXDEV' ? 'on another filesystem than DEST' : (e as Error).message.replace(/^[A-Z]+: /, '');
  return new DestinationError(`${doing ? `${doing}: ` : ''}${what} (${code})`, { ...(where !== undefined ? { context: { path: where } } : {}), cause: e });
}
