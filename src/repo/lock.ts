/**
 * Locks on a target, in three kinds (restic's shared/exclusive locks, with an append
 * kind between them so a reader never blocks a backup):
 *
 *   shared     restore, verify, ls, status: they read sets that must not vanish
 *   append     backup, repair: they add files, and two of them would pick the same set
 *   exclusive  prune, cleanup: they delete files
 *
 * shared goes with shared and append; append with shared only; exclusive with nothing.
 *
 * Each run writes a lock object of its own, `tapechain-lock-<token>.json` (host, pid,
 * start, kind; named so duplicity ignores it), then lists the others: a conflicting
 * live one makes it delete its own and fail with LockedError naming the holder. Two runs
 * that start together may both fail: never both go on. A stale lock — its pid dead on
 * this host, or not refreshed for `staleAfter` — is broken with a warning. Held locks
 * are refreshed every quarter of `staleAfter` (at most every 5 minutes), so a long
 * restore is not taken for stale. The lock of older tapechain versions,
 * `tapechain-lock.json`, counts as an exclusive one.
 *
 * Runs that write (append, exclusive) also hold a lock file in the local cache (O_EXCL:
 * atomic between processes of this machine), as the cache is theirs to change.
 *
 * A reader whose credentials may not write to the target (a read-only key) goes on
 * without a lock, with a warning; so does a reader of a target that holds no backup:
 * there is nothing to protect, and a lock object would create the target.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { Backend } from '../backend/backend.js';
import { getBytes, listAll } from '../backend/backend.js';
import { BackendNotFoundError, EngineError, ExitCode, PermanentBackendError } from '../errors.js';
import { processAlive } from '../util/fs-facts.js';

/** The prefix of every lock object; what a collection listing ignores. */
export const LOCK_PREFIX = 'tapechain-lock';
/** The single lock object of tapechain before shared locks. */
export const LEGACY_LOCK = 'tapechain-lock.json';

export type LockKind = 'shared' | 'append' | 'exclusive';

/** Which lock each operation takes. */
export const LOCK_KIND = {
  restore: 'shared',
  verify: 'shared',
  ls: 'shared',
  status: 'shared',
  find: 'shared',
  diff: 'shared',
  cat: 'shared',
  export: 'shared',
  'copy-from': 'shared',
  backup: 'append',
  copy: 'append',
  repair: 'append',
  prune: 'exclusive',
  cleanup: 'exclusive',
} as const satisfies Record<string, LockKind>;

export type LockedOperation = keyof typeof LOCK_KIND;
/** The operations that only read a target. */
export type ReadingOperation = { [K in LockedOperation]: (typeof LOCK_KIND)[K] extends 'shared' ? K : never }[LockedOperation];

export class LockedError extends EngineError {
  constructor(message: string) {
    super('LOCKED', ExitCode.LOCKED, message);
  }
}

export interface LockInfo {
  host: string;
  pid: number;
  /** Epoch seconds. */
  started: number;
  /** Epoch seconds of the last refresh. @default started */
  refreshed?: number;
  operation: string;
  /** @default 'exclusive' (the lock of older versions) */
  kind?: LockKind;
  token: string;
  /**
   * Epoch seconds the run ended, when its lock object could not be deleted (credentials
   * that may not delete: append-only): a released lock, which every run ignores.
   */
  released?: number;
}

export interface LockOptions {
  operation: LockedOperation;
  /** Seconds without a refresh after which a lock counts as stale. @default 86400 */
  staleAfter?: number;
  onWarning?: (message: string) => void;
  /** @default os.hostname() */
  hostname?: string;
  now?: () => number;
  /**
   * Never delete on the target (append-only credentials): a lock is released by marking
   * it so, and a stale one broken the same way; `cleanup` with full credentials removes
   * them. Without it, a refused delete falls back to the same. @default false
   */
  appendOnly?: boolean;
}

export interface HeldLock {
  release(): Promise<void>;
}

const compatible = (a: LockKind, b: LockKind): boolean => a === 'shared' ? b !== 'exclusive' : b === 'shared' && a === 'append';

function describe(l: LockInfo): string {
  return `${l.operation} by pid ${l.pid} on ${l.host}, started ${new Date(l.started * 1000).toISOString()}`;
}

function staleReason(l: LockInfo, host: string, now: number, staleAfter: number): string | undefined {
  if (l.host === host && !processAlive(l.pid)) return `its process ${l.pid} is gone`;
  if (now - (l.refreshed ?? l.started) > staleAfter) return `it is older than ${staleAfter} s`;
  return undefined;
}

const lockBody = (l: LockInfo) => {
  const body = Buffer.from(JSON.stringify(l));
  return { size: body.length, open: () => Readable.from([body]) };
};

