import type { Command } from 'commander';
import { localTime, parseUserTime } from '../../chain/time.js';
import { diffPoints, type PathDifference } from '../../inspect/diff.js';
import { escapeName } from '../../util/escape-name.js';
import { indexToPath } from '../../volume/entry-name.js';
import { headerJson, jsonName, NO_VOLUME_NOTE } from '../format.js';
import type { CliIo } from '../io.js';
import { cacheFor, whileReading, type CommonFlags, addReadingOptions, TARGET_HELP } from '../common.js';
import { readingKeys, reportUnverified } from '../keys.js';

interface DiffFlags extends CommonFlags {
  from: string;
  to?: string;
  json?: boolean;
}

const DIFF_MARK: Record<PathDifference['change'], string> = { added: '+', removed: '-', content: 'M', metadata: 'U', type: 'T' };

export function registerDiff(program: Command, io: CliIo, setExit: (c: number) => void): void {
  const diff = program
    .command('diff')
    .description('paths added, removed and changed between two points in time (no volume is read)')
    .argument('<target>', TARGET_HELP)
    .requiredOption('--from <time>', 'the earlier point (a time as --time takes)')
    .option('--to <time>', 'the later point (default: the newest)')
    .option('--json', 'one JSON object per path');
  addReadingOptions(diff);
  diff.addHelpText(
    'after',
    `
Each line: + added, - removed, M content changed, U metadata only (mode, owner,
mtime), T type changed; then a count of each.

Examples:
  PASSPHRASE=secret tapechain diff --from 1W /mnt/backup/home
  PASSPHRASE=secret tapechain diff --from 2026-11-01 --to 2026-11-15 --json s3://bucket/home`,
  );
  diff.action(async (target: string, flags: DiffFlags) => {
    const from = parseUserTime(flags.from);
    const to = flags.to === undefined ? undefined : parseUserTime(flags.to);
    const cache = cacheFor(target, flags, io);
    const keys = await readingKeys(flags, io, undefined, cache);
    const counts: Record<string, number> = { added: 0, removed: 0, content: 0, metadata: 0, type: 0 };
    await whileReading(target, flags, io, 'diff', async (backend) => {
      const onPicked = (a: { end: number }[], b: { end: number }[]) => io.stderr(`comparing ${localTime(a[a.length - 1]!.end)} with ${localTime(b[b.length - 1]!.end)}\n`);
      for await (const d of diffPoints({ backend, keys, cache, from, ...(to !== undefined ? { to } : {}), onPicked })) {
        io.signal?.throwIfAborted();
        counts[d.change]!++;
        if (flags.json) io.stdout(JSON.stringify({ change: d.change, ...jsonName('path', indexToPath(d.index)), ...headerJson(d.header) }) + '\n');
        else io.stdout(`${DIFF_MARK[d.change]}  ${escapeName(indexToPath(d.index))}\n`);
      }
    });
    if (!flags.json) {
      io.stdout(`${counts['added']} added, ${counts['removed']} removed, ${counts['content']} changed, ${counts['metadata']} metadata only, ${counts['type']} type changed\n`);
      io.stderr(NO_VOLUME_NOTE);
    }
    reportUnverified(keys, io, setExit);
  });
}
