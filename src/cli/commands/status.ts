import type { Command } from 'commander';
import { formatTimestamp } from '../../chain/time.js';
import { targetStatus, type SetStatus } from '../../inspect/status.js';
import { NotFoundError } from '../../errors.js';
import { bytes } from '../format.js';
import type { CliIo } from '../io.js';
import { addCacheOption, addTargetOptions, cacheFor, whileReading, type CommonFlags } from '../common.js';
import { describeTime } from '../../chain/time.js';

const now = () => Math.floor(Date.now() / 1000);

function setLine(s: SetStatus): string {
  const t = s.type === 'full' ? formatTimestamp(s.start) : `${formatTimestamp(s.start)}.to.${formatTimestamp(s.end)}`;
  const enc = s.encryption === 'public-key' ? `  to ${s.recipients?.join(', ')}` : s.encryption === 'passphrase' ? '  passphrase' : s.encrypted ? '  encrypted' : '  not encrypted';
  return `  ${s.type === 'full' ? 'Full       ' : 'Incremental'} ${t}  ${s.volumes} volume(s)  ${bytes(s.bytes)}${enc}${s.sealed ? '  sealed' : ''}\n`;
}

export function registerStatus(program: Command, io: CliIo): void {
  const cmd = program.command('status');
  addTargetOptions(cmd);
  addCacheOption(cmd);
  cmd
    .description('show the chains, sets and volumes at TARGET')
    .argument('<target>', 'target: a path, file:///abs/path or s3://bucket/prefix')
    .option('--json', 'print one JSON document')
    .addHelpText('after', '\nExample:\n  tapechain status file:///mnt/backup/home')
    .action(async (target: string, flags: CommonFlags & { json?: boolean }) => {
      const st = await whileReading(target, flags, io, 'status', (backend) => targetStatus(backend, cacheFor(target, flags, io)));
      // as ls and restore: a target without any backup set is "nothing found"
      if (st.chains.length + st.incomplete.length + st.orphans.length === 0) throw new NotFoundError(`no backup at ${st.target}${st.unknown.length ? ` (${st.unknown.length} other file(s) there)` : ''}`, { code: 'NO_CHAIN' });
      if (flags.json) {
        io.stdout(JSON.stringify(st, null, 2) + '\n');
        return;
      }
      io.stdout(`Target ${st.target}: ${st.chains.length} chain(s)\n`);
      st.chains.forEach((c, i) => {
        io.stdout(`Chain ${i + 1}: ${formatTimestamp(c.start)} to ${formatTimestamp(c.end)}\n`);
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
