// A worker for the WorkerPool tests (a worker thread runs JavaScript: the build's pool).
import { serveTasks } from '../../dist/util/worker-pool.js';
import { IntegrityError } from '../../dist/errors.js';
import { writeFileSync } from 'node:fs';

serveTasks(async (task, ctx) => {
  if (task.op === 'echo') return { result: { echo: task.value } };
  if (task.op === 'ask') {
    const answers = [];
    for (let i = 0; i < task.times; i++) answers.push(await ctx.ask(i));
    return { result: answers };
  }
  if (task.op === 'progress') {
    for (let i = 1; i <= 3; i++) ctx.progress(i);
    return { result: 'reported' };
  }
  if (task.op === 'engine-error') throw new IntegrityError('bad bytes', { code: 'HASH_MISMATCH', context: { file: 'vol3' } });
  if (task.op === 'system-error') {
    const e = new Error('ENOENT: no such file');
    Object.assign(e, { code: 'ENOENT', syscall: 'open', path: '/nope' });
    throw e;
  }
  if (task.op === 'die') process.exit(3);
  if (task.op === 'until-stopped') {
    // works in small steps until told to stop, then says so in a file and ends
    ctx.progress('started');
    while (!ctx.signal.aborted) await new Promise((r) => setImmediate(r));
    writeFileSync(task.value, 'stopped at a step');
    throw ctx.signal.reason;
  }
  throw new Error(`unknown op ${task.op}`);
});
