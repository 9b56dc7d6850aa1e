/** Builds the commander program; each command lives in commands/<name>.ts. */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { registerBackup } from './commands/backup.js';
import { registerLs } from './commands/ls.js';
import { registerRestore } from './commands/restore.js';
import { registerStatus } from './commands/status.js';
import { registerVerify } from './commands/verify.js';
import { registerPrune } from './commands/prune.js';
import { registerRepair } from './commands/repair.js';
import { registerFind } from './commands/find.js';
import { registerDiff } from './commands/diff.js';
import { registerExport } from './commands/export.js';
import { registerCopy } from './commands/copy.js';
import type { CliIo } from './io.js';

/** The version in package.json (dist/cli/ and src/cli/ are both two levels below it). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function createProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command();
  program
    .name('tapechain')
    .description('Encrypted full/incremental backup chains in duplicity format')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError(false);
  registerBackup(program, io, setExit);
  registerRestore(program, io, setExit);
  registerLs(program, io, setExit);
  registerStatus(program, io, setExit);
  registerVerify(program, io, setExit);
  registerPrune(program, io);
  registerRepair(program, io);
  registerFind(program, io, setExit);
  registerDiff(program, io, setExit);
  registerExport(program, io, setExit);
  registerCopy(program, io, setExit);
  return program;
}
