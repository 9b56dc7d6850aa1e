export * from './backend.js';
export { FileBackend, classifyFsError } from './file.js';
export { MemoryBackend } from './memory.js';
export { openBackend, type TargetOptions } from './registry.js';
export { S3Backend, parseS3Url, classifyS3Error, type S3Options } from './s3.js';
export { RetryBackend, LimitBackend, type RetryOptions } from './wrappers.js';
export { FaultyBackend, type Fault } from './faulty.js';
