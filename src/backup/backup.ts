/**
 * One backup run. Decides full or incremental (a chain exists, --full,
 * --full-if-older-than), checks that an incremental continues the chain with the same
 * key and source, then streams the source through SetWriter: a full stores every path,
 * an incremental stores what changed against the chain's signatures.
 *
 * Nothing is deleted from the target, so a failed run leaves earlier chains as they
 * were; the manifest is uploaded last, so an interrupted set is visibly incomplete.
 */
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { hostname as osHostname, tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Backend } from '../backend/backend.js';
import { getBytes } from '../backend/backend.js';
import { parseName } from '../chain/file-naming.js';
import { decryptMessage, keyPacketInfo } from '../crypto/decrypt.js';
import { checkSource } from '../source/source-dir.js';
import { CheckpointFiles, fromHex, settle, type CheckpointState } from './checkpoint.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { chainSets, type Chain, type Collection } from '../chain/collection.js';
import { describeTime, formatTimestamp } from '../chain/time.js';
import { DEFAULT_COMPRESS_LEVEL, gpgEncoder, gzipEncoder, plainEncoder, type DecryptKeys } from '../crypto/index.js';
import type { MessageEncryptor } from '../crypto/encrypt.js';
import type { SecretKey } from '../crypto/keys.js';
import { createHash } from 'node:crypto';
import { ChainError, ConfigError, DecryptError, ExitCode, SourceError } from '../errors.js';
import { chainState } from '../repo/signature-state.js';
import { ArchiveReader } from '../repo/archive.js';
import { diffTree, type Change } from './changes.js';
import type { Selection } from '../source/selection.js';
import { compareIndex, type Index } from '../volume/entry-name.js';
import { makeTempDir, removeStaleTempDirs } from '../util/temp-dir.js';
import { readAhead } from '../source/read-ahead.js';
import { SetWriter, type SetStats } from './set-writer.js';
import { walkTree, type WalkWarning } from '../source/walk.js';

export interface BackupOptions {
  /** Source directory as the user gave it (recorded as the manifest's Localdir). */
  source: string;
  backend: Backend;
  /** OpenPGP encryptor, or null for --no-encryption (gzip). */
  encryptor: MessageEncryptor | null;
  /** Keys to read the existing chain (its manifest and signatures). */
  keys: DecryptKeys;
  /** Local cache of manifests and signatures. @default none (read from the target) */
  cache?: ArchiveCache;
  /** Always start a new chain. @default false */
  full?: boolean;
  /** Start a new chain when the current one's full is older than this many seconds. */
  fullIfOlderThan?: number;
  /** Allow an incremental from another host or source path. @default false */
  allowSourceMismatch?: boolean;
  /** Back up although the newest set is dated after this machine's clock. @default false */
  allowClockSkew?: boolean;
  /** zlib level inside OpenPGP / gzip; 0 = none. @default DEFAULT_COMPRESS_LEVEL */
  compressLevel?: number;
  /** Volume size cap in bytes. @default 200 MiB */
  volsize?: number;
  /** Temp directory. @default os.tmpdir() */
  tempDir?: string;
  /** Clock, epoch seconds. @default Date.now()/1000 */
  now?: () => number;
  /** @default os.hostname() */
  hostname?: string;
  /** Finished files waiting for upload. @default 2 */
  maxStaged?: number;
  /** @default 1 */
  uploadConcurrency?: number;
  signal?: AbortSignal;
  /** Which paths to back up. @default everything */
  selection?: Selection;
  /** Decide and report what would be stored; write nothing. @default false */
  dryRun?: boolean;
  /** With dryRun: each path that would be stored, and how. */
  onDryRun?: (action: 'new' | 'changed' | 'deleted', index: Index) => void;
  onWarning?: (w: WalkWarning) => void;
  /** Called as entries are stored (often: keep it cheap). */
  onProgress?: (p: SetStats & { sourceFiles: number; sourceBytes: number }) => void;
  /** Called when a file (volume, signatures, manifest, seal) is stored. */
  onStored?: (name: string, size: number) => void;
  /** Make every warning (unreadable, vanished, changed files) fatal. @default false */
  strict?: boolean;
  /** Seal each set (a signed list of its files, for offline verification) with this key. */
  sealKey?: SecretKey;
  /** Told the kind of set before anything is written (and why: a full, a resume). */
  onPlan?: (p: { type: 'full' | 'inc'; reason: string; start: number; end: number; resumed?: boolean }) => void;
}

