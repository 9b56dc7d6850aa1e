/** Tar headers from lstat results, as duplicity records them. */
import { constants as fsc } from 'node:fs';
import { groupName, userName } from '../util/owners.js';
import type { EntryType, TarHeader } from '../volume/tar-header.js';

/** The fields of an lstat a stored entry needs (type and mode, owner, size, times, identity, device). */
const STAT_FIELDS = ['mode', 'uid', 'gid', 'size', 'mtimeMs', 'ctimeMs', 'ino', 'dev', 'rdev', 'nlink', 'blocks'] as const;
export type StatFields = { readonly [K in (typeof STAT_FIELDS)[number]]: number };

/** Those fields with fs.Stats' type tests: an fs.Stats, or an EntryStat. */
export interface StatLike extends StatFields {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}

// The fields, declared once (STAT_FIELDS) and set by the constructor.
export interface EntryStat extends StatFields {}

/**
 * The fields alone, with the type tests: what crosses to a worker thread (a Stats would
 * bring four Dates and unused numbers, and arrives as a plain object).
 */
export class EntryStat implements StatLike {
  constructor(st: StatFields) {
    for (const k of STAT_FIELDS) (this as unknown as Record<string, number>)[k] = st[k];
  }

  #type(t: number): boolean {
    return (this.mode & fsc.S_IFMT) === t;
  }
  isFile(): boolean {
    return this.#type(fsc.S_IFREG);
  }
  isDirectory(): boolean {
    return this.#type(fsc.S_IFDIR);
  }
  isSymbolicLink(): boolean {
    return this.#type(fsc.S_IFLNK);
  }
  isFIFO(): boolean {
    return this.#type(fsc.S_IFIFO);
  }
  isCharacterDevice(): boolean {
    return this.#type(fsc.S_IFCHR);
  }
  isBlockDevice(): boolean {
    return this.#type(fsc.S_IFBLK);
  }
}

export function entryType(st: StatLike): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return undefined;
}

/** Whole-second mtime, as duplicity keeps it. */
export function mtimeSeconds(st: Pick<StatLike, 'mtimeMs'>): number {
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

export function headerFromStat(name: Buffer, st: StatLike, type: EntryType, linkname: Buffer = Buffer.alloc(0)): TarHeader {
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
