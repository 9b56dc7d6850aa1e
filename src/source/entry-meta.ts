/** Tar headers from lstat results, as duplicity records them. */
import { constants as fsc } from 'node:fs';
import { groupName, userName } from '../util/owners.js';
import type { EntryType, TarHeader } from '../volume/tar-header.js';

/** What a stored entry needs of an lstat: an fs.Stats, or an EntryStat. */
export interface StatLike {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly dev: number;
  readonly rdev: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}

/**
 * Those fields alone, with fs.Stats' type tests: what crosses to a worker thread (a
 * Stats would bring four Dates and unused numbers, and arrives as a plain object).
 */
export class EntryStat implements StatLike {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly dev: number;
  readonly rdev: number;

  constructor(st: Omit<StatLike, `is${string}`>) {
    this.mode = st.mode;
    this.uid = st.uid;
    this.gid = st.gid;
    this.size = st.size;
    this.mtimeMs = st.mtimeMs;
    this.ctimeMs = st.ctimeMs;
    this.ino = st.ino;
    this.dev = st.dev;
    this.rdev = st.rdev;
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
