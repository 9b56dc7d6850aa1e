import type { Command } from 'commander';
import type { Backend } from '../../backend/backend.js';
import { unwrap } from '../../backend/wrappers.js';
import type { BackupOptions, BackupResult } from '../../backup/backup.js';
import { checkSource } from '../../source/source-dir.js';
import { Selection, type SelectionRule } from '../../source/selection.js';
import type { WalkWarning } from '../../source/walk.js';
import { displayIndex, type Index } from '../../volume/entry-name.js';
import { BackupReporter } from '../progress.js';
import { formatTimestamp, parseInterval } from '../../chain/time.js';
import { DEFAULT_COMPRESS_LEVEL } from '../../crypto/chunked-deflate.js';
import { DEFAULT_VOLSIZE, MIN_VOLSIZE, resolveBackupOptions } from '../../backup/options.js';

const MIB = 1 << 20;

const SIZE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** A size as restic takes it: bytes, or a number with k, M, G or T (1024-based, either case). */
function sizeFlag(flag: string, value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?\s*$/i.exec(value);
  if (!m) throw new UsageError(`${flag}: expected a size such as 500, 64k, 1.5M or 2G, got "${value}"`, { code: 'BAD_OPTION' });
  return Math.floor(Number(m[1]) * SIZE_UNITS[(m[2] ?? '').toLowerCase()]!);
}

function lockModeFlag(v: string): 'GOVERNANCE' | 'COMPLIANCE' {
  const m = v.toUpperCase();
  if (m === 'GOVERNANCE' || m === 'COMPLIANCE') return m;
  throw new UsageError(`--object-lock-mode: expected governance or compliance, got "${v}"`, { code: 'BAD_OPTION' });
}

import { CancelledError, ExitCode, UsageError, withSuffix } from '../../errors.js';
import type { CliIo } from '../io.js';
import { addCacheOption, addMetricsOption, addNotifyOption, addLockOption, cacheFor, collect, type CommonFlags, addTargetOptions, backendFor, withLock, TARGET_HELP, numberFlag } from '../common.js';
import { readingKeys, writingKeys } from '../keys.js';
import type { ArchiveCache } from '../../repo/archive-cache.js';
import type { SecretKey } from '../../crypto/keys.js';

interface BackupFlags extends CommonFlags {
  strict?: boolean;
  xattrs?: boolean;
  dryRun?: boolean;
  json?: boolean;
  quiet?: boolean;
  excludeIfPresent?: string[];
  excludeOtherFilesystems?: boolean;
  excludeCaches?: boolean;
  excludeLargerThan?: string;
  uploadConcurrency: string;
  maxStaged: string;
  jobs?: string;
  signPassphraseFile?: string;
  encryption: boolean;
  volsize: string;
  compressLevel: string;
  full?: boolean;
  resume: boolean;
  fullIfOlderThan?: string;
  allowSourceMismatch?: boolean;
  allowClockSkew?: boolean;
  s3CreateBucket?: boolean;
  appendOnly?: boolean;
  objectLockDays?: string;
  objectLockMode?: string;
}

/**
 * The smallest --volsize: four 64 KiB tar blocks of file data and their headers. duplicity
 * asks for 1 MiB; smaller volumes serve tests and the sample archive.
 */

