/** Options and helpers shared by several commands. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import * as path from 'node:path';
import { ArchiveCache, cacheName, defaultArchiveDir } from '../repo/archive-cache.js';
import type { BackupSet } from '../chain/collection.js';
import { describeTime, parseInterval, parseUserTime } from '../chain/time.js';
import { pickedLine } from './format.js';
import { acquireLock, type LockedOperation, type ReadingOperation } from '../repo/lock.js';
import { NotFoundError, UsageError } from '../errors.js';
import { readOnly, type Backend, type ReadBackend } from '../backend/backend.js';
import { openBackend } from '../backend/registry.js';
import type { CliIo } from './io.js';
import type { KeyFlags } from './keys.js';
import { unescapeName } from '../util/escape-name.js';
import { pathToIndex, type Index } from '../volume/entry-name.js';

export interface CommonFlags extends KeyFlags {
  archiveDir?: string;
  lockStaleAfter?: string;
  time?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3VirtualHost?: boolean;
  limitUpload?: string;
  limitDownload?: string;
}

/** Options of S3 targets (`s3://bucket/prefix`); credentials come from the AWS chain. */
export function addTargetOptions(cmd: Command): Command {
  return cmd
    .option('--s3-endpoint <url>', 'S3-compatible endpoint (B2, Ceph, MinIO…); implies path-style addressing')
    .option('--s3-region <region>', 'S3 region (default: AWS_REGION, else us-east-1)')
    .option('--s3-virtual-host', 'virtual-host style addressing even with --s3-endpoint')
    .option('--limit-upload <KiB/s>', 'send to the target at most this many KiB per second (all transfers together)')
    .option('--limit-download <KiB/s>', 'receive from the target at most this many KiB per second');
}

/** A --limit-* rate in bytes per second, when given. */
function rateFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !(n > 0) || !Number.isFinite(n)) throw new UsageError(`${flag}: expected KiB per second (a number above 0), got "${value}"`, { code: 'BAD_OPTION' });
  return Math.round(n * 1024);
}

