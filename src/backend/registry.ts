/** Maps target URLs to backends: `file:///abs/path` or a plain path; more schemes later. */
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import type { Backend } from './backend.js';
import { FileBackend } from './file.js';

export function openBackend(target: string): Backend {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(target);
  if (!m) return new FileBackend(target);
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'file') {
    try {
      return new FileBackend(fileURLToPath(target));
    } catch (e) {
      throw new ConfigError(`bad target URL "${target}": ${(e as Error).message}`, { cause: e });
    }
  }
  throw new ConfigError(`unsupported target scheme "${scheme}://" in ${target} (supported: file://, plain paths)`);
}
