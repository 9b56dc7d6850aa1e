/** A stored file copied to a local temp file (0600), for readers that need it on disk. */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReadBackend } from '../backend/backend.js';
import { pipeline } from 'node:stream/promises';
import { InternalError, withContext } from '../errors.js';
import type { VolumeRef } from '../volume/set-reader.js';

/** Copies `ref`'s stored bytes to `file`; a failed copy leaves no file and names the volume. */
export async function downloadVolume(ref: VolumeRef, file: string, signal?: AbortSignal): Promise<void> {
  try {
    await pipeline(await ref.open(), createWriteStream(file, { mode: 0o600, flags: 'wx' }), signal ? { signal } : {});
  } catch (e) {
    await rm(file, { force: true });
    throw withContext(e, { file: ref.name });
  }
}

/** Whether a target's files are read in place: a local directory, its reads not held to a rate. */
export function readsInPlace(backend: ReadBackend): boolean {
  const { localPath, readsLimited } = backend.properties;
  return localPath !== undefined && !readsLimited;
}

/** The stored file of a volume when the target's files are read in place, else undefined. */
export function localVolumeFile(backend: ReadBackend, name: string): string | undefined {
  return readsInPlace(backend) ? join(backend.properties.localPath!, name) : undefined;
}

/**
 * Runs `f` with a file holding the volume's stored bytes: the target's own file when
 * it is read in place, else a download to `dir`/`name` (a temp directory), removed after.
 */
export async function withVolumeFile<T>(backend: ReadBackend, ref: VolumeRef, at: { dir: string | undefined; name: string }, signal: AbortSignal | undefined, f: (file: string) => Promise<T>): Promise<T> {
  const local = localVolumeFile(backend, ref.name);
  if (local) return f(local);
  if (at.dir === undefined) throw new InternalError(`no temp directory to download ${ref.name} to`);
  const temp = join(at.dir, at.name);
  try {
    await downloadVolume(ref, temp, signal);
    return await f(temp);
  } finally {
    await rm(temp, { force: true });
  }
}
