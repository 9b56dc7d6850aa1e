/**
 * Walks a source tree in duplicity's index order: depth-first pre-order, each
 * directory's children sorted by raw name bytes. Paths are Buffers throughout, so
 * names that are not valid UTF-8 survive. Memory holds one sorted name list per level
 * of the current path, not the tree.
 */
import type { Stats } from 'node:fs';
import { lstat as lstatCb, lstatSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Index } from '../volume/entry-name.js';
import { SmallReadPolicy } from './read-file.js';

export interface WalkEntry {
  index: Index;
  /** Absolute path bytes. */
  path: Buffer;
  stat: Stats;
  /** A regular file with more than one name in the tree: the first of them in index order (when this is a later one). */
  linkTo?: Index;
}

export interface WalkWarning {
  code: 'UNREADABLE_DIR' | 'UNREADABLE_FILE' | 'VANISHED' | 'SKIPPED_SOCKET' | 'CHANGED_WHILE_READ' | 'TARGET_IN_SOURCE' | 'CLOCK_SKEW' | 'CHECKPOINT_UNSAVED' | 'CACHE_UNWRITABLE' | 'XATTRS_UNREADABLE';
  path: Buffer;
  message: string;
}

export interface WalkOptions {
  /** Called for files that cannot be read or are skipped. @default ignore */
  onWarning?: (w: WalkWarning) => void;
  /** Return false to leave a path (and its subtree) out. @default everything included */
  include?: (path: Buffer, stat: Stats) => boolean | Promise<boolean>;
}

const SLASH = Buffer.from('/');
/** The callback lstat, promisified: lighter than fs/promises' (lstat + read of 22,700 small files: −15 % CPU). */
const lstat = promisify(lstatCb) as (p: Buffer) => Promise<Stats>;
const STAT_AHEAD = 16;
/**
 * lstat with a synchronous call while those come back fast (inodes in the cache: a few
 * µs, against a thread-pool round trip's futex wakes and context switches on both
 * sides), else on the thread pool, STAT_AHEAD at once — the policy small reads follow.
 */
const stats = new SmallReadPolicy();

/** The entry's lstat now, timed for the policy; undefined when the policy says thread pool. */
function statNow(p: Buffer): Stats | undefined {
  if (!stats.sync) return undefined;
  const t0 = performance.now();
  try {
    return lstatSync(p);
  } finally {
    stats.took(performance.now() - t0);
  }
}

export async function* walkTree(root: Buffer, opts: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  const warn = opts.onWarning ?? (() => undefined);
  const rootStat = await fs.lstat(root);
  yield { index: [], path: root, stat: rootStat };
  yield* walkDir(root, [], opts, warn);
}

async function* walkDir(dir: Buffer, index: Index, opts: WalkOptions, warn: (w: WalkWarning) => void): AsyncGenerator<WalkEntry> {
  let names: Buffer[];
  try {
    names = (await fs.readdir(dir, { encoding: 'buffer' })) as Buffer[];
  } catch (e) {
    warn({ code: 'UNREADABLE_DIR', path: dir, message: (e as Error).message });
    return;
  }
  names.sort(Buffer.compare);
  // on the thread pool, lstat is a round trip: STAT_AHEAD of them are kept in flight, in order
  const paths = names.map((name) => Buffer.concat([dir, SLASH, name]));
  const ahead = new Map<number, Promise<Stats>>();
  const statAt = (i: number) => {
    if (i < paths.length && !ahead.has(i)) {
      const st = lstat(paths[i]!);
      st.catch(() => undefined); // handled when its turn comes
      ahead.set(i, st);
    }
  };
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const p = paths[i]!;
    let st: Stats;
    try {
      const now = ahead.has(i) ? undefined : statNow(p);
      if (now) st = now;
      else {
        for (let k = i; k < i + STAT_AHEAD; k++) statAt(k);
        st = await ahead.get(i)!;
      }
    } catch (e) {
      warn({ code: 'VANISHED', path: p, message: (e as Error).message });
      continue;
    } finally {
      ahead.delete(i);
    }
    if (st.isSocket()) {
      warn({ code: 'SKIPPED_SOCKET', path: p, message: 'socket skipped (a socket cannot be backed up)' });
      continue;
    }
    const childIndex = [...index, name];
    if (opts.include && !(await opts.include(p, st))) continue;
    yield { index: childIndex, path: p, stat: st };
    if (st.isDirectory()) yield* walkDir(p, childIndex, opts, warn);
  }
}
