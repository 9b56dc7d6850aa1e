/**
 * The local tree a backup reads and a comparison checks: the walk (in index order,
 * one lstat per entry, warnings for what cannot be read), the selection (include and
 * exclude rules), the tar metadata of an entry, and reading files (small ones ahead of
 * use, large ones in pieces, noting a file that changes while read).
 */
export { walkTree, type WalkEntry, type WalkWarning } from './walk.js';
export { Selection, type SelectionRule } from './selection.js';
export { checkSource, sameSource } from './source-dir.js';
export { headerFromStat, deletedHeader, entryType } from './entry-meta.js';
export { readAhead } from './read-ahead.js';
export { readBuffers, readWhole, pieces, CHUNK, type ReadSeen, type WholeFile } from './read-file.js';
