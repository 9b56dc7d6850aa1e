#!/usr/bin/env node
// npm run bench [-- --size 1GiB] [--keep] [--only tapechain,duplicity,restic,tar-gpg]
//                 [--files N [--files-only]]
//
// Builds the shared benchmark corpus (scripts/make-corpus.mjs), then times in ONE run:
// tapechain, duplicity and restic (each when installed) and `tar | gpg --symmetric` on
// full backup, `--mutate 1`, incremental, restore latest, verify, and verify against the
// live tree (tapechain --compare, duplicity --compare-data). Prints a table
// (wall, CPU, cores busy = CPU / wall, peak RSS, stored bytes) with ratios against duplicity and restic measured
// in the same run — these machines are noisy, so only ratios compare — and writes JSON
// to .bench/. Default settings for every tool: passphrase encryption with compression
// (restic: its own format, zstd, deduplicated; its verify is `check --read-data`).
// --files N adds a tree of N small files (100 B - 8 KiB, ~4 KiB on average, 100 to a
// directory): a full backup and an incremental with nothing changed, where per-file
// cost (lstat, open, read, headers, signatures) is all there is; --files-only runs
// just those rows.
// --history [--history-only] builds a 40-set history of a 20,000-file tree (1 % of the
// files rewritten per set) and times, from a warm cache, `find` of one name across all
// sets and `diff` of the first point with the last (restic: its find and diff).
// Also, when the tools are there: tapechain's full and restore with --jobs 1 (the single
// lane: the scaling of the default --jobs), verify with --jobs 1 and 2, the full with --no-xattrs (what reading xattrs costs), and a full of the corpus to a local S3 server (Ceph
// radosgw, started here by scripts/start-rgw.sh and stopped by PID) for tapechain and
// restic (--no-s3 leaves that out).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const size = opt('size', '1GiB');
const only = opt('only', 'tapechain,duplicity,restic,tar-gpg').split(',');
const keep = args.includes('--keep');
const work = fs.mkdtempSync(path.join(opt('dir', os.tmpdir()), 'tapechain-bench-'));
const PASS = 'bench passphrase';
const haveTime = fs.existsSync('/usr/bin/time');
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Runs a shell command; returns wall, CPU and peak RSS (GNU time) of the whole tree. */
function measure(label, cmd, env = {}) {
  const timeFile = path.join(work, 'time.txt');
  const wrapped = haveTime ? ['/usr/bin/time', '-f', '%e %U %S %M', '-o', timeFile, 'sh', '-c', cmd] : ['sh', '-c', cmd];
  const t0 = performance.now();
  const r = spawnSync(wrapped[0], wrapped.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
  const wall = (performance.now() - t0) / 1000;
  // exit 1: verify found differences with the live tree (a result, not a failure)
  if (r.status !== 0 && !((label.startsWith('duplicity verify') || label.endsWith(' compare')) && r.status === 1)) {
    throw new Error(`${label} failed (${r.status}): ${r.stderr.toString().slice(-2000)}`);
  }
  if (!haveTime) return { wall, cpu: null, rssMiB: null };
  const [, u, s, m] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return { wall, cpu: u + s, rssMiB: m / 1024 };
}

const du = (p) => Number(execFileSync('du', ['-sb', p]).toString().split('\t')[0]);
/** Bytes a step added to a target (restic's repository has subdirectories). */
const added = (target, before) => du(target) - before;

const historyOnly = args.includes('--history-only');
const filesOnly = args.includes('--files-only') || historyOnly;
const corpus = path.join(work, 'corpus');
if (!filesOnly) {
  console.error(`bench: corpus ${size} in ${work}`);
  execFileSync('node', [path.join(root, 'scripts/make-corpus.mjs'), corpus, '--size', size, '--seed', '1'], { stdio: 'inherit' });
}
const corpusBytes = filesOnly ? 0 : du(corpus);

const tapechainBackup = (corpus, t, cache, extra = '') => `'${root}/bin/tapechain' backup ${extra}--archive-dir '${cache}' '${corpus}' '${t}'`;
/** The main thread's share of a run's CPU: the full runs the CLI through scripts/thread-cpu.mjs. */
const threadCpuFile = path.join(work, 'thread-cpu.json');
const withThreadCpu = (cmd) => cmd.replace(`'${root}/bin/tapechain'`, `node --max-semi-space-size=4 '${root}/scripts/thread-cpu.mjs' '${threadCpuFile}' --`);
const toolsFor = (corpus) => ({
  tapechain: (t, cache) => ({
    full: withThreadCpu(tapechainBackup(corpus, t, cache)),
    inc: `'${root}/bin/tapechain' backup --archive-dir '${cache}' '${corpus}' '${t}'`,
    restore: (out) => `'${root}/bin/tapechain' restore --archive-dir '${cache}' '${t}' '${out}'`,
    verify: `'${root}/bin/tapechain' verify --archive-dir '${cache}' '${t}'`,
    compare: `'${root}/bin/tapechain' verify --compare '${corpus}' --archive-dir '${cache}' '${t}'`,
    env: { PASSPHRASE: PASS },
  }),
  duplicity: (t, cache) => ({
    full: `duplicity full --archive-dir '${cache}' --name b '${corpus}' 'file://${t}'`,
    inc: `duplicity incr --archive-dir '${cache}' --name b '${corpus}' 'file://${t}'`,
    restore: (out) => `duplicity restore --archive-dir '${cache}' --name b 'file://${t}' '${out}'`,
    verify: `duplicity verify --archive-dir '${cache}' --name b 'file://${t}' '${corpus}'`,
    compare: `duplicity verify --compare-data --archive-dir '${cache}' --name b 'file://${t}' '${corpus}'`,
    env: { PASSPHRASE: PASS, GNUPGHOME: path.join(work, 'gnupg') },
  }),
  restic: (t, cache) => ({
    // Not timed: creating the repository (its key derivation is a fixed cost).
    prepare: `restic init -q --repo '${t}'`,
    full: `restic backup -q --repo '${t}' '${corpus}'`,
    inc: `restic backup -q --repo '${t}' '${corpus}'`,
    restore: (out) => `restic restore -q --repo '${t}' latest --target '${out}'`,
    verify: `restic check -q --read-data --repo '${t}'`,
    env: { RESTIC_PASSWORD: PASS, RESTIC_CACHE_DIR: cache },
  }),
  'tar-gpg': (t) => ({
    full: `mkdir -p '${t}' && tar -C '${corpus}' -cf - . | gpg --batch --pinentry-mode loopback --passphrase '${PASS}' --symmetric -o '${t}/full.tar.gpg'`,
    inc: null,
    restore: (out) => `mkdir -p '${out}' && gpg --batch -q --pinentry-mode loopback --passphrase '${PASS}' -d '${t}/full.tar.gpg' | tar -C '${out}' -xf -`,
    verify: `gpg --batch -q --pinentry-mode loopback --passphrase '${PASS}' -d '${t}/full.tar.gpg' | tar -tf - >/dev/null`,
    env: { GNUPGHOME: path.join(work, 'gnupg') },
  }),
});
const tools = toolsFor(corpus);
fs.mkdirSync(path.join(work, 'gnupg'), { mode: 0o700 });

const needs = { duplicity: 'duplicity', restic: 'restic', 'tar-gpg': 'gpg' };
const names = Object.keys(tools).filter((n) => only.includes(n) && (!needs[n] || has(needs[n])));
const results = Object.fromEntries(names.map((n) => [n, {}]));
const steps = {};
for (const n of filesOnly ? [] : names) {
  const t = path.join(work, `target-${n}`);
  fs.mkdirSync(t, { recursive: true });
  steps[n] = tools[n](t, path.join(work, `cache-${n}`));
  if (steps[n].prepare) execFileSync('sh', ['-c', steps[n].prepare], { env: { ...process.env, ...steps[n].env }, stdio: 'inherit' });
  const before = du(t);
  console.error(`bench: ${n} full`);
  results[n].full = { ...measure(`${n} full`, steps[n].full, steps[n].env), stored: added(t, before) };
  if (n === 'tapechain' && fs.existsSync(threadCpuFile)) results[n].full.threads = JSON.parse(fs.readFileSync(threadCpuFile, 'utf8'));
}
if (!filesOnly && names.includes('tapechain')) {
  // the same full on one lane: what the default --jobs gains
  const t = path.join(work, 'target-tapechain-jobs1');
  console.error('bench: tapechain full --jobs 1');
  results.tapechain.fullJobs1 = measure('tapechain full --jobs 1', tapechainBackup(corpus, t, path.join(work, 'cache-tapechain-jobs1'), '--jobs 1 '), steps.tapechain.env);
  fs.rmSync(t, { recursive: true, force: true });
  // what reading extended attributes costs: the same plain full with and without,
  // interleaved twice (the rows above run through the thread-CPU wrapper)
  const runs = { fullXattrs: [], fullNoXattrs: [] };
  for (let i = 0; i < 2; i++) {
    for (const [k, extra] of [['fullNoXattrs', '--no-xattrs '], ['fullXattrs', '']]) {
      const t = path.join(work, `target-tapechain-${k}`);
      const cache = path.join(work, `cache-tapechain-${k}`);
      console.error(`bench: tapechain full ${extra}(${i + 1} of 2)`);
      runs[k].push(measure(`tapechain full ${extra}`, tapechainBackup(corpus, t, cache, extra), steps.tapechain.env));
      for (const d of [t, cache]) fs.rmSync(d, { recursive: true, force: true });
    }
  }
  const mean = (xs, f) => (xs.some((x) => x[f] == null) ? null : xs.reduce((a, x) => a + x[f], 0) / xs.length);
  for (const [k, xs] of Object.entries(runs)) results.tapechain[k] = { wall: mean(xs, 'wall'), cpu: mean(xs, 'cpu'), rssMiB: mean(xs, 'rssMiB') };
}
if (!filesOnly && !args.includes('--no-s3') && has('radosgw')) benchS3();

/** Full backups of the corpus to a local radosgw, started and stopped here. */
function benchS3() {
  const rgw = path.join(work, 'rgw');
  console.error('bench: starting the local S3 server (radosgw)');
  const started = spawnSync('bash', [path.join(root, 'scripts/start-rgw.sh'), rgw], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (started.status !== 0) {
    console.error('bench: radosgw did not start; no S3 row');
    return;
  }
  try {
    const endpoint = `http://127.0.0.1:${fs.readFileSync(path.join(rgw, 'port'), 'utf8').trim()}`;
    const creds = { AWS_ACCESS_KEY_ID: 'TESTKEY', AWS_SECRET_ACCESS_KEY: 'TESTSECRET' };
    const s3 = {
      tapechain: { cmd: `'${root}/bin/tapechain' backup --s3-endpoint ${endpoint} --s3-create-bucket --archive-dir '${path.join(work, 'cache-s3')}' '${corpus}' s3://bench-tapechain/b`, env: { ...creds, PASSPHRASE: PASS } },
      restic: { prepare: `restic init -q --repo s3:${endpoint}/bench-restic`, cmd: `restic backup -q --repo s3:${endpoint}/bench-restic '${corpus}'`, env: { ...creds, RESTIC_PASSWORD: PASS, RESTIC_CACHE_DIR: path.join(work, 'cache-restic-s3') } },
    };
    for (const n of names.filter((x) => s3[x])) {
      if (s3[n].prepare) execFileSync('sh', ['-c', s3[n].prepare], { env: { ...process.env, ...s3[n].env }, stdio: 'inherit' });
      console.error(`bench: ${n} full to S3`);
      results[n].s3Full = measure(`${n} full to S3`, s3[n].cmd, s3[n].env);
    }
  } finally {
    spawnSync('bash', [path.join(root, 'scripts/stop-rgw.sh'), rgw], { stdio: 'inherit' });
  }
}
if (!filesOnly) {
  console.error('bench: mutate 1%');
  execFileSync('node', [path.join(root, 'scripts/make-corpus.mjs'), corpus, '--mutate', '1', '--seed', '2'], { stdio: 'inherit' });
}
for (const n of filesOnly ? [] : names) {
  const t = path.join(work, `target-${n}`);
  if (steps[n].inc) {
    const before = du(t);
    console.error(`bench: ${n} incremental`);
    results[n].inc = { ...measure(`${n} inc`, steps[n].inc, steps[n].env), stored: added(t, before) };
  }
  const out = path.join(work, `restore-${n}`);
  console.error(`bench: ${n} restore`);
  results[n].restore = measure(`${n} restore`, steps[n].restore(out), steps[n].env);
  fs.rmSync(out, { recursive: true, force: true });
  if (n === 'tapechain') {
    // the same restore on one lane (the default: a worker thread per CPU)
    console.error('bench: tapechain restore --jobs 1');
    results[n].restoreJobs1 = measure('tapechain restore --jobs 1', steps[n].restore(out).replace("' restore ", "' restore --jobs 1 "), steps[n].env);
    fs.rmSync(out, { recursive: true, force: true });
  }
  if (n !== 'tapechain' || fs.existsSync(path.join(root, 'dist/cli/commands/verify.js'))) {
    console.error(`bench: ${n} verify`);
    results[n].verify = measure(`${n} verify`, steps[n].verify, steps[n].env);
    if (n === 'tapechain') {
      // the same verify with a worker per CPU (the default is one per CPU but one: on
      // 2 CPUs, the single lane), and on one lane
      console.error('bench: tapechain verify --jobs 1, --jobs 2');
      results[n].verifyJobs1 = measure('tapechain verify --jobs 1', steps[n].verify.replace("' verify ", "' verify --jobs 1 "), steps[n].env);
      results[n].verifyJobs2 = measure('tapechain verify --jobs 2', steps[n].verify.replace("' verify ", "' verify --jobs 2 "), steps[n].env);
    }
  }
  if (steps[n].compare) {
    // verify --compare (tapechain) and verify --compare-data (duplicity): archive against the live tree
    console.error(`bench: ${n} compare`);
    results[n].compare = measure(`${n} compare`, steps[n].compare, steps[n].env);
  }
}


/** N small files, seeded: half text-like (compressible), half random; 100 to a directory. */
function smallFileTree(dir, n) {
  let x = 12345;
  const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const words = 'backup chain volume delta signature manifest restore verify tape archive'.split(' ');
  for (let i = 0; i < n; i++) {
    const d = path.join(dir, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) fs.mkdirSync(d, { recursive: true });
    const size = 100 + Math.floor(rnd() * 8092);
    let data;
    if (i % 2 === 0) {
      const parts = [];
      let len = 0;
      while (len < size) {
        const w = words[Math.floor(rnd() * words.length)] + (rnd() < 0.1 ? '\n' : ' ');
        parts.push(w);
        len += w.length;
      }
      data = Buffer.from(parts.join('')).subarray(0, size);
    } else data = Buffer.from(Array.from({ length: size }, () => Math.floor(rnd() * 256)));
    fs.writeFileSync(path.join(d, `f${i}.${i % 2 === 0 ? 'txt' : 'bin'}`), data);
  }
}

const fileCount = Number(opt('files', '0'));
if (fileCount > 0) {
  const small = path.join(work, 'small-files');
  console.error(`bench: ${fileCount} small files`);
  smallFileTree(small, fileCount);
  const smallTools = toolsFor(small);
  for (const n of names) {
    const t = path.join(work, `small-target-${n}`);
    fs.mkdirSync(t, { recursive: true });
    const st = smallTools[n](t, path.join(work, `small-cache-${n}`));
    if (st.prepare) execFileSync('sh', ['-c', st.prepare], { env: { ...process.env, ...st.env }, stdio: 'inherit' });
    let before = du(t);
    console.error(`bench: ${n} full, ${fileCount} files`);
    results[n].filesFull = { ...measure(`${n} full`, st.full, st.env), stored: added(t, before) };
    if (st.inc) {
      before = du(t);
      console.error(`bench: ${n} incremental, nothing changed`);
      results[n].filesInc = { ...measure(`${n} inc`, st.inc, st.env), stored: added(t, before) };
    }
  }
}

if (args.includes('--history')) benchHistory();

/** find and diff over a 40-set history of a 20k-file tree, warm caches (issue 20's figure). */
function benchHistory() {
  const files = 20000;
  const sets = 40;
  const tree = path.join(work, 'history-tree');
  console.error(`bench: history of ${sets} sets, ${files} files`);
  smallFileTree(tree, files);
  const hist = {
    tapechain: { t: path.join(work, 'history-tapechain'), env: { PASSPHRASE: PASS, XDG_CACHE_HOME: path.join(work, 'history-cache') } },
    restic: { t: path.join(work, 'history-restic'), env: { RESTIC_PASSWORD: PASS, RESTIC_CACHE_DIR: path.join(work, 'history-cache-restic') } },
  };
  const who = names.filter((n) => hist[n]);
  if (who.includes('restic')) execFileSync('restic', ['init', '-q', '--repo', hist.restic.t], { env: { ...process.env, ...hist.restic.env } });
  for (let s = 0; s < sets; s++) {
    // 1 % of the files rewritten per set, a different 1 % each time
    if (s > 0) for (let i = s; i < files; i += 100) fs.appendFileSync(path.join(tree, `d${Math.floor(i / 100)}`, `f${i}.${i % 2 === 0 ? 'txt' : 'bin'}`), `set ${s}\n`);
    if (who.includes('tapechain')) execFileSync(path.join(root, 'bin/tapechain'), ['backup', '--quiet', tree, hist.tapechain.t], { env: { ...process.env, ...hist.tapechain.env } });
    if (who.includes('restic')) execFileSync('restic', ['backup', '-q', '--repo', hist.restic.t, tree], { env: { ...process.env, ...hist.restic.env } });
  }
  const tc = `'${root}/bin/tapechain'`;
  const cmds = {
    tapechain: { find: `${tc} find 'f12345.*' '${hist.tapechain.t}' >/dev/null`, diff: `${tc} diff --from 0 '${hist.tapechain.t}' >/dev/null` },
    restic: { find: `restic find -q --repo '${hist.restic.t}' 'f12345.*' >/dev/null`, diff: `restic diff -q --repo '${hist.restic.t}' $(restic snapshots -q --repo '${hist.restic.t}' --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0));console.log(s[0].short_id, s[s.length-1].short_id)') >/dev/null` },
  };
  for (const n of who) {
    for (const step of ['find', 'diff']) {
      execFileSync('sh', ['-c', cmds[n][step]], { env: { ...process.env, ...hist[n].env }, stdio: 'ignore' }); // warms the cache
      results[n][`history${step}`] = measure(`${n} ${step}`, cmds[n][step], hist[n].env);
    }
  }
}

const fmt = (v, d = 1) => (v === null || v === undefined ? '-' : v.toFixed(d));
const mib = (b) => (b === undefined ? '-' : (b / 1048576).toFixed(1));
const rows = [];
const LABELS = { fullJobs1: 'full, --jobs 1', restoreJobs1: 'restore, --jobs 1', verifyJobs1: 'verify, --jobs 1', verifyJobs2: 'verify, --jobs 2', fullXattrs: 'full, plain (2 runs)', fullNoXattrs: 'full, --no-xattrs (2 runs)', s3Full: 'full to S3', filesFull: 'full, small files', filesInc: 'inc, no change', historyfind: 'find, 40 sets', historydiff: 'diff, 40 sets' };
for (const step of ['full', 'fullJobs1', 'fullXattrs', 'fullNoXattrs', 's3Full', 'inc', 'restore', 'restoreJobs1', 'verify', 'verifyJobs1', 'verifyJobs2', 'compare', 'filesFull', 'filesInc', 'historyfind', 'historydiff']) {
  for (const n of names) {
    const r = results[n][step];
    if (!r) continue;
    // a tapechain-only row compares with restic's row of the step it varies
    const base = step.startsWith('full') && step !== 'full' && step !== 'filesFull' ? 'full' : step.startsWith('verifyJobs') ? 'verify' : step === 'restoreJobs1' ? 'restore' : step;
    const d = results.duplicity?.[base];
    const ratio = (a, b) => (a != null && b ? `${(a / b).toFixed(2)}x` : '-');
    rows.push([LABELS[step] ?? step, n, fmt(r.wall), fmt(r.cpu), r.cpu != null ? fmt(r.cpu / r.wall, 2) : '-', fmt(r.rssMiB, 0), mib(r.stored), ratio(r.wall, d?.wall), ratio(r.stored, d?.stored), ratio(r.wall, results.restic?.[base]?.wall)]);
  }
}
const head = ['step', 'tool', 'wall s', 'cpu s', 'cores busy', 'peak RSS MiB', 'stored MiB', 'wall vs duplicity', 'bytes vs duplicity', 'wall vs restic'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ');
console.log(`\n${filesOnly ? '' : `corpus ${mib(corpusBytes)} MiB (${size}), `}${fileCount > 0 ? `${fileCount} small files, ` : ''}${os.cpus().length} cores, node ${process.version}`);
console.log(line(head));
for (const r of rows) console.log(line(r));
const tc = results.tapechain;
if (tc?.full && tc.fullJobs1) console.log(`\ntapechain full: default --jobs ${(tc.fullJobs1.wall / tc.full.wall).toFixed(2)}x as fast as --jobs 1`);
if (tc?.restore && tc.restoreJobs1) console.log(`tapechain restore: default --jobs ${(tc.restoreJobs1.wall / tc.restore.wall).toFixed(2)}x as fast as --jobs 1 (CPU ${(tc.restore.cpu / tc.restoreJobs1.cpu).toFixed(2)}x)`);
if (tc?.verifyJobs1 && tc.verifyJobs2) console.log(`tapechain verify: --jobs 2 ${(tc.verifyJobs1.wall / tc.verifyJobs2.wall).toFixed(2)}x as fast as --jobs 1 (CPU ${(tc.verifyJobs2.cpu / tc.verifyJobs1.cpu).toFixed(2)}x)`);
if (tc?.fullXattrs && tc.fullNoXattrs) console.log(`tapechain full: reading extended attributes costs ${(100 * (tc.fullXattrs.wall / tc.fullNoXattrs.wall - 1)).toFixed(1)} % of wall, ${tc.fullXattrs.cpu != null ? (100 * (tc.fullXattrs.cpu / tc.fullNoXattrs.cpu - 1)).toFixed(1) : '-'} % of CPU (means of two interleaved pairs)`);
const th = tc?.full?.threads;
if (th) {
  // Amdahl: the main thread's work stays serial, the rest spreads over the cores
  const s = th.mainCpu / th.totalCpu;
  const speedup = (n) => (1 / (s + (1 - s) / n)).toFixed(1);
  console.log(`tapechain full: main thread ${th.mainCpu.toFixed(1)} s of ${th.totalCpu.toFixed(1)} s CPU, serial fraction ${(100 * s).toFixed(0)} %: at most ${speedup(8)}x on 8 cores, ${speedup(32)}x on 32`);
}
const outDir = path.join(root, '.bench');
fs.mkdirSync(outDir, { recursive: true });
const file = path.join(outDir, `results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(file, JSON.stringify({ size, corpusBytes, files: fileCount, node: process.version, cores: os.cpus().length, results }, null, 2));
console.log(`\nresults: ${path.relative(root, file)}`);
if (!keep) fs.rmSync(work, { recursive: true, force: true });
