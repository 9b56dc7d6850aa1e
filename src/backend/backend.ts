/**
 * The storage contract. Backends store opaque named blobs in one flat namespace
 * (duplicity targets have no subdirectories) and know nothing about volumes or chains.
 *
 * Guarantees every implementation gives:
 * - put: the object appears whole or not at all (temp + rename, or one request); an
 *   existing object of that name is replaced. The source can be reopened, so a retry
 *   reads it again from the start. Rejects with PermanentBackendError for ENOSPC/EACCES.
 * - get: streams the object (or a byte range of it); BackendNotFoundError if absent.
 * - stat: size of one object; BackendNotFoundError if absent.
 * - list: every object whose name starts with `prefix`, in no particular order; objects
 *   written while listing may or may not appear.
 * - delete: idempotent; deleting an absent object is not an error.
 * Errors are always BackendError subclasses: not-found, transient (worth a retry) or
 * permanent. Methods may run concurrently up to `properties.maxConnections`.
 */
import type { Readable } from 'node:stream';
import { FormatError } from '../errors.js';

export interface PutSource {
  /** Exact byte length; the backend checks it. */
  size: number;
  /** Opens the bytes from the start; may be called again for a retry. */
  open(): Readable;
  /**
   * Opens bytes [start, end) — lets a backend upload parts of a large object in
   * parallel and retry one part, without holding parts in memory. Optional.
   */
  openRange?(start: number, end: number): Readable;
  /**
   * A local file holding exactly these bytes, left unchanged until the put ends: a
   * backend on this machine may link or copy it rather than stream it. Optional.
   */
  path?: string;
  /** Store the object with this retention (backends with `objectLock` only). */
  retention?: Retention;
  /**
   * The bytes are still being written (a volume being built): `size` is not known yet
   * and `growth` tells how far the file is. Given only to backends with `streamsParts`.
   */
  growth?: Growth;
}

/** How far a file being written has come. */
export interface Growth {
  /** Resolves once `bytes` bytes are there, or the file is complete (`done`: `bytes` is then its final size). */
  until(bytes: number): Promise<{ bytes: number; done: boolean }>;
}

export interface ObjectInfo {
  name: string;
  size: number;
}

export interface BackendProperties {
  /** Useful parallel requests. */
  maxConnections: number;
  /** put() is atomic (whole or nothing). */
  atomicPut: boolean;
  /**
   * Objects are local files: reading one directly costs no more than a temp copy, so
   * readers need not download ahead. @default false
   */
  local?: boolean;
  /** For objects stored as files: the directory holding them (backup keeps it out of its source). */
  localPath?: string;
  /** Reads are held to a rate (--limit-download): through get(), not from `localPath` in place. @default false */
  readsLimited?: boolean;
  /** put() can give an object a retention (S3 Object Lock; the bucket must have it enabled). @default false */
  objectLock?: boolean;
  /** put() takes a source that is still being written (`growth`), sending it in parts as it grows. @default false */
  streamsParts?: boolean;
}

/** An object's S3 Object Lock retention: no one deletes it before `until` (in governance mode, only a key with the bypass permission). */
export interface Retention {
  mode: 'GOVERNANCE' | 'COMPLIANCE';
  until: Date;
}

export interface OpOptions {
  signal?: AbortSignal;
}

export interface GetOptions extends OpOptions {
  /** Byte range [start, end) to read; the whole object when absent. */
  range?: { start: number; end?: number };
}

export interface Backend {
  readonly properties: BackendProperties;
  /** Display form without secrets. */
  describe(): string;
  put(name: string, source: PutSource, opts?: OpOptions): Promise<void>;
  get(name: string, opts?: GetOptions): Promise<Readable>;
  stat(name: string, opts?: OpOptions): Promise<ObjectInfo>;
  list(prefix?: string, opts?: OpOptions): AsyncIterable<ObjectInfo>;
  delete(name: string, opts?: OpOptions): Promise<void>;
  close(): Promise<void>;
  /** The object's Object Lock retention (backends with `objectLock`); undefined: none. */
  retention?(name: string): Promise<Retention | undefined>;
}

/** What a run that only reads a target may call: no put, no delete. */
export type ReadBackend = Pick<Backend, 'properties' | 'describe' | 'get' | 'stat' | 'list' | 'close' | 'retention'>;

/** A view of `b` that can only read: what commands that must not change the target are given. */
export function readOnly(b: Backend): ReadBackend {
  return {
    properties: b.properties,
    describe: () => b.describe(),
    get: (name, opts) => b.get(name, opts),
    stat: (name, opts) => b.stat(name, opts),
    list: (prefix, opts) => b.list(prefix, opts),
    close: () => b.close(),
    ...(b.retention ? { retention: (name: string) => b.retention!(name) } : {}),
  };
}

/** Collects a listing into an array. */
export async function listAll(b: ReadBackend, prefix = ''): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of b.list(prefix)) out.push(o);
  return out;
}

/** Reads a whole (small) object into memory: manifests, never volumes. */
export async function getBytes(b: ReadBackend, name: string, max = 64 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of await b.get(name)) {
    n += (c as Buffer).length;
    if (n > max) throw new FormatError(`larger than ${max} bytes: not a manifest, signature or seal this engine wrote`, { context: { file: name } });
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}
