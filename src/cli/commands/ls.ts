import type { Command } from 'commander';
import { listFiles } from '../../inspect/list-files.js';
import { indexToPath } from '../../volume/entry-name.js';
import { escapeName } from '../../util/escape-name.js';
import { aclKinds, headerJson, jsonName } from '../format.js';
import type { TarHeader } from '../../volume/tar-header.js';
import type { CliIo } from '../io.js';
import { addTimeOption, cacheFor, onPickedFor, timeFrom, type CommonFlags, whileReading, addReadingOptions, TARGET_HELP } from '../common.js';
import { readingKeys, reportUnverified } from '../keys.js';

interface LsFlags extends CommonFlags {
  json?: boolean;
  long?: boolean;
}

const TYPE_CHAR: Record<string, string> = { file: '-', directory: 'd', symlink: 'l', fifo: 'p', char: 'c', block: 'b' };

function modeString(type: string, mode: number): string {
  const rwx = ['---', '--x', '-w-', '-wx', 'r--', 'r-x', 'rw-', 'rwx'];
  return (TYPE_CHAR[type] ?? '?') + rwx[(mode >> 6) & 7]! + rwx[(mode >> 3) & 7]! + rwx[mode & 7]!;
}

/**
 * `ls -l`'s columns before the time: mode (`+`: ACLs), links, owner, group, size; `?`
 * where the set does not say (duplicity's sets record no link count or file size).
 */
function longColumns(h: TarHeader): string {
  const names = h.inode?.xattrs?.names ?? [];
  const mode = modeString(h.type, h.mode) + (aclKinds(names).length > 0 ? '+' : ' ');
  const links = h.inode ? String(h.inode.nlink) : '?';
  const size = h.type === 'file' ? (h.fileSize !== undefined ? String(h.fileSize) : '?') : '0';
  return `${mode} ${links.padStart(2)} ${(h.uname || String(h.uid)).padEnd(8)} ${(h.gname || String(h.gid)).padEnd(8)} ${size.padStart(10)}`;
}

function xattrNote(h: TarHeader): string {
  const names = h.inode?.xattrs?.names ?? [];
  return names.length > 0 ? `  [${names.join(' ')}]` : '';
}

export function registerLs(program: Command, io: CliIo, setExit: (c: number) => void): void {
  const cmd = program
    .command('ls')
    .description('list the files of the backup at TARGET (latest state, or at --time)')
    .argument('<target>', TARGET_HELP)
    .option('-l, --long', 'also link count (+ after the mode: the entry has ACLs), owner, size and extended attribute names')
    .option('--json', 'one JSON object per line (names with special bytes also as path_escaped; links, xattrs and acl where recorded)');
  addTimeOption(cmd, 'list the state');
  addReadingOptions(cmd);
  cmd
    .addHelpText('after', '\nExamples:\n  PASSPHRASE=secret tapechain ls /mnt/backup/home\n  PASSPHRASE=secret tapechain ls --time 2W --json /mnt/backup/home')
    .action(async (target: string, flags: LsFlags) => {
      const time = timeFrom(flags);
      const cache = cacheFor(target, flags, io);
      const keys = await readingKeys(flags, io, undefined, cache);
      await whileReading(target, flags, io, 'ls', async (backend) => {
      for await (const e of listFiles({
        backend,
        keys,
        cache,
        ...(time !== undefined ? { time } : {}),
        onPicked: onPickedFor(io, flags, time),
      })) {
        io.signal?.throwIfAborted();
        const h = e.header;
        const raw = indexToPath(e.index);
        if (flags.json) {
          io.stdout(JSON.stringify({ ...jsonName('path', raw), ...headerJson(h) }) + '\n');
        } else {
          const when = new Date(h.mtime * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '');
          const columns = flags.long ? longColumns(h) : modeString(h.type, h.mode);
          io.stdout(`${columns} ${when} ${escapeName(raw)}${h.type === 'symlink' ? ` -> ${escapeName(h.linkname)}` : ''}${flags.long ? xattrNote(h) : ''}\n`);
        }
      }
      });
      reportUnverified(keys, io, setExit);
    });
}
