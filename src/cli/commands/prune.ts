import type { Command } from 'commander';
import { hasKeepRules } from '../../chain/calendar.js';
import { addKeepOptions, count, keepRules, type KeepFlags } from '../keep-rules.js';
import { setFiles, type BackupSet } from '../../chain/collection.js';
import type { PointVerdict } from '../../chain/retention.js';
import { describeTime, formatTimestamp, localTime, parseUserTime } from '../../chain/time.js';
import { UsageError } from '../../errors.js';
import { cleanupUploads, deleteItems, planCleanup, planPrune, withoutLocked, type DeletionItem } from '../../inspect/prune.js';
import { bytes } from '../format.js';
import { addCacheOption, addMetricsOption, addLockOption, addTargetOptions, backendFor, cacheFor, withLock, type CommonFlags, TARGET_HELP } from '../common.js';
import type { CliIo } from '../io.js';

interface PruneFlags extends CommonFlags, KeepFlags {
  olderThan?: string;
  keepFull?: string;
  keepIncOf?: string;
  force?: boolean;
  json?: boolean;
}

/** The set's stored bytes (every file of it). */
function setBytes(s: BackupSet): number {
  return setFiles(s).reduce((a, f) => a + f.size, 0);
}

/** restic forget's table: every restore point, kept or removed, and why. */
function printPoints(io: CliIo, points: PointVerdict[]): void {
  const kept = points.filter((p) => p.keep).length;
  io.stdout(`${points.length} restore point(s): ${kept} kept, ${points.length - kept} removed\n`);
  for (const p of points) {
    const type = p.set.type === 'full' ? 'full' : 'incremental';
    io.stdout(`  ${localTime(p.set.end)}  ${type.padEnd(11)}  ${bytes(setBytes(p.set)).padStart(10)}  ${p.keep ? 'keep  ' : 'remove'}  ${p.reasons.join(', ')}\n`);
  }
}

function pointJson(p: PointVerdict): Record<string, unknown> {
  return { time: formatTimestamp(p.set.end), type: p.set.type, chain: formatTimestamp(p.chain.start), keep: p.keep, reasons: p.reasons, bytes: setBytes(p.set) };
}

interface Listing {
  what: string;
  force: boolean;
  json: boolean;
  points?: PointVerdict[];
}

async function listOrDelete(io: CliIo, backend: Awaited<ReturnType<typeof backendFor>>, all: DeletionItem[], o: Listing): Promise<void> {
  // Object Lock: what cannot go yet is said, with when it can; the rest goes
  const { items, locked } = await withoutLocked(backend, all);
  const total = items.reduce((a, i) => a + i.file.size, 0);
  // what --metrics-file records: nothing deleted unless this run deletes
  io.figure?.('deleted_files', 0);
  io.figure?.('deleted_bytes', 0);
  // the verdicts first, then what is done about them
  if (o.points && !o.json) printPoints(io, o.points);
  if (o.force && items.length > 0) {
    await deleteItems(backend, items, (i) => (o.json ? undefined : io.stdout(`deleted ${i.file.name}\n`)));
    io.figure?.('deleted_files', items.length);
    io.figure?.('deleted_bytes', total);
  }
  if (o.json) {
    const files = items.map((i) => ({ name: i.file.name, size: i.file.size, reason: i.reason }));
    const lockedJson = locked.map((l) => ({ what: l.what, until: formatTimestamp(l.until), mode: l.mode }));
    io.stdout(JSON.stringify({ ...(o.points ? { points: o.points.map(pointJson) } : {}), files, locked: lockedJson, bytes: total, deleted: o.force }) + '\n');
    return;
  }
  for (const l of locked) io.stdout(`keeping ${l.what} and its chain: locked until ${describeTime(l.until)} (object lock, ${l.mode.toLowerCase()}); it can be deleted after that\n`);
  if (items.length === 0) io.stdout(`Nothing to ${o.what}.\n`);
  else if (o.force) io.stdout(`Deleted ${items.length} file(s), ${bytes(total)} freed.\n`);
  else {
    for (const i of items) io.stdout(`would delete ${i.file.name} (${bytes(i.file.size)}): ${i.reason}\n`);
    io.stdout(`${items.length} file(s), ${bytes(total)} would be deleted (freed); run again with --force to delete them.\n`);
  }
}

