import { describe, expect, jest, test } from '@jest/globals';
import { hostname } from 'node:os';
import { getBytes, listAll } from '../../../src/backend/backend.js';
import { FaultyBackend } from '../../../src/backend/faulty.js';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { LockedError, acquireLock, LEGACY_LOCK, type LockInfo, type LockedOperation } from '../../../src/repo/lock.js';
import { Readable } from 'node:stream';

/** A target holding a backup (a reader of an empty one takes no lock). */
async function target(): Promise<MemoryBackend> {
  const b = new MemoryBackend();
  const body = Buffer.from('manifest');
  await b.put('duplicity-full.20260101T000000Z.manifest', { size: body.length, open: () => Readable.from([body]) });
  return b;
}

const locks = async (b: MemoryBackend) => (await listAll(b, 'tapechain-lock')).map((o) => o.name);
const put = (b: MemoryBackend, name: string, l: Partial<LockInfo>) => {
  const body = Buffer.from(JSON.stringify({ host: hostname(), pid: process.pid, started: Math.floor(Date.now() / 1000), operation: 'x', token: 't', ...l }));
  return b.put(name, { size: body.length, open: () => Readable.from([body]) });
};

describe('lock kinds', () => {
  // held (rows) against wanted (columns): whether the second run may go on
  const table: [LockedOperation, LockedOperation, boolean][] = [
    ['restore', 'verify', true],
    ['restore', 'backup', true],
    ['restore', 'prune', false],
    ['backup', 'verify', true],
    ['backup', 'backup', false],
    ['backup', 'repair', false],
    ['backup', 'cleanup', false],
    ['prune', 'restore', false],
    ['prune', 'backup', false],
    ['cleanup', 'prune', false],
  ];
  test.each(table)('%s held, %s wanted: goes on = %s', async (held, wanted, ok) => {
    const b = await target();
    const first = await acquireLock(b, undefined, { operation: held });
    const second = acquireLock(b, undefined, { operation: wanted });
    if (ok) await (await second).release();
    else await expect(second).rejects.toThrow(new RegExp(`locked: ${held} by pid ${process.pid}`));
    expect(await locks(b)).toHaveLength(1); // the refused run removed its own lock object
    await first.release();
    expect(await locks(b)).toEqual([]);
  });
});

describe('stale and legacy locks', () => {
  test('a dead pid on this host is broken with a warning; another host\'s young lock holds', async () => {
    const b = await target();
    await put(b, 'tapechain-lock-aa.json', { pid: 2 ** 22 + 7, kind: 'append', operation: 'backup' });
    const warnings: string[] = [];
    const l = await acquireLock(b, undefined, { operation: 'prune', onWarning: (m) => warnings.push(m) });
    expect(warnings.join()).toMatch(/breaking the stale lock .*process \d+ is gone/);
    await l.release();
    await put(b, 'tapechain-lock-bb.json', { host: 'elsewhere', pid: 1, kind: 'append', operation: 'backup' });
    await expect(acquireLock(b, undefined, { operation: 'prune' })).rejects.toBeInstanceOf(LockedError);
  });

  test('a refreshed lock is not stale, one not refreshed for staleAfter is', async () => {
    const b = await target();
    const now = Math.floor(Date.now() / 1000);
    await put(b, 'tapechain-lock-cc.json', { host: 'elsewhere', started: now - 7200, refreshed: now - 10, kind: 'exclusive' });
    await expect(acquireLock(b, undefined, { operation: 'restore', staleAfter: 3600 })).rejects.toBeInstanceOf(LockedError);
    await put(b, 'tapechain-lock-cc.json', { host: 'elsewhere', started: now - 7200, refreshed: now - 3700, kind: 'exclusive' });
    await (await acquireLock(b, undefined, { operation: 'restore', staleAfter: 3600 })).release();
    expect(await locks(b)).toEqual([]);
  });

  test('the lock object of an older version counts as exclusive', async () => {
    const b = await target();
    await put(b, LEGACY_LOCK, { operation: 'backup' });
    await expect(acquireLock(b, undefined, { operation: 'verify' })).rejects.toThrow(/locked: backup/);
  });

  test('a held lock is refreshed while it is held', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    try {
      const b = await target();
      let clock = 1_000_000;
      const l = await acquireLock(b, undefined, { operation: 'restore', staleAfter: 400, now: () => clock });
      const [name] = await locks(b);
      clock += 150;
      jest.advanceTimersByTime(100_000);
      let info: LockInfo | undefined;
      while (info?.refreshed === undefined) {
        await new Promise((r) => setImmediate(r));
        info = JSON.parse((await getBytes(b, name!)).toString()) as LockInfo;
      }
      expect(info.refreshed).toBe(1_000_150);
      await l.release();
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('read-only targets', () => {
  test('a reader that may not write goes on without a lock, with a warning; a writer fails', async () => {
    const b = new FaultyBackend(await target(), [{ method: 'put', kind: 'permanent' }]);
    const warnings: string[] = [];
    const l = await acquireLock(b, undefined, { operation: 'restore', onWarning: (m) => warnings.push(m) });
    expect(warnings.join()).toMatch(/cannot write a lock .*going on without one/);
    await l.release();
    await expect(acquireLock(b, undefined, { operation: 'backup' })).rejects.toThrow(/injected permanent fault/);
  });
});

describe('an empty target', () => {
  test('a reader takes no lock (nothing to protect, and the object would create the target); a writer does', async () => {
    const b = new MemoryBackend();
    const r = await acquireLock(b, undefined, { operation: 'verify' });
    expect(await listAll(b)).toEqual([]); // while held
    await r.release();
    const w = await acquireLock(b, undefined, { operation: 'backup' });
    expect(await locks(b)).toHaveLength(1);
    await w.release();
  });
});
