/**
 * What a backup records of an entry's inode beside its signature (InodeState: ctime,
 * link count, a digest of its xattrs), and the test a later run makes with it: xattrs
 * are read again only for an entry whose ctime moved — setting an xattr or an ACL, or
 * `setcap`, moves it — so an unchanged tree costs no xattr calls.
 */
import { createHash } from 'node:crypto';
import { readXattrs, XattrError, type Xattr } from '../util/xattr.js';
import type { InodeState } from '../volume/tar-header.js';
import type { StatLike } from './entry-meta.js';

/** Failures that mean "no xattrs here": the filesystem or platform has none, or the path is gone (its read reports that). */
const NONE = new Set(['ENOTSUP', 'UNSUPPORTED', 'ENOENT']);

export function xattrDigest(xattrs: Xattr[]): string {
  const h = createHash('sha256');
  for (const x of xattrs) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(x.value.length);
    h.update(x.name).update('\0').update(len).update(x.value);
  }
  return h.digest('hex').slice(0, 32);
}

export function inodeState(st: StatLike & { nlink: number }, xattrs: Xattr[]): InodeState {
  return {
    ctime: st.ctimeMs,
    nlink: st.nlink,
    ...(xattrs.length > 0 ? { xattrs: { digest: xattrDigest(xattrs), names: xattrs.map((x) => x.name) } } : {}),
  };
}

/**
 * A path's xattrs as a backup stores them: [] where there can be none; a failure to
 * read them is thrown (the caller warns, and records no state, so the next run tries
 * again).
 */
export async function storedXattrs(p: Buffer): Promise<Xattr[]> {
  try {
    return await readXattrs(p);
  } catch (e) {
    if (e instanceof XattrError && NONE.has(e.code)) return [];
    throw e;
  }
}

/**
 * Whether the inode is as `old` recorded it: same link count (a file linked or
 * unlinked elsewhere changes how restore must link it) and same xattrs. Without a
 * record (duplicity's sets, xattrs not read then) an entry with no xattrs counts as
 * unchanged and one with xattrs as changed, so they are stored once. When the xattrs
 * cannot be read now, the recorded state stands.
 */
export async function inodeUnchanged(old: InodeState | undefined, p: Buffer, st: StatLike & { nlink: number }): Promise<boolean> {
  if (old && st.isFile() && old.nlink !== st.nlink) return false;
  if (old && old.ctime === st.ctimeMs) return true;
  const now = await liveXattrDigest(p);
  if (now === null) return true;
  return old ? now === old.xattrs?.digest : now === undefined;
}

/**
 * The digest of a path's xattrs as they are now (undefined: it has none), or null when
 * they cannot be read. Synchronous calls: on the thread pool each cost the main thread
 * 60 µs in napi's task handling, against 8 µs for the call itself.
 */
export async function liveXattrDigest(p: Buffer): Promise<string | undefined | null> {
  try {
    const now = await storedXattrs(p);
    return now.length > 0 ? xattrDigest(now) : undefined;
  } catch {
    return null;
  }
}
