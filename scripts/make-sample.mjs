#!/usr/bin/env node
// Regenerates volumes-sample/: a small tree in three successive states, and the
// chain tapechain made of them (a full and two incrementals), passphrase
// "tapechain-sample", signed and sealed with the test-only key in keys/, volsize small
// enough that sets span several volumes.
//
//   npm run sample            # rebuild source/ and archive/
//   npm run sample -- --source-only
//
// The archive is a format regression fixture: tests decode it at every point in time.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeTree } from './describe-tree.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sample = path.join(root, 'volumes-sample');
const PASSPHRASE = 'tapechain-sample';

/** Deterministic pseudo-random bytes (incompressible, so volumes split). */
function bytes(n, label) {
  const out = Buffer.alloc(n);
  let off = 0;
  for (let i = 0; off < n; i++) {
    const h = createHash('sha256').update(`${label}:${i}`).digest();
    h.copy(out, off);
    off += h.length;
  }
  return out;
}

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0) / 1000;

function write(dir, rel, data, mode = 0o644, mtime = T0) {
  const p = path.join(dir, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
  fs.chmodSync(p, mode);
  fs.utimesSync(p, mtime, mtime);
}

/** State 1: the initial tree. */
function state1(d) {
  write(d, 'README.txt', 'tapechain sample tree\n');
  write(d, 'docs/notes.md', '# Notes\n\nfirst version\n');
  write(d, 'docs/name with spaces.txt', 'spaces\n');
  write(d, 'data/big.bin', bytes(700 * 1024, 'big'));
  write(d, 'data/medium.bin', bytes(100 * 1024, 'medium'));
  write(d, 'data/to-delete.txt', 'going away\n');
  write(d, 'bin/run.sh', '#!/bin/sh\necho run\n', 0o755);
  write(d, 'secret.key', 'not really secret\n', 0o600);
  fs.mkdirSync(path.join(d, 'empty'), { recursive: true });
  fs.symlinkSync('docs/notes.md', path.join(d, 'notes-link'));
}

/** State 2: edits in the middle, an append, a delete, a new dir, chmod only. */
function state2(d) {
  const big = fs.readFileSync(path.join(d, 'data/big.bin'));
  bytes(4096, 'edit2').copy(big, 300 * 1024);
  write(d, 'data/big.bin', big, 0o644, T0 + 86400);
  write(d, 'docs/notes.md', '# Notes\n\nfirst version\nsecond line\n', 0o644, T0 + 86400);
  fs.rmSync(path.join(d, 'data/to-delete.txt'));
  write(d, 'new/added.txt', 'added in state 2\n', 0o644, T0 + 86400);
  fs.chmodSync(path.join(d, 'secret.key'), 0o400);
}

/** State 3: truncation, a dir replaced by a file, a retargeted symlink. */
function state3(d) {
  const med = fs.readFileSync(path.join(d, 'data/medium.bin'));
  write(d, 'data/medium.bin', med.subarray(0, 40000), 0o644, T0 + 2 * 86400);
  fs.rmSync(path.join(d, 'empty'), { recursive: true });
  write(d, 'empty', 'now a file\n', 0o644, T0 + 2 * 86400);
  fs.rmSync(path.join(d, 'notes-link'));
  fs.symlinkSync('README.txt', path.join(d, 'notes-link'));
}

const states = [state1, state2, state3];

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tapechain-sample-'));
try {
  const src = path.join(work, 'source');
  fs.mkdirSync(src);
  const sourceOnly = process.argv.includes('--source-only');
  const archive = path.join(sample, 'archive');
  if (!sourceOnly) fs.rmSync(archive, { recursive: true, force: true });
  const expected = [];
  for (const [i, apply] of states.entries()) {
    apply(src);
    fs.utimesSync(src, T0 + i * 86400, T0 + i * 86400);
    if (sourceOnly) continue;
    const key = path.join(sample, 'keys', 'sample-signing.sec.asc'); // test-only key
    execFileSync(path.join(root, 'bin/tapechain'), ['backup', '--volsize', '0.25', '--sign-key', key, 'source', archive], {
      env: { ...process.env, PASSPHRASE, SIGN_PASSPHRASE: '', XDG_CACHE_HOME: path.join(work, 'cache') },
      stdio: 'inherit',
      cwd: work,
    });
    expected.push(describeTree(src));
    if (i < states.length - 1) await new Promise((r) => setTimeout(r, 1100)); // distinct set times
  }
  if (!sourceOnly) fs.writeFileSync(path.join(sample, 'states.json'), JSON.stringify(expected, null, 1) + '\n');
  fs.rmSync(path.join(sample, 'source'), { recursive: true, force: true });
  fs.cpSync(src, path.join(sample, 'source'), { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
