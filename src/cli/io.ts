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
  return {
  stdout: (s) => (closed ? undefined : process.stdout.write(s)),
  out: process.stdout,
  stderr: (s) => process.stderr.write(s),
  env: process.env,
  isTTY: process.stderr.isTTY === true,
  columns: () => process.stderr.columns || 80,
  signal: interruptSignal(ctl),
  };
};
