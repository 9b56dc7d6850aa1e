/** The worker thread of a parallel restore: restores the volumes it is given into the scratch space, one at a time (volume-restore.ts). */
import { serveTasks } from '../util/worker-pool.js';
import { restoreVolumeTask, type RestoreVolumeTask, type VolumeRestoreReport } from './volume-restore.js';

serveTasks<RestoreVolumeTask, VolumeRestoreReport>(async (task, ctx) => ({ result: await restoreVolumeTask(task, ctx.signal) }));
