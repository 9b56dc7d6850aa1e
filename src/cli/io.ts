import type { Writable } from 'node:stream';
import { CancelledError, ExitCode } from '../errors.js';

/** The CLI's view of the outside world, injectable so tests run commands in-process. */
export interface CliIo {
  stdout: (s: string) => void;
  /** Standard output for bytes (cat, export), with backpressure. */
  out?: Writable & { isTTY?: boolean };
  stderr: (s: string) => void;
  env: Record<string, string | undefined>;
  /** Whether stderr is a terminal (progress display). */
  isTTY?: boolean;
  /** Terminal width for the progress line. @default 80 */
  columns?: () => number;
  /** Aborted on SIGINT/SIGTERM: the run stops cleanly. */
  signal?: AbortSignal;
  /** Takes a figure of the run (for --metrics-file; see metrics.ts for the names). */
  figure?: (name: string, value: number) => void;
  /** Writes out what `stdout` still holds (at the end of a run). */
  flush?: () => void;
}

/**
 * Standard output in pieces of up to 64 KiB, never older than 50 ms: a listing of
 * thousands of lines costs thousands of write calls otherwise (a third of `diff`'s
 * time), and a line a long run prints still shows at once. stderr writes flush it
 * first, so the two streams keep their order on a terminal.
 */
function bufferedStdout(closed: () => boolean): { write: (s: string) => void; flush: () => void } {
  let pending: string[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length > 0 && !closed()) process.stdout.write(pending.join(''));
    pending = [];
    size = 0;
  };
  const write = (s: string) => {
    if (closed()) return;
    pending.push(s);
    size += s.length;
    if (size >= 1 << 16) flush();
    else timer ??= setTimeout(flush, 50).unref();
  };
  return { write, flush };
}

/**
 * The first SIGINT or SIGTERM aborts the run, which then stops cleanly (temp files
 * removed, locks released, what resume needs kept) and exits 130 or 143; a second one
 * while it does ends the process at once.
 */
function interruptSignal(ctl: AbortController): AbortSignal {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (ctl.signal.aborted) process.exit(sig === 'SIGINT' ? ExitCode.CANCELLED : ExitCode.TERMINATED);
      process.stderr.write(`\ntapechain: ${sig} received: stopping cleanly (again to stop at once)\n`);
      ctl.abort(new CancelledError(`interrupted by ${sig}`, { signal: sig }));
    });
  }
  return ctl.signal;
}

export const processIo = (): CliIo => {
  const ctl = new AbortController();
  let closed = false;
  // `tapechain ls | head`: a closed pipe ends the run quietly, as for any Unix tool —
  // through the abort, so its lock is released and its temp files removed.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    closed = true;
    ctl.abort(new CancelledError('standard output was closed', { signal: 'SIGPIPE' }));
  });
  const stdout = bufferedStdout(() => closed);
  return {
  stdout: stdout.write,
  flush: stdout.flush,
  out: process.stdout,
  stderr: (s) => {
    stdout.flush();
    process.stderr.write(s);
  },
  env: process.env,
  isTTY: process.stderr.isTTY === true,
  columns: () => process.stderr.columns || 80,
  signal: interruptSignal(ctl),
  };
};
