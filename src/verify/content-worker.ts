/**
 * The worker thread of `verify --compare`: holds one live file against its archived
 * signature (content-check.ts), while the main thread decodes the volumes.
 */
import { serveTasks } from '../util/worker-pool.js';
import { liveContentDiffers, type ContentTask } from './content-check.js';

serveTasks<ContentTask, boolean>(async (task) => ({
  result: await liveContentDiffers(Buffer.from(task.path), task, [Buffer.from(task.signature)]),
}));
