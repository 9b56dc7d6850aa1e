/**
 * --compare SOURCE (duplicity's --compare-data): the archived state at a time,
 * restored into a temp directory, against the live tree: type, mode, owner (as root),
 * whole-second mtime, symlink target and content. Both trees are walked in index
 * order and merged, so memory does not grow with the tree.
 */
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { entryType, mtimeSeconds } from '../backup/entry-meta.js';
import { walkTree, type WalkEntry } from '../backup/walk.js';
import { compareIndex, displayIndex } from '../volume/entry-name.js';
import { runRestore, type RestoreOptions } from '../restore/restore.js';
import type { Problem } from './verify.js';

async function sameContent(a: Buffer, b: Buffer): Promise<boolean> {
  const ra = createReadStream(a, { highWaterMark: 1 << 16 })[Symbol.asyncIterator]();
  const rb = createReadStream(b, { highWaterMark: 1 << 16 })[Symbol.asyncIterator]();
  let ba: Buffer = Buffer.alloc(0);
  let bb: Buffer = Buffer.alloc(0);
  try {
    for (;;) {
      if (ba.length === 0) {
        const n = await ra.next();
        ba = n.done ? Buffer.alloc(0) : (n.value as Buffer);
        if (n.done && bb.length === 0) {
          const m = await rb.next();
          return m.done === true;
        }
      }
      if (bb.length === 0) {
        const n = await rb.next();
        if (n.done) return false;
        bb = n.value as Buffer;
      }
      if (ba.length === 0) return false;
      const k = Math.min(ba.length, bb.length);
      if (!ba.subarray(0, k).equals(bb.subarray(0, k))) return false;
      ba = ba.subarray(k);
      bb = bb.subarray(k);
    }
  } finally {
    await ra.return?.();
    await rb.return?.();
  }
}

async function differences(a: WalkEntry, b: WalkEntry, owners: boolean): Promise<string[]> {
  const out: string[] = [];
  const ta = entryType(a.stat);
  const tb = entryType(b.stat);
  if (ta !== tb) return [`type ${tb} in the backup, ${ta} in the source`];
  if (ta === 'symlink') {
    const la = await fs.readlink(a.path, { encoding: 'buffer' });
    const lb = await fs.readlink(b.path, { encoding: 'buffer' });
    if (!la.equals(lb)) out.push('symlink target differs');
    return out;
  }
  if ((a.stat.mode & 0o7777) !== (b.stat.mode & 0o7777)) out.push(`mode ${(b.stat.mode & 0o7777).toString(8)} in the backup, ${(a.stat.mode & 0o7777).toString(8)} in the source`);
  if (owners && (a.stat.uid !== b.stat.uid || a.stat.gid !== b.stat.gid)) out.push('owner differs');
  if (ta !== 'directory' && mtimeSeconds(a.stat) !== mtimeSeconds(b.stat)) out.push('mtime differs');
  if (ta === 'file' && (a.stat.size !== b.stat.size || !(await sameContent(a.path, b.path)))) out.push('content differs');
  return out;
}

export async function compareWithSource(source: string, restore: Omit<RestoreOptions, 'dest' | 'force'>, onProblem?: (p: Problem) => void): Promise<Problem[]> {
  const tmp = await fs.mkdtemp(path.join(restore.tempDir ?? tmpdir(), 'tapechain-compare-'));
  const problems: Problem[] = [];
  const report = (file: string, problem: string) => {
    const p = { file, problem };
    problems.push(p);
    onProblem?.(p);
  };
  try {
    const dest = path.join(tmp, 'restored');
    const owners = process.getuid?.() === 0;
    await runRestore({ ...restore, dest, restoreOwnership: owners });
    const wa = walkTree(Buffer.from(path.resolve(source)))[Symbol.asyncIterator]();
    const wb = walkTree(Buffer.from(dest))[Symbol.asyncIterator]();
    let a = (await wa.next()).value as WalkEntry | undefined;
    let b = (await wb.next()).value as WalkEntry | undefined;
    while (a || b) {
      const c = !a ? 1 : !b ? -1 : compareIndex(a.index, b.index);
      if (c < 0) {
        report(displayIndex(a!.index), 'in the source, not in the backup');
        a = (await wa.next()).value;
      } else if (c > 0) {
        report(displayIndex(b!.index), 'in the backup, not in the source');
        b = (await wb.next()).value;
      } else {
        if (a!.index.length > 0) for (const d of await differences(a!, b!, owners)) report(displayIndex(a!.index), d);
        a = (await wa.next()).value;
        b = (await wb.next()).value;
      }
    }
    return problems;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
