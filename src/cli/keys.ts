/** Passphrase lookup: --passphrase-file, then PASSPHRASE (duplicity's), then TAPECHAIN_PASSPHRASE. */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import type { CliIo } from './io.js';

export interface KeyFlags {
  passphraseFile?: string;
}

export function findPassphrase(flags: KeyFlags, io: CliIo): Buffer | undefined {
  if (flags.passphraseFile) {
    try {
      // One trailing newline is not part of the passphrase (files made with echo).
      return Buffer.from(readFileSync(flags.passphraseFile, 'utf8').replace(/\r?\n$/, ''), 'utf8');
    } catch (e) {
      throw new ConfigError(`--passphrase-file ${flags.passphraseFile}: ${(e as Error).message}`, { cause: e });
    }
  }
  const v = io.env['PASSPHRASE'] ?? io.env['TAPECHAIN_PASSPHRASE'];
  return v === undefined || v === '' ? undefined : Buffer.from(v, 'utf8');
}
