/**
 * A byte buffer that moves to a temp file once it grows past a limit, so data whose
 * size must be known before it is written (a tar entry's body) never has to sit whole
 * in memory. Appends are synchronous (called from synchronous emitters).
 */
import { closeSync, createReadStream, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { localWriteError } from '../errors.js';

export class Spool {
  readonly #dir: string;
  readonly #limit: number;
  #mem: Buffer[] = [];
  #fd: number | undefined;
  #path: string | undefined;
  size = 0;

  /** @param limit bytes kept in memory before spilling to `dir`. @default 4 MiB */
  constructor(dir: string, limit = 4 << 20) {
    this.#dir = dir;
    this.#limit = limit;
  }

  append(b: Buffer): void {
    try {
      this.#append(b);
    } catch (e) {
      throw localWriteError(e, join(this.#dir, 'spool'));
    }
  }

  #append(b: Buffer): void {
    this.size += b.length;
    if (this.#fd === undefined && this.size > this.#limit) {
      this.#path = join(this.#dir, `spool-${randomBytes(6).toString('hex')}`);
      this.#fd = openSync(this.#path, 'wx', 0o600); // plaintext signatures
      for (const m of this.#mem) writeSync(this.#fd, m);
      this.#mem = [];
    }
    if (this.#fd !== undefined) writeSync(this.#fd, b);
    else this.#mem.push(b);
  }

  /** Streams the contents; the spool must not be appended to afterwards. */
  async *read(): AsyncGenerator<Buffer> {
    if (this.#fd === undefined) {
      yield* this.#mem;
      return;
    }
    closeSync(this.#fd);
    this.#fd = -1;
    for await (const c of createReadStream(this.#path!, { highWaterMark: 1 << 20 })) yield c as Buffer;
  }

  dispose(): void {
    if (this.#fd !== undefined && this.#fd >= 0) closeSync(this.#fd);
    if (this.#path) rmSync(this.#path, { force: true });
    this.#mem = [];
  }
}