export function registerBackup(program: Command, io: CliIo, setExit: (c: number) => void): void {
  // --include/--exclude keep their relative order (duplicity: first match wins).
  const rules: SelectionRule[] = [];
  const cmd = program
    .command('backup')
    .description('back up SOURCE to TARGET: an incremental when a chain exists, else a full')
    .argument('<source>', 'directory to back up')
    .argument('<target>', TARGET_HELP)
    .option('--full', 'start a new chain with a full backup')
    .option('--no-resume', 'start a set an interrupted run left over instead of continuing it')
    .option('--object-lock-days <n>', 'S3 Object Lock: keep every file of the set from deletion until N days after its chain\'s planned end (see --full-if-older-than); the bucket must have Object Lock enabled')
    .option('--object-lock-mode <mode>', 'governance (a key with the bypass permission may still delete) or compliance (no one may)', 'governance')
    .option('--append-only', 'never delete on the target (credentials that may put, get and list only): locks are marked released instead, for cleanup to remove')
    .option('--full-if-older-than <age>', 'start a new chain when the current full is older than AGE (s m h D W M Y, e.g. 7D)')
    .option('--allow-source-mismatch', 'continue a chain made on another host or from another source path')
    .option('--allow-clock-skew', "back up although the newest set is dated after this machine's clock (the set is named after it)")
    .option('--strict', 'fail on unreadable, vanished or changing files instead of reporting them')
    .option('--no-xattrs', 'do not store extended attributes, POSIX ACLs and file capabilities (nor count their changes)')
    .option('--include <glob>', 'include matching paths (first matching --include/--exclude wins; ** * ? [..], ignorecase:)', (v: string) => (rules.push({ kind: 'include', glob: v }), v))
    .option('--exclude <glob>', 'exclude matching paths (an excluded directory is not entered)', (v: string) => (rules.push({ kind: 'exclude', glob: v }), v))
    .option('--include-filelist <file>', 'globs from FILE, one per line (+ /- prefixes choose include/exclude)', (v: string) => (rules.push({ kind: 'include-filelist', file: v }), v))
    .option('--exclude-filelist <file>', 'globs from FILE to exclude, one per line (+ /- prefixes allowed)', (v: string) => (rules.push({ kind: 'exclude-filelist', file: v }), v))
    .option('--exclude-if-present <name>', 'exclude directories that contain a file NAME (e.g. .nobackup)', collect)
    .option('--exclude-other-filesystems', 'do not cross into other mounted filesystems')
    .option('--exclude-caches', 'leave out the contents of directories tagged as caches with a CACHEDIR.TAG file (the tag itself is kept)')
    .option('--exclude-larger-than <size>', 'leave out files larger than SIZE (bytes, or with k, M, G, T: 1024-based)')
    .option('--dry-run', 'list what would be stored; write nothing')
    .option('--json', 'JSON lines of events and a final summary on stdout')
    .option('-q, --quiet', 'no progress display and no statistics')
    .option('--no-encryption', 'write gzip volumes and a plain manifest instead of OpenPGP')
    .option('--volsize <MiB>', `volume size in MiB (at least ${MIN_VOLSIZE / MIB})`, String(DEFAULT_VOLSIZE / MIB))
    .option('--compress-level <0-9>', 'zlib level inside the encryption (0: none, 1: fast, 9: smallest)', String(DEFAULT_COMPRESS_LEVEL));
  cmd
    .option('--passphrase-file <file>', 'passphrase from FILE (else env PASSPHRASE or TAPECHAIN_PASSPHRASE)')
    .option('--encrypt-key <file>', 'encrypt to this armored public key instead of a passphrase (repeatable: every recipient can decrypt)', collect)
    .option('--sign-key <file>', 'sign every file with this armored secret key (passphrase: env SIGN_PASSPHRASE or --sign-passphrase-file)')
    .option('--sign-passphrase-file <file>', 'passphrase of --sign-key from FILE')
    .option('--decrypt-key <file>', 'armored secret key to read a public-key chain when the local cache lacks its signatures');
  addCacheOption(cmd);
  addTargetOptions(cmd);
  addLockOption(cmd);
  cmd
    .option('--s3-create-bucket', 'create the bucket of an s3:// target when it does not exist')
    .option('--upload-concurrency <n>', 'parallel uploads (1: strictly in order)', '1')
    .option('--max-staged <n>', 'finished volumes allowed to wait for upload on temp disk', '2')
    .option('--jobs <n>', 'volumes built at once, each on a thread of its own (default: the CPUs available; 1: one after the other)');
  addNotifyOption(cmd);
  addMetricsOption(cmd);
  cmd.addHelpText(
    'after',
    `
An interrupted backup (Ctrl-C, kill, a failed upload) is continued by the next run of the
same backup, after its last stored volume; --no-resume starts that set over.

Examples:
  PASSPHRASE=secret tapechain backup /home/me file:///mnt/backup/home
  PASSPHRASE=secret tapechain backup --full-if-older-than 1M /home/me /mnt/backup/home
  PASSPHRASE=secret tapechain backup --s3-endpoint https://s3.us-west-004.backblazeb2.com /home/me s3://my-bucket/home
  SIGN_PASSPHRASE=... tapechain backup --encrypt-key me.pub.asc --sign-key me.sec.asc /home/me /mnt/backup/home
  tapechain backup --no-encryption --volsize 50 ./src /srv/backups/src
  tapechain backup --exclude '**/node_modules' --exclude-if-present .nobackup --dry-run /home/me /mnt/backup/home`,
  );
  cmd.action(async (source: string, target: string, flags: BackupFlags) => {
    const volsize = numberFlag('--volsize', flags.volsize);
    const level = numberFlag('--compress-level', flags.compressLevel);
    let fullIfOlderThan: number | undefined;
    if (flags.fullIfOlderThan !== undefined) {
      fullIfOlderThan = parseInterval(flags.fullIfOlderThan);
      if (fullIfOlderThan === undefined) throw new UsageError(`--full-if-older-than: expected an interval such as 7D or 1M, got "${flags.fullIfOlderThan}"`);
    }
    const { signing, encryptor } = await writingKeys(flags, io);
    // Reading the chain (incrementals) must not demand signatures: that is restore's job.
    const keys = { ...(await readingKeys({ ...flags, signKey: undefined, publicKey: [] }, io, signing?.key)), requireSignature: false, tolerateUnknownSigners: true };
    const uploadConcurrency = numberFlag('--upload-concurrency', flags.uploadConcurrency);
    const maxStaged = numberFlag('--max-staged', flags.maxStaged);
    const jobs = flags.jobs !== undefined ? numberFlag('--jobs', flags.jobs) : undefined;
    const objectLock = flags.objectLockDays !== undefined ? { days: numberFlag('--object-lock-days', flags.objectLockDays), mode: lockModeFlag(flags.objectLockMode ?? 'governance') } : undefined;
    const backend = await backendFor(target, flags, io);
    await checkSource(source); // before the lock: a typo must not touch the target
    const selection = new Selection({
      rules,
      ...(flags.excludeIfPresent ? { excludeIfPresent: flags.excludeIfPresent } : {}),
      excludeOtherFilesystems: flags.excludeOtherFilesystems ?? false,
      excludeCaches: flags.excludeCaches ?? false,
      ...(flags.excludeLargerThan !== undefined ? { excludeLargerThan: sizeFlag('--exclude-larger-than', flags.excludeLargerThan) } : {}),
    });
    const cache = cacheFor(target, flags, io);
    const report = new BackupReporter(io, { json: flags.json ?? false, quiet: flags.quiet ?? false });
    const options = resolveBackupOptions({
      ...(io.signal ? { signal: io.signal } : {}),
      source,
      backend,
      encryptor,
      keys,
      cache,
      selection,
      ...(signing ? { sealKey: signing.key } : {}),
      full: flags.full ?? false,
      resume: flags.resume,
      ...(fullIfOlderThan !== undefined ? { fullIfOlderThan } : {}),
      allowSourceMismatch: flags.allowSourceMismatch ?? false,
      allowClockSkew: flags.allowClockSkew ?? false,
      strict: flags.strict ?? false,
      xattrs: flags.xattrs ?? true,
      compressLevel: level,
      volsize: Math.round(volsize * MIB),
      uploadConcurrency,
      maxStaged,
      ...(jobs !== undefined ? { jobs } : {}),
      ...(objectLock ? { objectLock } : {}),
      dryRun: flags.dryRun ?? false,
      onDryRun: (action: string, index: Index) => io.stdout(flags.json ? JSON.stringify({ event: 'would-store', action, path: displayIndex(index) }) + '\n' : `${action.padEnd(8)} ${displayIndex(index)}\n`),
      onWarning: (w: WalkWarning) => report.warning(w),
      onProgress: (p: Parameters<NonNullable<BackupOptions['onProgress']>>[0]) => report.progress(p),
      onStored: (name: string, size: number) => report.stored(name, size),
      onPlan: (p: { type: string; reason: string; resumed?: boolean }) => {
        if (flags.json || !p.reason) return;
        if (p.resumed || p.reason.startsWith('not resuming')) io.stderr(`${p.reason[0]!.toUpperCase()}${p.reason.slice(1)}\n`);
        else if (p.type === 'full') io.stderr(`Starting a new chain with a full backup: ${p.reason}\n`);
      },
    });
    report.startScan(source);
    if (flags.s3CreateBucket) await createBucket(backend, io);
    // A dry run writes nothing, so it takes no lock.
    let r;
    try {
      // loaded when used: the engine's modules are most of the CLI's start-up time, and other commands need none of them
      const { runBackup } = await import('../../backup/backup.js');
      r = flags.dryRun ? await runBackup(options) : await withLock(backend, cache, 'backup', flags, io, () => runBackup(options));
    } catch (e) {
      if (e instanceof CancelledError) throw withSuffix(e, `; ${report.storedCount} file(s) of the set were stored and are kept, the locks released, temp files removed: run the same backup again to continue the set (--no-resume starts it over)`);
      throw e;
    }
    const name = r.type === 'full' ? formatTimestamp(r.time) : `${formatTimestamp(r.start)}.to.${formatTimestamp(r.time)}`;
    report.summary(r, backend.describe(), name);
    if (!r.dryRun) recordFigures(io, r);
    if (signing && !r.dryRun) await pinSigner(cache, signing.key, io);
    if (r.warnings) setExit(ExitCode.WARNINGS);
  });
}

