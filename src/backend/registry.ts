/**
 * Maps target URLs to backends (restic's location registry): `file:///abs/path` or a
 * plain path for the local backend, `s3://bucket/prefix` for S3-compatible storage.
 * Remote backends come wrapped with the retry and concurrency-limit wrappers.
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, UsageError } from '../errors.js';
import type { Backend } from './backend.js';
import { FileBackend } from './file.js';
import { ThrottledBackend, type RateLimits } from './throttle.js';
import { LimitBackend, RetryBackend, type RetryOptions } from './wrappers.js';

export interface TargetOptions {
  s3?: { endpoint?: string; region?: string; virtualHost?: boolean; credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } };
  retry?: RetryOptions;
  /** Bandwidth limits for the target's transfers (bytes per second). @default none */
  limits?: RateLimits;
}

/** Opens a target; the S3 SDK is loaded only for s3:// targets (~22 MB at import). */
const FORMS = 'file:///abs/path, s3://bucket/prefix, or a plain path (./name for one with a colon)';

export async function openBackend(target: string, o: TargetOptions = {}): Promise<Backend> {
  const b = await openUnlimited(target, o);
  return o.limits?.upload || o.limits?.download ? new ThrottledBackend(b, o.limits) : b;
}

async function openUnlimited(target: string, o: TargetOptions): Promise<Backend> {
  if (target.trim() === '') throw new UsageError(`empty target: give ${FORMS}`);
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(target);
  if (!m) {
    // `s3:bucket`, `s3:/bucket` or `file:/srv/x` would otherwise become local directories.
    const scheme = /^([^/]*?):/.exec(target);
    if (scheme) throw new UsageError(`"${target}" is not a target URL this tool knows ("${scheme[1]}:" without "//"): give ${FORMS}`);
    return localBackend(target);
  }
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'file') {
    // duplicity refuses file:// without a path too: it would back up into /
    if (/^file:\/\/(localhost)?$/i.test(target)) throw new UsageError(`"${target}" names no directory: give file:///abs/path`);
    try {
      return localBackend(fileURLToPath(target));
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new UsageError(`bad target URL "${target}": ${(e as Error).message} (expected ${FORMS})`, { cause: e });
    }
  }
  if (scheme === 's3') {
    const { S3Backend, parseS3Url } = await import('./s3.js');
    const { bucket, prefix } = parseS3Url(target);
    const s3 = new S3Backend({ bucket, prefix, ...o.s3 });
    return new RetryBackend(new LimitBackend(s3), o.retry);
  }
  throw new ConfigError(`unsupported target scheme "${scheme}://" in ${target} (supported: file://, s3://, plain paths)`);
}

/** A local target: a directory, or a path where one can be made; a file there is a configuration error. */
function localBackend(dir: string): FileBackend {
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new ConfigError(`target ${dir}: a part of the path is a file, not a directory`);
    if (code !== 'ENOENT') throw new ConfigError(`target ${dir}: ${code ?? (e as Error).message}`, { cause: e });
  }
  if (st && !st.isDirectory()) throw new ConfigError(`target ${dir}: is a file, not a directory`);
  return new FileBackend(dir);
}
