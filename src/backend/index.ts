export * from './backend.js';
export { FileBackend, classifyFsError } from './file.js';
export { MemoryBackend } from './memory.js';
export { openBackend } from './registry.js';
