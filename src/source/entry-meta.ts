/** Tar headers from lstat results, as duplicity records them. */
import type { Stats } from 'node:fs';
import { groupName, userName } from '../util/owners.js';
import type { EntryType, TarHeader } from '../volume/tar-header.js';

export function entryType(st: Stats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return undefined;
}

/** Whole-second mtime, as duplicity keeps it. */
export function mtimeSeconds(st: Stats): number {
  // Python's int(): toward zero, also before 1970
  return Math.trunc(st.mtimeMs / 1000);
}

/** Linux's dev_t layout (glibc's gnu_dev_major/minor). */
export function devMajor(rdev: number): number {
  return (Math.floor(rdev / 256) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}
export function devMinor(rdev: number): number {
  return (rdev & 0xff) | (Math.floor(rdev / 4096) & ~0xff);
}

export function headerFromStat(name: Buffer, st: Stats, type: EntryType, linkname: Buffer = Buffer.alloc(0)): TarHeader {
  const rdev = st.rdev;
  const isDev = type === 'char' || type === 'block';
  return {
    name,
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    uname: userName(st.uid),
    gname: groupName(st.gid),
    size: 0,
    mtime: mtimeSeconds(st),
    linkname,
    devmajor: isDev ? devMajor(rdev) : 0,
    devminor: isDev ? devMinor(rdev) : 0,
  };
}

/** The header of a deletion entry: type file, mode 0, everything else empty. */
export function deletedHeader(name: Buffer): TarHeader {
  return { name, type: 'file', mode: 0, uid: 0, gid: 0, uname: '', gname: '', size: 0, mtime: 0, linkname: Buffer.alloc(0), devmajor: 0, devminor: 0 };
}
