/**
 * Applies archive entries to a staging directory (never to the user's destination
 * directly): snapshots create or replace paths, deletions remove them. Every file is
 * written under a temporary name and renamed into place; directory metadata is applied
 * last, deepest first, because writing into a directory changes its mtime.
 *
 * Safety: indexes are already free of `..`/empty components (entry-name.ts); here each
 * parent of a target must be a real directory inside the staging root, so an archive
 * that restores a symlink `a` and then `a/b` cannot write through the link.
 *
 * Speed: a small file written with async calls costs seven thread-pool round trips
 * (lstat, open, write, chmod, utimes, close, rename), which left the main thread idle
 * half of a restore; running several at once only added kernel lock contention. Small
 * files are therefore written with synchronous calls, and in the first set (an empty
 * staging directory, every path new) straight under their name.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { lstatSync, renameSync, rmSync, type Stats } from 'node:fs';
import { applyDelta, fileBasis } from '../diff/patch.js';
import { DestinationError, FormatError, IntegrityError } from '../errors.js';
import { compareIndex, displayIndex, isUnsafeComponent, joinIndex, pathToIndex, type Index } from '../volume/entry-name.js';
import type { TarHeader } from '../volume/tar-header.js';
import { lstatOrNull } from '../util/fs-facts.js';
import { fileTime, noData, ownerIds, smallFile, writeFile, writeSmallFile, type FileMeta } from './file-writer.js';
import { XattrWriter } from './xattr-writer.js';

export interface TreeWriterOptions {
  /** chown restored entries (needs root); resolved by the restore. */
  restoreOwnership: boolean;
  /** Leave aligned runs of zeros (a block or more) in files as holes. @default true */
  sparse?: boolean;
  /** Use stored numeric ids, not names looked up on this host. @default false */
  numericOwner?: boolean;
  /** Set stored extended attributes (ACLs, capabilities). @default true */
  xattrs?: boolean;
  onWarning?: (message: string) => void;
}

export interface DirMeta {
  path: Buffer;
  depth: number;
  header: TarHeader;
}

const SLASH = Buffer.from('/');

export class TreeWriter {
  readonly root: Buffer;
  readonly #o: TreeWriterOptions;
  readonly #owner: boolean;
  /** Parent directories already checked to be real directories (latin1 keys). */
  readonly #okDirs = new Set<string>();
  /** Directory metadata to apply at the end, by path. */
  readonly #dirs = new Map<string, DirMeta>();
  /** Scratch directory inside the root for creating special files. */
  readonly #scratch: Buffer;
  rootHeader: TarHeader | undefined;
  /** Regular files written from snapshots, and files patched with deltas. */
  files = 0;
  patched = 0;
  /** No set applied yet: the staging directory holds only what this set wrote. */
  #fresh = true;
  /** Sets stored xattrs; absent with xattrs off. */
  readonly xattrs: XattrWriter | undefined;

  constructor(root: Buffer, o: TreeWriterOptions) {
    this.root = root;
    this.#o = o;
    this.#owner = o.restoreOwnership;
    this.xattrs = (o.xattrs ?? true) ? new XattrWriter(o.onWarning) : undefined;
    this.#scratch = Buffer.concat([root, Buffer.from(`/.tapechain-scratch-${randomBytes(4).toString('hex')}`)]);
  }

