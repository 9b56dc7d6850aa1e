/** The public library API. Never imports cli/. */
export * from './errors.js';
export * from './backend/index.js';
export * from './crypto/index.js';
export { runBackup, type BackupOptions, type BackupResult } from './backup/backup.js';
export { runRestore, type RestoreOptions, type RestoreResult } from './restore/restore.js';
export { listFiles } from './inspect/list-files.js';
export { targetStatus } from './inspect/status.js';
export { buildCollection, pickForTime } from './chain/collection.js';
export { parseManifest, formatManifest } from './chain/manifest.js';
export { parseName, formatName } from './chain/file-naming.js';
export { parseUserTime, formatTimestamp } from './chain/time.js';
export { exportTar, type ExportResult, type ReadOutOptions } from './restore/export.js';
export { catFile } from './restore/cat.js';
export { findVersions, type FindOptions, type FoundVersion } from './inspect/find.js';
export { diffPoints, type DiffOptions, type PathDifference } from './inspect/diff.js';
export { copySets, type CopyOptions, type CopyResult } from './copy/copy.js';
export { planRetention, type RetentionPolicy, type RetentionPlan } from './chain/retention.js';
export { keepByCalendar, type KeepRules } from './chain/calendar.js';
