/**
 * Extended attributes of a path (not followed when it is a symlink), through
 * `@napi-rs/xattr` (prebuilt binaries; no `getfattr` per file). POSIX ACLs are the
 * xattrs `system.posix_acl_access` and `system.posix_acl_default`, file capabilities
 * `security.capability`.
 *
 * The binding takes paths as strings: a path that is not valid UTF-8 cannot be named
 * through it, and goes to the python3 helper (fs-helper.ts) instead — asynchronously:
 * `readXattrs` and `setXattr` take any path, `setXattrSync` fails for such a path with
 * code 'NOT_UTF8'. Where the binding cannot load (a platform without a prebuilt
 * binary), every call fails with code 'UNSUPPORTED'.
 */
import { createRequire } from 'node:module';
import { fsHelper } from './fs-helper.js';

export interface Xattr {
  name: string;
  value: Buffer;
}

/**
 * The binding's calls used: the synchronous ones. Its asynchronous ones cost the
 * calling thread ~60 µs of napi task handling each, the call itself ~8 µs.
 */
interface Binding {
  listAttributesSync(path: string): string[];
  getAttributeSync(path: string, name: string): Buffer | null;
  setAttributeSync(path: string, name: string, value: Uint8Array): void;
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

function fromErrno(errno: number, message: string): XattrError {
  return new XattrError(errno ? (ERRNO[errno] ?? `errno ${errno}`) : 'EIO', message);
}

/** A binding failure ("… (os error N)") as an XattrError. */
function translate(e: unknown): XattrError {
  const message = (e as Error).message ?? String(e);
  return fromErrno(Number(/\(os error (\d+)\)/.exec(message)?.[1] ?? 0), message.replace(/\s*\(os error \d+\)$/, ''));
}

const NOT_UTF8 = () => new XattrError('NOT_UTF8', 'its path is not valid UTF-8, which the xattr calls cannot name without python3');

/** The path as the binding takes it, or undefined when it is not valid UTF-8. */
function asString(p: Buffer): string | undefined {
  const s = p.toString('utf8');
  return Buffer.from(s, 'utf8').equals(p) ? s : undefined;
}

function pathString(p: Buffer): string {
  const s = asString(p);
  if (s === undefined) throw NOT_UTF8();
  return s;
}

/** Xattrs in name order (the order they are stored and digested in). */
export function sortXattrs(xattrs: Xattr[]): Xattr[] {
  return xattrs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A UTF-8 path's xattrs, sorted by name, through the binding. */
function readXattrsSync(p: Buffer): Xattr[] {
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
    return sortXattrs(out);
  } catch (e) {
    throw translate(e);
  }
}

/** A path's xattrs, sorted by name; any path (one that is not UTF-8 through the helper). */
export async function readXattrs(p: Buffer): Promise<Xattr[]> {
  if (asString(p) !== undefined) return readXattrsSync(p);
  load(); // a platform without the binding has no xattrs to read either way
  const r = await fsHelper().xattrs(p);
  if (r === undefined) throw NOT_UTF8();
  if ('error' in r) throw fromErrno(r.errno, r.error);
  return sortXattrs(r);
}

/** Sets one xattr on any path (the helper's way when it is not UTF-8). */
export async function setXattr(p: Buffer, x: Xattr): Promise<void> {
  if (asString(p) !== undefined) return setXattrSync(p, x);
  const r = await fsHelper().setXattr(p, x);
  if (r === 'unavailable') throw NOT_UTF8();
  if (r) throw fromErrno(r.errno, r.error);
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