export interface BackupResult extends SetStats {
  type: 'full' | 'inc';
  /** Entries walked in the source (after selection), and their regular files' bytes. */
  sourceFiles: number;
  sourceBytes: number;
  dryRun: boolean;
  /** Set time (END for an incremental). */
  time: number;
  start: number;
  warnings: number;
  /** Sockets met in the source (they cannot be stored); not warnings. */
  skippedSockets: number;
  names: string[];
}

/** How far behind the newest set this machine's clock may be before a run refuses: the wait of timeAfter. */
const CLOCK_SLACK = 5;

/**
 * A set dated after this machine's clock means a clock was wrong (here now, or where
 * that set was made); naming this run after it would go on silently, and `--time now`
 * and --full-if-older-than would then be wrong. Refused unless allowed; then a warning.
 */
function checkClock(o: BackupOptions, latest: number, now: number): WalkWarning | undefined {
  if (latest <= Math.floor(now) + CLOCK_SLACK) return undefined;
  const what = `the newest set at ${o.backend.describe()} is dated ${describeTime(latest)}, ${describeDuration(latest - Math.floor(now))} after this machine's clock (${describeTime(Math.floor(now))})`;
  if (!o.allowClockSkew) throw new ChainError('CLOCK_BEHIND', `${what}: the clock is wrong now or was wrong then; fix the clock, or allow it with --allow-clock-skew (this set is then named after that one)`, { exitCode: ExitCode.CONFIG });
  return { code: 'CLOCK_SKEW', path: Buffer.from(o.backend.describe()), message: `${what}; this set is named after it (--allow-clock-skew)` };
}

