/**
 * How two stored versions of a path differ, judged from signature files only: the type,
 * the symlink target or device numbers, and for regular files the librsync signature
 * (a digest of it) and the file size where tapechain recorded it; then the metadata,
 * extended attributes included where both versions recorded them.
 */
import { createHash } from 'node:crypto';
import type { StateEntry } from '../repo/signature-state.js';
import type { TarHeader } from '../volume/tar-header.js';

export type Difference = 'type' | 'content' | 'metadata' | 'none';

/** One version of a path as find and diff compare it. */
export interface StoredVersion {
  header: TarHeader;
  /** SHA-256 of a regular file's signature (undefined for other types). */
  digest?: string;
}

/** Reads an entry's version (its signature digested): call before the stream moves on. */
export async function storedVersion(e: StateEntry): Promise<StoredVersion> {
  if (e.kind !== 'signature') return { header: e.header };
  const h = createHash('sha256');
  for await (const c of e.signatureStream()) h.update(c);
  return { header: e.header, digest: h.digest('hex') };
}

export function difference(a: StoredVersion, b: StoredVersion): Difference {
  const [x, y] = [a.header, b.header];
  if (x.type !== y.type) return 'type';
  if (x.type === 'symlink' && !x.linkname.equals(y.linkname)) return 'content';
  if ((x.type === 'char' || x.type === 'block') && (x.devmajor !== y.devmajor || x.devminor !== y.devminor)) return 'content';
  if (x.type === 'file') {
    if (x.fileSize !== undefined && y.fileSize !== undefined && x.fileSize !== y.fileSize) return 'content';
    if (a.digest !== b.digest) return 'content';
  }
  if (x.mode !== y.mode || x.uid !== y.uid || x.gid !== y.gid || x.mtime !== y.mtime || x.uname !== y.uname || x.gname !== y.gname) return 'metadata';
  if (x.inode && y.inode && x.inode.xattrs?.digest !== y.inode.xattrs?.digest) return 'metadata';
  return 'none';
}

/** The difference of two entries, reading their signatures only when the headers leave it open. */
export async function entryDifference(x: StateEntry, y: StateEntry): Promise<Difference> {
  const [a, b] = [x.header, y.header];
  if (a.type === 'file' && b.type === 'file' && a.fileSize !== undefined && b.fileSize !== undefined && a.fileSize !== b.fileSize) return 'content';
  return difference(await storedVersion(x), await storedVersion(y));
}