export function registerPrune(program: Command, io: CliIo): void {
  const prune = program
    .command('prune')
    .description('remove old chains or incrementals (lists them unless --force)')
    .argument('<target>', TARGET_HELP)
    .option('--older-than <time>', 'remove chains that ended before TIME (e.g. 6M, 2026-01-01)')
    .option('--keep-full <n>', 'keep the newest N chains, remove the others')
    .option('--keep-inc-of <n>', 'remove the incrementals of all but the newest N chains')
    .option('--json', 'print the verdict on every point and the files as one JSON object')
    .option('--force', 'really delete (without it, only list what would go)');
  addKeepOptions(prune, 'keep');
  addTargetOptions(prune);
  addCacheOption(prune);
  addMetricsOption(prune);
  addLockOption(prune);
  prune.addHelpText(
    'after',
    `
Every set (full or incremental) is a restore point. The --keep-last/-hourly/
-daily/-weekly/-monthly/-yearly/-within rules work as restic forget's: each keeps
the newest point of each of its last N periods (local time; weeks start on Monday;
N may be "unlimited"), a rule with counts left also keeps the oldest point, and a
point is kept when any rule keeps it. Keeping a point keeps its full and every
incremental before it; a chain with no kept point goes whole, and a chain whose
newest kept point is not its last set loses that tail. --older-than, --keep-full
and --keep-inc-of remove on top of what these rules keep. The newest chain is
always kept whole. Without --force, prune lists every point (kept or removed, and
which rule decided) and the files and bytes that would go.

Examples:
  tapechain prune --keep-daily 7 --keep-weekly 5 --keep-monthly 12 /mnt/backup/home
  tapechain prune --keep-within 30D --keep-monthly unlimited --force s3://bucket/home
  tapechain prune --keep-full 3 --force /mnt/backup/home
  tapechain prune --older-than 6M --keep-inc-of 1 --force s3://bucket/home`,
  );
  prune.action(async (target: string, flags: PruneFlags) => {
    const keepFull = count(flags.keepFull, '--keep-full');
    const keepIncOf = count(flags.keepIncOf, '--keep-inc-of');
    const keep = keepRules(flags);
    if (flags.olderThan === undefined && keepFull === undefined && keepIncOf === undefined && !hasKeepRules(keep)) {
      throw new UsageError('prune: give a rule: --keep-last, --keep-daily … --keep-yearly, --keep-within, --older-than, --keep-full or --keep-inc-of');
    }
    const backend = await backendFor(target, flags, io);
    const policy = {
      ...(flags.olderThan !== undefined ? { olderThan: parseUserTime(flags.olderThan) } : {}),
      ...(keepFull !== undefined ? { keepFull } : {}),
      ...(keepIncOf !== undefined ? { keepIncOf } : {}),
      ...(hasKeepRules(keep) ? { keep } : {}),
      ...(flags.keepWithin !== undefined ? { withinLabel: flags.keepWithin } : {}),
    };
    const run = async () => {
      const plan = await planPrune(backend, policy);
      await listOrDelete(io, backend, plan.items, { what: 'prune', force: flags.force ?? false, json: flags.json ?? false, points: plan.points });
    };
    // Only deleting needs the lock; listing is read-only.
    if (flags.force) await withLock(backend, cacheFor(target, flags, io), 'prune', flags, io, run);
    else await run();
  });

  const cleanup = program
    .command('cleanup')
    .description('remove incomplete and orphaned sets, stray files and abandoned multipart uploads (lists them unless --force)')
    .argument('<target>', TARGET_HELP)
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
      await listOrDelete(io, backend, plan.items, { what: 'clean up', force: flags.force ?? false, json: false });
      await cleanupUploads(backend, flags.force ?? false, Date.now(), (u) =>
        io.stdout(`${u.action === 'kept' ? 'keeping (started less than a day ago)' : u.action} unfinished multipart upload of ${u.key}\n`),
      );
    };
    if (flags.force) await withLock(backend, cache, 'cleanup', flags, io, run);
    else await run();
  });
}
