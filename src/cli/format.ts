/** Human-readable sizes, times and sets for CLI output. */
import type { BackupSet } from '../chain/collection.js';
import { describeTime, formatTimestamp } from '../chain/time.js';
import { escapeName } from '../util/escape-name.js';
import type { TarHeader } from '../volume/tar-header.js';

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function pickedLine(sets: BackupSet[]): string {
  const last = sets[sets.length - 1]!;
  const what = last.type === 'full' ? `full ${formatTimestamp(last.start)}` : `incremental ${formatTimestamp(last.start)}.to.${formatTimestamp(last.end)}`;
  return `Using backup set ${what} at ${describeTime(last.end)}; ${sets.length} set(s) in the chain\n`;
}

/**
 * A name in JSON: `KEY` as text (lossy where the bytes are not UTF-8) and, when the
 * escaped form differs, `KEY_escaped`: lossless, what `restore --path` takes.
 */
export function jsonName(key: string, raw: Buffer): Record<string, string> {
  const text = raw.toString('utf8');
  const escaped = escapeName(raw);
  return escaped === text ? { [key]: text } : { [key]: text, [`${key}_escaped`]: escaped };
}

/**
 * An entry's fields in JSON (ls, find, diff): the size, and the link count, xattr
 * names and ACLs, where tapechain recorded them (not in duplicity's sets).
 */
export function headerJson(h: TarHeader): Record<string, unknown> {
  const size = h.type === 'file' ? h.fileSize : undefined;
  return {
    type: h.type,
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    mtime: h.mtime,
    ...(size !== undefined ? { size } : {}),
    ...(h.type === 'symlink' ? jsonName('target', h.linkname) : {}),
    ...(h.inode ? { links: h.inode.nlink, xattrs: h.inode.xattrs?.names ?? [], acl: aclKinds(h.inode.xattrs?.names ?? []) } : {}),
  };
}

/** Which POSIX ACLs an entry has, beyond its mode bits: access, default, both or none. */
export function aclKinds(xattrNames: string[]): string[] {
  return ['access', 'default'].filter((k) => xattrNames.includes(`system.posix_acl_${k}`));
}

/** What find and diff say of where their answer came from. */
export const NO_VOLUME_NOTE = '(from manifests and signature files only: no volume was read)\n';
