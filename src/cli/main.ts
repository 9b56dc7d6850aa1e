/**
 * CLI entry: runs one command and maps every error to one line on stderr and a
 * stable exit code (the only place that does).
 */
import { CommanderError } from 'commander';
import { CancelledError, EngineError, ExitCode } from '../errors.js';
import { processIo, type CliIo } from './io.js';
import { renderForCli } from './render-error.js';
import { createProgram } from './program.js';
import { LogTail, Notifier, notifyUrl } from './notify.js';
import { writeRunMetrics } from './metrics.js';
import * as path from 'node:path';

export async function main(argv: string[], outer: CliIo = processIo()): Promise<number> {
  let exit: number = ExitCode.OK;
  // what the run printed on stderr, for --notify-url's final ping
  const tail = new LogTail();
  // the figures commands report, for --metrics-file
  const figures = new Map<string, number>();
  const io: CliIo = { ...outer, stderr: (s) => (tail.add(s), outer.stderr(s)), figure: (n, v) => figures.set(n, v) };
  const program = createProgram(io, (c) => {
    exit = c;
  });
  if (argv.length === 0) {
    // a command is required: the help goes where errors go, and the run fails
    io.stderr(program.helpInformation());
    return ExitCode.USAGE;
  }
  let notifier: Notifier | undefined;
  let metrics: { file: string; command: string; target: string; started: number } | undefined;
  program.hook('preAction', async (_program, action) => {
    const o = action.opts() as { notifyUrl?: string; metricsFile?: string };
    // the target is the last argument of every command that takes these options
    if (o.metricsFile !== undefined) metrics = { file: path.resolve(o.metricsFile), command: action.name(), target: action.args[action.args.length - 1] ?? '', started: Date.now() / 1000 };
    if (o.notifyUrl === undefined) return;
    notifier = new Notifier(notifyUrl(o.notifyUrl), io);
    await notifier.start();
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    exit = reportError(e, io);
  } finally {
    outer.flush?.();
  }
  if (metrics) {
    const m = metrics;
    // the metrics file is the monitor's view: it must not fail the run it describes
    await writeRunMetrics(m.file, { ...m, exit, ended: Date.now() / 1000, figures }).catch((e: unknown) => io.stderr(`warning: could not write the metrics file ${m.file}: ${(e as Error).message}\n`));
  }
  await notifier?.finish(exit, tail.text());
  return exit;
}

export function reportError(e: unknown, io: CliIo): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return ExitCode.OK;
    return ExitCode.USAGE; // commander already printed the message
  }
  if (e instanceof CancelledError && e.signal === 'SIGPIPE') return ExitCode.OK; // the reader has all it wanted
  if (e instanceof EngineError) {
    io.stderr(`tapechain: ${renderForCli(e)}\n`);
    return e.exitCode;
  }
  const err = e as NodeJS.ErrnoException;
  io.stderr(`tapechain: internal error: ${err?.message ?? String(e)}\n`);
  if (io.env['TAPECHAIN_DEBUG']) io.stderr(`${err?.stack}\n`);
  return ExitCode.INTERNAL;
}
