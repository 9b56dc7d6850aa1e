/**
 * `export`: a point in time as one plain pax tar stream (what GNU tar and bsdtar
 * extract), written as it is read, memory bounded whatever the tree's size: the sets
 * of the chain are merged by index (chain-merge.ts); a snapshot whose size is in its
 * header streams straight into the tar, a file split over volumes or rebuilt from
 * deltas goes through a temp file of its size.
 *
 * A damaged volume is found when it is reached: the stream so far is written and the
 * error ends the run (the CLI removes a partial output file).
 */
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { IntegrityError, NotFoundError, withContext } from '../errors.js';
import { withTempDir } from '../util/temp-dir.js';
import { displayIndex, joinIndex, type Index } from '../volume/entry-name.js';
import type { LogicalEntry } from '../volume/set-reader.js';
import { BLOCK, encodeHeader, padding, type TarHeader } from '../volume/tar-header.js';
import { mergeSets, VersionFiles } from './chain-merge.js';
import { planRestore, type RestoreOptions } from './restore.js';

export type ReadOutOptions = Omit<RestoreOptions, 'dest' | 'force' | 'restoreOwnership' | 'uid' | 'numericOwner'>;

export interface ExportResult {
  entries: number;
  /** Bytes of the tar stream. */
  bytes: number;
  volumesRead: number;
}

/** A writable end with backpressure: each write waits until the stream takes more. */
export class Sink {
  bytes = 0;
  constructor(private readonly out: Writable) {}
  async write(b: Buffer): Promise<void> {
    this.bytes += b.length;
    if (this.out.write(b)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        this.out.off('drain', done);
        this.out.off('error', done);
        if (e) reject(e);
        else resolve();
      };
      this.out.on('drain', done);
      this.out.on('error', done);
    });
  }
  async writeFile(file: string): Promise<void> {
    for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) await this.write(c as Buffer);
  }
}

/** The tar header of an entry at its place in the export (names relative to the backup's root). */
function exportHeader(index: Index, h: TarHeader, size: number): TarHeader {
  const name = joinIndex(index);
  const { fileSize: _signatureOnly, ...rest } = h;
  return { ...rest, name: h.type === 'directory' ? Buffer.concat([name, Buffer.from('/')]) : name, size: h.type === 'file' ? size : 0 };
}

export async function exportTar(o: ReadOutOptions, out: Writable): Promise<ExportResult> {
  const plan = await planRestore(o);
  const sel = o.path ?? [];
  const sink = new Sink(out);
  let entries = 0;
  await withTempDir(o.tempDir, 'export', async (temp) => {
    const versions = new VersionFiles(temp);
    await mergeSets(plan, sel, o.signal, async (held) => {
      const newest = held[held.length - 1]!;
      if (newest.kind === 'deleted') return;
      try {
        await writeEntry(sink, versions, held);
      } catch (e) {
        throw withContext(e, { path: displayIndex(newest.index), file: newest.volume });
      }
      entries++;
    });
  });
  if (entries === 0 && sel.length > 0) throw new NotFoundError('not in the backup at that time', { context: { path: displayIndex(sel) }, code: 'PATH_NOT_FOUND' });
  // end of archive: two zero blocks, padded to tar's 10240-byte record
  await sink.write(Buffer.alloc(2 * BLOCK + ((10240 - ((sink.bytes + 2 * BLOCK) % 10240)) % 10240)));
  return { entries, bytes: sink.bytes, volumesRead: plan.volumes.reduce((a, v) => a + v.length, 0) };
}

/** One path's tar entry, from its entries in the sets holding it (oldest set first). */
async function writeEntry(sink: Sink, versions: VersionFiles, held: LogicalEntry[]): Promise<void> {
  const e = held[held.length - 1]!;
  if (e.kind === 'diff' || (e.header.type === 'file' && e.joined)) {
    const file = e.kind === 'diff' ? await versions.newest(held) : await versions.spool(e.data);
    const size = (await fs.stat(file)).size;
    await sink.write(encodeHeader(exportHeader(e.index, e.header, size)));
    await sink.writeFile(file);
    await sink.write(Buffer.alloc(padding(size)));
    await fs.rm(file);
    return;
  }
  const size = e.header.type === 'file' ? e.header.size : 0;
  await sink.write(encodeHeader(exportHeader(e.index, e.header, size)));
  if (size === 0) return;
  let n = 0;
  for await (const c of e.data) {
    n += c.length;
    await sink.write(c);
  }
  if (n !== size) throw new IntegrityError(`entry data is ${n} bytes, its header says ${size}`, { code: 'HASH_MISMATCH' });
  await sink.write(Buffer.alloc(padding(size)));
}
