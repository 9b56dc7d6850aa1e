/**
 * What set a backup writes, decided once before anything is written: the interrupted
 * set to continue (resume.ts), else an incremental on the latest chain or a new full
 * (--full, --full-if-older-than, a chain without signature files); its times; and the
 * checks that this run may continue the chain (the same key, host and source) and that
 * the clock is not behind the newest set.
 */
import type { Chain, Collection } from '../chain/collection.js';
import { chainSets } from '../chain/collection.js';
import { describeTime, formatTimestamp } from '../chain/time.js';
import { ChainError, DecryptError, ExitCode } from '../errors.js';
import type { ArchiveReader } from '../repo/archive.js';
import { keyMismatch } from '../repo/key-check.js';
import { sameSource } from '../source/source-dir.js';
import type { WalkWarning } from '../source/walk.js';
import type { CheckpointFiles, CheckpointState } from './checkpoint.js';
import type { ResolvedBackupOptions } from './options.js';
import { interruptedSet } from './resume.js';

export interface SetPlan {
  type: 'full' | 'inc';
  /** The chain an incremental extends. */
  chain?: Chain;
  /** Why a full, or that a set is resumed ('' for the plain cases). */
  reason: string;
  start: number;
  end: number;
  /** The interrupted set this run continues. */
  resume?: CheckpointState;
  /** The clock is behind the newest set, and that was allowed: a warning. */
  clockSkew?: WalkWarning;
}

export async function planSet(o: ResolvedBackupOptions, archive: ArchiveReader, col: Collection, srcAbs: string, cp: CheckpointFiles | undefined): Promise<SetPlan> {
  const found = cp ? await interruptedSet(o, cp, col, srcAbs) : undefined;
  if (found?.refused) o.onPlan?.({ type: found.state.type, reason: `not resuming the interrupted set: ${found.refused}`, start: found.state.start, end: found.state.end, resumed: false });
  const resume = found && !found.refused ? found.state : undefined;
  const { chain, reason } = resume
    ? { chain: resume.type === 'inc' ? col.chains.find((c) => c.end === resume.start) : undefined, reason: `resuming the interrupted set after volume ${resume.volumes.length}` }
    : decide(o, col, o.now());
  const clockSkew = checkClock(o, latestTime(col), o.now());
  if (chain) await checkContinuation(o, archive, chain);
  const start = resume ? resume.start : chain ? chain.end : await timeAfter(latestTime(col), o.now, o.signal);
  const end = resume ? resume.end : chain ? await timeAfter(Math.max(chain.end, latestTime(col)), o.now, o.signal) : start;
  const plan: SetPlan = { type: chain ? 'inc' : 'full', reason, start, end, ...(chain ? { chain } : {}), ...(resume ? { resume } : {}), ...(clockSkew ? { clockSkew } : {}) };
  o.onPlan?.({ type: plan.type, reason, start, end, resumed: resume !== undefined });
  return plan;
}

function decide(o: ResolvedBackupOptions, col: Collection, now: number): { chain?: Chain; reason: string } {
  const chain = col.chains[col.chains.length - 1];
  if (o.full) return { reason: 'a full backup was asked for' };
  if (!chain) return { reason: '' }; // the first backup: nothing to explain
  if (o.fullIfOlderThan !== undefined && chain.full.start < now - o.fullIfOlderThan) {
    return { reason: `the chain's full (${formatTimestamp(chain.full.start)}) is older than the age given for a new full` };
  }
  if (chainSets(chain).some((s) => !s.signature)) return { reason: 'the latest chain lacks signature files' };
  return { chain, reason: '' };
}

function latestTime(col: Collection): number {
  return Math.max(0, ...col.chains.map((c) => c.end), ...col.incomplete.map((s) => s.end), ...col.orphans.map((s) => s.end));
}

/**
 * Checks that this run may continue the chain: the same encryption (a passphrase that
 * decrypts its last manifest, or the same recipient keys, read from the manifest's key
 * packets), and the same host and source path unless allowed otherwise.
 */
async function checkContinuation(o: ResolvedBackupOptions, archive: ArchiveReader, chain: Chain): Promise<void> {
  const last = chain.incs[chain.incs.length - 1] ?? chain.full;
  const name = last.manifest!.name;
  const mismatch = await keyMismatch(o.backend, name, o.encryptor, o.keys, 'whole');
  if (mismatch) throw new DecryptError(`the chain ${mismatch}: an incremental must use the chain's key`, { context: { file: name }, code: 'CHAIN_KEY_MISMATCH' });
  if (o.allowSourceMismatch) return;
  const m = await archive.manifest(last, { fromTarget: o.encryptor?.mode === 'symmetric' });
  if (m.hostname !== undefined && m.hostname !== o.hostname) {
    throw new ChainError('SOURCE_MISMATCH', `the chain at ${o.backend.describe()} was made on host "${m.hostname}", this is "${o.hostname}"`, { exitCode: ExitCode.CONFIG });
  }
  if (m.localdir !== undefined && !(await sameSource(m.localdir.toString(), o.source, await o.cache?.lastSource()))) {
    throw new ChainError('SOURCE_MISMATCH', `the chain at ${o.backend.describe()} backs up "${m.localdir.toString('utf8')}", not "${o.source}"`, { exitCode: ExitCode.CONFIG });
  }
}

/** How far behind the newest set this machine's clock may be before a run refuses: the wait of timeAfter. */
const CLOCK_SLACK = 5;

/**
 * A set dated after this machine's clock means a clock was wrong (here now, or where
 * that set was made); naming this run after it would go on silently, and `--time now`
 * and --full-if-older-than would then be wrong. Refused unless allowed; then a warning.
 */
function checkClock(o: ResolvedBackupOptions, latest: number, now: number): WalkWarning | undefined {
  if (latest <= Math.floor(now) + CLOCK_SLACK) return undefined;
  const what = `the newest set at ${o.backend.describe()} is dated ${describeTime(latest)}, ${describeDuration(latest - Math.floor(now))} after this machine's clock (${describeTime(Math.floor(now))})`;
  if (!o.allowClockSkew) throw new ChainError('CLOCK_BEHIND', `${what}: the clock is wrong now or was wrong then`, { exitCode: ExitCode.CONFIG });
  return { code: 'CLOCK_SKEW', path: Buffer.from(o.backend.describe()), message: `${what}; this set is named after it, as allowed` };
}

function describeDuration(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
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