/** Takes the lock `o.operation` needs: the cache's lock file for writers, and a lock object on the target. */
export async function acquireLock(backend: Backend, cacheDir: string | undefined, o: LockOptions): Promise<HeldLock> {
  const kind: LockKind = LOCK_KIND[o.operation];
  const host = o.hostname ?? osHostname();
  const clock = o.now ?? (() => Date.now() / 1000);
  const now = Math.floor(clock());
  const staleAfter = o.staleAfter ?? 86400;
  const me: LockInfo = { host, pid: process.pid, started: now, operation: o.operation, kind, token: randomBytes(8).toString('hex') };
  const ctx: StaleContext = { host, now, staleAfter, appendOnly: o.appendOnly ?? false, ...(o.onWarning ? { onWarning: o.onWarning } : {}) };
  if (kind === 'shared' && !(await holdsBackup(backend))) return { release: async () => undefined };
  const localFile = cacheDir && kind !== 'shared' ? await takeLocalLock(cacheDir, me, ctx) : undefined;
  const name = `${LOCK_PREFIX}-${me.token}.json`;
  try {
    try {
      await backend.put(name, lockBody(me));
    } catch (e) {
      if (kind !== 'shared' || !(e instanceof PermanentBackendError)) throw e;
      o.onWarning?.(`cannot write a lock on ${backend.describe()} (${(e as Error).message}): going on without one; a prune meanwhile could delete what this run reads`);
      return { release: async () => undefined };
    }
    try {
      await refuseConflicts(backend, name, kind, ctx);
    } catch (e) {
      // best effort: a leftover is stale once we exit
      await removeLock(backend, name, { ...me, released: Math.floor(clock()) }, ctx).catch(() => undefined);
      throw e;
    }
  } catch (e) {
    if (localFile) await fs.rm(localFile, { force: true });
    throw e;
  }
  const every = Math.min(staleAfter / 4, 300) * 1000;
  const timer = setInterval(() => {
    // a failed refresh is retried at the next tick; the lock goes stale only after staleAfter
    void backend.put(name, lockBody({ ...me, refreshed: Math.floor(clock()) })).catch(() => undefined);
  }, every);
  timer.unref();
  return {
    release: async () => {
      clearInterval(timer);
      // unreachable target: the object is left, and later runs break it as stale
      await removeLock(backend, name, { ...me, released: Math.floor(clock()) }, ctx).catch(() => undefined);
      if (localFile) await fs.rm(localFile, { force: true });
    },
  };
}

/**
 * Deletes a lock object; where deleting is not allowed (append-only credentials, or
 * `appendOnly`), overwrites it with `tombstone` (released), which every run ignores,
 * and says so once per run.
 */
async function removeLock(backend: Backend, name: string, tombstone: LockInfo, ctx: StaleContext): Promise<void> {
  if (!ctx.appendOnly) {
    try {
      await backend.delete(name);
      return;
    } catch (e) {
      if (e instanceof BackendNotFoundError) return;
      if (!(e instanceof PermanentBackendError)) throw e;
      if (!ctx.toldTombstone) ctx.onWarning?.(`cannot delete on ${backend.describe()} (${e.detail}): lock objects are marked released instead; \`tapechain cleanup --force\` with credentials that may delete removes them`);
      ctx.toldTombstone = true;
    }
  }
  await backend.put(name, lockBody(tombstone));
}

async function holdsBackup(backend: Backend): Promise<boolean> {
  try {
    for await (const _ of backend.list('duplicity-')) return true;
  } catch (e) {
    if (!(e instanceof BackendNotFoundError)) throw e;
  }
  return false;
}

interface StaleContext {
  host: string;
  now: number;
  staleAfter: number;
  appendOnly?: boolean;
  onWarning?: (message: string) => void;
  /** The fallback to released marks was reported. */
  toldTombstone?: boolean;
}

/** The cache's lock file, created atomically; a stale one is broken. Returns its path. */
async function takeLocalLock(cacheDir: string, me: LockInfo, ctx: StaleContext): Promise<string> {
  await fs.mkdir(cacheDir, { recursive: true });
  const file = path.join(cacheDir, 'lockfile');
  for (let attempt = 0; ; attempt++) {
    try {
      // Written whole under a temp name and linked into place: a reader never sees it half-written.
      const tmp = `${file}.${me.token}`;
      await fs.writeFile(tmp, JSON.stringify(me), { flag: 'wx' });
      try {
        await fs.link(tmp, file);
      } finally {
        await fs.rm(tmp, { force: true });
      }
      return file;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      let held: LockInfo | undefined;
      try {
        held = JSON.parse(await fs.readFile(file, 'utf8')) as LockInfo;
      } catch {
        // unreadable: left by a crash of an older version, which wrote it in place
      }
      const why = held ? staleReason(held, ctx.host, ctx.now, ctx.staleAfter) : 'it is unreadable';
      if (!why) throw new LockedError(`the target is locked: ${describe(held!)} (local lock ${file})`);
      ctx.onWarning?.(`breaking the stale local lock${held ? ` of ${describe(held)}` : ''}: ${why}`);
      await fs.rm(file, { force: true });
    }
  }
}

/** Fails with LockedError if a live lock other than `mine` conflicts with `kind`; breaks stale ones. */
async function refuseConflicts(backend: Backend, mine: string, kind: LockKind, ctx: StaleContext): Promise<void> {
  for (const obj of await listAll(backend, LOCK_PREFIX)) {
    if (obj.name === mine || !/^tapechain-lock(-[0-9a-f]+)?\.json$/.test(obj.name)) continue;
    let held: LockInfo;
    try {
      held = JSON.parse((await getBytes(backend, obj.name, 1 << 16)).toString('utf8')) as LockInfo;
    } catch (e) {
      if (e instanceof BackendNotFoundError) continue; // released meanwhile
      if (!(e instanceof SyntaxError)) throw e;
      ctx.onWarning?.(`breaking the unreadable lock ${obj.name}`);
      await removeLock(backend, obj.name, { host: '', pid: 0, started: 0, operation: 'unreadable', token: '', released: ctx.now }, ctx);
      continue;
    }
    if (held.released !== undefined) continue; // released where deleting is not allowed
    const why = staleReason(held, ctx.host, ctx.now, ctx.staleAfter);
    if (why) {
      ctx.onWarning?.(`breaking the stale lock on the target (${describe(held)}): ${why}`);
      // another run may have broken it first (not found)
      await removeLock(backend, obj.name, { ...held, released: ctx.now }, ctx);
      continue;
    }
    if (!compatible(kind, held.kind ?? 'exclusive')) throw new LockedError(`the target is locked: ${describe(held)}`);
  }
}
