/**
 * TAR header encoding and decoding at the byte level.
 *
 * Names are raw bytes (Buffers), never JS strings: file names on Linux are byte strings,
 * and duplicity stores non-UTF-8 names as pax `hdrcharset=BINARY` records. The writer
 * emits what Python's tarfile (duplicity's writer) emits: ustar headers plus a pax header
 * for long or non-ASCII values. The reader also accepts GNU long names, base-256
 * numbers and ustar prefix/name splits.
 */
import { FormatError } from '../errors.js';
import { sortXattrs, type Xattr } from '../util/xattr.js';
import { localGid, localUid } from '../util/owners.js';
import { ACL_ACCESS, ACL_DEFAULT, aclFromText, aclToText } from './posix-acl.js';

export const BLOCK = 512;
/** A block of zeros for padding entries; shared, so never written to. */
export const ZERO_BLOCK = Buffer.alloc(BLOCK);

export type EntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'char' | 'block';

export interface TarHeader {
  /** Entry name as raw bytes (directories end in `/`). */
  name: Buffer;
  type: EntryType;
  /** Permission bits incl. setuid/setgid/sticky (`st_mode & 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Byte length of this entry's data. */
  size: number;
  /** Whole seconds since the epoch. */
  mtime: number;
  /** Symlink target bytes (empty otherwise). */
  linkname: Buffer;
  devmajor: number;
  devminor: number;
  /**
   * A signature entry's file size (its `size` is the signature's): tapechain writes it
   * as a vendor pax record, which duplicity and tar pass over. Unknown in duplicity's sets.
   */
  fileSize?: number;
  /**
   * A regular file's first name in the tree when this is a later one of the same file
   * (hard links): restore links them, duplicity and tar restore the content stored under
   * each. A vendor pax record.
   */
  hardlinkTo?: Buffer;
  /**
   * Extended attributes (POSIX ACLs and file capabilities among them), sorted by name:
   * `SCHILY.xattr.NAME` records as GNU tar and star write them, plus `SCHILY.acl.*`
   * for the ACLs; duplicity passes over them. On a volume entry (its first chunk).
   */
  xattrs?: Xattr[];
  /** What a signature-file entry written by tapechain knew of the inode (see InodeState). */
  inode?: InodeState;
}

/**
 * The inode beside a signature-file entry, in vendor records duplicity passes over:
 * the change time and link count the walk saw and a digest of the xattrs then read.
 * A later run that sees the same ctime knows the xattrs are unchanged without reading
 * them; absent (duplicity's sets, or xattrs not read) means unknown.
 */
export interface InodeState {
  /** lstat ctimeMs. */
  ctime: number;
  nlink: number;
  /** Digest and names of the xattrs; absent: none. */
  xattrs?: { digest: string; names: string[] };
}

const TYPE_FLAG: Record<EntryType, number> = {
  file: 0x30,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  directory: 0x35,
  fifo: 0x36,
};

const isAscii = (b: Buffer | string): boolean => {
  if (typeof b === 'string') return /^[\x00-\x7f]*$/.test(b);
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) return false;
  return true;
};

