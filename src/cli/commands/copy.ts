import type { Command } from 'commander';
import { pickForTime, type BackupSet, type Collection } from '../../chain/collection.js';
import { planRetention } from '../../chain/retention.js';
import type { CopiedFile } from '../../copy/copy.js';
import { ExitCode, UsageError } from '../../errors.js';
import { bytes } from '../format.js';
import type { CliIo } from '../io.js';
import { addLockOption, backendFor, cacheFor, timeFrom, whileReading, withLock, type CommonFlags, addReadingOptions } from '../common.js';
import { readingKeys, reportUnverified } from '../keys.js';
import { addKeepOptions, keepRules, type KeepFlags } from '../keep-rules.js';
import { hasKeepRules } from '../../chain/calendar.js';

interface CopyFlags extends CommonFlags, KeepFlags {
  json?: boolean;
}

/** The sets to copy: all, those of the point at --time, or the points the --keep-* rules keep. */
function chooser(flags: CopyFlags): ((col: Collection) => BackupSet[][]) | undefined {
  const time = timeFrom(flags);
  const keep = keepRules(flags);
  if (time !== undefined && hasKeepRules(keep)) throw new UsageError('copy: give --time or --keep-* rules, not both');
  if (time !== undefined) {
    return (col) => {
      const picked = pickForTime(col, time);
      return picked ? [picked.sets] : [];
    };
  }
  if (!hasKeepRules(keep)) return undefined;
  return (col) => {
    const { points } = planRetention(col, { keep });
    const chains = [...new Set(points.map((p) => p.chain))];
    return chains.map((c) => points.filter((p) => p.chain === c && p.keep).map((p) => p.set)).filter((sets) => sets.length > 0);
  };
}

export function registerCopy(program: Command, io: CliIo, setExit: (c: number) => void): void {
  const cmd = program
    .command('copy')
    .description('copy backup sets to a second target as stored (nothing decrypted), each file checked on the way')
    .argument('<source>', 'the target to copy from')
    .argument('<dest>', 'the target to copy to (created if missing)')
    .option('-t, --time <time>', 'copy only the sets of the point at TIME (its full and incrementals up to it)')
    .option('--json', 'one JSON object per file, then a summary');
  addKeepOptions(cmd, 'copy only the points');
  addReadingOptions(cmd);
  addLockOption(cmd);
  cmd.addHelpText(
    'after',
    `
Each file is checked as it streams, before it is uploaded: against its set's seal
(SHA-256 and size; the seal's signature with --public-key, --sign-key or the pinned
signer) or, for unsealed sets, the manifest's volume hashes (the passphrase or key is
needed to read the manifest; the signature file is checked by decoding it). The
manifest goes last; files already at DEST with the right size and hash are skipped,
so a copy that was stopped resumes. A damaged file is named and not copied: its set
and the rest of its chain stay out of DEST (exit 6).

Examples:
  tapechain copy --public-key me.pub.asc /mnt/backup/home s3://offsite/home
  PASSPHRASE=secret tapechain copy --keep-monthly 12 s3://bucket/home /media/usb/home`,
  );
  cmd.action(async (source: string, dest: string, flags: CopyFlags) => {
    const choose = chooser(flags);
    const keys = await readingKeys(flags, io, undefined, cacheFor(source, flags, io));
    const print = (f: CopiedFile) => {
      if (flags.json) io.stdout(JSON.stringify(f) + '\n');
      else io.stdout(f.action === 'refused' ? `refused ${f.name}: ${f.reason}\n` : `${f.action === 'copied' ? 'copied' : 'already there'} ${f.name} (${bytes(f.size)})\n`);
    };
    const destBackend = await backendFor(dest, flags, io);
    const { copySets } = await import('../../copy/copy.js'); // loaded when used (start-up time)
    const r = await whileReading(source, flags, io, 'copy-from', (from) =>
      withLock(destBackend, undefined, 'copy', flags, io, () =>
        copySets({ source: from, dest: destBackend, keys, ...(choose ? { choose } : {}), onFile: print, onWarning: (m) => io.stderr(`warning: ${m}\n`), ...(io.signal ? { signal: io.signal } : {}) }),
      ),
    );
    const summary = `${r.sets} set(s) at ${destBackend.describe()}: ${r.copied} file(s) copied (${bytes(r.bytes)}), ${r.present} already there, ${r.refused.length} refused`;
    io.stdout(flags.json ? JSON.stringify({ summary, sets: r.sets, copied: r.copied, bytes: r.bytes, present: r.present, refused: r.refused }) + '\n' : summary + '\n');
    if (r.refused.length > 0) setExit(ExitCode.INTEGRITY);
    reportUnverified(keys, io, setExit);
  });
}
