/** A stored file copied to a local temp file (0600), for readers that need it on disk. */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReadBackend } from '../backend/backend.js';
import { pipeline } from 'node:stream/promises';
import { withContext } from '../errors.js';
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
