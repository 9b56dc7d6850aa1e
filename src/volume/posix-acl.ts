/**
 * POSIX ACLs between the kernel's xattr form (`system.posix_acl_access`/`_default`:
 * a version word, then 8-byte entries tag/perm/id, little-endian) and the text form
 * GNU tar and bsdtar read from `SCHILY.acl.access`/`.default` ("user::rw-\nuser:1000:r--\n…").
 *
 * The text names users and groups by number: an archive restored on another host
 * means the same ids its owners (and the raw xattr) mean, and a name that does not
 * exist there cannot make GNU tar's acl_from_text fail.
 */
import { FormatError } from '../errors.js';

export const ACL_ACCESS = 'system.posix_acl_access';
export const ACL_DEFAULT = 'system.posix_acl_default';

const VERSION = 2;
const NO_ID = 0xffffffff;
const TAGS = [
  [0x01, 'user', false],
  [0x02, 'user', true],
  [0x04, 'group', false],
  [0x08, 'group', true],
  [0x10, 'mask', false],
  [0x20, 'other', false],
] as const;

interface AclEntry {
  tag: number;
  perm: number;
  id: number;
}

function perms(p: number): string {
  return (p & 4 ? 'r' : '-') + (p & 2 ? 'w' : '-') + (p & 1 ? 'x' : '-');
}

/** The text form of an ACL xattr value. */
export function aclToText(value: Buffer): string {
  if (value.length < 4 || (value.length - 4) % 8 !== 0 || value.readUInt32LE(0) !== VERSION) throw new FormatError('malformed POSIX ACL value');
  let text = '';
  for (let off = 4; off < value.length; off += 8) {
    const tag = value.readUInt16LE(off);
    const spec = TAGS.find((t) => t[0] === tag);
    if (!spec) throw new FormatError(`unknown POSIX ACL tag ${tag}`);
    const id = value.readUInt32LE(off + 4);
    text += `${spec[1]}:${spec[2] ? String(id) : ''}:${perms(value.readUInt16LE(off + 2))}\n`;
  }
  return text;
}

const TAG_WORDS: Record<string, string> = { u: 'user', user: 'user', g: 'group', group: 'group', m: 'mask', mask: 'mask', o: 'other', other: 'other' };

function parseEntry(s: string, resolve: (kind: 'user' | 'group', name: string) => number | undefined): AclEntry {
  const f = s.split(':');
  const word = TAG_WORDS[f[0]!.trim()];
  // "other::r--" and the short "o:r--" both occur
  const [qualifier, permText] = f.length >= 3 ? [f[1]!.trim(), f[2]!.trim()] : ['', (f[1] ?? '').trim()];
  if (!word || !/^[r-][w-][x-]$/.test(permText)) throw new FormatError(`malformed POSIX ACL entry "${s}"`);
  const perm = (permText[0] === 'r' ? 4 : 0) | (permText[1] === 'w' ? 2 : 0) | (permText[2] === 'x' ? 1 : 0);
  const named = qualifier !== '';
  const tag = TAGS.find((t) => t[1] === word && t[2] === named)?.[0];
  if (tag === undefined) throw new FormatError(`malformed POSIX ACL entry "${s}"`);
  if (!named) return { tag, perm, id: NO_ID };
  const id = /^\d+$/.test(qualifier) ? Number(qualifier) : resolve(word as 'user' | 'group', qualifier);
  if (id === undefined || id > 0xfffffffe) throw new FormatError(`POSIX ACL entry "${s}" names no known ${word}`);
  return { tag, perm, id };
}

/**
 * The xattr value of an ACL's text (entries separated by newlines or commas, `#`
 * comments, star's fourth field ignored); names are looked up with `resolve`.
 */
export function aclFromText(text: string, resolve: (kind: 'user' | 'group', name: string) => number | undefined): Buffer {
  const entries = text
    .split(/[\n,]/)
    .map((s) => s.replace(/#.*$/, '').trim())
    .filter((s) => s !== '')
    .map((s) => parseEntry(s, resolve));
  // the kernel takes entries in tag order, named ones by ascending id
  entries.sort((a, b) => a.tag - b.tag || a.id - b.id);
  const out = Buffer.alloc(4 + 8 * entries.length);
  out.writeUInt32LE(VERSION, 0);
  entries.forEach((e, i) => {
    out.writeUInt16LE(e.tag, 4 + 8 * i);
    out.writeUInt16LE(e.perm, 6 + 8 * i);
    out.writeUInt32LE(e.id, 8 + 8 * i);
  });
  return out;
}
