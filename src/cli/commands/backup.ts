import type { Command } from 'commander';
import { runBackup } from '../../backup/backup.js';
import { openBackend } from '../../backend/registry.js';
import { formatTimestamp } from '../../chain/time.js';
import { SymmetricEncryptor } from '../../crypto/encrypt.js';
import { ConfigError, ExitCode, UsageError } from '../../errors.js';
import { bytes } from '../format.js';
import type { CliIo } from '../io.js';
import { findPassphrase } from '../keys.js';

interface BackupFlags {
  encryption: boolean;
  passphraseFile?: string;
  volsize: string;
  compressLevel?: string;
}

export function registerBackup(program: Command, io: CliIo, setExit: (c: number) => void): void {
  program
    .command('backup')
    .description('back up SOURCE to TARGET (a full set on the first run)')
    .argument('<source>', 'directory to back up')
    .argument('<target>', 'target: a path or file:///abs/path')
    .option('--no-encryption', 'write gzip volumes and a plain manifest instead of OpenPGP')
    .option('--passphrase-file <file>', 'read the passphrase from FILE (else env PASSPHRASE or TAPECHAIN_PASSPHRASE)')
    .option('--volsize <MiB>', 'volume size in MiB', '200')
    .option('--compress-level <0-9>', 'zlib level inside the encryption (0: none)', '6')
    .addHelpText(
      'after',
      `
Examples:
  PASSPHRASE=secret tapechain backup /home/me file:///mnt/backup/home
  tapechain backup --no-encryption --volsize 50 ./src /srv/backups/src`,
    )
    .action(async (source: string, target: string, flags: BackupFlags) => {
      const volsize = Number(flags.volsize);
      if (!Number.isFinite(volsize) || volsize <= 0) throw new UsageError(`--volsize: expected a positive number of MiB, got "${flags.volsize}"`);
      const level = Number(flags.compressLevel ?? 6);
      if (!Number.isInteger(level) || level < 0 || level > 9) throw new UsageError(`--compress-level: expected 0-9, got "${flags.compressLevel}"`);
      let encryptor = null;
      if (flags.encryption) {
        const pass = findPassphrase(flags, io);
        if (!pass) throw new ConfigError('no passphrase: set PASSPHRASE or use --passphrase-file (or --no-encryption)');
        encryptor = new SymmetricEncryptor(pass);
      }
      const backend = openBackend(target);
      const r = await runBackup({
        source,
        backend,
        encryptor,
        compressLevel: level,
        volsize: Math.round(volsize * 1024 * 1024),
        onWarning: (w) => io.stderr(`warning: ${w.path.toString('utf8')}: ${w.message}\n`),
      });
      io.stdout(
        `${r.type === 'full' ? 'Full' : 'Incremental'} backup ${formatTimestamp(r.time)} to ${backend.describe()}\n` +
          `  files ${r.files}, read ${bytes(r.bytesRead)}, volumes ${r.volumes}, stored ${bytes(r.storedBytes)}` +
          (r.warnings ? `, ${r.warnings} warning(s)` : '') +
          '\n',
      );
      if (r.warnings) setExit(ExitCode.WARNINGS);
    });
}
