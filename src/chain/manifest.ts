/**
 * Duplicity manifests (duplicity-format.md 4): host, source dir, per-volume index range
 * and hash of the stored bytes, and the list of changed files. Written byte-for-byte
 * as duplicity writes it; parsed as leniently as duplicity parses it.
 */
import { FormatError } from '../errors.js';
import { indexToPath, pathToIndex, type Index } from '../volume/entry-name.js';

export interface VolumeInfo {
  number: number;
  start: Index;
  /** Chunk number of the first entry when it is a non-final multivol chunk. */
  startBlock?: number;
  end: Index;
  endBlock?: number;
  /** Hash of the stored file bytes; duplicity writes SHA1. */
  hashType: 'SHA1' | 'MD5';
  hash: string;
}

export interface FileChange {
  action: 'new' | 'changed' | 'deleted';
  path: Buffer;
}

export interface Manifest {
  hostname?: string;
  localdir?: Buffer;
  volumes: VolumeInfo[];
  files: FileChange[];
}

const SPECIAL = new Set([0x20, 0x09, 0x0a, 0x0d, 0x0b, 0x0c, 0x5c, 0x22, 0x27]);

export function quote(b: Buffer): Buffer {
  if (!b.some((c) => SPECIAL.has(c))) return b;
  const parts: Buffer[] = [Buffer.from('"')];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (SPECIAL.has(b[i]!)) {
      parts.push(b.subarray(start, i), Buffer.from(`\\x${b[i]!.toString(16).padStart(2, '0')}`));
      start = i + 1;
    }
  }
  parts.push(b.subarray(start), Buffer.from('"'));
  return Buffer.concat(parts);
}

export function unquote(b: Buffer): Buffer {
  if (b[0] !== 0x22) return b;
  const inner = b.subarray(1, b.length - 1);
  const out: number[] = [];
  for (let i = 0; i < inner.length; i++) {
    if (inner[i] === 0x5c && inner[i + 1] === 0x78 && i + 3 < inner.length + 0) {
      const hex = inner.toString('latin1', i + 2, i + 4);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        out.push(parseInt(hex, 16));
        i += 3;
        continue;
      }
    }
    out.push(inner[i]!);
  }
  return Buffer.from(out);
}

function pathField(index: Index, block: number | undefined): Buffer {
  return Buffer.concat([quote(indexToPath(index)), Buffer.from(block === undefined ? '  ' : ` ${block}`)]);
}

/** Serialises as duplicity does during a backup: volumes first, Filelist last. */
export function formatManifest(m: Manifest): Buffer {
  return Buffer.concat([manifestHead(m, m.files.length), ...m.files.map(fileLine)]);
}

/**
 * Everything before the file list, ending with its `Filelist N` line: a backup writes
 * the list itself line by line (fileLine) from disk, so a tree of any size never has
 * its whole list in memory.
 */
export function manifestHead(m: Omit<Manifest, 'files'>, fileCount: number): Buffer {
  const parts: Buffer[] = [];
  if (m.hostname) parts.push(Buffer.from(`Hostname ${m.hostname}\n`));
  if (m.localdir && m.localdir.length) parts.push(Buffer.from('Localdir '), quote(m.localdir), Buffer.from('\n'));
  for (const v of m.volumes) {
    parts.push(Buffer.from(`Volume ${v.number}:\n    StartingPath   `), pathField(v.start, v.startBlock), Buffer.from('\n'));
    parts.push(Buffer.from('    EndingPath     '), pathField(v.end, v.endBlock), Buffer.from('\n'));
    parts.push(Buffer.from(`    Hash ${v.hashType} ${v.hash}\n`));
  }
  parts.push(Buffer.from(`Filelist ${fileCount}\n`));
  return Buffer.concat(parts);
}

export function fileLine(f: FileChange): Buffer {
  return Buffer.concat([Buffer.from(`    ${f.action.padEnd(7)}  `), quote(f.path), Buffer.from('\n')]);
}

function splitLines(b: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0a) {
      lines.push(b.subarray(s, i));
      s = i + 1;
    }
  }
  if (s < b.length) lines.push(b.subarray(s));
  return lines;
}

/** Splits on ASCII whitespace, as Python's bytes.split(). */
function words(line: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let s = -1;
  for (let i = 0; i <= line.length; i++) {
    const ws = i === line.length || line[i] === 0x20 || (line[i]! >= 0x09 && line[i]! <= 0x0d);
    if (ws) {
      if (s >= 0) out.push(line.subarray(s, i));
      s = -1;
    } else if (s < 0) s = i;
  }
  return out;
}

