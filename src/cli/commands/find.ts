import type { Command } from 'commander';
import { parseUserTime, formatTimestamp, localTime } from '../../chain/time.js';
import { UsageError } from '../../errors.js';
import { findVersions, type FoundVersion } from '../../inspect/find.js';
import { escapeName } from '../../util/escape-name.js';
import { pathMatcher } from '../../util/glob.js';
import { indexToPath, type Index } from '../../volume/entry-name.js';
import type { TarHeader } from '../../volume/tar-header.js';
import { bytes, headerJson, jsonName, NO_VOLUME_NOTE } from '../format.js';
import type { CliIo } from '../io.js';
import { cacheFor, whileReading, type CommonFlags, addReadingOptions, TARGET_HELP } from '../common.js';
import { readingKeys, reportUnverified } from '../keys.js';

interface FindFlags extends CommonFlags {
  timeRange?: string;
  ignoreCase?: boolean;
  json?: boolean;
}

/** `A..B`, `A..` or `..B`: each side a --time. */
function timeRange(s: string | undefined): { from?: number; to?: number } {
  if (s === undefined) return {};
  const m = /^(.*)\.\.(.*)$/.exec(s);
  if (!m || (m[1] === '' && m[2] === '')) throw new UsageError(`--time-range: expected A..B, A.. or ..B (each a time as --time takes), got "${s}"`);
  const from = m[1] ? parseUserTime(m[1]) : undefined;
  const to = m[2] ? parseUserTime(m[2]) : undefined;
  if (from !== undefined && to !== undefined && from > to) throw new UsageError(`--time-range: ${m[1]} is after ${m[2]}`);
  return { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
}

/** Size of a version: a signature entry's recorded file size (unknown in duplicity's sets). */
function sizeOf(h: TarHeader): number | undefined {
  return h.type === 'file' ? h.fileSize : undefined;
}

const pathText = (index: Index) => escapeName(indexToPath(index));

function versionLine(v: FoundVersion): string {
  const size = sizeOf(v.header);
  const change = v.what ? `${v.change} (${v.what})` : v.change;
  return `${localTime(v.set.end)}  ${change.padEnd(20)} ${v.header.type.padEnd(9)} ${(size === undefined ? '-' : bytes(size)).padStart(10)}  ${localTime(v.header.mtime)}  ${pathText(v.index)}\n`;
}

export function registerFind(program: Command, io: CliIo, setExit: (c: number) => void): void {
  const find = program
    .command('find')
    .description('every stored version of the paths matching PATTERN, across all sets and chains (no volume is read)')
    .argument('<pattern>', 'a glob (* ? [..] **): with a "/", matched against the whole path; without, against the last component')
    .argument('<target>', TARGET_HELP)
    .option('--time-range <A..B>', 'only versions stored between A and B (either may be left out), plus the matching paths that were there at A and did not change')
    .option('-i, --ignore-case', 'match the patterns without regard to case')
    .option('--json', 'one JSON object per version');
  addReadingOptions(find);
  find.addHelpText(
    'after',
    `
Each line: the set's time, the change (new, changed (content|metadata|type),
deleted, or unchanged: there when --time-range began and not changed in it), the
type, the size, the mtime and the path. Sizes are known for sets tapechain wrote.

Examples:
  PASSPHRASE=secret tapechain find '*.conf' /mnt/backup/etc
  PASSPHRASE=secret tapechain find 'home/ann/**/report*.odt' --time-range 2026-01-01..2026-03-31 s3://bucket/home
  PASSPHRASE=secret tapechain find --json passwd /mnt/backup/etc`,
  );
  find.action(async (pattern: string, target: string, flags: FindFlags) => {
    const range = timeRange(flags.timeRange);
    const match = pathMatcher([pattern], flags.ignoreCase ?? false);
    const cache = cacheFor(target, flags, io);
    const keys = await readingKeys(flags, io, undefined, cache);
    let found = 0;
    await whileReading(target, flags, io, 'find', async (backend) => {
      for await (const v of findVersions({ backend, keys, cache, match: (i) => match(indexToPath(i).toString('utf8')), ...range })) {
        io.signal?.throwIfAborted();
        found++;
        if (flags.json) io.stdout(JSON.stringify({ time: formatTimestamp(v.set.end), set: v.set.type, change: v.change, ...(v.what ? { what: v.what } : {}), ...jsonName('path', indexToPath(v.index)), ...headerJson(v.header) }) + '\n');
        else io.stdout(versionLine(v));
      }
    });
    if (!flags.json) io.stderr(`${found} version(s) found ${NO_VOLUME_NOTE}`);
    reportUnverified(keys, io, setExit);
  });
}
