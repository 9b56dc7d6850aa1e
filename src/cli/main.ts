/**
 * CLI entry: runs one command and maps every error to one line on stderr and a
 * stable exit code (the only place that does).
 */
import { CommanderError } from 'commander';
import { EngineError, ExitCode } from '../errors.js';
import { processIo, type CliIo } from './io.js';
import { renderForCli } from './render-error.js';
import { createProgram } from './program.js';
import { LogTail, Notifier, notifyUrl } from './notify.js';

export async function main(argv: string[], outer: CliIo = processIo()): Promise<number> {
  let exit: number = ExitCode.OK;
  // what the run printed on stderr, for --notify-url's final ping
  const tail = new LogTail();
  const io: CliIo = { ...outer, stderr: (s) => (tail.add(s), outer.stderr(s)) };
  const program = createProgram(io, (c) => {
    exit = c;
  });
  if (argv.length === 0) {
    // a command is required: the help goes where errors go, and the run fails
    io.stderr(program.helpInformation());
    return ExitCode.USAGE;
  }
  let notifier: Notifier | undefined;
  program.hook('preAction', async (_program, action) => {
    const url = (action.opts() as { notifyUrl?: string }).notifyUrl;
    if (url === undefined) return;
    notifier = new Notifier(notifyUrl(url), io);
    await notifier.start();
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    exit = reportError(e, io);
  }
  await notifier?.finish(exit, tail.text());
  return exit;
}

export function reportError(e: unknown, io: CliIo): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return ExitCode.OK;
    return ExitCode.USAGE; // commander already printed the message
  }
  if (e instanceof EngineError) {
    io.stderr(`tapechain: ${renderForCli(e)}\n`);
    return e.exitCode;
  }
  const err = e as NodeJS.ErrnoException;
  io.stderr(`tapechain: internal error: ${err?.message ?? String(e)}\n`);
  if (io.env['TAPECHAIN_DEBUG']) io.stderr(`${err?.stack}\n`);
  return ExitCode.INTERNAL;
}