type OpenVolume = Partial<VolumeInfo> & { number?: number };

/** A volume's StartingPath or EndingPath line: the path, and a block number for a multivol chunk. */
function volumePath(cur: OpenVolume, key: 'startingpath' | 'endingpath', w: Buffer[], bad: (m: string) => Error): void {
  if (w.length < 2) throw bad(`volume ${cur.number}: empty ${key}`);
  const index = pathToIndex(unquote(w[1]!));
  const block = w[2] ? parseInt(w[2].toString('latin1'), 10) : undefined;
  if (block !== undefined && !Number.isSafeInteger(block)) throw bad(`volume ${cur.number}: bad block number`);
  if (key === 'startingpath') {
    cur.start = index;
    if (block !== undefined) cur.startBlock = block;
  } else {
    cur.end = index;
    if (block !== undefined) cur.endBlock = block;
  }
}

/** A volume's Hash line; duplicity prefers SHA1 over MD5 when both are present. */
function volumeHash(cur: OpenVolume, w: Buffer[], bad: (m: string) => Error): void {
  const type = w[1]?.toString('latin1').toUpperCase();
  const hex = w[2]?.toString('latin1').toLowerCase();
  if (!hex || !/^[0-9a-f]+$/.test(hex)) throw bad(`volume ${cur.number}: bad hash line`);
  if ((type === 'SHA1' || type === 'MD5') && (type === 'SHA1' || cur.hashType !== 'SHA1' || !cur.hash)) {
    cur.hashType = type;
    cur.hash = hex;
  }
}

/**
 * Parses a manifest; `what` names the file in errors. The file list (one line per
 * changed file, nothing restore or verify needs) is only collected with `withFiles`.
 */
export function parseManifest(data: Buffer, what = 'manifest', o: { withFiles?: boolean } = {}): Manifest {
  const bad = (msg: string) => new FormatError(`${msg}`, { context: { file: what }, code: 'BAD_MANIFEST' });
  const m: Manifest = { volumes: [], files: [] };
  const byNumber = new Map<number, VolumeInfo>();
  let cur: OpenVolume | undefined;
  let inFilelist = false;
  const finish = () => {
    if (!cur || cur.number === undefined) return;
    if (!cur.start || !cur.end) throw bad(`volume ${cur.number} lacks StartingPath or EndingPath`);
    if (!cur.hash) throw bad(`volume ${cur.number} has no hash`);
    byNumber.set(cur.number, cur as VolumeInfo);
    cur = undefined;
  };
  for (const line of splitLines(data)) {
    const w = words(line);
    if (w.length === 0) continue;
    const key = w[0]!.toString('latin1').toLowerCase();
    if (key === 'hostname' && !cur && !inFilelist) {
      m.hostname = line.toString('utf8').replace(/^\s*\S+\s+/, '').trimEnd();
    } else if (key === 'localdir' && !cur && !inFilelist) {
      if (w.length < 2) throw bad('empty Localdir');
      m.localdir = unquote(w[1]!);
    } else if (key === 'volume' || /^volume\d+:?$/.test(key)) {
      finish();
      inFilelist = false;
      const num = parseInt((w[1] ?? w[0]!).toString('latin1').replace(/^volume/i, ''), 10);
      if (!Number.isSafeInteger(num) || num < 1) throw bad(`bad volume number in "${line.toString('utf8')}"`);
      cur = { number: num, hashType: 'SHA1' };
    } else if (key === 'filelist') {
      finish();
      inFilelist = true;
    } else if (cur && (key === 'startingpath' || key === 'endingpath')) {
      volumePath(cur, key, w, bad);
    } else if (cur && key === 'hash') {
      volumeHash(cur, w, bad);
    } else if (inFilelist || (cur && (key === 'new' || key === 'changed' || key === 'deleted'))) {
      if (o.withFiles && (key === 'new' || key === 'changed' || key === 'deleted') && w[1]) {
        m.files.push({ action: key, path: unquote(w[1]) });
      }
    }
    // anything else: unknown field, ignored as duplicity does
  }
  finish();
  const nums = [...byNumber.keys()].sort((a, b) => a - b);
  for (const n of nums) m.volumes.push(byNumber.get(n)!);
  return m;
}
