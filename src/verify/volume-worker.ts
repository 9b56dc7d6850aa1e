/** The worker thread of a parallel verify: checks the volumes it is given, one at a time (volume-check.ts). */
import { serveTasks } from '../util/worker-pool.js';
import { checkVolumeTask, type VolumeReport, type VolumeTask } from './volume-check.js';

serveTasks<VolumeTask, VolumeReport>(async (task, ctx) => ({ result: await checkVolumeTask(task, ctx.signal) }));
