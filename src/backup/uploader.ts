/**
 * Sends finished files (volumes, then the signature file, then the manifest) to the
 * backend in order while the next volume is being built. A p-queue runs the uploads
 * (concurrency 1 by default: strictly in order); `enqueue` waits while `maxStaged`
 * finished files are already queued or in flight, which caps temp-disk use.
 * Each temp file is removed once stored. The first failure stops further uploads and
 * is rethrown from `enqueue`/`drain`.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import PQueue from 'p-queue';
import type { Backend, PutSource, Retention } from '../backend/backend.js';
import type { GrowingFile } from './growing-file.js';
import { withContext } from '../errors.js';

export interface UploaderOptions {
  /** Parallel uploads (1: strictly in order). */
  concurrency: number;
  /** Finished files allowed to wait or be in flight. */
  maxStaged: number;
  signal?: AbortSignal;
  /** Called after each file is stored. @default nothing */
  onStored?: (name: string, size: number) => void;
  /** Every file stored gets this Object Lock retention. @default none */
  retention?: Retention;
}

export class Uploader {
  readonly #backend: Backend;
  readonly #queue: PQueue;
  readonly #maxStaged: number;
  readonly #o: UploaderOptions;
  #error: unknown;
  readonly stored: string[] = [];

  constructor(backend: Backend, o: UploaderOptions) {
    this.#backend = backend;
    this.#o = o;
    this.#queue = new PQueue({ concurrency: o.concurrency });
    this.#maxStaged = o.maxStaged;
  }

  #check(): void {
    if (this.#error) throw this.#error;
  }

  /** Queues a temp file for upload under `name`; waits while too many are staged. */
  async enqueue(name: string, path: string, size: number): Promise<void> {
    await this.#add(name, path, { size }, () => size);
  }

  /**
   * Queues a file still being written (a backend with `streamsParts`): its upload starts
   * in its turn and sends parts as the file grows. A cancelled file (`file.cancel`) is
   * not uploaded, and that is no failure.
   */
  async enqueueGrowing(name: string, file: GrowingFile): Promise<void> {
    await this.#add(name, file.path, { size: Number.NaN, growth: file }, () => file.final ?? 0, () => file.cancelled);
  }

  async #add(name: string, path: string, what: Pick<PutSource, 'size' | 'growth'>, size: () => number, cancelled = () => false): Promise<void> {
    this.#check();
    while (this.#queue.size + this.#queue.pending >= this.#maxStaged) {
      await new Promise<void>((resolve) => this.#queue.once('next', () => resolve()));
      this.#check();
    }
    this.#queue
      .add(async () => {
        if (this.#error) return;
        const opts = this.#o.signal ? { signal: this.#o.signal } : {};
        const source: PutSource = {
          ...what,
          ...(what.growth ? {} : { path }),
          ...(this.#o.retention ? { retention: this.#o.retention } : {}),
          open: () => createReadStream(path, { highWaterMark: 1 << 20 }),
          openRange: (start: number, end: number) => createReadStream(path, { start, end: end - 1, highWaterMark: 1 << 20 }),
        };
        await this.#backend.put(name, source, opts);
        await rm(path, { force: true });
        this.stored.push(name);
        this.#o.onStored?.(name, size());
      })
      .catch((e: unknown) => {
        if (cancelled()) return; // the file never came: nothing to store
        this.#error ??= withContext(e, { action: 'uploading', file: name });
      });
  }

  /** Waits for every queued upload; rethrows the first failure. */
  async drain(): Promise<void> {
    await this.#queue.onIdle();
    this.#check();
  }

  /** After a failure elsewhere: drop what is queued and wait for what is in flight. */
  async abort(): Promise<void> {
    this.#queue.clear();
    await this.#queue.onIdle().catch(() => undefined); // the failure that caused the abort is reported by the caller
  }
}
