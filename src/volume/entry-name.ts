/**
 * Tar entry names inside difftar volumes and sigtars, and the index order.
 *
 * An index is a path inside the backed-up tree as raw byte components; the root is [].
 * Duplicity (and so every reader of these archives) relies on entries appearing in
 * ascending index order, compared component by component as unsigned bytes.
 */
import { escapeName } from '../util/escape-name.js';
import { FormatError } from '../errors.js';
import { revivedBuffer } from '../util/wire.js';

export type Index = readonly Buffer[];

/** An index that crossed threads (its components arrive as Uint8Arrays), as Buffers again. */
export function revivedIndex(i: Index): Index {
  return i.map(revivedBuffer);
}

export type EntryKind = 'snapshot' | 'diff' | 'deleted' | 'signature' | 'multivol_snapshot' | 'multivol_diff';

/** Compares two indexes: component-wise raw-byte order, a prefix sorts first. */
export function compareIndex(a: Index, b: Index): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = Buffer.compare(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/** `a/b/c` bytes for an index; the root is `.` (as in manifests and listings). */
export function indexToPath(index: Index): Buffer {
  if (index.length === 0) return Buffer.from('.');
  return joinIndex(index);
}

export function joinIndex(index: Index): Buffer {
  const parts: Buffer[] = [];
  index.forEach((c, i) => {
    if (i > 0) parts.push(SLASH);
    parts.push(c);
  });
  return Buffer.concat(parts);
}

/** Whether `index` is `p` or below it. */
export function isWithin(index: Index, p: Index): boolean {
  return index.length >= p.length && compareIndex(index.slice(0, p.length), p) === 0;
}

/**
 * Splits `a/b/c` into an index; `.` and empty are the root. The components are copies,
 * unless `share` (a buffer of the caller's own, such as a header's name, that is never
 * changed): then they are views of it.
 */
export function pathToIndex(p: Buffer, share = false): Buffer[] {
  let s = p;
  while (s.length > 0 && s[s.length - 1] === 0x2f) s = s.subarray(0, s.length - 1);
  if (s.length === 0 || (s.length === 1 && s[0] === 0x2e)) return [];
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= s.length; i++) {
    if (i === s.length || s[i] === 0x2f) {
      out.push(share ? s.subarray(start, i) : Buffer.from(s.subarray(start, i)));
      start = i + 1;
    }
  }
  return out;
}

const SLASH = Buffer.from('/');

/**
 * The tar entry name for an index. `isDir` adds the trailing slash. The root is
 * `snapshot/./` in volumes but `snapshot/` in sigtars (see duplicity-format.md 6).
 */
export function entryName(kind: EntryKind, index: Index, opts: { isDir?: boolean; chunk?: number; sigtarRoot?: boolean } = {}): Buffer {
  const parts: Buffer[] = [Buffer.from(kind + '/')];
  if (index.length === 0) {
    if (!opts.sigtarRoot) parts.push(Buffer.from('.'));
  } else {
    parts.push(joinIndex(index));
  }
  if (opts.chunk !== undefined) parts.push(Buffer.from(`/${opts.chunk}`));
  else if (opts.isDir && !(index.length === 0 && opts.sigtarRoot)) parts.push(SLASH);
  return Buffer.concat(parts);
}

export interface ParsedEntryName {
  kind: EntryKind;
  index: Buffer[];
  /** Chunk number for multivol entries. */
  chunk?: number;
}

const PREFIXES: readonly EntryKind[] = ['multivol_snapshot', 'multivol_diff', 'snapshot', 'diff', 'deleted', 'signature'];
/** The prefixes with their slash, as bytes: names are compared without decoding them. */
const PREFIX_BYTES: readonly [EntryKind, Buffer][] = PREFIXES.map((k) => [k, Buffer.from(`${k}/`)]);

/** True when a component could take a restore outside its destination. */
export function isUnsafeComponent(c: Buffer): boolean {
  return c.length === 0 || (c.length === 1 && c[0] === 0x2e) || (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e) || c.includes(0);
}

/**
 * Parses an entry name as duplicity's patchdir does. Rejects `..`, NUL and empty
 * components: an index must never point outside the tree.
 */
export function parseEntryName(name: Buffer): ParsedEntryName {
  for (const [kind, p] of PREFIX_BYTES) {
    if (name.length >= p.length && name.compare(p, 0, p.length, 0, p.length) === 0) {
      let rest = name.subarray(p.length);
      let chunk: number | undefined;
      if (kind.startsWith('multivol_')) {
        let end = rest.length;
        while (end > 0 && rest[end - 1] === 0x2f) end--;
        const slash = rest.lastIndexOf(0x2f, end - 1);
        const num = rest.toString('latin1', slash + 1, end);
        if (slash === -1 || !/^\d+$/.test(num)) throw new FormatError(`bad multivol entry name ${name.toString('utf8')}`);
        chunk = parseInt(num, 10);
        rest = rest.subarray(0, slash);
      }
      // A leading "./" (as in the root form snapshot/./) is not a component.
      while (rest.length >= 2 && rest[0] === 0x2e && rest[1] === 0x2f) rest = rest.subarray(2);
      const index = pathToIndex(rest, true); // a header's name is the reader's own copy
      // pathToIndex already mapped "." to the root; any other dot component is hostile.
      for (const c of index) {
        if (isUnsafeComponent(c)) throw new FormatError(`unsafe path in archive entry ${JSON.stringify(name.toString('utf8'))}`, { code: 'UNSAFE_PATH' });
      }
      return chunk === undefined ? { kind, index } : { kind, index, chunk };
    }
  }
  throw new FormatError(`unknown archive entry ${JSON.stringify(name.toString('utf8'))}`);
}

/**
 * The printable form of an index for messages and listings: one line whatever the
 * name holds, and lossless (see escapeName).
 */
export function displayIndex(index: Index): string {
  return escapeName(indexToPath(index));
}
