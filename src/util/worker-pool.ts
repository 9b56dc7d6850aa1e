/**
 * A few worker threads running one script, each doing one task at a time: the way the
 * engine spreads whole units of work (a backup's volumes) over the cores. Tasks and
 * results are small structured-clone messages; bulk data stays in the worker that
 * produces it (files in the temp directory). Results come back per task; the caller
 * orders them.
 *
 * The worker side is `serveTasks` (below), in the script the pool runs.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parentPort, Worker, type Transferable } from 'node:worker_threads';
import { CancelledError, errorFromWire, errorToWire, InternalError, type ErrorWire } from '../errors.js';

type FromWorker =
  | { type: 'done'; id: number; result: unknown }
  | { type: 'failed'; id: number; error: ErrorWire }
  | { type: 'progress'; id: number; data: unknown }
  | { type: 'ask'; id: number; data: unknown };

/** How a task talks to the thread that runs it while it runs. */
export interface TaskHooks {
  /** Told what the task reports on the way. */
  onProgress?: (data: unknown) => void;
  /** Answers what the task asks; the task waits for the answer (the way it is held back). */
  onAsk?: (data: unknown) => Promise<unknown>;
}

interface Job {
  id: number;
  task: unknown;
  transfer: Transferable[];
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
  hooks: TaskHooks;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  /** Told to stop its task: taken out of service, ended once the task has settled. */
  retiring?: { settled: Promise<void>; done: () => void };
}

/** How long a worker told to stop may take before it is terminated anyway. */
const STOP_GRACE_MS = 10_000;

/**
 * The script to run: beside this module when it runs built (dist/), else — the test
 * suite runs the TypeScript sources, which a worker thread cannot load — the same
 * module of the build (`npm test` builds first).
 */
export function workerScript(url: URL): URL {
  const file = fileURLToPath(url);
  if (existsSync(file)) return url;
  const built = file.replace(/([/\\])src([/\\])(?!.*[/\\]src[/\\])/, '$1dist$2');
  if (built !== file && existsSync(built)) return pathToFileURL(built);
  throw new InternalError(`worker script ${file} not found (not built?)`);
}

export class WorkerPool<T, R> {
  readonly #script: URL;
  readonly #size: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closed = false;

  constructor(script: URL, size: number) {
    this.#script = workerScript(script);
    this.#size = Math.max(1, size);
  }

