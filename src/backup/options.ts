/**
 * A backup's options, defaulted and validated once: every part of the run reads the
 * resolved form, and the CLI only turns its strings into numbers.
 */
import { availableParallelism, hostname as osHostname, tmpdir } from 'node:os';
import { DEFAULT_COMPRESS_LEVEL, gpgEncoder, gzipEncoder, plainEncoder, type Encoder } from '../crypto/index.js';
import { UsageError } from '../errors.js';
import type { BackupOptions } from './backup.js';

/** Volume size cap. @see BackupOptions.volsize */
export const DEFAULT_VOLSIZE = 200 << 20;
/** The smallest volume: a volume holds at least one 64 KiB multivol chunk and its headers. */
export const MIN_VOLSIZE = 256 << 10;
export const DEFAULT_MAX_STAGED = 2;
export const DEFAULT_UPLOAD_CONCURRENCY = 1;

export type ResolvedBackupOptions = BackupOptions &
  Required<Pick<BackupOptions, 'compressLevel' | 'volsize' | 'tempDir' | 'now' | 'hostname' | 'maxStaged' | 'uploadConcurrency' | 'jobs' | 'xattrs'>> & {
    /** How stored files are encoded: OpenPGP, gzip, or plain. */
    encoder: Encoder;
  };

const badOption = (option: keyof BackupOptions, detail: string) => new UsageError(detail, { code: 'BAD_OPTION', context: { option } });

const wholeAtLeast = (option: keyof BackupOptions, v: number, min: number) => {
  if (!Number.isInteger(v) || v < min) throw badOption(option, `expected a whole number >= ${min}, got ${v}`);
};

const mib = (bytes: number) => `${+(bytes / (1 << 20)).toFixed(4)} MiB`;

export function resolveBackupOptions(o: BackupOptions): ResolvedBackupOptions {
  const compressLevel = o.compressLevel ?? DEFAULT_COMPRESS_LEVEL;
  if (!Number.isInteger(compressLevel) || compressLevel < 0 || compressLevel > 9) throw badOption('compressLevel', `expected 0-9, got ${compressLevel}`);
  const volsize = o.volsize ?? DEFAULT_VOLSIZE;
  if (!(volsize >= MIN_VOLSIZE)) throw badOption('volsize', `expected at least ${mib(MIN_VOLSIZE)}, got ${mib(volsize)}`);
  const maxStaged = o.maxStaged ?? DEFAULT_MAX_STAGED;
  const uploadConcurrency = o.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY;
  wholeAtLeast('maxStaged', maxStaged, 1);
  wholeAtLeast('uploadConcurrency', uploadConcurrency, 1);
  const jobs = o.jobs ?? availableParallelism();
  wholeAtLeast('jobs', jobs, 1);
  if (o.objectLock) {
    wholeAtLeast('objectLock', o.objectLock.days, 1);
    if (!o.backend.properties.objectLock) throw badOption('objectLock', `${o.backend.describe()} cannot keep objects locked (S3 Object Lock): only s3:// targets can`);
  }
  return {
    jobs,
    xattrs: true,
    ...o,
    compressLevel,
    volsize,
    maxStaged,
    uploadConcurrency,
    tempDir: o.tempDir ?? tmpdir(),
    now: o.now ?? (() => Date.now() / 1000),
    hostname: o.hostname ?? osHostname(),
    encoder: o.encryptor ? gpgEncoder(o.encryptor, compressLevel) : compressLevel > 0 ? gzipEncoder(compressLevel) : plainEncoder,
  };
}
