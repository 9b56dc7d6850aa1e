export * from './backend.js';
export { FileBackend, classifyFsError } from './file.js';
export { MemoryBackend } from './memory.js';
export { openBackend, type TargetOptions } from './registry.js';
// The S3 backend loads the AWS SDK (~22 MB): import it from 'tapechain/s3' when needed.
export type { S3Options } from './s3.js';
export { RetryBackend, LimitBackend, type RetryOptions } from './wrappers.js';
export { FaultyBackend, type Fault } from './faulty.js';
