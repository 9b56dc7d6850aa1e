/**
 * Cross-cutting behaviour as backends with the same contract (restic's sema/retry,
 * kopia's retrying/throttling): bounded retries with exponential backoff and full
 * jitter for transient failures only, and a concurrency limit. A download that fails
 * in the middle goes on by a ranged GET from the first byte not yet handed on.
 */
import { Readable } from 'node:stream';
import { BackendError, CancelledError } from '../errors.js';
import type { Backend, GetOptions, ObjectInfo, OpOptions, PutSource, Retention } from './backend.js';

export interface RetryOptions {
  /** Attempts after the first. @default 5 */
  retries?: number;
  /** First backoff in ms. @default 500 */
  baseDelayMs?: number;
  /** Backoff cap in ms. @default 20000 */
  maxDelayMs?: number;
  /** Told about each retry (for progress output). @default nothing */
  onRetry?: (op: string, attempt: number, err: Error) => void;
  /** Randomness in [0, 1) for the jitter; tests fix it. @default Math.random */
  random?: () => number;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new CancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Base of the wrappers: the wrapped backend is `inner`; properties, describe and close pass through. */
export abstract class WrappedBackend implements Backend {
  /** The wrapped backend (for capabilities beyond the contract, e.g. multipart cleanup). */
  readonly inner: Backend;
  constructor(inner: Backend) {
    this.inner = inner;
  }
  get properties() {
    return this.inner.properties;
  }
  describe(): string {
    return this.inner.describe();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  async retention(name: string): Promise<Retention | undefined> {
    return this.inner.retention?.(name);
  }
  abstract put(name: string, source: PutSource, opts?: OpOptions): Promise<void>;
  abstract get(name: string, opts?: GetOptions): Promise<Readable>;
  abstract stat(name: string, opts?: OpOptions): Promise<ObjectInfo>;
  abstract list(prefix?: string, opts?: OpOptions): AsyncIterable<ObjectInfo>;
  abstract delete(name: string, opts?: OpOptions): Promise<void>;
}

/** Retries transient BackendErrors; everything else is passed through at once. */
export class RetryBackend extends WrappedBackend {
  readonly #o: Required<Omit<RetryOptions, 'onRetry'>> & Pick<RetryOptions, 'onRetry'>;

  constructor(inner: Backend, o: RetryOptions = {}) {
    super(inner);
    this.#o = { retries: 5, baseDelayMs: 500, maxDelayMs: 20000, random: Math.random, ...o };
  }

  async #retry<T>(op: string, signal: AbortSignal | undefined, f: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await f();
      } catch (e) {
        if (!(e instanceof BackendError) || e.kind !== 'transient' || attempt >= this.#o.retries) throw e;
        await this.#backoff(op, attempt, e, signal);
      }
    }
  }

  async #backoff(op: string, attempt: number, e: Error, signal: AbortSignal | undefined): Promise<void> {
    this.#o.onRetry?.(op, attempt + 1, e);
    // Full jitter: a random delay up to the exponential bound (AWS architecture blog).
    const bound = Math.min(this.#o.maxDelayMs, this.#o.baseDelayMs * 2 ** attempt);
    await sleep(Math.floor(this.#o.random() * bound), signal);
  }

  /**
   * The bytes of `first` (a GET of `name` with `opts`), and after a failure in the
   * middle, those of ranged GETs from the first byte not yet yielded. A failure of the
   * stream that is not the backend's word (a reset socket, a premature close) counts as
   * transient; a permanent or not-found error, or the caller's abort, ends it. The
   * retry budget is per failure in a row: bytes got since reset it.
   */
  async *#resumed(name: string, opts: GetOptions, first: Readable): AsyncGenerator<Buffer> {
    const start = opts.range?.start ?? 0;
    const end = opts.range?.end;
    let stream = first;
    let got = 0;
    for (let failures = 0; ; ) {
      const before = got;
      try {
        for await (const c of stream) {
          got += (c as Buffer).length;
          yield c as Buffer;
        }
        return;
      } catch (e) {
        if (got > before) failures = 0;
        const permanent = e instanceof BackendError ? e.kind !== 'transient' : e instanceof CancelledError || opts.signal?.aborted;
        if (permanent || failures >= this.#o.retries || !(e instanceof Error)) throw e;
        if (end !== undefined && start + got >= end) return; // every byte was there
        await this.#backoff(`get ${name} from byte ${start + got}`, failures++, e, opts.signal);
        const range = { start: start + got, ...(end !== undefined ? { end } : {}) };
        stream = await this.#retry(`get ${name}`, opts.signal, () => this.inner.get(name, { ...opts, range }));
      }
    }
  }

  put(name: string, source: PutSource, opts: OpOptions = {}): Promise<void> {
    return this.#retry(`put ${name}`, opts.signal, () => this.inner.put(name, source, opts));
  }
  async get(name: string, opts: GetOptions = {}): Promise<Readable> {
    const first = await this.#retry(`get ${name}`, opts.signal, () => this.inner.get(name, opts));
    return Readable.from(this.#resumed(name, opts, first), { objectMode: false, highWaterMark: 1 << 16 });
  }
  stat(name: string, opts: OpOptions = {}): Promise<ObjectInfo> {
    return this.#retry(`stat ${name}`, opts.signal, () => this.inner.stat(name, opts));
  }
  async *list(prefix = '', opts: OpOptions = {}): AsyncIterable<ObjectInfo> {
    // A listing is retried as a whole: collect it, then hand it out.
    const all = await this.#retry(prefix ? `list ${prefix}` : 'list', opts.signal, async () => {
      const out: ObjectInfo[] = [];
      for await (const o of this.inner.list(prefix, opts)) out.push(o);
      return out;
    });
    yield* all;
  }
  delete(name: string, opts: OpOptions = {}): Promise<void> {
    return this.#retry(`delete ${name}`, opts.signal, () => this.inner.delete(name, opts));
  }
}

/** Runs at most `limit` operations at once (streams returned by get are not counted). */
export class LimitBackend extends WrappedBackend {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(inner: Backend, limit = inner.properties.maxConnections) {
    super(inner);
    this.#free = Math.max(1, limit);
  }

  async #run<T>(f: () => Promise<T>): Promise<T> {
    if (this.#free === 0) await new Promise<void>((r) => this.#waiting.push(r));
    else this.#free--;
    try {
      return await f();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }

  put(name: string, source: PutSource, opts?: OpOptions): Promise<void> {
    return this.#run(() => this.inner.put(name, source, opts));
  }
  get(name: string, opts?: GetOptions): Promise<Readable> {
    return this.#run(() => this.inner.get(name, opts));
  }
  stat(name: string, opts?: OpOptions): Promise<ObjectInfo> {
    return this.#run(() => this.inner.stat(name, opts));
  }
  list(prefix?: string, opts?: OpOptions): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, opts);
  }
  delete(name: string, opts?: OpOptions): Promise<void> {
    return this.#run(() => this.inner.delete(name, opts));
  }
}

/** The innermost backend behind wrappers (each wrapper exposes `inner`). */
export function unwrap(b: Backend): Backend {
  let cur = b as Backend & { inner?: Backend };
  while (cur.inner) cur = cur.inner as Backend & { inner?: Backend };
  return cur;
}
