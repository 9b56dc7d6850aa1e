import type { Command } from 'commander';
import { listFiles } from '../../inspect/list-files.js';
import { indexToPath } from '../../volume/entry-name.js';
import { escapeName } from '../../util/escape-name.js';
import { jsonName } from '../format.js';
import type { CliIo } from '../io.js';
import { addTimeOption, cacheFor, onPickedFor, timeFrom, type CommonFlags, whileReading, addReadingOptions } from '../common.js';
import { readingKeys, reportUnverified } from '../keys.js';

interface LsFlags extends CommonFlags {
  json?: boolean;
}

const TYPE_CHAR: Record<string, string> = { file: '-', directory: 'd', symlink: 'l', fifo: 'p', char: 'c', block: 'b' };

function modeString(type: string, mode: number): string {
  const rwx = ['---', '--x', '-w-', '-wx', 'r--', 'r-x', 'rw-', 'rwx'];
  return (TYPE_CHAR[type] ?? '?') + rwx[(mode >> 6) & 7]! + rwx[(mode >> 3) & 7]! + rwx[mode & 7]!;
}

export function registerLs(program: Command, io: CliIo, setExit: (c: number) => void): void {
  const cmd = program
    .command('ls')
    .description('list the files of the backup at TARGET (latest state, or at --time)')
    .argument('<target>', 'target: a path, file:///abs/path or s3://bucket/prefix')
    .option('--json', 'one JSON object per line (names with special bytes also as path_escaped)');
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
          io.stdout(JSON.stringify({ ...jsonName('path', raw), type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime, ...(h.type === 'symlink' ? jsonName('target', h.linkname) : {}) }) + '\n');
        } else {
          const when = new Date(h.mtime * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '');
          io.stdout(`${modeString(h.type, h.mode)} ${when} ${escapeName(raw)}${h.type === 'symlink' ? ` -> ${escapeName(h.linkname)}` : ''}\n`);
        }
      }
      });
      reportUnverified(keys, io, setExit);
    });
}