function isUtf8(b: Buffer): boolean {
  // Round trip: invalid sequences decode to U+FFFD and re-encode differently.
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

function writeOctal(buf: Buffer, off: number, len: number, value: number): void {
  // `len - 1` digits and a NUL, as Python's tarfile does for ustar.
  const s = Math.max(0, Math.trunc(value)).toString(8).padStart(len - 1, '0');
  buf.write(s, off, len - 1, 'ascii');
  buf[off + len - 1] = 0;
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "<len> key=value\n": the length counts itself, so find the fixed point.
  const body = value.length + Buffer.byteLength(key) + 3; // ' ', '=', '\n'
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`, 'utf8'), value, Buffer.from('\n')]);
}

function placeholder(b: Buffer, max: number): Buffer {
  const out = Buffer.from(b);
  for (let i = 0; i < out.length; i++) if (out[i]! >= 0x80) out[i] = 0x3f; // '?'
  return out.subarray(0, max);
}

const MAX_OCTAL_7 = 0o7777777; // 8^7 - 1
/** The pax record that carries an mtime before 1970 (see encodeHeader). */
export const NEGATIVE_MTIME_KEY = 'TAPECHAIN.mtime';
/** The pax record that carries a signature entry's file size. */
export const FILE_SIZE_KEY = 'TAPECHAIN.size';
/** The pax record that names a later name's first name (hard links). */
export const HARDLINK_KEY = 'TAPECHAIN.hardlink';
/** The records of InodeState. */
export const CTIME_KEY = 'TAPECHAIN.ctime';
export const NLINK_KEY = 'TAPECHAIN.nlink';
export const XATTR_STATE_KEY = 'TAPECHAIN.xattrs';
/** GNU tar's and star's prefix of an xattr record, and their ACL records. */
export const XATTR_PREFIX = 'SCHILY.xattr.';
export const ACL_TEXT_KEYS: Record<string, string> = { [ACL_ACCESS]: 'SCHILY.acl.access', [ACL_DEFAULT]: 'SCHILY.acl.default' };
const MAX_OCTAL_11 = 0o77777777777; // 8^11 - 1

function encodeUstar(h: TarHeader, name: Buffer, linkname: Buffer, typeflag: number, pax: Set<string>): Buffer {
  const b = Buffer.allocUnsafe(BLOCK).fill(0); // from the buffer pool: one per entry
  name.copy(b, 0, 0, Math.min(100, name.length));
  writeOctal(b, 100, 8, h.mode & 0o7777);
  writeOctal(b, 108, 8, pax.has('uid') ? 0 : h.uid);
  writeOctal(b, 116, 8, pax.has('gid') ? 0 : h.gid);
  writeOctal(b, 124, 12, pax.has('size') ? 0 : h.size);
  writeOctal(b, 136, 12, pax.has('mtime') ? 0 : Math.max(0, h.mtime));
  b.fill(0x20, 148, 156);
  b[156] = typeflag;
  linkname.copy(b, 157, 0, Math.min(100, linkname.length));
  b.write('ustar\x0000', 257, 8, 'latin1');
  if (!pax.has('uname')) b.write(h.uname, 265, 32, 'ascii');
  if (!pax.has('gname')) b.write(h.gname, 297, 32, 'ascii');
  if (h.type === 'char' || h.type === 'block') {
    writeOctal(b, 329, 8, h.devmajor);
    writeOctal(b, 337, 8, h.devminor);
  }
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  // 6 octal digits, NUL, space: Python's layout.
  b.write(sum.toString(8).padStart(6, '0'), 148, 6, 'ascii');
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

/**
 * Encodes one entry's header: a 512-byte ustar block, preceded by a pax header and its
 * records when a value does not fit ustar (long or non-ASCII names, big numbers).
 */
export function encodeHeader(h: TarHeader): Buffer {
  const records: Buffer[] = [];
  const paxKeys = new Set<string>();
  const binary = !isUtf8(h.name) || !isUtf8(h.linkname);
  if (h.name.length > 100 || !isAscii(h.name)) {
    paxKeys.add('path');
    records.push(paxRecord('path', h.name));
  }
  if (h.linkname.length > 100 || !isAscii(h.linkname)) {
    paxKeys.add('linkpath');
    records.push(paxRecord('linkpath', h.linkname));
  }
  for (const k of ['uname', 'gname'] as const) {
    if (h[k].length > 32 || !isAscii(h[k])) {
      paxKeys.add(k);
      records.push(paxRecord(k, Buffer.from(h[k], 'utf8')));
    }
  }
  for (const [k, max] of [['uid', MAX_OCTAL_7], ['gid', MAX_OCTAL_7], ['size', MAX_OCTAL_11], ['mtime', MAX_OCTAL_11]] as const) {
    if (h[k] > max) {
      paxKeys.add(k);
      records.push(paxRecord(k, Buffer.from(String(h[k]))));
    }
  }
  if (h.mtime < 0) {
    // Before 1970. duplicity 0.8 crashes restoring a negative mtime (path.py names a
    // missing attribute in its warning), so the standard field keeps 0 — what duplicity
    // restores — and a vendor record, which tarfile and GNU tar pass over, the truth.
    records.push(paxRecord(NEGATIVE_MTIME_KEY, Buffer.from(String(h.mtime))));
  }
  if (h.fileSize !== undefined) records.push(paxRecord(FILE_SIZE_KEY, Buffer.from(String(h.fileSize))));
  if (h.hardlinkTo !== undefined) records.push(paxRecord(HARDLINK_KEY, h.hardlinkTo));
  if (h.xattrs) records.push(...xattrRecords(h.xattrs));
  if (h.inode) records.push(...inodeRecords(h.inode));
  const main = encodeUstar(h, placeholder(h.name, 100), placeholder(h.linkname, 100), TYPE_FLAG[h.type], paxKeys);
  if (records.length === 0) return main;
  if (binary) records.unshift(paxRecord('hdrcharset', Buffer.from('BINARY')));
  const data = Buffer.concat(records);
  const paxHeader = encodeUstar(
    { name: Buffer.alloc(0), type: 'file', mode: 0, uid: 0, gid: 0, uname: '', gname: '', size: data.length, mtime: 0, linkname: Buffer.alloc(0), devmajor: 0, devminor: 0 },
    Buffer.from('././@PaxHeader'),
    Buffer.alloc(0),
    0x78, // 'x'
    new Set(),
  );
  return Buffer.concat([paxHeader, data, Buffer.alloc(padding(data.length)), main]);
}

/** A name as GNU tar writes it in a record's keyword: `%` and `=` escaped. */
export function xattrKeyword(name: string): string {
  return XATTR_PREFIX + name.replace(/%/g, '%25').replace(/=/g, '%3D');
}

export function xattrNameFromKeyword(keyword: string): string {
  return keyword.slice(XATTR_PREFIX.length).replace(/%3D/g, '=').replace(/%25/g, '%');
}

function xattrRecords(xattrs: Xattr[]): Buffer[] {
  const records: Buffer[] = [];
  for (const x of xattrs) {
    const aclKey = ACL_TEXT_KEYS[x.name];
    if (aclKey) {
      try {
        records.push(paxRecord(aclKey, Buffer.from(aclToText(x.value))));
      } catch {
        // not an ACL the text form can say: the raw record below still carries it
      }
    }
    records.push(paxRecord(xattrKeyword(x.name), x.value));
  }
  return records;
}

/** Names in the xattr state record: comma-separated, with `%` and `,` escaped. */
const escapeListed = (n: string) => n.replace(/%/g, '%25').replace(/,/g, '%2C').replace(/\n/g, '%0A');
const unescapeListed = (n: string) => n.replace(/%0A/g, '\n').replace(/%2C/g, ',').replace(/%25/g, '%');

function inodeRecords(s: InodeState): Buffer[] {
  const records = [paxRecord(CTIME_KEY, Buffer.from(String(s.ctime)))];
  if (s.nlink !== 1) records.push(paxRecord(NLINK_KEY, Buffer.from(String(s.nlink))));
  if (s.xattrs) records.push(paxRecord(XATTR_STATE_KEY, Buffer.from([s.xattrs.digest, ...s.xattrs.names.map(escapeListed)].join(','))));
  return records;
}

/** A user or group name's id on this host. */
function localOwner(kind: 'user' | 'group', name: string): number | undefined {
  const id = kind === 'user' ? localUid(name, -1) : localGid(name, -1);
  return id >= 0 ? id : undefined;
}

/**
 * The xattrs in a pax header's records: `SCHILY.xattr.*`, and an ACL given only as
 * `SCHILY.acl.*` text (as other tools may write it) turned back into its xattr; an
 * ACL text that does not parse is left out.
 */
export function xattrsFromPax(pax: Map<string, Buffer>): Xattr[] | undefined {
  const out: Xattr[] = [];
  for (const [k, v] of pax) if (k.startsWith(XATTR_PREFIX)) out.push({ name: xattrNameFromKeyword(k), value: v });
  for (const [name, key] of Object.entries(ACL_TEXT_KEYS)) {
    const text = pax.get(key);
    if (text === undefined || out.some((x) => x.name === name)) continue;
    try {
      out.push({ name, value: aclFromText(text.toString('utf8'), localOwner) });
    } catch {
      // a foreign ACL text this host cannot express
    }
  }
  return out.length > 0 ? sortXattrs(out) : undefined;
}

/** The InodeState in a pax header's records, if it has one. */
export function inodeFromPax(pax: Map<string, Buffer>): InodeState | undefined {
  const ctime = pax.get(CTIME_KEY);
  if (ctime === undefined) return undefined;
  const nlink = Number(pax.get(NLINK_KEY)?.toString('ascii') ?? '1');
  const s: InodeState = { ctime: Number(ctime.toString('ascii')), nlink: Number.isSafeInteger(nlink) && nlink > 0 ? nlink : 1 };
  if (!Number.isFinite(s.ctime)) throw new FormatError(`bad pax ${CTIME_KEY} value`);
  const listed = pax.get(XATTR_STATE_KEY)?.toString('utf8');
  if (listed !== undefined) {
    const [digest, ...names] = listed.split(',');
    s.xattrs = { digest: digest!, names: names.map(unescapeListed) };
  }
  return s;
}

/** Zero bytes that pad `size` data bytes to a whole block. */
export function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

function cstr(b: Buffer, off: number, len: number): Buffer {
  const slice = b.subarray(off, off + len);
  const nul = slice.indexOf(0);
  return Buffer.from(nul === -1 ? slice : slice.subarray(0, nul));
}

/** Parses an octal field, or a GNU base-256 field (high bit set). */
export function parseNumber(b: Buffer, off: number, len: number): number {
  const first = b[off]!;
  if (first & 0x80) {
    // base-256: big-endian two's complement, first byte's top bit is the marker.
    const negative = (first & 0x40) !== 0;
    let v = first & 0x3f;
    if (negative) v = v - 0x40;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    return v;
  }
  // the common case: octal digits up to the first NUL or space
  let v = 0;
  for (let i = off; i < off + len; i++) {
    const c = b[i]!;
    if (c === 0 || c === 0x20) return v;
    if (c < 0x30 || c > 0x37) return parseOctalText(b, off, len);
    v = v * 8 + (c - 0x30);
  }
  return v;
}

/** The field as text (other whitespace trimmed), for what the fast path does not take. */
function parseOctalText(b: Buffer, off: number, len: number): number {
  const s = b.toString('latin1', off, off + len).replace(/[\0 ].*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new FormatError(`bad octal number field "${s}"`);
  return parseInt(s, 8);
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

export function checksumOk(b: Buffer): boolean {
  const stored = parseNumber(b, 148, 8);
  // the checksum field counts as eight spaces; the signed sum (old tars) differs from
  // the unsigned one by 256 for each byte of 0x80 or more
  let unsigned = 8 * 0x20;
  let high = 0;
  for (let i = 0; i < 148; i++) {
    const v = b[i]!;
    unsigned += v;
    if (v >= 0x80) high++;
  }
  for (let i = 156; i < BLOCK; i++) {
    const v = b[i]!;
    unsigned += v;
    if (v >= 0x80) high++;
  }
  return stored === unsigned || stored === unsigned - 256 * high;
}

/** Raw fields of one 512-byte header block (before pax/GNU overrides). */
export interface RawHeader {
  typeflag: number;
  name: Buffer;
  linkname: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

/** Extended headers (pax `x`/`g`, GNU long name `L`/long link `K`): only their size matters. */
const METADATA_TYPES = new Set([0x78, 0x67, 0x4c, 0x4b]);
const NO_BYTES = Buffer.alloc(0);

export function decodeBlock(b: Buffer): RawHeader {
  if (!checksumOk(b)) throw new FormatError('tar header checksum mismatch');
  if (METADATA_TYPES.has(b[156]!)) {
    // what follows is read for its data; the other fields are never looked at
    return { typeflag: b[156]!, name: NO_BYTES, linkname: NO_BYTES, mode: 0, uid: 0, gid: 0, size: parseNumber(b, 124, 12), mtime: 0, uname: '', gname: '', devmajor: 0, devminor: 0 };
  }
  const magic = b.toString('latin1', 257, 263);
  let name = cstr(b, 0, 100);
  if (magic === 'ustar\0') {
    const prefix = cstr(b, 345, 155);
    if (prefix.length > 0) name = Buffer.concat([prefix, Buffer.from('/'), name]);
  }
  return {
    typeflag: b[156]!,
    name,
    linkname: cstr(b, 157, 100),
    mode: parseNumber(b, 100, 8),
    uid: parseNumber(b, 108, 8),
    gid: parseNumber(b, 116, 8),
    size: parseNumber(b, 124, 12),
    mtime: parseNumber(b, 136, 12),
    uname: cstr(b, 265, 32).toString('utf8'),
    gname: cstr(b, 297, 32).toString('utf8'),
    devmajor: b[329] === 0 ? 0 : parseNumber(b, 329, 8),
    devminor: b[337] === 0 ? 0 : parseNumber(b, 337, 8),
  };
}

/** Parses pax records into key → raw value bytes. */
export function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const sp = data.indexOf(0x20, pos);
    if (sp === -1) throw new FormatError('malformed pax record');
    const len = parseInt(data.toString('ascii', pos, sp), 10);
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > data.length) throw new FormatError('malformed pax record length');
    const rec = data.subarray(sp + 1, pos + len - 1); // drop trailing '\n'
    const eq = rec.indexOf(0x3d);
    if (eq === -1) throw new FormatError('malformed pax record');
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

export function typeFromFlag(flag: number): EntryType | undefined {
  switch (flag) {
    case 0x30:
    case 0:
    case 0x37: // contiguous file: a regular file
      return 'file';
    case 0x32:
      return 'symlink';
    case 0x33:
      return 'char';
    case 0x34:
      return 'block';
    case 0x35:
      return 'directory';
    case 0x36:
      return 'fifo';
    default:
      return undefined;
  }
}
