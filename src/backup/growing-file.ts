/**
 * Files another thread is still writing (a backup's volumes on the worker threads),
 * followed so that they can be sent while they grow: a watch on their directory
 * (inotify) says when one changed, its size says how far it has come. Whoever learns
 * that a file is complete says so (`finish`), or that it will not come (`cancel`).
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Growth } from '../backend/backend.js';

interface Waiter {
  bytes: number;
  resolve: (g: { bytes: number; done: boolean }) => void;
  reject: (e: unknown) => void;
}

/** One followed file: its growth, as a put source's `growth`. */
export class GrowingFile implements Growth {
  readonly path: string;
  #size = 0;
  #final: number | undefined;
  #failure: { e: unknown } | undefined;
  #waiters: Waiter[] = [];

  constructor(path: string) {
    this.path = path;
  }

  until(bytes: number): Promise<{ bytes: number; done: boolean }> {
    if (this.#failure) return Promise.reject(this.#failure.e);
    if (this.#final !== undefined) return Promise.resolve({ bytes: this.#final, done: true });
    if (this.#size >= bytes) return Promise.resolve({ bytes: this.#size, done: false });
    return new Promise((resolve, reject) => this.#waiters.push({ bytes, resolve, reject }));
  }

  /** The file is this long now (or longer). */
  grew(size: number): void {
    if (size <= this.#size || this.#final !== undefined) return;
    this.#size = size;
    this.#waiters = this.#waiters.filter((w) => {
      if (w.bytes > size) return true;
      w.resolve({ bytes: size, done: false });
      return false;
    });
  }

  /** The file is complete, `size` bytes. */
  finish(size: number): void {
    this.#final = size;
    for (const w of this.#waiters.splice(0)) w.resolve({ bytes: size, done: true });
  }

  /** The complete file's size (once `finish`ed). */
  get final(): number | undefined {
    return this.#final;
  }

  get cancelled(): boolean {
    return this.#failure !== undefined;
  }

  /** The file will not be complete: whoever waits for it fails with `e`. */
  cancel(e: unknown): void {
    this.#failure ??= { e };
    for (const w of this.#waiters.splice(0)) w.reject(e);
  }
}

/** The followed files of one directory, through one watch. */
export class GrowingFiles {
  readonly #dir: string;
  readonly #files = new Map<string, GrowingFile>();
  #watcher: FSWatcher | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Follows `path` (a file in the directory, there yet or not). */
  follow(path: string): GrowingFile {
    if (dirname(path) !== this.#dir) throw new Error(`${path} is not in ${this.#dir}`);
    this.#watch();
    const f = new GrowingFile(path);
    this.#files.set(basename(path), f);
    void this.#measure(f); // written before the watch began
    return f;
  }

  /**
   * The watch, made once. Without one (inotify's limit reached) the followed files are
   * simply not seen to grow: their uploads start when they are complete.
   */
  #watch(): void {
    if (this.#watcher) return;
    try {
      this.#watcher = watch(this.#dir, (_event, name) => {
        const f = name ? this.#files.get(name.toString()) : undefined;
        if (f) void this.#measure(f);
      });
      this.#watcher.on('error', () => this.close());
    } catch {
      // no watch: see above
    }
  }

  /** Stops following `f`. */
  forget(f: GrowingFile): void {
    if (this.#files.get(basename(f.path)) === f) this.#files.delete(basename(f.path));
  }

  async #measure(f: GrowingFile): Promise<void> {
    const st = await stat(f.path).catch(() => undefined);
    if (st) f.grew(st.size);
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#files.clear();
  }
}
