import type { Command } from 'commander';
import { readPublicKeys, type PublicKey } from '../../crypto/keys.js';
import { ExitCode, UsageError } from '../../errors.js';
import type { Problem } from '../../verify/verify.js';
import { addMetricsOption, addNotifyOption, addTimeOption, cacheFor, timeFrom, whileReading, type CommonFlags, addReadingOptions, TARGET_HELP, numberFlag } from '../common.js';
import type { ReadBackend } from '../../backend/backend.js';
import type { CliIo } from '../io.js';
import { readingKeys, reportUnverified } from '../keys.js';

interface VerifyFlags extends CommonFlags {
  all?: boolean;
  compare?: string;
  sample?: string;
  offline?: boolean;
  json?: boolean;
  jobs?: string;
}

export function registerVerify(program: Command, io: CliIo, setExit: (c: number) => void): void {
  const cmd = program
    .command('verify')
    .description('check the backup at TARGET: hashes, decryption, signatures, tar structure, signature files')
    .argument('<target>', TARGET_HELP)
    .option('--all', 'verify every chain, not just the one at --time')
    .option('--compare <source>', 'also compare the archived state with the live tree SOURCE')
    .option('--sample <percent>', 'decrypt-check only PERCENT % of the volumes, least recently checked first')
    .option('--offline', 'check seals with --public-key only: no passphrase, no secret key, nothing decrypted')
    .option('--json', 'print problems as JSON lines and a summary object')
    .option('--jobs <n>', 'volumes checked at once, this thread and N-1 others (with --compare: N others) (default: the CPUs available but one; 1: one after the other on this thread)');
  addTimeOption(cmd, 'verify the chain');
  addNotifyOption(cmd);
  addMetricsOption(cmd);
  addReadingOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Exit status: 0 when everything holds, 6 when a problem was found, 1 when only
--compare found differences with the source.

Examples:
  PASSPHRASE=secret tapechain verify /mnt/backup/home
  PASSPHRASE=secret tapechain verify --sample 10 s3://bucket/home     # nightly: a rotating 10 %
  tapechain verify --offline --public-key me.pub.asc /mnt/backup/home  # no secrets needed`,
  );
  cmd.action((target: string, flags: VerifyFlags) => whileReading(target, flags, io, 'verify', (backend) => verifyTarget(target, backend, flags)));

  async function verifyTarget(target: string, backend: ReadBackend, flags: VerifyFlags): Promise<void> {
    const cache = cacheFor(target, flags, io);
    const print = (p: Problem) => io.stdout(flags.json ? JSON.stringify(p) + '\n' : `${p.file}: ${p.problem}\n`);
    if (flags.offline) {
      const keys: PublicKey[] = [];
      for (const f of [...(flags.publicKey ?? []), ...(flags.signKey ? [flags.signKey] : [])]) keys.push(...(await readPublicKeys(f, '--public-key')));
      if (keys.length === 0) throw new UsageError('--offline needs --public-key FILE (the key the sets were signed with)');
      const { runOfflineVerify } = await import('../../verify/offline.js'); // loaded when used (start-up time)
      const r = await runOfflineVerify({ backend, publicKeys: keys, cache, onProblem: print });
      const summary = `Offline verify of ${backend.describe()}: ${r.sets} set(s), ${r.files} file(s) checked against their seals, ${r.problems.length} problem(s)`;
      io.stdout(flags.json ? JSON.stringify({ summary, sets: r.sets, files: r.files, problems: r.problems.length }) + '\n' : summary + '\n');
      if (r.problems.length) setExit(ExitCode.INTEGRITY);
      return;
    }
    const jobs = flags.jobs !== undefined ? numberFlag('--jobs', flags.jobs) : undefined;
    let sample: number | undefined;
    if (flags.sample !== undefined) {
      sample = Number(flags.sample);
      if (!(sample > 0 && sample <= 100)) throw new UsageError(`--sample: expected a percentage in (0, 100], got "${flags.sample}"`);
    }
    const keys = await readingKeys(flags, io, undefined, cache);
    const time = timeFrom(flags);
    // loaded when used (start-up time); one after the other, as jest's module loader needs
    const { runVerify } = await import('../../verify/verify.js');
    const { compareWithSource } = await import('../../verify/compare.js');
    // The archive and the live tree are read at the same time (each is mostly waiting
    // on its own I/O); the comparison reads the signature files from the target, not the
    // cache that verify may find wrong. A failure of either stops the other.
    const both = new AbortController();
    const stop = () => both.abort(io.signal?.reason);
    io.signal?.addEventListener('abort', stop, { once: true });
    let diffs = 0;
    const runs = [
      runVerify({ backend, keys, cache, ...(time !== undefined ? { time } : {}), all: flags.all ?? false, ...(sample !== undefined ? { samplePercent: sample } : {}), onProblem: print, signal: both.signal, ...(jobs !== undefined ? { jobs } : {}), mainLane: !flags.compare }),
      flags.compare
        ? compareWithSource(flags.compare, { backend, keys, ...(time !== undefined ? { time } : {}), signal: both.signal }, (p) => {
            diffs++;
            print(p);
          })
        : Promise.resolve([]),
    ] as const;
    for (const p of runs) p.catch((e: unknown) => both.abort(e));
    const settled = await Promise.allSettled(runs);
    io.signal?.removeEventListener('abort', stop);
    const failed = settled.find((x) => x.status === 'rejected');
    if (failed) throw io.signal?.aborted ? io.signal.reason : failed.reason;
    const r = (settled[0] as PromiseFulfilledResult<Awaited<(typeof runs)[0]>>).value;
    const summary =
      `Verified ${r.sets} set(s) at ${backend.describe()}: ${r.volumesChecked} of ${r.volumesTotal} volume(s) decrypted and checked, ${r.problems.length} problem(s)` +
      (flags.compare ? `; ${diffs} difference(s) with ${flags.compare}` : '');
    io.stdout(flags.json ? JSON.stringify({ summary, sets: r.sets, volumesChecked: r.volumesChecked, volumesTotal: r.volumesTotal, problems: r.problems.length, differences: diffs }) + '\n' : summary + '\n');
    for (const [n, v] of [
      ['problems', r.problems.length],
      ['sets', r.sets],
      ['volumes_checked', r.volumesChecked],
      ['volumes', r.volumesTotal],
      ['coverage_ratio', r.volumesTotal ? r.volumesChecked / r.volumesTotal : 1],
    ] as const)
      io.figure?.(n, v);
    reportUnverified(keys, io, setExit);
    if (r.problems.length) setExit(ExitCode.INTEGRITY);
    else if (diffs) setExit(ExitCode.WARNINGS);
  }
}