/** Opens the target with the command's S3 options; retries are reported on stderr. */
export function backendFor(target: string, flags: CommonFlags, io: CliIo): Promise<Backend> {
  const env = io.env;
  const upload = rateFlag('--limit-upload', flags.limitUpload);
  const download = rateFlag('--limit-download', flags.limitDownload);
  const region = flags.s3Region ?? env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'];
  const keyId = env['AWS_ACCESS_KEY_ID'];
  const secret = env['AWS_SECRET_ACCESS_KEY'];
  return openBackend(target, {
    s3: {
      ...(flags.s3Endpoint ? { endpoint: flags.s3Endpoint } : {}),
      ...(region ? { region } : {}),
      // Keys in the environment win; otherwise the AWS default chain (profiles, IMDS).
      ...(keyId && secret ? { credentials: { accessKeyId: keyId, secretAccessKey: secret, ...(env['AWS_SESSION_TOKEN'] ? { sessionToken: env['AWS_SESSION_TOKEN'] } : {}) } } : {}),
      ...(flags.s3VirtualHost ? { virtualHost: true } : {}),
    },
    retry: { onRetry: (op, attempt, err) => io.stderr(`retrying ${op} (attempt ${attempt + 1}): ${err.message}\n`) },
    ...(upload || download ? { limits: { ...(upload ? { upload } : {}), ...(download ? { download } : {}) } } : {}),
  });
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Options that read archives: passphrase, secret key, verification keys. */
export function addReadKeyOptions(cmd: Command): Command {
  return cmd
    .option('--passphrase-file <file>', 'passphrase from FILE (else env PASSPHRASE or TAPECHAIN_PASSPHRASE); also unlocks --decrypt-key')
    .option('--decrypt-key <file>', 'armored secret key for chains encrypted to a public key')
    .option('--sign-key <file>', 'require every file to be signed by this key (armored, public or secret)')
    .option('--public-key <file>', 'accept signatures by this armored public key and require them (repeatable)', collect)
    .option('--require-signatures', 'fail on a file that is not signed, or signed by a key that cannot be checked (no key given or pinned)');
}

export function addNotifyOption(cmd: Command): Command {
  return cmd.option('--notify-url <url>', 'ping URL/start when the run begins, URL when it succeeds, URL/fail (with the log\'s last lines) when it fails (healthchecks.io style)');
}

export function addMetricsOption(cmd: Command): Command {
  return cmd.option('--metrics-file <path>', 'write the run\'s figures into PATH as a Prometheus textfile (node_exporter\'s textfile collector), merged with what other runs wrote there');
}

/** The `<target>` argument's help, the same for every command. */
/** A number flag as typed; its range is the engine's to check (it resolves its options once). */
export function numberFlag(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag}: expected a number, got "${value}"`);
  return n;
}

export const TARGET_HELP = 'target: a path, file:///abs/path or s3://bucket/prefix';

/** What every command that reads a chain takes: the reading keys, the cache, the target's options. */
export function addReadingOptions(cmd: Command): Command {
  return addTargetOptions(addCacheOption(addReadKeyOptions(cmd)));
}

export function addCacheOption(cmd: Command): Command {
  return cmd.option('--archive-dir <dir>', 'local cache of manifests and signatures (default: $XDG_CACHE_HOME/tapechain)');
}

export function addTimeOption(cmd: Command, what: string): Command {
  return cmd
    .option('-t, --time <time>', `${what} at TIME: now, epoch seconds, 20261121T232154Z, 2026-11-21[T10:00:00[+01:00]], or an interval ago (3D, 2W, 1h30m)`)
    .option('--strict-time', 'fail (exit 4) when no backup is as old as --time, instead of using the oldest');
}

/**
 * What the CLI says when the sets for a time are picked: the set used, and a warning
 * (an error with --strict-time) when the time is before the first backup, since the
 * oldest set then stands in for a state that was never backed up.
 */
export function onPickedFor(io: CliIo, flags: CommonFlags & { strictTime?: boolean }, time: number | undefined): (sets: BackupSet[]) => void {
  return (sets) => {
    const first = sets[0]!;
    if (time !== undefined && time < first.end) {
      const what = `no backup is as old as ${describeTime(time)}: the oldest is ${describeTime(first.end)}`;
      if (flags.strictTime) throw new NotFoundError(`${what} (--strict-time)`, { code: 'NO_SET_AT_TIME' });
      io.stderr(`warning: ${what}; using it\n`);
    }
    io.stderr(pickedLine(sets));
  };
}

export { collect };

/** The cache for a target, keyed by the target string as typed (duplicity's rule). */
export function cacheFor(target: string, flags: CommonFlags, io: CliIo): ArchiveCache {
  const dir = flags.archiveDir ?? defaultArchiveDir(io.env);
  return new ArchiveCache(path.join(dir, cacheName(target)));
}

export function timeFrom(flags: CommonFlags): number | undefined {
  return flags.time === undefined ? undefined : parseUserTime(flags.time);
}

/** `--lock-stale-after AGE` on the commands that write to a target. */
export function addLockOption(cmd: Command): Command {
  return cmd.option('--lock-stale-after <age>', 'break a lock older than AGE (s m h D W M Y)', '24h');
}

/** Runs `f` holding the lock `operation` takes on the target (repo/lock.ts). */
export async function withLock<T>(backend: Backend, cache: ArchiveCache | undefined, operation: LockedOperation, flags: { lockStaleAfter?: string; appendOnly?: boolean }, io: CliIo, f: () => Promise<T>): Promise<T> {
  const staleAfter = parseInterval(flags.lockStaleAfter ?? '24h');
  if (staleAfter === undefined) throw new UsageError(`--lock-stale-after: expected an interval such as 24h or 2D, got "${flags.lockStaleAfter}"`);
  const fresh = cache !== undefined && !existsSync(cache.dir);
  const lock = await acquireLock(backend, cache?.dir, { operation, staleAfter, appendOnly: flags.appendOnly ?? false, onWarning: (m) => io.stderr(`warning: ${m}\n`) });
  try {
    return await f();
  } finally {
    await lock.release();
    // A run refused before it stored anything leaves no empty cache folder behind.
    if (fresh) await rmdir(cache.dir).catch(() => undefined); // not empty after all: the run stored something
  }
}

/** Runs `f` on a read-only view of TARGET under the shared lock of a reading `operation`. */
export async function whileReading<T>(target: string, flags: CommonFlags, io: CliIo, operation: ReadingOperation, f: (backend: ReadBackend) => Promise<T>): Promise<T> {
  const backend = await backendFor(target, flags, io);
  return withLock(backend, undefined, operation, {}, io, () => f(readOnly(backend)));
}

/**
 * A path in the backup as the user names it (relative to the backed-up root, as ls
 * prints it: backslash escapes, GNU tar's --unquote, so any bytes can be named).
 */
export function storedPath(text: string, what: string): Index {
  const raw = unescapeName(text) ?? Buffer.from(text);
  let start = 0;
  while (raw[start] === 0x2f) start++;
  const index = pathToIndex(raw.subarray(start));
  if (index.some((c) => c.toString() === '..' || c.toString() === '.')) throw new UsageError(`${what}: "${text}" must be a plain relative path`);
  return index;
}
