import type { Command } from 'commander';
import { formatTimestamp } from '../../chain/time.js';
import { targetStatus, type SetStatus } from '../../inspect/status.js';
import { ExitCode, NotFoundError, UsageError } from '../../errors.js';
import { age, targetHealth, type HealthState } from '../../inspect/health.js';
import { parseInterval } from '../../chain/time.js';
import { bytes } from '../format.js';
import type { CliIo } from '../io.js';
import { addCacheOption, addTargetOptions, cacheFor, whileReading, type CommonFlags, TARGET_HELP } from '../common.js';
import { describeTime } from '../../chain/time.js';

const now = () => Math.floor(Date.now() / 1000);

function setLine(s: SetStatus): string {
  const t = s.type === 'full' ? formatTimestamp(s.start) : `${formatTimestamp(s.start)}.to.${formatTimestamp(s.end)}`;
  const enc = s.encryption === 'public-key' ? `  to ${s.recipients?.join(', ')}` : s.encryption === 'passphrase' ? '  passphrase' : s.encrypted ? '  encrypted' : '  not encrypted';
  return `  ${s.type === 'full' ? 'Full       ' : 'Incremental'} ${t}  ${s.volumes} volume(s)  ${bytes(s.bytes)}${enc}${s.sealed ? '  sealed' : ''}\n`;
}

/** status --check: each verdict's exit code (the README's table). */
const CHECK_EXIT: Record<HealthState, number> = {
  ok: ExitCode.OK,
  'broken-chain': ExitCode.BROKEN_CHAIN,
  'verify-failed': ExitCode.INTEGRITY,
  'stale-backup': ExitCode.STALE_BACKUP,
  'incomplete-set': ExitCode.INCOMPLETE_SET,
  'stale-verify': ExitCode.STALE_VERIFY,
};

type StatusFlags = CommonFlags & { json?: boolean; check?: boolean; maxAge?: string; maxVerifyAge?: string };

function ageFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const s = parseInterval(value);
  if (s === undefined) throw new UsageError(`${flag}: expected an age such as 26h, 8D or 1W, got "${value}"`, { code: 'BAD_OPTION' });
  return s;
}

export function registerStatus(program: Command, io: CliIo, setExit: (c: number) => void): void {
  const cmd = program.command('status');
  addTargetOptions(cmd);
  addCacheOption(cmd);
  cmd
    .description('show the chains, sets and volumes at TARGET')
    .argument('<target>', TARGET_HELP)
    .option('--json', 'print one JSON document')
    .option('--check', 'one line and an exit code for monitoring: OK, stale backup, stale verify, incomplete set, broken chain')
    .option('--max-age <age>', 'with --check: the newest backup must be at most AGE old (26h, 8D, 1W)')
    .option('--max-verify-age <age>', 'with --check: a verify (recorded in the local cache) must be at most AGE old and have found nothing')
    .addHelpText(
      'after',
      `
Exit status of --check: 0 OK, 12 stale backup, 13 stale verify, 14 incomplete set,
15 broken chain, 6 the last verify found problems, 4 no backup (the worst one wins).

Examples:
  tapechain status file:///mnt/backup/home
  tapechain status --check --max-age 26h --max-verify-age 8D /mnt/backup/home`,
    )
    .action(async (target: string, flags: StatusFlags) => {
      const maxAge = ageFlag('--max-age', flags.maxAge);
      const maxVerifyAge = ageFlag('--max-verify-age', flags.maxVerifyAge);
      if ((maxAge !== undefined || maxVerifyAge !== undefined) && !flags.check) throw new UsageError('--max-age and --max-verify-age go with --check', { code: 'BAD_OPTION' });
      const st = await whileReading(target, flags, io, 'status', (backend) => targetStatus(backend, cacheFor(target, flags, io)));
      // as ls and restore: a target without any backup set is "nothing found"
      if (st.chains.length + st.incomplete.length + st.orphans.length === 0) throw new NotFoundError(`no backup at ${st.target}${st.unknown.length ? ` (${st.unknown.length} other file(s) there)` : ''}`, { code: 'NO_CHAIN' });
      if (flags.check) {
        if (st.chains.length === 0) throw new NotFoundError(`no complete backup at ${st.target}`, { code: 'NO_CHAIN' });
        const h = targetHealth(st, { now: now(), ...(maxAge !== undefined ? { maxAge } : {}), ...(maxVerifyAge !== undefined ? { maxVerifyAge } : {}) });
        const v = h.lastVerify ? `, last verify ${age(now() - h.lastVerify.time)} ago${h.lastVerify.ok ? '' : ` (${h.lastVerify.problems} problem(s))`}` : ', no verify recorded';
        const line = h.state === 'ok' ? `OK: last backup ${age(now() - h.lastBackup)} ago${v}` : `${h.state.toUpperCase().replace('-', ' ')}: ${h.findings.join('; ')}`;
        io.stdout(flags.json ? JSON.stringify({ target: st.target, ...h, line }) + '\n' : line + '\n');
        setExit(CHECK_EXIT[h.state]);
        return;
      }
      if (flags.json) {
        io.stdout(JSON.stringify(st, null, 2) + '\n');
        return;
      }
      io.stdout(`Target ${st.target}: ${st.chains.length} chain(s)\n`);
      st.chains.forEach((c, i) => {
        const lock = c.lockedUntil !== undefined ? `  locked until ${describeTime(c.lockedUntil)} (${c.lockMode?.toLowerCase()})` : '';
        io.stdout(`Chain ${i + 1}: ${formatTimestamp(c.start)} to ${formatTimestamp(c.end)}${lock}\n`);
        for (const s of c.sets) io.stdout(setLine(s));
      });
      if (st.incomplete.length) {
        io.stdout(`Incomplete sets (no manifest): ${st.incomplete.length}\n`);
        for (const s of st.incomplete) io.stdout(setLine(s));
      }
      if (st.orphans.length) {
        io.stdout(`Orphaned incremental sets: ${st.orphans.length}\n`);
        for (const s of st.orphans) io.stdout(setLine(s));
      }
      if (st.strays.length || st.unknown.length) io.stdout(`Other files: ${[...st.strays, ...st.unknown].join(', ')}\n`);
      if (!st.incomplete.length && !st.orphans.length) io.stdout('No incomplete or orphaned sets.\n');
      for (const n of st.recoverable) io.stdout(`Missing at the target, but the local cache holds a copy: ${n} (put it back with: tapechain repair --force ${target})\n`);
      for (const s of st.future) io.stdout(`Warning: set ${formatTimestamp(s.end)} is dated in the future (this machine's clock says ${formatTimestamp(now())}): a clock was wrong when it was made, or is wrong now\n`);
      const v = st.lastVerify;
      if (v) io.stdout(`Last ${v.offline ? 'offline ' : ''}verify: ${describeTime(v.time)}: ${v.ok ? 'OK' : `${v.problems} problem(s)`}, ${v.volumes} file(s) checked\n`);
    });
}
