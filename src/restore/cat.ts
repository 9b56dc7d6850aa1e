/**
 * `cat`: one file's content at a point in time, read from only the volumes that can
 * hold it (and those its deltas need), verified as a restore is: the version is built
 * in a temp file, and written out only after every volume read has passed its checks.
 */
import * as fs from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { NotFoundError, UsageError, withContext } from '../errors.js';
import { compareIndex, displayIndex } from '../volume/entry-name.js';
import { escapeName } from '../util/escape-name.js';
import { mergeSets, VersionFiles } from './chain-merge.js';
import { withTempDir } from '../util/temp-dir.js';
import { Sink, type ReadOutOptions } from './export.js';
import { planRestore } from './restore.js';

export interface CatResult {
  size: number;
  volumesRead: number;
}

export async function catFile(o: ReadOutOptions & { path: NonNullable<ReadOutOptions['path']> }, out: Writable): Promise<CatResult> {
  if (o.path.length === 0) throw new UsageError('cat prints one file: give its path');
  const plan = await planRestore(o);
  const where = { path: displayIndex(o.path) };
  return withTempDir(o.tempDir, 'cat', async (temp) => {
    const versions = new VersionFiles(temp);
    let file: string | undefined;
    await mergeSets(plan, o.path, o.signal, async (held) => {
      const e = held[held.length - 1]!;
      if (e.kind === 'deleted' || compareIndex(e.index, o.path) !== 0) return;
      if (e.header.type !== 'file') {
        const what = e.header.type === 'symlink' ? `a symlink to ${escapeName(e.header.linkname)}` : `a ${e.header.type}`;
        throw new UsageError(`is ${what}, not a regular file: cat prints regular files (export --path writes any)`, { context: where });
      }
      try {
        file = e.kind === 'diff' ? await versions.newest(held) : await versions.spool(e.data);
      } catch (err) {
        throw withContext(err, { ...where, file: e.volume });
      }
    });
    if (file === undefined) throw new NotFoundError('not in the backup at that time', { context: where, code: 'PATH_NOT_FOUND' });
    const sink = new Sink(out);
    await sink.writeFile(file);
    return { size: (await fs.stat(file)).size, volumesRead: plan.volumes.reduce((a, v) => a + v.length, 0) };
  });
}
