/**
 * Every set of a chain read at once, each by its own reader in index order, merged by
 * index (mergeByIndex, as chainState merges signature files): for each path, the entries of the sets
 * holding it, oldest set first — the newest decides what the path is at that point.
 * And the newest version of a file rebuilt in a temp file: the last snapshot with the
 * deltas after it applied, one file's size of temp space at a time.
 *
 * Volumes are checked (hashes, MDC) as they stream: a damaged one fails the merge when
 * it is reached.
 */
import { createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError } from '../errors.js';
import { applyDelta, fileBasis } from '../diff/patch.js';
import { displayIndex, isWithin, type Index } from '../volume/entry-name.js';
import { logicalEntries, rawEntries, type LogicalEntry } from '../volume/set-reader.js';
import { mergeByIndex } from '../repo/signature-state.js';
import type { RestorePlan } from './restore.js';

/**
 * Calls `each` for every path within `sel` (the root excluded) with its entries, in
 * index order. An entry whose data `each` does not read is skipped by its reader.
 */
export async function mergeSets(plan: RestorePlan, sel: Index, signal: AbortSignal | undefined, each: (held: LogicalEntry[]) => Promise<void>): Promise<void> {
  const { archive } = plan;
  const readers = plan.allVolumes.map((all, i) => {
    const chosen = new Set(plan.volumes[i]!.map((r) => r.name));
    return logicalEntries(rawEntries(all, archive.keys, archive.decodeOptions, { select: (r) => chosen.has(r.name), ...(signal ? { signal } : {}) }));
  });
  try {
    for await (const g of mergeByIndex(readers)) if (g.index.length > 0 && isWithin(g.index, sel)) await each(g.entries);
  } finally {
    await Promise.all(readers.map((r) => r.return(undefined).catch(() => undefined)));
  }
}

/** Temp files in one directory, each one version of one file. */
export class VersionFiles {
  #seq = 0;
  constructor(private readonly dir: string) {}

  async spool(data: AsyncIterable<Buffer>): Promise<string> {
    const file = path.join(this.dir, String(this.#seq++));
    await pipeline(Readable.from(data), createWriteStream(file, { mode: 0o600 }));
    return file;
  }

  /** The newest version of a file (`held`: its entries, oldest set first; the newest a snapshot or delta). */
  async newest(held: LogicalEntry[]): Promise<string> {
    let base = held.length - 1;
    while (base >= 0 && held[base]!.kind === 'diff') base--;
    const first = held[base];
    if (!first || first.kind !== 'snapshot' || first.header.type !== 'file') {
      throw new IntegrityError(`delta for ${displayIndex(held[held.length - 1]!.index)} has no earlier version to apply to (chain broken)`, { code: 'DIFF_WITHOUT_BASIS' });
    }
    let file = await this.spool(first.data);
    for (const d of held.slice(base + 1)) {
      const fh = await fs.open(file, 'r');
      try {
        const next = await this.spool(applyDelta(d.data, fileBasis(fh, (await fh.stat()).size)));
        await fs.rm(file);
        file = next;
      } finally {
        await fh.close();
      }
    }
    return file;
  }
}
