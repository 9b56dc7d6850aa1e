/** The calendar retention rules as options (prune, copy): restic's --keep-* options. */
import type { Command } from 'commander';
import { BUCKET_RULES, UNLIMITED, type KeepRules } from '../chain/calendar.js';
import { parseInterval } from '../chain/time.js';
import { UsageError } from '../errors.js';

export interface KeepFlags {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
}

export function count(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name}: expected a whole number >= 1, got "${v}"`);
  return n;
}

/** A calendar rule's count: a whole number, or "unlimited" (one per period, all the way back). */
function bucketCount(v: string | undefined, name: string): number | undefined {
  return v === 'unlimited' ? UNLIMITED : count(v, name);
}

export function keepRules(flags: KeepFlags): KeepRules {
  const rules: KeepRules = {};
  const add = (rule: (typeof BUCKET_RULES)[number], v: string | undefined) => {
    const n = bucketCount(v, `--keep-${rule}`);
    if (n !== undefined) rules[rule] = n;
  };
  add('last', flags.keepLast);
  add('hourly', flags.keepHourly);
  add('daily', flags.keepDaily);
  add('weekly', flags.keepWeekly);
  add('monthly', flags.keepMonthly);
  add('yearly', flags.keepYearly);
  if (flags.keepWithin !== undefined) {
    const s = parseInterval(flags.keepWithin);
    if (s === undefined) throw new UsageError(`--keep-within: expected a duration such as 7D, 4W, 6M or 1Y2M, got "${flags.keepWithin}"`);
    rules.within = s;
  }
  return rules;
}

/** The calendar rules (restic's --keep-* options); `verb` says what they do to the points they pick. */
export function addKeepOptions(cmd: Command, verb: string): Command {
  return cmd
    .option('--keep-last <n>', `${verb} the newest N restore points`)
    .option('--keep-hourly <n>', `${verb} the newest point of each of the last N hours that have one`)
    .option('--keep-daily <n>', `${verb} the newest point of each of the last N days that have one`)
    .option('--keep-weekly <n>', `${verb} the newest point of each of the last N weeks (Monday to Sunday) that have one`)
    .option('--keep-monthly <n>', `${verb} the newest point of each of the last N months that have one`)
    .option('--keep-yearly <n>', `${verb} the newest point of each of the last N years that have one`)
    .option('--keep-within <duration>', `${verb} every point newer than the newest point minus DURATION (e.g. 10D, 2W, 6M, 1Y)`);
}

