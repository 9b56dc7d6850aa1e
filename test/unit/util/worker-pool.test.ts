import { afterEach, describe, expect, test } from '@jest/globals';
import { CancelledError, EngineError, ExitCode, IntegrityError, InternalError } from '../../../src/errors.js';
import { WorkerPool } from '../../../src/util/worker-pool.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDirs } from '../../helpers/tmp.js';

const tmp = tempDirs();

type Task = { op: string; value?: unknown; times?: number };
const script = new URL('../../helpers/pool-worker.mjs', import.meta.url);
let pool: WorkerPool<Task, unknown> | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('WorkerPool', () => {
  test('runs tasks on several threads; each result comes back to its task', async () => {
    pool = new WorkerPool<Task, unknown>(script, 3);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => pool!.run({ op: 'echo', value: { n: i, b: Buffer.from([i]) } })));
    expect(results.map((r) => (r as { echo: { n: number } }).echo.n)).toEqual([...Array(10).keys()]);
  });

  test('a task asks and waits for each answer; progress arrives before the result', async () => {
    pool = new WorkerPool<Task, unknown>(script, 1);
    const asked: unknown[] = [];
    expect(await pool.run({ op: 'ask', times: 3 }, { onAsk: async (q) => (asked.push(q), `answer ${q}`) })).toEqual(['answer 0', 'answer 1', 'answer 2']);
    expect(asked).toEqual([0, 1, 2]);
    const seen: unknown[] = [];
    expect(await pool.run({ op: 'progress' }, { onProgress: (p) => seen.push(p) })).toBe('reported');
    expect(seen).toEqual([1, 2, 3]);
  });

  test('an engine error crosses the thread with its class, code, exit code and context', async () => {
    pool = new WorkerPool<Task, unknown>(script, 1);
    const e = await pool.run({ op: 'engine-error' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(IntegrityError);
    expect(e).toMatchObject({ code: 'HASH_MISMATCH', exitCode: ExitCode.INTEGRITY, context: { file: 'vol3' }, message: 'vol3: bad bytes' });
    const s = await pool.run({ op: 'system-error' }).catch((x: unknown) => x);
    expect(s).not.toBeInstanceOf(EngineError);
    expect(s).toMatchObject({ code: 'ENOENT', syscall: 'open', path: '/nope' });
  });

  test('a thread that dies fails its task (a bug: exit 70); the pool goes on with a new thread', async () => {
    pool = new WorkerPool<Task, unknown>(script, 1);
    await expect(pool.run({ op: 'die' })).rejects.toBeInstanceOf(InternalError);
    expect(await pool.run({ op: 'echo', value: 1 })).toEqual({ echo: 1 });
  });

  test('close() tells a running task to stop and ends its thread once it has (a thread is not cut off mid-step)', async () => {
    const dir = tmp('pool-stop');
    pool = new WorkerPool<Task, unknown>(script, 1);
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const task = pool.run({ op: 'until-stopped', value: join(dir, 'stopped') }, { onProgress: () => started() }).catch((e: unknown) => e);
    await running;
    await pool.close();
    expect(await task).toBeInstanceOf(CancelledError);
    expect(readFileSync(join(dir, 'stopped'), 'utf8')).toBe('stopped at a step');
  });

  test('close() fails what is queued as cancelled', async () => {
    pool = new WorkerPool<Task, unknown>(script, 1);
    const never = pool.run({ op: 'ask', times: 1 }, { onAsk: () => new Promise(() => undefined) }).catch((e: unknown) => e);
    const queued = pool.run({ op: 'echo', value: 2 }).catch((e: unknown) => e);
    await pool.close();
    expect(await queued).toBeInstanceOf(CancelledError);
    expect(await never).toBeInstanceOf(CancelledError);
  });
});
