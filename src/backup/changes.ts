/**
 * What an incremental stores for each path: the walk of the source merged (in index
 * order) with the chain's combined signature state. Unchanged paths cost the walk's
 * one lstat (plus a readlink for symlinks); nothing is read.
 *
 * Equality is duplicity's (type, mode, uid, gid, whole-second mtime; symlink targets;
 * device numbers), plus a size check where the stored signature's length rules out
 * the current size, and — with xattrs on — the inode's link count and xattrs
 * (source/inode-state.ts: read again only where the ctime moved).
 */
import * as fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { blockSizeFor, signatureSize } from '../diff/signature.js';
import type { StateEntry } from '../repo/signature-state.js';
import { compareIndex, type Index } from '../volume/entry-name.js';
import { entryType, mtimeSeconds } from '../source/entry-meta.js';
import { inodeUnchanged } from '../source/inode-state.js';
import type { WalkEntry } from '../source/walk.js';

export type Change =
  | { op: 'snapshot'; entry: WalkEntry; isNew: boolean }
  | { op: 'diff'; entry: WalkEntry; old: StateEntry }
  | { op: 'deleted'; index: Index; old: StateEntry };

async function unchanged(e: WalkEntry, old: StateEntry, xattrs: boolean): Promise<boolean> {
  if (!(await sameAsStored(e, old))) return false;
  return !xattrs || (await inodeUnchanged(old.header.inode, e.path, e.stat));
}

async function sameAsStored(e: WalkEntry, old: StateEntry): Promise<boolean> {
  const st: Stats = e.stat;
  const h = old.header;
  const type = entryType(st);
  if (type !== h.type) return false;
  if (type === 'symlink') {
    try {
      return (await fs.readlink(e.path, { encoding: 'buffer' })).equals(h.linkname);
    } catch {
      return false;
    }
  }
  if ((st.mode & 0o7777) !== h.mode || st.uid !== h.uid || st.gid !== h.gid) return false;
  if (type === 'char' || type === 'block') return true; // device numbers are compared by the snapshot itself
  if (mtimeSeconds(st) !== h.mtime) return false;
  if (type === 'file' && old.kind === 'signature') {
    // the recorded size where tapechain wrote the set; else what the signature's length allows
    if (h.fileSize !== undefined ? h.fileSize !== st.size : h.size !== signatureSize(st.size, blockSizeFor(st.size))) return false;
  }
  return true;
}

/** Merges the source walk with the previous state into changes, in index order. */
export async function* diffTree(walk: AsyncIterable<WalkEntry>, state: AsyncIterable<StateEntry>, o: { xattrs: boolean }): AsyncGenerator<Change> {
  const wi = walk[Symbol.asyncIterator]();
  const si = state[Symbol.asyncIterator]();
  let w = (await wi.next()).value as WalkEntry | undefined;
  let s = (await si.next()).value as StateEntry | undefined;
  while (w || s) {
    const c = !w ? 1 : !s ? -1 : compareIndex(w.index, s.index);
    if (c < 0) {
      yield { op: 'snapshot', entry: w!, isNew: true };
      w = (await wi.next()).value;
    } else if (c > 0) {
      yield { op: 'deleted', index: s!.index, old: s! };
      s = (await si.next()).value;
    } else {
      if (!(await unchanged(w!, s!, o.xattrs))) {
        if (entryType(w!.stat) === 'file' && s!.kind === 'signature') yield { op: 'diff', entry: w!, old: s! };
        else yield { op: 'snapshot', entry: w!, isNew: false };
      }
      // The consumer has read the old signature (if it needed it) before we move on.
      w = (await wi.next()).value;
      s = (await si.next()).value;
    }
  }
}