  /** Runs `task` on the next free worker. */
  run(task: T, hooks: TaskHooks = {}, transfer: Transferable[] = []): Promise<R> {
    if (this.#closed) return Promise.reject(new CancelledError('the worker pool is closed'));
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, task, transfer, resolve: resolve as (r: unknown) => void, reject, hooks });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const slot = this.#slots.find((s) => !s.job && !s.retiring) ?? (this.#serving() < this.#size ? this.#spawn() : undefined);
      if (!slot) return;
      const job = this.#queue.shift()!;
      slot.job = job;
      slot.worker.postMessage({ id: job.id, task: job.task }, job.transfer);
      job.task = undefined; // sent: the worker has its copy
      job.transfer = [];
    }
  }

  /** Workers that take tasks (not the ones told to stop). */
  #serving(): number {
    return this.#slots.filter((s) => !s.retiring).length;
  }

  #answer(slot: Slot, job: Job, question: unknown): void {
    const ask = job.hooks.onAsk ?? (async () => undefined);
    ask(question).then(
      (answer) => slot.job === job && slot.worker.postMessage({ reply: job.id, answer }),
      // The task cannot go on: it fails with the reason, and its worker is told to stop.
      (e: unknown) => {
        if (slot.job !== job) return;
        job.reject(e instanceof Error ? e : new Error(String(e)));
        this.#retire(slot);
        this.#dispatch();
      },
    );
  }

  /**
   * Tells a busy worker to stop its task and ends the worker once the task has settled
   * (or after STOP_GRACE_MS). Not terminate() at once: a thread stopped in the middle of
   * making a zlib stream aborts the whole process as its environment is torn down
   * (node_zlib.cc: "close before init").
   */
  #retire(slot: Slot): Promise<void> {
    if (slot.retiring) return slot.retiring.settled;
    let done!: () => void;
    const settled = new Promise<void>((r) => (done = r));
    slot.retiring = { settled, done };
    const job = slot.job;
    if (job) slot.worker.postMessage({ cancel: job.id });
    else done();
    const grace = setTimeout(done, STOP_GRACE_MS);
    grace.unref();
    return settled.then(() => {
      clearTimeout(grace);
      return slot.worker.terminate().then(() => undefined);
    });
  }

  #spawn(): Slot {
    const slot: Slot = { worker: new Worker(this.#script), job: undefined };
    slot.worker.on('message', (m: FromWorker) => {
      const job = slot.job;
      if (!job || job.id !== m.id) return;
      if (m.type === 'progress') return job.hooks.onProgress?.(m.data);
      if (m.type === 'ask') {
        if (!slot.retiring) this.#answer(slot, job, m.data);
        return;
      }
      slot.job = undefined;
      if (slot.retiring) return slot.retiring.done(); // its task was failed already
      if (m.type === 'done') job.resolve(m.result);
      else job.reject(errorFromWire(m.error));
      this.#dispatch();
    });
    // A worker that dies (an uncaught error, out of memory) fails its task; the slot goes.
    const lost = (why: string) => {
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots.splice(i, 1);
      const job = slot.job;
      slot.job = undefined;
      slot.retiring?.done();
      if (job && !slot.retiring) job.reject(this.#closed ? new CancelledError('the worker pool was closed') : new InternalError(`a worker thread ${why}`));
      if (!this.#closed) this.#dispatch();
    };
    slot.worker.on('error', (e) => lost(`failed: ${e.message}`));
    slot.worker.on('exit', (code) => lost(`exited (code ${code})`));
    this.#slots.push(slot);
    return slot;
  }

  /** Stops every worker; tasks queued or running fail as cancelled (at once), the workers end once their tasks have stopped. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new CancelledError('the worker pool was closed'));
    for (const s of this.#slots) if (s.job && !s.retiring) s.job.reject(new CancelledError('the worker pool was closed'));
    await Promise.all(this.#slots.map((s) => this.#retire(s)));
  }
}

/** What a task handler returns: its result, and buffers to move rather than copy. */
export interface TaskOutcome<R> {
  result: R;
  transfer?: Transferable[];
}

/** What a task can do towards the thread that runs it. */
export interface TaskContext {
  progress(data: unknown): void;
  /** Asks and waits for the answer (fails once the task is told to stop). */
  ask(data: unknown): Promise<unknown>;
  /** Aborted when the pool tells the task to stop: the task should end soon after. */
  signal: AbortSignal;
}

/** The worker side: runs `handler` for each task the pool sends, one at a time. */
export function serveTasks<T, R>(handler: (task: T, ctx: TaskContext) => Promise<TaskOutcome<R>>): void {
  const port = parentPort;
  if (!port) throw new InternalError('serveTasks runs in a worker thread');
  let answer: { resolve: (a: unknown) => void; reject: (e: unknown) => void } | undefined;
  let running: { id: number; stop: AbortController } | undefined;
  port.on('message', (m: { id: number; task: T } | { reply: number; answer: unknown } | { cancel: number }) => {
    if ('reply' in m) {
      const a = answer;
      answer = undefined;
      a?.resolve(m.answer);
      return;
    }
    if ('cancel' in m) {
      if (running?.id !== m.cancel) return;
      running.stop.abort(new CancelledError('the task was stopped'));
      answer?.reject(running.stop.signal.reason);
      answer = undefined;
      return;
    }
    const stop = new AbortController();
    running = { id: m.id, stop };
    const ctx: TaskContext = {
      progress: (data) => port.postMessage({ type: 'progress', id: m.id, data }),
      ask: (data) =>
        new Promise((resolve, reject) => {
          if (stop.signal.aborted) return reject(stop.signal.reason);
          answer = { resolve, reject };
          port.postMessage({ type: 'ask', id: m.id, data });
        }),
      signal: stop.signal,
    };
    handler(m.task, ctx).then(
      (out) => port.postMessage({ type: 'done', id: m.id, result: out.result }, out.transfer ?? []),
      (e: unknown) => port.postMessage({ type: 'failed', id: m.id, error: errorToWire(e) }),
    );
  });
}