  #path(index: Index): Buffer {
    return index.length === 0 ? this.root : Buffer.concat([this.root, SLASH, joinIndex(index)]);
  }

  #tempName(parent: Buffer): Buffer {
    return Buffer.concat([parent, Buffer.from(`/.tapechain-part-${randomBytes(6).toString('hex')}`)]);
  }

  /**
   * Makes sure every ancestor of `index` is a real directory below the root, creating
   * missing ones; with `create` false, returns null when one is missing instead.
   */
  async #parents(index: Index, create = true): Promise<Buffer | null> {
    let p = this.root;
    for (let i = 0; i < index.length - 1; i++) {
      p = Buffer.concat([p, SLASH, index[i]!]);
      const key = p.toString('latin1');
      if (this.#okDirs.has(key)) continue;
      const st = await lstatOrNull(p);
      if (st === null) {
        if (!create) return null;
        // an ancestor the archive has no entry for (e.g. above a --path selection)
        await fs.mkdir(p, { mode: 0o755 });
      } else if (!st.isDirectory()) {
        // Deleting below a symlink or file: the path is already gone (e.g. a directory
        // replaced by a symlink, then its old children deleted). Writing: refused.
        if (!create) return null;
        throw new FormatError(`unsafe archive: ${displayIndex(index)} would be written through ${st.isSymbolicLink() ? 'the symlink' : 'the non-directory'} ${displayIndex(index.slice(0, i + 1))}`, { code: 'UNSAFE_PATH' });
      }
      this.#okDirs.add(key);
    }
    return p;
  }

  #forget(p: Buffer): void {
    const key = p.toString('latin1');
    for (const k of this.#okDirs) if (k === key || k.startsWith(key + '/')) this.#okDirs.delete(k);
    for (const k of this.#dirs.keys()) if (k === key || k.startsWith(key + '/')) this.#dirs.delete(k);
  }

  async #remove(p: Buffer): Promise<void> {
    this.#forget(p);
    await fs.rm(p, { recursive: true, force: true });
  }

  /** The uid and gid to give an entry: stored numbers, or names looked up here. */
  #ids(h: TarHeader): [number, number] {
    return ownerIds(h, this.#o.numericOwner ?? false);
  }

  async #owners(p: Buffer, h: TarHeader, link = false): Promise<void> {
    if (!this.#owner) return;
    const [uid, gid] = this.#ids(h);
    await (link ? fs.lchown(p, uid, gid) : fs.chown(p, uid, gid));
  }

  /** The entry's xattrs on `p`: after its owner (chown drops capabilities), before its mode and times. */
  #setXattrs(p: Buffer, h: TarHeader, index: Index): void {
    this.xattrs?.apply(p, h.xattrs, () => displayIndex(index));
  }

  /** Removes a different-typed entry at `p` so `type` can take its place. */
  async #clearFor(p: Buffer, isDir: boolean): Promise<Stats | null> {
    const st = await lstatOrNull(p);
    if (st && st.isDirectory() && !isDir) {
      await this.#remove(p);
      return null;
    }
    if (st && !st.isDirectory() && isDir) {
      await fs.unlink(p);
      return null;
    }
    return st;
  }

  /** Called between sets: from now on a path may already exist. */
  nextSet(): void {
    this.#fresh = false;
  }

  /** Writes a snapshot entry; `data` is the file content for regular files. */
  async snapshot(index: Index, h: TarHeader, data: AsyncIterable<Buffer>): Promise<void> {
    if (index.length === 0) {
      if (h.type !== 'directory') throw new FormatError('archive root is not a directory');
      this.rootHeader = h;
      return;
    }
    if (h.type === 'file' && (await this.#linkToFirst(index, h, data))) return;
    if (h.type === 'file') {
      // The header's size is one chunk's for a multivol file: read to know.
      const small = await smallFile(data);
      if (small.parts) {
        this.#writeSmall((await this.#parents(index))!, this.#path(index), h, small.parts, index);
        this.files++;
        return;
      }
      data = small.rest;
    }
    const parent = (await this.#parents(index))!;
    const p = this.#path(index);
    if (h.type === 'directory') return this.#directory(index, p, h);
    await this.#clearFor(p, false);
    const tmp = this.#tempName(parent);
    try {
      if (!(await this.#entryAt(tmp, index, h, data))) return;
      await fs.rename(tmp, p);
    } catch (e) {
      await fs.rm(tmp, { force: true }).catch(() => undefined); // the failure at hand is the one to report
      throw e;
    }
  }

  /**
   * A later name of a file with several (hard links): made a link to the first name,
   * restored before it (index order), when that is a regular file in this tree; the
   * stored content (or delta) is read and dropped. Otherwise (the first name outside a
   * --path selection, or gone) false: the content stored under this name is written.
   */
  async #linkToFirst(index: Index, h: TarHeader, data: AsyncIterable<Buffer>): Promise<boolean> {
    if (!h.hardlinkTo) return false;
    const first = pathToIndex(h.hardlinkTo);
    // an archive's word about where to link is checked as any path of it
    if (first.length === 0 || first.some(isUnsafeComponent) || compareIndex(first, index) >= 0) return false;
    if ((await this.#parents(first, false)) === null) return false;
    const target = this.#path(first);
    if (!(await lstatOrNull(target))?.isFile()) return false;
    for await (const _ of data); // read: the volume's checks need all of it
    const parent = (await this.#parents(index))!;
    const p = this.#path(index);
    await this.#clearFor(p, false);
    const tmp = this.#tempName(parent);
    try {
      await fs.link(target, tmp);
      await fs.rename(tmp, p);
    } catch (e) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
    this.files++;
    return true;
  }

  async #directory(index: Index, p: Buffer, h: TarHeader): Promise<void> {
    const st = await this.#clearFor(p, true);
    if (!st) await fs.mkdir(p, { mode: 0o700 });
    else await fs.chmod(p, 0o700);
    this.#okDirs.add(p.toString('latin1'));
    this.#dirs.set(p.toString('latin1'), { path: p, depth: index.length, header: h });
  }

  /** Makes a non-directory entry at `tmp`; false when it is skipped (a device node without root). */
  async #entryAt(tmp: Buffer, index: Index, h: TarHeader, data: AsyncIterable<Buffer>): Promise<boolean> {
    switch (h.type) {
      case 'file':
        await this.#writeFile(tmp, h, data, index);
        this.files++;
        return true;
      case 'symlink':
        await fs.symlink(h.linkname, tmp);
        await this.#owners(tmp, h, true);
        this.#setXattrs(tmp, h, index);
        // some filesystems cannot set a symlink's own times: the link itself is what matters
        await fs.lutimes(tmp, fileTime(h), fileTime(h)).catch(() => undefined);
        return true;
      case 'fifo':
      case 'char':
      case 'block':
        if (await this.#special(tmp, h, index)) return true;
        this.#o.onWarning?.(`${displayIndex(index)}: device nodes need root; skipped`);
        return false;
      default:
        return true;
    }
  }

  /** A small file, with synchronous calls; under a temporary name when it replaces one. */
  #writeSmall(parent: Buffer, p: Buffer, h: TarHeader, parts: Buffer[], index: Index): void {
    const replace = this.#replacing(p);
    const to = replace ? this.#tempName(parent) : p;
    writeSmallFile(to, h, parts, this.fileMeta(h, () => displayIndex(index)));
    if (replace) {
      try {
        renameSync(to, p);
      } catch (e) {
        rmSync(to, { force: true });
        throw e;
      }
    }
  }

  /** Whether a file written at `p` replaces one (a directory there is removed first). */
  #replacing(p: Buffer): boolean {
    if (this.#fresh) return false;
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      this.#forget(p);
      rmSync(p, { recursive: true, force: true });
      return false;
    }
    return st !== undefined;
  }

  /** How a restored file's owner, xattrs and holes are set. */
  fileMeta(h: TarHeader, shown: () => string): FileMeta {
    return { ids: this.#owner ? this.#ids(h) : undefined, xattrs: this.xattrs, sparse: this.#o.sparse ?? true, shown };
  }

  async #writeFile(p: Buffer, h: TarHeader, data: AsyncIterable<Buffer>, index: Index): Promise<void> {
    await writeFile(p, h, data, this.fileMeta(h, () => displayIndex(index)));
  }

  /** Creates a fifo or device node under an ASCII scratch name, then moves it. */
  async #special(tmp: Buffer, h: TarHeader, index: Index): Promise<boolean> {
    if (h.type !== 'fifo' && !this.#owner) return false;
    await fs.mkdir(this.#scratch, { recursive: true, mode: 0o700 });
    const scratch = `${this.#scratch.toString('latin1')}/n`;
    const scratchPath = Buffer.from(scratch, 'latin1');
    const mode = (h.mode & 0o7777).toString(8);
    const args = h.type === 'fifo' ? ['-m', mode, scratchPath.toString('utf8')] : ['-m', mode, scratchPath.toString('utf8'), h.type === 'char' ? 'c' : 'b', String(h.devmajor), String(h.devminor)];
    if (!/^[\x00-\x7f]*$/.test(scratch)) throw new DestinationError('restore destination path must be valid UTF-8 for special files');
    const r = spawnSync(h.type === 'fifo' ? 'mkfifo' : 'mknod', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new DestinationError(`creating ${h.type}: ${r.stderr?.toString().trim() || r.error?.message}`);
    await this.#owners(scratchPath, h);
    this.#setXattrs(scratchPath, h, index);
    await fs.chmod(scratchPath, h.mode);
    await fs.utimes(scratchPath, fileTime(h), fileTime(h));
    await fs.rename(scratchPath, tmp);
    return true;
  }

  /**
   * Applies a librsync delta to the staged file at `index` (its previous version) and
   * replaces it with the result, under a temporary name first.
   */
  async patch(index: Index, h: TarHeader, delta: AsyncIterable<Buffer>): Promise<void> {
    if (await this.#linkToFirst(index, h, delta)) return; // its first name was patched already
    const parent = (await this.#parents(index))!;
    const p = this.#path(index);
    const st = await lstatOrNull(p);
    if (!st || !st.isFile()) {
      throw new IntegrityError(`delta for ${displayIndex(index)} has no earlier version to apply to (chain broken)`, { code: 'DIFF_WITHOUT_BASIS' });
    }
    const tmp = this.#tempName(parent);
    const basis = await fs.open(p, 'r');
    try {
      await this.#writeFile(tmp, h, applyDelta(delta, fileBasis(basis, st.size)), index);
      await fs.rename(tmp, p);
      this.patched++;
    } catch (e) {
      await fs.rm(tmp, { force: true }).catch(() => undefined); // the failure at hand is the one to report
      throw e;
    } finally {
      await basis.close();
    }
  }

  /**
   * A file a lane of a parallel restore wrote (data and metadata set, in the scratch
   * space) moved to its place, with the checks `snapshot` makes; a later name of a
   * hard-linked file is linked to the first instead.
   */
  async place(index: Index, h: TarHeader, temp: Buffer): Promise<void> {
    if (index.length === 0 || (await this.#linkToFirst(index, h, noData()))) {
      await fs.rm(temp, { force: true });
      if (index.length === 0) await this.snapshot(index, h, noData()); // a root that is a file: refused there
      return;
    }
    await this.#parents(index);
    const p = this.#path(index);
    if (!this.#fresh) await this.#clearFor(p, false);
    await moveInto(temp, p);
    this.files++;
  }

  /** A file a lane patched (into the scratch space) moved over the version it changes, with the checks `patch` makes. */
  async placePatched(index: Index, h: TarHeader, temp: Buffer | undefined): Promise<void> {
    if (await this.#linkToFirst(index, h, noData())) {
      if (temp) await fs.rm(temp, { force: true });
      return;
    }
    try {
      await this.#parents(index);
      const st = await lstatOrNull(this.#path(index));
      if (!temp || !st?.isFile()) throw new IntegrityError(`delta for ${displayIndex(index)} has no earlier version to apply to (chain broken)`, { code: 'DIFF_WITHOUT_BASIS' });
    } catch (e) {
      if (temp) await fs.rm(temp, { force: true });
      throw e;
    }
    await moveInto(temp, this.#path(index));
    this.patched++;
  }

  /** Removes a path and everything below it. */
  async delete(index: Index): Promise<void> {
    if (index.length === 0) return;
    // Already gone with its parent (deleted/a, then deleted/a/b): nothing to do.
    if ((await this.#parents(index, false)) === null) return;
    await this.#remove(this.#path(index));
  }

  /** Removes scratch space; the tree is complete. */
  async finish(): Promise<void> {
    await this.xattrs?.settled();
    await fs.rm(this.#scratch, { recursive: true, force: true });
  }

  /**
   * The directories written, deepest first, with paths relative to the root. Their
   * metadata is applied by the caller once they are at their final place: a read-only
   * directory could not receive its entries, nor be moved to another parent.
   */
  directories(): { rel: Buffer; header: TarHeader }[] {
    const cut = this.root.length + 1;
    return [...this.#dirs.values()].sort((a, b) => b.depth - a.depth).map((d) => ({ rel: d.path.subarray(cut), header: d.header }));
  }
}

/** Renames `from` to `to`; `from` does not stay behind when that fails. */
async function moveInto(from: Buffer, to: Buffer): Promise<void> {
  try {
    await fs.rename(from, to);
  } catch (e) {
    await fs.rm(from, { force: true }).catch(() => undefined); // the failure at hand is the one to report
    throw e;
  }
}

export async function applyDirMeta(p: Buffer, h: TarHeader, owner: boolean, numeric: boolean, xattrs: XattrWriter | undefined): Promise<void> {
  if (owner) await fs.chown(p, ...ownerIds(h, numeric));
  xattrs?.apply(p, h.xattrs, () => p.toString());
  await xattrs?.settled();
  await fs.chmod(p, h.mode);
  await fs.utimes(p, fileTime(h), fileTime(h));
}
