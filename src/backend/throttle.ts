/**
 * Bandwidth limits (--limit-upload, --limit-download): every byte sent to or received
 * from the target passes one token bucket per direction, shared by all transfers at
 * once (parallel uploads, multipart parts, a retried part), so the limit holds for the
 * run as a whole, as restic's and rclone's do.
 */
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { BackendProperties, GetOptions, ObjectInfo, OpOptions, PutSource } from './backend.js';
import type { Backend } from './backend.js';
import { WrappedBackend } from './wrappers.js';

/** Bytes let through per step: small enough that the rate is even within a second. */
const STEP = 16 * 1024;

/** A rate in bytes per second, and when the bytes reserved so far have passed. */
export class RateBudget {
  #free = 0;
  constructor(readonly bytesPerSecond: number) {}

  /** Reserves `n` bytes; resolves in the milliseconds until they may pass (0: now). */
  reserve(n: number): number {
    const now = performance.now();
    const start = Math.max(now, this.#free);
    this.#free = start + (n * 1000) / this.bytesPerSecond;
    return start - now;
  }
}

/** Passes its input on no faster than the budget allows. */
export class Throttle extends Transform {
  readonly #budget: RateBudget;
  constructor(budget: RateBudget) {
    super();
    this.#budget = budget;
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.#pass(chunk).then(() => cb(), cb);
  }

  async #pass(chunk: Buffer): Promise<void> {
    for (let off = 0; off < chunk.length && !this.destroyed; off += STEP) {
      const piece = chunk.subarray(off, off + STEP);
      await waitFor(this.#budget.reserve(piece.length));
      this.push(piece);
    }
  }
}

/**
 * Waits `ms` by the clock the budget reserves with. A timer may fire a little early by
 * that clock (it counts from the event loop's cached time, in whole milliseconds), and a
 * limit must never be passed: what is left is waited for again.
 */
export async function waitFor(ms: number): Promise<void> {
  const until = performance.now() + ms;
  for (let left = ms; left > 0; left = until - performance.now()) await delay(Math.ceil(left));
}

/** `r` through a throttle; an error of either side ends both. */
export function throttled(r: Readable, budget: RateBudget): Readable {
  const t = new Throttle(budget);
  r.once('error', (e) => t.destroy(e));
  t.once('close', () => r.destroy());
  return r.pipe(t);
}

export interface RateLimits {
  /** Bytes per second to the target. */
  upload?: number;
  /** Bytes per second from the target. */
  download?: number;
}

/** A backend whose transfers keep to `limits` (stat, list and delete are not counted). */
export class ThrottledBackend extends WrappedBackend {
  readonly #up: RateBudget | undefined;
  readonly #down: RateBudget | undefined;

  constructor(inner: Backend, limits: RateLimits) {
    super(inner);
    this.#up = limits.upload ? new RateBudget(limits.upload) : undefined;
    this.#down = limits.download ? new RateBudget(limits.download) : undefined;
  }

  /** With a download limit, reads go through get() (the limited rate), never to a local target's files in place. */
  override get properties(): BackendProperties {
    return this.#down ? { ...this.inner.properties, readsLimited: true } : this.inner.properties;
  }

  put(name: string, source: PutSource, opts?: OpOptions): Promise<void> {
    const up = this.#up;
    if (!up) return this.inner.put(name, source, opts);
    // No `path`: a local target would link the file instead of sending its bytes.
    const { openRange } = source;
    return this.inner.put(
      name,
      {
        size: source.size,
        ...(source.retention ? { retention: source.retention } : {}),
        ...(source.growth ? { growth: source.growth } : {}),
        open: () => throttled(source.open(), up),
        ...(openRange ? { openRange: (start: number, end: number) => throttled(openRange.call(source, start, end), up) } : {}),
      },
      opts,
    );
  }

  async get(name: string, opts?: GetOptions): Promise<Readable> {
    const r = await this.inner.get(name, opts);
    return this.#down ? throttled(r, this.#down) : r;
  }

  stat(name: string, opts?: OpOptions): Promise<ObjectInfo> {
    return this.inner.stat(name, opts);
  }

  list(prefix?: string, opts?: OpOptions): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, opts);
  }

  delete(name: string, opts?: OpOptions): Promise<void> {
    return this.inner.delete(name, opts);
  }
}
