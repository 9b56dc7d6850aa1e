/**
 * Exclusive locks for runs that write to a target (backup, prune, cleanup): a lock file
 * in the local cache (O_EXCL: atomic between processes of this machine) and a lock
 * object on the target (host, pid, start time; for other machines sharing the target,
 * named so duplicity ignores it). A second run fails fast with LockedError saying who
 * holds the lock. A stale lock — its pid dead on this host, or older than `staleAfter`
 * — is broken with a warning. Readers (restore, verify, ls) take no lock.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { Backend } from '../backend/backend.js';
import { getBytes } from '../backend/backend.js';
import { BackendNotFoundError, EngineError, ExitCode } from '../errors.js';
import { processAlive } from '../util/fs-facts.js';

export const TARGET_LOCK = 'tapechain-lock.json';

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
  operation: string;
  token: string;
}

export interface LockOptions {
  operation: string;
  /** Seconds after which any lock counts as stale. @default 86400 */
  staleAfter?: number;
  onWarning?: (message: string) => void;
  /** @default os.hostname() */
  hostname?: string;
  now?: () => number;
}

function describe(l: LockInfo): string {
  return `${l.operation} by pid ${l.pid} on ${l.host}, started ${new Date(l.started * 1000).toISOString()}`;
}

function staleReason(l: LockInfo, host: string, now: number, staleAfter: number): string | undefined {
  if (l.host === host && !processAlive(l.pid)) return `its process ${l.pid} is gone`;
  if (now - l.started > staleAfter) return `it is older than ${staleAfter} s`;
  return undefined;
}

export interface HeldLock {
  release(): Promise<void>;
}

/** Takes the cache lock (if a cache dir is given) and the target lock. */
export async function acquireLock(backend: Backend, cacheDir: string | undefined, o: LockOptions): Promise<HeldLock> {
  const host = o.hostname ?? osHostname();
  const now = Math.floor((o.now ?? (() => Date.now() / 1000))());
  const staleAfter = o.staleAfter ?? 86400;
  const me: LockInfo = { host, pid: process.pid, started: now, operation: o.operation, token: randomBytes(8).toString('hex') };
  const body = Buffer.from(JSON.stringify(me));

  // 1. The local lock: atomic creation.
  let localFile: string | undefined;
  if (cacheDir) {
    await fs.mkdir(cacheDir, { recursive: true });
    localFile = path.join(cacheDir, 'lockfile');
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.writeFile(localFile, body, { flag: 'wx' });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
        let held: LockInfo | undefined;
        try {
          held = JSON.parse(await fs.readFile(localFile, 'utf8')) as LockInfo;
        } catch {
          // unreadable or half-written: a crash while writing it
        }
        const why = held ? staleReason(held, host, now, staleAfter) : 'it is unreadable';
        if (!why) throw new LockedError(`the target is locked: ${describe(held!)} (local lock ${localFile})`);
        o.onWarning?.(`breaking the stale local lock${held ? ` of ${describe(held)}` : ''}: ${why}`);
        await fs.rm(localFile, { force: true });
      }
    }
  }
  // 2. The target lock: read, refuse if held, write ours, read back (last writer wins).
  try {
    let held: LockInfo | undefined;
    try {
      held = JSON.parse((await getBytes(backend, TARGET_LOCK, 1 << 16)).toString('utf8')) as LockInfo;
    } catch (e) {
      if (!(e instanceof BackendNotFoundError) && !(e instanceof SyntaxError)) throw e;
    }
    if (held) {
      const why = staleReason(held, host, now, staleAfter);
      if (!why) throw new LockedError(`the target is locked: ${describe(held)}`);
      o.onWarning?.(`breaking the stale lock on the target (${describe(held)}): ${why}`);
    }
    await backend.put(TARGET_LOCK, { size: body.length, open: () => Readable.from([body]) });
    const check = JSON.parse((await getBytes(backend, TARGET_LOCK, 1 << 16)).toString('utf8')) as LockInfo;
    if (check.token !== me.token) throw new LockedError(`the target is locked: ${describe(check)}`);
  } catch (e) {
    if (localFile) await fs.rm(localFile, { force: true });
    throw e;
  }
  return {
    release: async () => {
      try {
        const cur = JSON.parse((await getBytes(backend, TARGET_LOCK, 1 << 16)).toString('utf8')) as LockInfo;
        if (cur.token === me.token) await backend.delete(TARGET_LOCK);
      } catch {
        // already gone, or the target is unreachable: a later run breaks it as stale
      }
      if (localFile) await fs.rm(localFile, { force: true });
    },
  };
}
