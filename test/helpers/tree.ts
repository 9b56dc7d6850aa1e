/**
 * Builds test trees and describes trees for comparison: type, mode, whole-second
 * mtime, content hash, symlink target, and (as root) owner, keyed by raw path bytes.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface TreeOptions {
  /** Compare owners too. @default false */
  owners?: boolean;
  /** Leave the root's own metadata out. @default false */
  ignoreRootMeta?: boolean;
}

function describeEntry(p: Buffer, st: fs.Stats, o: TreeOptions): string {
  const type = st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFIFO() ? 'p' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : '?';
  const parts = [type];
  if (type !== 'l') parts.push((st.mode & 0o7777).toString(8), String(Math.floor(st.mtimeMs / 1000)));
  if (o.owners) parts.push(`${st.uid}:${st.gid}`);
  if (type === 'f') parts.push(String(st.size), fileSha256(p).slice(0, 16));
  if (type === 'l') parts.push(fs.readlinkSync(p, { encoding: 'buffer' }).toString('hex'));
  if (type === 'c' || type === 'b') parts.push(String(st.rdev));
  return parts.join(' ');
}

/** A file's SHA-256 (hex), read in pieces: trees hold files of a GiB. */
export function fileSha256(p: Buffer | string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(p, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Map of relative path (hex of raw bytes, '' for the root) → description. */
export function describeTree(root: string, o: TreeOptions = {}): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: Buffer, rel: Buffer | null) => {
    const st = fs.lstatSync(dir);
    const key = rel ? rel.toString('latin1') : '';
    if (!(rel === null && o.ignoreRootMeta)) out.set(key, describeEntry(dir, st, o));
    if (!st.isDirectory()) return;
    for (const n of fs.readdirSync(dir, { encoding: 'buffer' }) as Buffer[]) {
      const child = Buffer.concat([dir, Buffer.from('/'), n]);
      const crel = rel ? Buffer.concat([rel, Buffer.from('/'), n]) : n;
      walk(child, crel);
    }
  };
  walk(Buffer.from(root), null);
  return out;
}

/** Differences between two described trees, readable in a failed assertion. */
export function treeDiff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  const show = (k: string) => JSON.stringify(Buffer.from(k, 'latin1').toString('utf8') || '.');
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${show(k)}: ${v} != ${b.get(k) ?? 'missing'}`);
  for (const k of b.keys()) if (!a.has(k)) out.push(`${show(k)}: extra`);
  return out;
}

/**
 * Incompressible bytes (so small volume sizes really split the data), the same for the
 * same seed: an AES-CTR keystream keyed by it.
 */
export function bytes(n: number, seed: number): Buffer {
  const key = createHash('sha256').update(`tree seed ${seed}`).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

/** The tricky tree of the core round-trip tests. */
export function makeTrickyTree(root: string): void {
  const P = (...xs: (string | Buffer)[]) => Buffer.concat([Buffer.from(root), ...xs.map((x) => Buffer.concat([Buffer.from('/'), Buffer.from(x)]))]);
  fs.mkdirSync(root, { recursive: true });
  const write = (p: Buffer, data: Buffer | string, mode = 0o644) => {
    fs.writeFileSync(p, data);
    fs.chmodSync(p, mode);
  };
  write(P('name with spaces.txt'), 'spaces\n');
  write(P(`quote"and'single`), 'quotes\n');
  write(P('back\\slash'), 'backslash\n');
  write(P('new\nline'), 'newline\n');
  write(P(Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74])), 'not utf-8 name\n');
  write(P('héllo-ünïcode-日本.txt'), 'unicode\n');
  write(P('empty'), Buffer.alloc(0));
  write(P('s65535'), bytes(65535, 1));
  write(P('s65536'), bytes(65536, 2));
  write(P('s65537'), bytes(65537, 3));
  write(P('several-mib.bin'), bytes(5 * 1024 * 1024 + 123, 4));
  write(P('mode600'), 'private\n', 0o600);
  write(P('mode755'), '#!/bin/sh\n', 0o755);
  write(P('mode444'), 'read only\n', 0o444);
  // A path longer than 255 bytes, through nested directories with long names.
  const long = 'l'.repeat(120);
  fs.mkdirSync(P(long, long), { recursive: true });
  write(P(long, long, 'f'.repeat(60) + '.txt'), 'deep\n');
  fs.mkdirSync(P('emptydir'));
  fs.mkdirSync(P('a'));
  write(P('a', 'b'), 'a/b\n');
  write(P('a-b'), 'a-b\n');
  fs.symlinkSync('name with spaces.txt', P('link'));
  fs.symlinkSync('does/not/exist', P('dangling'));
  fs.symlinkSync('l'.repeat(150), P('longlink'));
  spawnSync('mkfifo', [path.join(root, 'fifo')]);
  const old = new Date('1985-06-15T12:00:00Z');
  const future = new Date('2099-12-31T23:59:58Z');
  fs.utimesSync(P('mode600'), old, old);
  fs.utimesSync(P('mode755'), future, future);
  fs.utimesSync(P('emptydir'), old, old);
  fs.lutimesSync(P('link'), old, old);
}
