/**
 * Extended attributes of a path (not followed when it is a symlink), through
 * `@napi-rs/xattr` (prebuilt binaries; no `getfattr` per file). POSIX ACLs are the
 * xattrs `system.posix_acl_access` and `system.posix_acl_default`, file capabilities
 * `security.capability`.
 *
 * The binding takes paths as strings: a path that is not valid UTF-8 cannot be named
 * (XattrError with code 'NOT_UTF8'). Where the binding cannot load (a platform without
 * a prebuilt binary), every call fails with code 'UNSUPPORTED'.
 */
import { createRequire } from 'node:module';

export interface Xattr {
  name: string;
  value: Buffer;
}

interface Binding {
  listAttributesSync(path: string): string[];
  listAttributes(path: string): Promise<string[]>;
  getAttributeSync(path: string, name: string): Buffer | null;
  getAttribute(path: string, name: string): Promise<Buffer | null>;
  setAttributeSync(path: string, name: string, value: Uint8Array): void;
  removeAttributeSync(path: string, name: string): void;
}

/** Why a call failed: the errno name the system gave, or what kept it from being made. */
export type XattrFailure = 'NOT_UTF8' | 'UNSUPPORTED' | string;

export class XattrError extends Error {
  readonly code: XattrFailure;
  constructor(code: XattrFailure, message: string) {
    super(message);
    this.name = 'XattrError';
    this.code = code;
  }
}

let binding: Binding | null | undefined;
let loadFailure = '';

function load(): Binding {
  if (binding === undefined) {
    try {
      binding = createRequire(import.meta.url)('@napi-rs/xattr') as Binding;
    } catch (e) {
      binding = null;
      loadFailure = (e as Error).message.split('\n')[0] ?? '';
    }
  }
  if (binding === null) throw new XattrError('UNSUPPORTED', `extended attributes are not supported here (${loadFailure})`);
  return binding;
}

/** The errno names the binding reports as "(os error N)". */
const ERRNO: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 7: 'E2BIG', 13: 'EACCES', 20: 'ENOTDIR', 22: 'EINVAL', 28: 'ENOSPC', 30: 'EROFS', 61: 'ENODATA', 95: 'ENOTSUP' };

function translate(e: unknown): XattrError {
  const message = (e as Error).message ?? String(e);
  const n = /\(os error (\d+)\)/.exec(message)?.[1];
  return new XattrError(n !== undefined ? (ERRNO[Number(n)] ?? `errno ${n}`) : 'EIO', message.replace(/\s*\(os error \d+\)$/, ''));
}

function pathString(p: Buffer): string {
  const s = p.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(p)) throw new XattrError('NOT_UTF8', 'its path is not valid UTF-8, which the xattr calls cannot name');
  return s;
}

const byName = (a: Xattr, b: Xattr) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** A path's xattrs, sorted by name (synchronous: for worker threads and small work). */
export function readXattrsSync(p: Buffer): Xattr[] {
  const b = load();
  const path = pathString(p);
  try {
    const names = b.listAttributesSync(path);
    if (names.length === 0) return [];
    const out: Xattr[] = [];
    for (const name of names) {
      const value = b.getAttributeSync(path, name);
      if (value !== null) out.push({ name, value }); // removed between the calls
    }
    return out.sort(byName);
  } catch (e) {
    throw translate(e);
  }
}

/** The same on the thread pool, for the main thread. */
export async function readXattrs(p: Buffer): Promise<Xattr[]> {
  const b = load();
  const path = pathString(p);
  try {
    const names = await b.listAttributes(path);
    if (names.length === 0) return [];
    const values = await Promise.all(names.map((name) => b.getAttribute(path, name)));
    const out: Xattr[] = [];
    names.forEach((name, i) => {
      const value = values[i];
      if (value) out.push({ name, value });
    });
    return out.sort(byName);
  } catch (e) {
    throw translate(e);
  }
}

export function setXattrSync(p: Buffer, x: Xattr): void {
  const b = load();
  const path = pathString(p);
  try {
    b.setAttributeSync(path, x.name, x.value);
  } catch (e) {
    throw translate(e);
  }
}

export function removeXattrSync(p: Buffer, name: string): void {
  const b = load();
  const path = pathString(p);
  try {
    b.removeAttributeSync(path, name);
  } catch (e) {
    throw translate(e);
  }
}

/** Names of a path's xattrs (unsorted). */
export function listXattrsSync(p: Buffer): string[] {
  const b = load();
  const path = pathString(p);
  try {
    return b.listAttributesSync(path);
  } catch (e) {
    throw translate(e);
  }
}
