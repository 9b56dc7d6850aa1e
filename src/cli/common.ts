/** Options and helpers shared by several commands. */
import type { Command } from 'commander';
import { ArchiveCache, cacheName, defaultArchiveDir } from '../cache/archive-cache.js';
import * as path from 'node:path';
import { parseUserTime } from '../chain/time.js';
import type { DecryptKeys } from '../crypto/index.js';
import type { CliIo } from './io.js';
import { findPassphrase } from './keys.js';

export interface CommonFlags {
  passphraseFile?: string;
  archiveDir?: string;
  time?: string;
}

export function addKeyOptions(cmd: Command): Command {
  return cmd.option('--passphrase-file <file>', 'read the passphrase from FILE (else env PASSPHRASE or TAPECHAIN_PASSPHRASE)');
}

export function addCacheOption(cmd: Command): Command {
  return cmd.option('--archive-dir <dir>', 'local cache of manifests and signatures (default: $XDG_CACHE_HOME/tapechain)');
}

export function addTimeOption(cmd: Command, what: string): Command {
  return cmd.option('-t, --time <time>', `${what} at TIME: now, epoch seconds, 20261121T232154Z, 2026-11-21[T10:00:00[+01:00]], or an interval ago (3D, 2W, 1h30m)`);
}

export function keysFrom(flags: CommonFlags, io: CliIo): DecryptKeys {
  const pass = findPassphrase(flags, io);
  return pass ? { passphrase: pass } : {};
}

/** The cache for a target, keyed by the target string as typed (duplicity's rule). */
export function cacheFor(target: string, flags: CommonFlags, io: CliIo): ArchiveCache {
  const dir = flags.archiveDir ?? defaultArchiveDir(io.env);
  return new ArchiveCache(path.join(dir, cacheName(target)));
}

export function timeFrom(flags: CommonFlags): number | undefined {
  return flags.time === undefined ? undefined : parseUserTime(flags.time);
}
