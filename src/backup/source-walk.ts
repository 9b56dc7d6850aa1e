/**
 * The source as a backup reads it: the walk (source/walk.ts) through the selection,
 * without the target when it lies inside the source, counted as it goes; and for an
 * incremental, merged with the chain's signatures into what changed (changes.ts).
 */
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { ReadBackend } from '../backend/backend.js';
import { chainSets } from '../chain/collection.js';
import type { ArchiveReader } from '../repo/archive.js';
import { chainState } from '../repo/signature-state.js';
import { walkTree, type WalkWarning } from '../source/walk.js';
import type { Index } from '../volume/entry-name.js';
import { diffTree, type Change } from './changes.js';
import type { ResolvedBackupOptions } from './options.js';
import type { SetPlan } from './plan.js';

export interface SourceCounts {
  /** Entries walked (after selection), and their regular files' bytes. */
  files: number;
  bytes: number;
}

/** What the set must store, in index order; `counts` grows as it is read. */
export async function sourceChanges(o: ResolvedBackupOptions, srcAbs: string, plan: SetPlan, archive: ArchiveReader, warn: (w: WalkWarning) => void): Promise<{ changes: AsyncIterable<Change>; counts: SourceCounts }> {
  const excluded = await targetInSource(o.backend, srcAbs);
  if (excluded) warn({ code: 'TARGET_IN_SOURCE', path: excluded, message: 'the target is inside the source: left out of the backup (else every run would store the one before)' });
  const selection = o.selection && !o.selection.empty ? o.selection : undefined;
  if (selection) selection.setRoot(await fs.lstat(srcAbs));
  const outside = excluded ? (p: Buffer) => !(p.equals(excluded) || (p.length > excluded.length && p[excluded.length] === 0x2f && p.subarray(0, excluded.length).equals(excluded))) : undefined;
  const include = selection || outside ? (p: Buffer, st: Stats) => (outside ? outside(p) : true) && (selection ? selection.includes(p.toString('utf8'), st) : true) : undefined;
  const counts: SourceCounts = { files: 0, bytes: 0 };
  // the first name of each file with several (in index order): the later ones link to it
  const firstNames = new Map<string, Index>();
  const walk = (async function* () {
    for await (const e of walkTree(Buffer.from(srcAbs), { onWarning: warn, ...(include ? { include } : {}) })) {
      counts.files++;
      if (e.stat.isFile()) counts.bytes += e.stat.size;
      if (e.stat.isFile() && e.stat.nlink > 1) {
        const inode = `${e.stat.dev}:${e.stat.ino}`;
        const first = firstNames.get(inode);
        if (first) e.linkTo = first;
        else firstNames.set(inode, e.index);
      }
      yield e;
    }
  })();
  const changes: AsyncIterable<Change> = plan.chain
    ? diffTree(walk, chainState(archive, chainSets(plan.chain)), { xattrs: o.xattrs })
    : (async function* () {
        for await (const entry of walk) yield { op: 'snapshot' as const, entry, isNew: true };
      })();
  return { changes, counts };
}

/** The local target's directory when it lies inside the source (or is it), else undefined. */
async function targetInSource(backend: ReadBackend, srcAbs: string): Promise<Buffer | undefined> {
  const dir = backend.properties.localPath;
  if (!dir) return undefined;
  const real = async (p: string): Promise<string> => {
    try {
      return await fs.realpath(p);
    } catch {
      // not there (yet): the target is created later; resolve what exists above it
      const parent = path.dirname(p);
      return parent === p ? p : path.join(await real(parent), path.basename(p));
    }
  };
  const [t, s] = await Promise.all([real(dir), real(srcAbs)]);
  const inside = t === s || t.startsWith(s.endsWith('/') ? s : s + '/');
  // The walk sees paths under srcAbs as given: map the real path back onto it.
  return inside ? Buffer.from(path.join(srcAbs, path.relative(s, t))) : undefined;
}

