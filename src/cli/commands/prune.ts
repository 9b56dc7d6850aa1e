import type { Command } from 'commander';
import { describeTime, formatTimestamp, parseUserTime } from '../../chain/time.js';
import { UsageError } from '../../errors.js';
import { cleanupUploads, deleteItems, planCleanup, planPrune, withoutLocked, type DeletionItem } from '../../inspect/prune.js';
import { bytes } from '../format.js';
import { addCacheOption, addMetricsOption, addLockOption, addTargetOptions, backendFor, cacheFor, withLock, type CommonFlags } from '../common.js';
import type { CliIo } from '../io.js';

interface PruneFlags extends CommonFlags {
  olderThan?: string;
  keepFull?: string;
  keepIncOf?: string;
  force?: boolean;
}

function count(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name}: expected a whole number >= 1, got "${v}"`);
  return n;
}

async function listOrDelete(io: CliIo, backend: Awaited<ReturnType<typeof backendFor>>, all: DeletionItem[], force: boolean, what: string): Promise<void> {
  // Object Lock: what cannot go yet is said, with when it can; the rest goes
  const { items, locked } = await withoutLocked(backend, all);
  for (const l of locked) io.stdout(`keeping ${l.what} and its chain: locked until ${describeTime(l.until)} (object lock, ${l.mode.toLowerCase()}); it can be deleted after that\n`);
  const total = items.reduce((a, i) => a + i.file.size, 0);
  // what --metrics-file records: nothing deleted unless this run deletes
  io.figure?.('deleted_files', 0);
  io.figure?.('deleted_bytes', 0);
  if (items.length === 0) {
    io.stdout(`Nothing to ${what}.\n`);
    return;
  }
  if (!force) {
    for (const i of items) io.stdout(`would delete ${i.file.name} (${bytes(i.file.size)}): ${i.reason}\n`);
    io.stdout(`${items.length} file(s), ${bytes(total)} would be deleted; run again with --force to delete them.\n`);
    return;
  }
  await deleteItems(backend, items, (i) => io.stdout(`deleted ${i.file.name}\n`));
  io.stdout(`Deleted ${items.length} file(s), ${bytes(total)}.\n`);
  io.figure?.('deleted_files', items.length);
  io.figure?.('deleted_bytes', total);
}

export function registerPrune(program: Command, io: CliIo): void {
  const prune = program
    .command('prune')
    .description('remove old chains or incrementals (lists them unless --force)')
    .argument('<target>', 'target: a path, file:///abs/path or s3://bucket/prefix')
    .option('--older-than <time>', 'remove chains that ended before TIME (e.g. 6M, 2026-01-01)')
    .option('--keep-full <n>', 'keep the newest N chains, remove the others')
    .option('--keep-inc-of <n>', 'remove the incrementals of all but the newest N chains')
    .option('--force', 'really delete (without it, only list what would go)');
  addTargetOptions(prune);
  addCacheOption(prune);
  addMetricsOption(prune);
  addLockOption(prune);
  prune.addHelpText(
    'after',
    `
The newest chain is always kept, and a set is only removed with everything that
depends on it, so every point in time a kept set covers stays restorable.

Examples:
  tapechain prune --keep-full 3 /mnt/backup/home            # list
  tapechain prune --keep-full 3 --force /mnt/backup/home    # delete
  tapechain prune --older-than 6M --keep-inc-of 1 --force s3://bucket/home`,
  );
  prune.action(async (target: string, flags: PruneFlags) => {
    const keepFull = count(flags.keepFull, '--keep-full');
    const keepIncOf = count(flags.keepIncOf, '--keep-inc-of');
    if (flags.olderThan === undefined && keepFull === undefined && keepIncOf === undefined) throw new UsageError('prune: give --older-than, --keep-full or --keep-inc-of');
    const backend = await backendFor(target, flags, io);
    const policy = {
      ...(flags.olderThan !== undefined ? { olderThan: parseUserTime(flags.olderThan) } : {}),
      ...(keepFull !== undefined ? { keepFull } : {}),
      ...(keepIncOf !== undefined ? { keepIncOf } : {}),
    };
    const run = async () => listOrDelete(io, backend, await planPrune(backend, policy), flags.force ?? false, 'prune');
    // Only deleting needs the lock; listing is read-only.
    if (flags.force) await withLock(backend, cacheFor(target, flags, io), 'prune', flags, io, run);
    else await run();
  });

  const cleanup = program
    .command('cleanup')
    .description('remove incomplete and orphaned sets, stray files and abandoned multipart uploads (lists them unless --force)')
    .argument('<target>', 'target: a path, file:///abs/path or s3://bucket/prefix')
    .option('--force', 'really delete (without it, only list what would go)');
  addTargetOptions(cleanup);
  addCacheOption(cleanup);
  addLockOption(cleanup);
  cleanup.addHelpText('after', '\nExample:\n  tapechain cleanup --force /mnt/backup/home');
  cleanup.action(async (target: string, flags: PruneFlags) => {
    const backend = await backendFor(target, flags, io);
    const cache = cacheFor(target, flags, io);
    const run = async () => {
      const plan = await planCleanup(backend, (names) => cache.lost(names));
      for (const s of plan.kept) io.stdout(`keeping the incomplete set ending ${formatTimestamp(s.end)}: its manifest is missing at the target, but the local cache holds a copy (tapechain repair --force ${target})\n`);
      await listOrDelete(io, backend, plan.items, flags.force ?? false, 'clean up');
      await cleanupUploads(backend, flags.force ?? false, Date.now(), (u) =>
        io.stdout(`${u.action === 'kept' ? 'keeping (started less than a day ago)' : u.action} unfinished multipart upload of ${u.key}\n`),
      );
    };
    if (flags.force) await withLock(backend, cache, 'cleanup', flags, io, run);
    else await run();
  });
}