/**
 * The signer of this machine's backups, pinned in the target's cache: reading commands
 * here then check signatures against it without options (as SSH's known_hosts).
 */
async function pinSigner(cache: ArchiveCache, key: SecretKey, io: CliIo): Promise<void> {
  try {
    const replaced = await cache.pinSigner(key.toPublic().armor());
    if (replaced !== undefined) io.stderr(`The signer pinned for this target is now key ${key.getKeyID().toHex().toUpperCase()} (the one before was replaced)\n`);
  } catch (e) {
    io.stderr(`warning: could not pin the signer in ${cache.dir} (${(e as Error).message}): reading commands here need --sign-key or --public-key to check signatures\n`);
  }
}

/** A backup's figures for --metrics-file. */
function recordFigures(io: CliIo, r: BackupResult): void {
  const figures: [string, number][] = [
    ['read_bytes', r.bytesRead],
    ['stored_bytes', r.storedBytes],
    ['files', r.files],
    ['source_files', r.sourceFiles],
    ['changed_entries', r.changed],
    ['deleted_entries', r.deleted],
    ['warnings', r.warnings],
    ['volumes', r.volumes],
    ['full', r.type === 'full' ? 1 : 0],
    ['chain_sets', r.chainSets],
  ];
  for (const [n, v] of figures) io.figure?.(n, v);
}

/** --s3-create-bucket: S3 targets only. */
async function createBucket(backend: Backend, io: CliIo): Promise<void> {
  const inner = unwrap(backend) as Backend & { ensureBucket?: () => Promise<boolean> };
  if (!inner.ensureBucket) throw new UsageError('--s3-create-bucket: the target is not an s3:// target');
  if (await inner.ensureBucket()) io.stderr(`Created the bucket of ${backend.describe()}\n`);
}