function describeDuration(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

/** The local target's directory when it lies inside the source (or is it), else undefined. */
async function targetInSource(backend: Backend, srcAbs: string): Promise<Buffer | undefined> {
  const dir = backend.properties.localPath;
  if (!dir) return undefined;
  const real = async (p: string): Promise<string> => {
    try {
      return await fs.realpath(p);
    } catch {
      const parent = path.dirname(p);
      return parent === p ? p : path.join(await real(parent), path.basename(p));
    }
  };
  const [t, s] = await Promise.all([real(dir), real(srcAbs)]);
  const inside = t === s || t.startsWith(s.endsWith('/') ? s : s + '/');
  // The walk sees paths under srcAbs as given: map the real path back onto it.
  return inside ? Buffer.from(path.join(srcAbs, path.relative(s, t))) : undefined;
}

/** A time strictly after `after`, waiting for the clock when it is within a few seconds. */
async function timeAfter(after: number, now: () => number, signal?: AbortSignal): Promise<number> {
  let t = Math.floor(now());
  while (t <= after && after - t <= 5) {
    if (signal?.aborted) throw signal.reason;
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
    t = Math.floor(now());
  }
  return t <= after ? after + 1 : t;
}

function latestTime(col: Collection): number {
  return Math.max(0, ...col.chains.map((c) => c.end), ...col.incomplete.map((s) => s.end), ...col.orphans.map((s) => s.end));
}

interface Decision {
  chain?: Chain;
  reason: string;
}

function decide(o: BackupOptions, col: Collection, now: number): Decision {
  const chain = col.chains[col.chains.length - 1];
  if (o.full) return { reason: '--full given' };
  if (!chain) return { reason: '' }; // the first backup: nothing to explain
  if (o.fullIfOlderThan !== undefined && chain.full.start < now - o.fullIfOlderThan) {
    return { reason: `the chain's full (${formatTimestamp(chain.full.start)}) is older than --full-if-older-than` };
  }
  if (chainSets(chain).some((s) => !s.signature)) return { reason: 'the latest chain lacks signature files' };
  return { chain, reason: '' };
}

/**
 * Checks, before anything is written, that this run may continue the chain: the same
 * encryption (passphrase, or the same recipient keys, read from the stored manifest's
 * key packets), and the same host and source path unless allowed otherwise.
 */
/**
 * The checkpoint with the pending volumes that did reach the target counted as stored:
 * undefined when there is none, or none of its volumes was stored.
 */
function settleCheckpoint(st: CheckpointState | undefined, col: Collection): CheckpointState | undefined {
  if (!st) return undefined;
  const set = incompleteSetOf(st, col);
  return settle(st, (v) => {
    const f = set?.volumes.get(v.number);
    return f !== undefined && f.name === v.name && f.size === v.size;
  });
}

function incompleteSetOf(st: CheckpointState, col: Collection) {
  const key = `${st.type}:${st.start}:${st.end}`;
  return [...col.incomplete].find((s) => `${s.type}:${s.start}:${s.end}` === key);
}

/** Why an interrupted set cannot be continued (undefined: it can). */
async function resumeProblem(o: BackupOptions, st: CheckpointState, col: Collection, encoding: string, srcAbs: string): Promise<string | undefined> {
  if (!(await sameSource(st.source, o.source))) return `it backed up ${st.source}`;
  if (o.full && st.type !== 'full') return '--full was given';
  if (st.encoding !== encoding) return 'the encryption differs';
  const set = incompleteSetOf(st, col);
  if (!set) return 'its set is not at the target as an incomplete set any more';
  for (const v of st.volumes) {
    const f = set.volumes.get(v.number);
    if (!f || f.name !== v.name || f.size !== v.size) return `volume ${v.number} is not at the target as it was stored`;
  }
  if (st.type === 'inc' && !col.chains.some((c) => c.end === st.start)) return 'the chain it extends has changed';
  // The same key: read the first stored volume's key packets (and, for a passphrase,
  // decrypt its first bytes).
  const first = st.volumes[0];
  if (first && o.encryptor) {
    const head = await o.backend.get(first.name, { range: { start: 0, end: 4096 } });
    const bytes: Buffer[] = [];
    for await (const c of head) bytes.push(c as Buffer);
    const info = await keyPacketInfo([Buffer.concat(bytes)]);
    if (o.encryptor.mode === 'symmetric') {
      if (!info.symmetric) return 'it was encrypted to a public key';
      const it = decryptMessage((await o.backend.get(first.name)) as AsyncIterable<Buffer>, o.keys);
      try {
        await it.next(); // the session key and its check; nothing more is read
      } catch {
        return 'it was encrypted with another passphrase';
      } finally {
        await it.return(undefined);
      }
    } else {
      const mine = [...new Set(await o.encryptor.recipientKeyIds())].sort().join();
      if (info.symmetric || [...new Set(info.recipients)].sort().join() !== mine) return 'it was encrypted to other keys';
    }
  }
  // The file the last stored volume ends in must be unchanged, or its two halves would differ.
  const r = st.resume;
  if (r.size !== undefined) {
    const p = Buffer.concat([Buffer.from(srcAbs), ...fromHex(r.index).flatMap((c) => [Buffer.from('/'), c])]);
    try {
      const cur = await fs.lstat(p);
      if (cur.size !== r.size || Math.floor(cur.mtimeMs / 1000) !== r.mtime) return `${p.toString('utf8')} changed since`;
    } catch {
      return `${p.toString('utf8')} is gone`;
    }
  }
  return undefined;
}

async function checkContinuation(o: BackupOptions, archive: ArchiveReader, chain: Chain, hostname: string): Promise<void> {
  const last = chain.incs[chain.incs.length - 1] ?? chain.full;
  const name = last.manifest!.name;
  const fail = (why: string, cause?: unknown) =>
    new DecryptError(`${name}: ${why}: an incremental must use the chain's key (use --full to start a new chain)`, { code: 'CHAIN_KEY_MISMATCH', cause });
  const encrypted = parseName(name)?.encoding === 'gpg';
  if (!o.encryptor) {
    if (encrypted) throw fail('the chain is encrypted but --no-encryption was given');
  } else {
    if (!encrypted) throw fail('the chain is not encrypted');
    const info = await keyPacketInfo([await getBytes(o.backend, name)]);
    if (o.encryptor.mode === 'symmetric' && !info.symmetric) throw fail(`the chain is encrypted to public key ${info.recipients.join(', ')}, not a passphrase`);
    if (o.encryptor.mode === 'public-key') {
      const mine = [...new Set(await o.encryptor.recipientKeyIds())].sort();
      const theirs = [...new Set(info.recipients)].sort();
      if (info.symmetric || mine.join() !== theirs.join()) {
        throw fail(`the chain is encrypted to ${theirs.join(', ') || 'a passphrase'}, this run to ${mine.join(', ')}`);
      }
    }
  }
  let m;
  try {
    // In passphrase mode read it from the target: decrypting it proves the passphrase.
    m = await archive.manifest(last, { fromTarget: o.encryptor?.mode === 'symmetric' });
  } catch (e) {
    if (e instanceof DecryptError && o.encryptor?.mode === 'symmetric') throw fail('cannot decrypt it with the given passphrase', e);
    throw e;
  }
  if (o.allowSourceMismatch) return;
  if (m.hostname !== undefined && m.hostname !== hostname) {
    throw new ChainError('SOURCE_MISMATCH', `the chain at ${o.backend.describe()} was made on host "${m.hostname}", this is "${hostname}": use --allow-source-mismatch to continue it, or --full`, { exitCode: ExitCode.CONFIG });
  }
  if (m.localdir !== undefined && !(await sameSource(m.localdir.toString(), o.source, await o.cache?.lastSource()))) {
    throw new ChainError('SOURCE_MISMATCH', `the chain at ${o.backend.describe()} backs up "${m.localdir.toString('utf8')}", not "${o.source}": use --allow-source-mismatch to continue it, or --full`, { exitCode: ExitCode.CONFIG });
  }
}

/**
 * Whether two source paths as typed name the same directory: `/data/src`, `/data/src/`,
 * `src` and `.` are one source when they resolve (symlinks too) to the same place. A
 * relative path recorded by an earlier run is resolved against today's working
 * directory: the best that can be known of it.
 */
async function sameSource(recorded: string, given: string, last?: { typed: string; real: string }): Promise<boolean> {
  if (path.normalize(recorded + '/') === path.normalize(given + '/')) return true;
  const real = (p: string) => fs.realpath(path.resolve(p)).catch(() => path.resolve(p));
  const then = last?.typed === recorded ? last.real : await real(recorded);
  return then === (await real(given));
}

export async function runBackup(o: BackupOptions): Promise<BackupResult> {
  const srcAbs = await checkSource(o.source);
  const compressLevel = o.compressLevel ?? DEFAULT_COMPRESS_LEVEL;
  if (!Number.isInteger(compressLevel) || compressLevel < 0 || compressLevel > 9) throw new ConfigError(`compress level: expected 0-9, got ${compressLevel}`);
  const encoder = o.encryptor ? gpgEncoder(o.encryptor, compressLevel) : compressLevel > 0 ? gzipEncoder(compressLevel) : plainEncoder;
  const now = o.now ?? (() => Date.now() / 1000);
  const hostname = o.hostname ?? osHostname();

  const archive = new ArchiveReader(o.backend, o.keys, o.cache);
  const col = await archive.collection();
  // An interrupted run of this source left a checkpoint: continue its set if it still fits.
  const cpFiles = o.cache && !o.dryRun ? new CheckpointFiles(o.cache.dir) : undefined;
  let resume: CheckpointState | undefined;
  if (cpFiles) {
    await cpFiles.ensure();
    const st = settleCheckpoint(cpFiles.load(), col);
    if (st) {
      const why = await resumeProblem(o, st, col, encoder.encoding, srcAbs);
      if (why) {
        o.onPlan?.({ type: st.type, reason: `not resuming the interrupted set: ${why}`, start: st.start, end: st.end, resumed: false });
        await cpFiles.clear();
      } else resume = st;
    }
  }
  let chain: Chain | undefined;
  let reason = '';
  if (resume) {
    chain = resume.type === 'inc' ? col.chains.find((c) => c.end === resume!.start) : undefined;
    reason = `resuming the interrupted set after volume ${resume.volumes.length}`;
  } else ({ chain, reason } = decide(o, col, now()));
  const clockSkew = checkClock(o, latestTime(col), now());
  if (chain) await checkContinuation(o, archive, chain, hostname);
  const start = resume ? resume.start : chain ? chain.end : await timeAfter(latestTime(col), now, o.signal);
  const end = resume ? resume.end : chain ? await timeAfter(Math.max(chain.end, latestTime(col)), now, o.signal) : start;
  const type = chain ? 'inc' : 'full';
  o.onPlan?.({ type, reason, start, end, resumed: resume !== undefined });

  let warnings = 0;
  let skippedSockets = 0;
  const warn = (w: WalkWarning) => {
    // Sockets cannot be backed up (duplicity and GNU tar skip them too): a note, counted apart.
    if (w.code === 'SKIPPED_SOCKET') skippedSockets++;
    else warnings++;
    if (o.strict && w.code !== 'SKIPPED_SOCKET') throw new SourceError(`${w.path.toString('utf8')}: ${w.message} (--strict)`);
    o.onWarning?.(w);
  };
  if (clockSkew) warn(clockSkew);
  const excluded = await targetInSource(o.backend, srcAbs);
  if (excluded) warn({ code: 'TARGET_IN_SOURCE', path: excluded, message: 'the target is inside the source: left out of the backup (else every run would store the one before)' });
  const source = { files: 0, bytes: 0 };
  const selection = o.selection && !o.selection.empty ? o.selection : undefined;
  if (selection) selection.setRoot(await fs.lstat(srcAbs));
  const walk = (async function* () {
    const outside = excluded ? (p: Buffer) => !(p.equals(excluded) || (p.length > excluded.length && p[excluded.length] === 0x2f && p.subarray(0, excluded.length).equals(excluded))) : undefined;
    const include = selection || outside ? (p: Buffer, st: Stats) => (outside ? outside(p) : true) && (selection ? selection.includes(p.toString('utf8'), st) : true) : undefined;
    for await (const e of walkTree(Buffer.from(srcAbs), { onWarning: warn, ...(include ? { include } : {}) })) {
      source.files++;
      if (e.stat.isFile()) source.bytes += e.stat.size;
      yield e;
    }
  })();
  const changes: AsyncIterable<Change> = chain
    ? diffTree(walk, chainState(archive, chainSets(chain)))
    : (async function* () {
        for await (const entry of walk) yield { op: 'snapshot' as const, entry, isNew: true };
      })();

  if (o.dryRun) {
    const stats = { files: 0, bytesRead: 0, changed: 0, deleted: 0, volumes: 0, storedBytes: 0, deltaBytes: 0 };
    for await (const c of changes) {
      const index = c.op === 'deleted' ? c.index : c.entry.index;
      const action = c.op === 'deleted' ? 'deleted' : c.op === 'diff' || !c.isNew ? 'changed' : 'new';
      if (action === 'deleted') stats.deleted++;
      else if (action === 'changed') stats.changed++;
      if (c.op !== 'deleted' && c.entry.stat.isFile()) stats.files++;
      o.onDryRun?.(action, index);
    }
    return { ...stats, type, time: end, start, warnings, skippedSockets, names: [], sourceFiles: source.files, sourceBytes: source.bytes, dryRun: true };
  }

  let seal: { key: SecretKey; previous: string | null } | undefined;
  if (o.sealKey) {
    // The hash chain: an incremental's seal names the hash of the previous set's seal.
    const prev = chain ? (chain.incs[chain.incs.length - 1] ?? chain.full).seal : undefined;
    seal = { key: o.sealKey, previous: prev ? createHash('sha256').update(await getBytes(o.backend, prev.name)).digest('hex') : null };
  }
  const tempParent = o.tempDir ?? tmpdir();
  await removeStaleTempDirs(tempParent);
  const tmp = await makeTempDir(tempParent, 'backup');
  const writer = await SetWriter.open({
    backend: o.backend,
    spec: { type, start, end, encoding: encoder.encoding },
    encoder,
    tmp,
    ...(o.volsize ? { volsize: o.volsize } : {}),
    hostname,
    localdir: Buffer.from(o.source),
    ...(o.uploadConcurrency ? { uploadConcurrency: o.uploadConcurrency } : {}),
    ...(o.maxStaged ? { maxStaged: o.maxStaged } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    warn,
    ...(o.onStored ? { onStored: o.onStored } : {}),
    ...(o.cache ? { cache: o.cache } : {}),
    ...(seal ? { seal } : {}),
    ...(cpFiles ? { checkpoint: { files: cpFiles, source: o.source, ...(resume ? { resume } : {}) } } : {}),
  });
  // Entries before the resume point are all in the stored volumes and checkpoint; so is
  // the entry at it when the checkpoint says it is done.
  const skipBefore = resume ? fromHex(resume.resume.index) : undefined;
  const skipAt = resume?.resume.done === true;
  try {
    const ahead = readAhead(changes, (c) => (c.op === 'snapshot' && !(skipBefore && compareIndex(c.entry.index, skipBefore) < 0) ? c.entry : undefined), {
      barrier: (c) => c.op === 'diff',
    });
    for await (const { item: c, whole } of ahead) {
      if (o.signal?.aborted) throw o.signal.reason;
      if (skipBefore) {
        const cmp = compareIndex(c.op === 'deleted' ? c.index : c.entry.index, skipBefore);
        if (cmp < 0 || (cmp === 0 && skipAt)) continue;
      }
      if (c.op === 'snapshot') await writer.snapshot(c.entry, c.isNew, whole);
      else if (c.op === 'deleted') await writer.deleted(c.index, c.old.kind === 'signature');
      else await writer.diff(c.entry, await c.old.signature());
      o.onProgress?.({ ...writer.stats, sourceFiles: source.files, sourceBytes: source.bytes });
    }
    await writer.finish();
    await o.cache?.rememberSource({ typed: o.source, real: await fs.realpath(srcAbs) }).catch(() => undefined); // a hint only
    return { ...writer.stats, type, time: end, start, warnings, skippedSockets, names: writer.stored, sourceFiles: source.files, sourceBytes: source.bytes, dryRun: false };
  } catch (e) {
    await writer.abort();
    throw e;
  } finally {
    writer.dispose();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
