/**
 * The set's manifest: its head (host, source, the volumes with their ranges and SHA-1)
 * and the file list, written in one pass through the encoder, and a plain copy beside
 * it for the local cache.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { fileLine, manifestHead, type Manifest, type VolumeInfo } from '../chain/manifest.js';
import type { Transform } from 'node:stream';
import { EncodedFileWriter, type EncodedFileResult } from '../volume/encoded-file.js';
import type { Index } from '../volume/entry-name.js';
import type { FileList } from './file-list.js';

/** A stored volume as its manifest line describes it. */
export function manifestVolume(v: { number: number; start: Index; end: Index; startBlock?: number; endBlock?: number; sha1: string }): VolumeInfo {
  return {
    number: v.number,
    start: v.start,
    end: v.end,
    ...(v.startBlock !== undefined ? { startBlock: v.startBlock } : {}),
    ...(v.endBlock !== undefined ? { endBlock: v.endBlock } : {}),
    hashType: 'SHA1',
    hash: v.sha1,
  };
}

export interface ManifestFiles {
  /** The stored form (encoded by `transforms`). */
  path: string;
  /** The plain copy, for the cache. */
  plainPath: string;
  transforms: Transform[];
  /** Also hash the stored form with SHA-256 (for a seal). */
  sha256: boolean;
}

/** Writes the manifest of `head` and `files` to both files; returns the stored form's result. */
export async function writeManifest(to: ManifestFiles, head: Omit<Manifest, 'files'>, files: FileList): Promise<EncodedFileResult> {
  const stored = new EncodedFileWriter(to.path, to.transforms, { sha256: to.sha256 });
  const plain = createWriteStream(to.plainPath, { flags: 'wx', mode: 0o600 });
  const plainDone = finished(plain);
  for await (const part of manifestParts(head, files)) {
    await stored.write(part);
    if (!plain.write(part)) await once(plain, 'drain');
  }
  plain.end();
  await plainDone;
  return stored.finish();
}

/** The manifest in pieces: its head, then the file list in batches of about 64 KiB. */
async function* manifestParts(head: Omit<Manifest, 'files'>, files: FileList): AsyncGenerator<Buffer> {
  yield manifestHead(head, files.count);
  let batch: Buffer[] = [];
  let size = 0;
  for await (const f of files.entries()) {
    const line = fileLine(f);
    batch.push(line);
    size += line.length;
    if (size >= 64 * 1024) {
      yield Buffer.concat(batch);
      batch = [];
      size = 0;
    }
  }
  if (batch.length) yield Buffer.concat(batch);
}
