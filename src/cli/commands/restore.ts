import type { Command } from 'commander';
import { openBackend } from '../../backend/registry.js';
import { parseUserTime } from '../../chain/time.js';
import { runRestore } from '../../restore/restore.js';
import { pickedLine } from '../format.js';
import type { CliIo } from '../io.js';
import { findPassphrase } from '../keys.js';

interface RestoreFlags {
  passphraseFile?: string;
  time?: string;
  force?: boolean;
  numericOwner?: boolean;
  ownership: boolean;
}

export function registerRestore(program: Command, io: CliIo): void {
  program
    .command('restore')
    .description('restore the backup at TARGET into DEST')
    .argument('<target>', 'target: a path or file:///abs/path')
    .argument('<dest>', 'directory to restore into (must be empty unless --force)')
    .option('--passphrase-file <file>', 'read the passphrase from FILE (else env PASSPHRASE or TAPECHAIN_PASSPHRASE)')
    .option('-t, --time <time>', 'restore the state at TIME (now, 3D, 2026-11-21, 20261121T232154Z, epoch seconds)')
    .option('--force', 'restore into a non-empty DEST, replacing entries of the same name')
    .option('--numeric-owner', 'use stored numeric uid/gid, not names')
    .option('--no-ownership', 'do not restore file ownership (default when not root)')
    .addHelpText(
      'after',
      `
Examples:
  PASSPHRASE=secret tapechain restore file:///mnt/backup/home /tmp/home-restored
  PASSPHRASE=secret tapechain restore --time 3D /mnt/backup/home /tmp/home-3-days-ago`,
    )
    .action(async (target: string, dest: string, flags: RestoreFlags) => {
      const pass = findPassphrase(flags, io);
      const r = await runRestore({
        backend: openBackend(target),
        dest,
        keys: pass ? { passphrase: pass } : {},
        ...(flags.time ? { time: parseUserTime(flags.time) } : {}),
        force: flags.force ?? false,
        ...(flags.ownership === false ? { restoreOwnership: false } : {}),
        numericOwner: flags.numericOwner ?? false,
        onPicked: (sets) => io.stderr(pickedLine(sets)),
        onWarning: (m) => io.stderr(`warning: ${m}\n`),
      });
      io.stdout(`Restored ${r.files} file(s) into ${dest}\n`);
    });
}
