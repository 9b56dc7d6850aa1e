/**
 * The worker thread of a backup: encodes the batches the set writer sends it
 * (batch.ts), one at a time, each into its own volumes and record fragments.
 */
import { serveTasks } from '../util/worker-pool.js';
import { encodeBatch, reviveBatch, type BatchResult, type VolumeBatch } from './batch.js';

serveTasks<VolumeBatch, BatchResult>(async (task, ctx) => ({
  result: await encodeBatch(reviveBatch(task), {
    progress: (p) => ctx.progress(p),
    // Each volume waits there until the set writer has taken it in (batch order).
    volume: async (v) => void (await ctx.ask(v)),
    signal: ctx.signal,
  }),
}));
