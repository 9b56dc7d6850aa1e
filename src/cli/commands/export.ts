import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { DestinationError, UsageError } from '../../errors.js';
import type { ReadOutOptions } from '../../restore/export.js';
import { bytes } from '../format.js';
import type { CliIo } from '../io.js';
import { addTimeOption, cacheFor, onPickedFor, storedPath, timeFrom, whileReading, type CommonFlags, addReadingOptions, TARGET_HELP } from '../common.js';
import { readingKeys, reportUnverified } from '../keys.js';

interface OutFlags extends CommonFlags {
  path?: string;
  output?: string;
}

/** The binary standard output; a closed pipe surfaces as the run's abort, not as its own error. */
function stdoutFor(io: CliIo, what: string): Writable {
  if (!io.out) throw new UsageError(`${what}: no standard output to write to`);
  io.flush?.(); // text written before comes first
  if (io.out.isTTY) throw new UsageError(`${what}: refusing to write binary data to a terminal; redirect it, or use -o FILE`);
  return io.out;
}

/** Runs `write` into FILE (through a temp name beside it, renamed when complete) or standard output. */
async function intoOutput(io: CliIo, target: string | undefined, what: string, write: (out: Writable) => Promise<void>): Promise<void> {
  try {
    if (target === undefined || target === '-') return await write(stdoutFor(io, what));
    const part = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(4).toString('hex')}.part`);
    const file = createWriteStream(part, { flags: 'wx', mode: 0o600 });
    let fileError: unknown;
    file.on('error', (e) => (fileError = e));
    try {
      await write(file);
      file.end();
      await finished(file);
      await fs.rename(part, target);
    } catch (e) {
      file.destroy();
      await fs.rm(part, { force: true });
      if (e === fileError) throw new DestinationError(`cannot write: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { context: { path: target }, cause: e });
      throw e;
    }
  } catch (e) {
    if (io.signal?.aborted) throw io.signal.reason;
    throw e;
  }
}

export function registerExport(program: Command, io: CliIo, setExit: (c: number) => void): void {
  const exp = program
    .command('export')
    .description('write a point in time as one plain pax tar stream (GNU tar and bsdtar extract it)')
    .argument('<target>', TARGET_HELP)
    .option('--path <rel>', 'only this file or directory (relative to the backed-up root), named as ls prints it')
    .option('-o, --output <file>', 'write to FILE (complete or not at all) instead of standard output ("-")');
  addTimeOption(exp, 'export the state');
  addReadingOptions(exp);
  exp.addHelpText(
    'after',
    `
Names are relative to the backed-up root. Memory stays bounded: files rebuilt from
deltas or split across volumes pass through a temp file of their size. Volumes are
checked as they stream; a damaged one ends the run with an error after what came
before it was written (with -o, no file is left).

Examples:
  PASSPHRASE=secret tapechain export /mnt/backup/home | tar -x -C /tmp/home
  PASSPHRASE=secret tapechain export --time 2026-11-01 --path me/docs -o docs.tar s3://bucket/home`,
  );
  exp.action((target: string, flags: OutFlags) =>
    readOut(target, flags, 'export', async (o, out) => {
      const { exportTar } = await import('../../restore/export.js'); // loaded when used (start-up time)
      const r = await exportTar({ ...o, ...(flags.path !== undefined ? { path: storedPath(flags.path, '--path') } : {}), onWarning: (m) => io.stderr(`warning: ${m}\n`) }, out);
      io.stderr(`Exported ${r.entries} entries, ${bytes(r.bytes)} of tar, from ${r.volumesRead} volume(s)\n`);
    }),
  );

  const cat = program
    .command('cat')
    .description('print one file as it was at a point in time, reading only the volumes that can hold it')
    .argument('<path>', 'the file, relative to the backed-up root, named as ls prints it')
    .argument('<target>', TARGET_HELP)
    .option('-o, --output <file>', 'write to FILE (complete or not at all) instead of standard output');
  addTimeOption(cat, 'print the file');
  addReadingOptions(cat);
  cat.addHelpText(
    'after',
    `
The content is checked as a restore checks it (volume hashes, MDC, deltas) before a
byte is written, so it needs temp space of the file's size.

Examples:
  PASSPHRASE=secret tapechain cat etc/fstab /mnt/backup/root
  PASSPHRASE=secret tapechain cat --time 3D home/me/notes.txt s3://bucket/home > notes-3-days-ago.txt`,
  );
  cat.action((file: string, target: string, flags: OutFlags) =>
    readOut(target, flags, 'cat', async (o, out) => {
      const { catFile } = await import('../../restore/cat.js'); // loaded when used (start-up time)
      await catFile({ ...o, path: storedPath(file, 'cat') }, out);
    }),
  );

  /** A run of cat or export: its keys and time resolved once, the target read under a shared lock, the bytes written to OUTPUT. */
  async function readOut(target: string, flags: OutFlags, what: 'cat' | 'export', run: (o: ReadOutOptions, out: Writable) => Promise<void>): Promise<void> {
    const time = timeFrom(flags);
    const cache = cacheFor(target, flags, io);
    const keys = await readingKeys(flags, io, undefined, cache);
    await whileReading(target, flags, io, what, async (backend) =>
      intoOutput(io, flags.output, what, (out) => run({ backend, keys, cache, ...(time !== undefined ? { time } : {}), onPicked: onPickedFor(io, flags, time), ...(io.signal ? { signal: io.signal } : {}) }, out)),
    );
    reportUnverified(keys, io, setExit);
  }
}
