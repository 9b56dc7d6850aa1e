/**
 * User and group names from the local passwd/group files (Node has no getpwuid).
 * Backups record names beside numeric ids; restores map names back to local ids
 * where they exist, as duplicity does.
 */
import { readFileSync } from 'node:fs';

interface Db {
  byId: Map<number, string>;
  byName: Map<string, number>;
}

function load(file: string): Db {
  const db: Db = { byId: new Map(), byName: new Map() };
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return db; // no passwd/group file (a container): names are not looked up, ids are kept
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || line.startsWith('#')) continue;
    const id = parseInt(f[2]!, 10);
    if (!Number.isSafeInteger(id)) continue;
    if (!db.byId.has(id)) db.byId.set(id, f[0]!);
    if (!db.byName.has(f[0]!)) db.byName.set(f[0]!, id);
  }
  return db;
}

let users: Db | undefined;
let groups: Db | undefined;

export function userName(uid: number): string {
  users ??= load('/etc/passwd');
  return users.byId.get(uid) ?? '';
}

export function groupName(gid: number): string {
  groups ??= load('/etc/group');
  return groups.byId.get(gid) ?? '';
}

/** Local uid for a stored name, else the stored numeric id. */
export function localUid(name: string, fallback: number): number {
  users ??= load('/etc/passwd');
  return (name ? users.byName.get(name) : undefined) ?? fallback;
}

export function localGid(name: string, fallback: number): number {
  groups ??= load('/etc/group');
  return (name ? groups.byName.get(name) : undefined) ?? fallback;
}
