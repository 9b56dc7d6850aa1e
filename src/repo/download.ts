/** A stored file copied to a local temp file (0600), for readers that need it on disk. */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
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
