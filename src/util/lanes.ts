/**
 * `jobs` lanes for whole units of work (a set's volumes): this thread and `jobs` − 1
 * worker threads, or `jobs` workers when this thread has other work. Unit `i` goes to
 * lane `i % jobs`; this thread's lane is lane 0 and runs its units one after the other.
 * This thread is a lane when it can be: a worker's isolate costs ~1 s of CPU to start
 * and warm up (its JIT compiles the code again), as much as handling 100 MiB.
 */
import { WorkerPool } from './worker-pool.js';

export class Lanes<T, R> {
  readonly jobs: number;
  readonly #script: URL;
  readonly #here: ((task: T, signal?: AbortSignal) => Promise<R>) | undefined;
  #pool: WorkerPool<T, R> | undefined;
  /** This thread's lane: the unit it works on now. */
  #lane: Promise<unknown> = Promise.resolve();

  /** `here`: how this thread does a unit itself; absent, every lane is a worker. */
  constructor(script: URL, jobs: number, here?: (task: T, signal?: AbortSignal) => Promise<R>) {
    this.jobs = Math.max(1, jobs);
    this.#script = script;
    this.#here = here;
  }

  /** Whether the work can be spread: more than this thread's lane. */
  get parallel(): boolean {
    return this.jobs >= (this.#here ? 2 : 1);
  }

  /** Whether unit `i` is done on this thread. */
  isHere(i: number): boolean {
    return this.#here !== undefined && i % this.jobs === 0;
  }

  /** Does unit `i`: on this thread (after the unit it is on; `signal` stops it) or on the next free worker. */
  run(i: number, task: T, signal?: AbortSignal): Promise<R> {
    const here = this.#here;
    if (!here || !this.isHere(i)) {
      this.#pool ??= new WorkerPool<T, R>(this.#script, here ? this.jobs - 1 : this.jobs);
      return this.#pool.run(task);
    }
    const out = this.#lane.then(() => {
      signal?.throwIfAborted();
      return here(task, signal);
    });
    this.#lane = out.catch(() => undefined);
    return out;
  }

  /** Stops the workers: a unit under way on one fails as cancelled. */
  async close(): Promise<void> {
    await this.#pool?.close();
    this.#pool = undefined;
  }
}

/** `p`, or the signal's reason as soon as it is aborted (a unit under way is not waited for). */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}
