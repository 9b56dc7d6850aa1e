/**
 * --notify-url: healthchecks.io-style pings around a run — `URL/start` when it begins,
 * `URL` when it ends with exit 0 or 1 (warnings: the log's last lines go along as the
 * body), `URL/fail` with them otherwise (errors, interrupts). Each ping has a short
 * timeout and a few tries; a ping that fails is a warning line, never the run's failure.
 */
import { UsageError } from '../errors.js';
import type { CliIo } from './io.js';

const TIMEOUT_MS = 10_000;
/** Waits before the second and third try. */
const BACKOFF_MS = [500, 1000];
/** Lines of the log sent with the final ping. */
const TAIL_LINES = 20;

/** The last lines written to stderr (progress-line redraws excluded). */
export class LogTail {
  readonly #lines: string[] = [];
  add(s: string): void {
    for (const line of s.split('\n')) {
      const text = line.slice(line.lastIndexOf('\r') + 1).trimEnd();
      if (!text) continue;
      this.#lines.push(text);
      if (this.#lines.length > TAIL_LINES) this.#lines.shift();
    }
  }
  text(): string {
    return this.#lines.join('\n');
  }
}

export function notifyUrl(value: string): URL {
  const u = URL.canParse(value) ? new URL(value) : undefined;
  if (u?.protocol !== 'http:' && u?.protocol !== 'https:') throw new UsageError(`--notify-url: expected an http:// or https:// URL, got "${value}"`, { code: 'BAD_OPTION' });
  return u;
}

export class Notifier {
  readonly #base: string;
  readonly #io: CliIo;

  constructor(url: URL, io: CliIo) {
    this.#base = url.href.replace(/\/+$/, '');
    this.#io = io;
  }

  start(): Promise<void> {
    return this.#ping('/start', '');
  }

  /** The run ended with `exit`; `log` is the tail of what it printed on stderr. */
  finish(exit: number, log: string): Promise<void> {
    return this.#ping(exit === 0 || exit === 1 ? '' : '/fail', log);
  }

  async #ping(suffix: string, body: string): Promise<void> {
    const url = this.#base + suffix;
    let why = '';
    for (let attempt = 0; attempt <= BACKOFF_MS.length; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, BACKOFF_MS[attempt - 1]));
      try {
        const r = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'text/plain; charset=utf-8' }, signal: AbortSignal.timeout(TIMEOUT_MS) });
        await r.arrayBuffer().catch(() => undefined); // the answer does not matter, only its status
        if (r.ok) return;
        why = `HTTP ${r.status}`;
      } catch (e) {
        why = (e as Error & { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      }
    }
    // a monitoring outage must not fail the backup it watches
    this.#io.stderr(`warning: could not ping ${url} (${why}; tried ${BACKOFF_MS.length + 1} times)\n`);
  }
}
