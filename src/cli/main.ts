/**
 * CLI entry: runs one command and maps every error to one line on stderr and a
 * stable exit code (the only place that does).
 */
import { CommanderError } from 'commander';
import { EngineError, ExitCode } from '../errors.js';
import { processIo, type CliIo } from './io.js';
import { renderForCli } from './render-error.js';
import { createProgram } from './program.js';

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  let exit: number = ExitCode.OK;
  const program = createProgram(io, (c) => {
    exit = c;
  });
  if (argv.length === 0) {
    // a command is required: the help goes where errors go, and the run fails
    io.stderr(program.helpInformation());
    return ExitCode.USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exit;
  } catch (e) {
    return reportError(e, io);
  }
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
