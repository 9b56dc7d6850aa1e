/**
 * The manifest's file list as the set is written: one record per regular file stored
 * (action NUL path NUL), appended synchronously to a file — the list of a large tree
 * never sits whole in memory — and counted as it grows, so the manifest is written in
 * one pass over it. A resumed run keeps the interrupted run's records (and counts them
 * once).
 */
import { createReadStream } from 'node:fs';
import type { FileChange } from '../chain/manifest.js';
import { joinIndex, type Index } from '../volume/entry-name.js';
import { SyncAppender } from './checkpoint.js';

/** One record of the list: action NUL path NUL. */
export function fileListRecord(action: FileChange['action'], index: Index): Buffer {
  return Buffer.concat([Buffer.from(`${action}\0`), joinIndex(index), Buffer.from([0])]);
}

export class FileList {
  readonly path: string;
  readonly #out: SyncAppender;
  #count = 0;

  private constructor(file: string, keep: number | undefined) {
    this.path = file;
    this.#out = new SyncAppender(file, keep);
  }

  /** A list at `file`: empty, or the first `keep` bytes of what is there. */
  static async open(file: string, keep?: number): Promise<FileList> {
    const l = new FileList(file, keep);
    if (keep) for await (const _ of l.entries()) l.#count++;
    return l;
  }

  add(action: FileChange['action'], index: Index): void {
    this.#out.append(fileListRecord(action, index));
    this.#count++;
  }

  /** `count` records made elsewhere (fileListRecord), as one piece. */
  addRecords(records: Buffer, count: number): void {
    this.#out.append(records);
    this.#count += count;
  }

  /** Records in the list. */
  get count(): number {
    return this.#count;
  }

  /** Bytes in the list (a checkpoint's mark). */
  get length(): number {
    return this.#out.length;
  }

  /** On disk, for a checkpoint or a reader. */
  sync(): void {
    this.#out.sync();
  }

  close(): void {
    this.#out.close();
  }

  /** The records, read back from the file. */
  async *entries(): AsyncGenerator<FileChange> {
    this.#out.flush();
    if (this.#out.length === 0) return;
    let rest = Buffer.alloc(0);
    for await (const c of createReadStream(this.path, { highWaterMark: 1 << 20, end: this.#out.length - 1 })) {
      const all = rest.length ? Buffer.concat([rest, c as Buffer]) : (c as Buffer);
      let pos = 0;
      for (;;) {
        const a = all.indexOf(0, pos);
        const b = a < 0 ? -1 : all.indexOf(0, a + 1);
        if (b < 0) break;
        yield { action: all.toString('latin1', pos, a) as FileChange['action'], path: all.subarray(a + 1, b) };
        pos = b + 1;
      }
      rest = Buffer.from(all.subarray(pos));
    }
  }
}
