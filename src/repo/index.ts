/**
 * The repository layer: reading and locking a target, for every command (restic's
 * `repository`). The target's listing becomes a collection of sets and chains
 * (chain/), read through ArchiveReader (manifests and signature files, from the local
 * cache or the target, decrypted and checked); the chain state an incremental compares
 * against; what verify last checked; which keys read a chain and whether a key is a
 * chain's; and the locks that keep readers, appenders and deleters apart.
 */
export { ArchiveReader } from './archive.js';
export { ArchiveCache, cacheName, defaultArchiveDir, localName } from './archive-cache.js';
export { chainState, sigtarEntries, type StateEntry } from './signature-state.js';
export { loadVerifyState, saveVerifyState, lastVerifyApplies, pickSample, type VerifyState } from './verify-state.js';
export { keyMismatch, type PassphraseProof } from './key-check.js';
export { readingKeys, type KeyMaterial } from './reading-keys.js';
export { acquireLock, LockedError, LOCK_KIND, LOCK_PREFIX, LEGACY_LOCK, type HeldLock, type LockKind, type LockedOperation, type LockOptions } from './lock.js';
