import type { Command } from 'commander';
import { bytes } from '../format.js';
import { UsageError } from '../../errors.js';
import { addTimeOption, cacheFor, numberFlag, onPickedFor, storedPath, timeFrom, type CommonFlags, whileReading, addReadingOptions, TARGET_HELP } from '../common.js';
import { readingKeys, reportUnverified } from '../keys.js';
import type { CliIo } from '../io.js';

interface RestoreFlags extends CommonFlags {
  path?: string;
  sparse?: boolean;
  xattrs?: boolean;
  plan?: boolean;
  force?: boolean;
  numericOwner?: boolean;
  ownership: boolean;
  jobs?: string;
}

export function registerRestore(program: Command, io: CliIo, setExit: (c: number) => void): void {
  const cmd = program
    .command('restore')
    .description('restore the backup at TARGET into DEST (latest state, or at --time)')
    .argument('<target>', TARGET_HELP)
    .argument('[dest]', 'directory to restore into (must be empty unless --force)')
    .option('--plan', 'only show which files the restore would fetch, with sizes; write nothing')
    .option('--path <rel>', 'restore only this file or directory (relative to the backed-up root), at its place under DEST; named as ls prints it (\\n, \\xHH and \\\\ escapes)')
    .option('--force', 'restore into a non-empty DEST, merging: entries of the backup replace those of the same name, nothing else in DEST is touched')
    .option('--numeric-owner', 'use stored numeric uid/gid, not names')
    .option('--no-ownership', 'do not restore file ownership (default when not root)')
    .option('--no-sparse', 'write runs of zeros as data (default: aligned runs of 4 KiB or more become holes)')
    .option('--no-xattrs', 'do not restore extended attributes, POSIX ACLs and file capabilities')
    .option('--jobs <n>', 'volumes restored at once, each on a worker thread while this one puts the files in place (default: the CPUs available; 1: one after the other on this thread; a --path restore uses one)');
  addTimeOption(cmd, 'restore the state');
  addReadingOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  PASSPHRASE=secret tapechain restore file:///mnt/backup/home /tmp/home-restored
  PASSPHRASE=secret tapechain restore --time 3D /mnt/backup/home /tmp/home-3-days-ago
  PASSPHRASE=secret tapechain restore --path me/.ssh --time 2026-11-01 /mnt/backup/home /tmp/ssh`,
  );
  cmd.action(async (target: string, dest: string | undefined, flags: RestoreFlags) => {
    const sel = flags.path === undefined ? undefined : storedPath(flags.path, '--path');
    const time = timeFrom(flags);
    const jobs = flags.jobs !== undefined ? numberFlag('--jobs', flags.jobs) : undefined;
    const cache = cacheFor(target, flags, io);
    const keys = await readingKeys(flags, io, undefined, cache);
    const { planRestore, runRestore } = await import('../../restore/restore.js'); // loaded when used (start-up time)
    if (flags.plan) {
      const p = await whileReading(target, flags, io, 'restore', async (backend) => planRestore({
        backend,
        keys,
        cache,
        ...(time !== undefined ? { time } : {}),
        ...(sel ? { path: sel } : {}),
        onPicked: onPickedFor(io, flags, time),
      }));
      let total = 0;
      let n = 0;
      for (const v of p.volumes.flat()) {
        io.stdout(`${v.name}  ${bytes(v.size ?? 0)}\n`);
        total += v.size ?? 0;
        n++;
      }
      io.stdout(`${n} file(s), ${bytes(total)} to fetch from ${p.sets.length} set(s); nothing written\n`);
      reportUnverified(keys, io, setExit);
      return;
    }
    if (dest === undefined) throw new UsageError('restore: missing DEST (or use --plan)');
    const r = await whileReading(target, flags, io, 'restore', async (backend) => runRestore({
      backend,
      dest,
      keys,
      cache,
      ...(time !== undefined ? { time } : {}),
      ...(sel ? { path: sel } : {}),
      force: flags.force ?? false,
      ...(flags.ownership === false ? { restoreOwnership: false } : {}),
      numericOwner: flags.numericOwner ?? false,
      sparse: flags.sparse ?? true,
      xattrs: flags.xattrs ?? true,
      ...(jobs !== undefined ? { jobs } : {}),
      onPicked: onPickedFor(io, flags, time),
      onWarning: (m) => io.stderr(`warning: ${m}\n`),
      ...(io.signal ? { signal: io.signal } : {}),
    }));
    io.stdout(`Restored into ${dest}: ${r.files} file(s) written, ${r.patched} patched, from ${r.volumesRead} volume(s) of ${r.sets.length} set(s)\n`);
    reportUnverified(keys, io, setExit);
  });
}
