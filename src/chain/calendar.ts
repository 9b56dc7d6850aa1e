/**
 * Calendar retention rules over restore points, with restic's semantics (forget's
 * --keep-* options, 0.16 and later): points are taken newest first; a bucket rule
 * (hourly … yearly, in local time, weeks starting on Monday as ISO 8601 counts them)
 * keeps a point when it opens a new period, until its count is used up; a rule with
 * counts left also keeps the oldest point; --keep-within keeps every point newer than
 * the newest point minus the duration. A point is kept when any rule keeps it.
 * Pure: times in, reasons out.
 */

/** How many points a bucket rule keeps; `UNLIMITED` keeps one per period, all the way back. */
export const UNLIMITED = -1;

export interface KeepRules {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** Keep every point newer than the newest point minus this many seconds. */
  within?: number;
}

type BucketRule = Exclude<keyof KeepRules, 'within'>;

/** The rules in the order their reasons are listed. */
export const BUCKET_RULES: readonly BucketRule[] = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'];

/** ISO 8601 week of a local date, as year * 100 + week (the Thursday decides the year). */
function isoWeek(d: Date): number {
  const day = new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()));
  const monday0 = (day.getUTCDay() + 6) % 7;
  day.setUTCDate(day.getUTCDate() - monday0 + 3);
  const year = day.getUTCFullYear();
  const firstThursday = new Date(Date.UTC(year, 0, 4));
  firstThursday.setUTCDate(4 - ((firstThursday.getUTCDay() + 6) % 7) + 3);
  return year * 100 + 1 + Math.round((day.getTime() - firstThursday.getTime()) / (7 * 86400_000));
}

/** The period a point falls in for a rule; `nr` (its position, newest first) for `last`. */
function period(rule: BucketRule, epoch: number, nr: number): number {
  const d = new Date(epoch * 1000);
  const y = d.getFullYear();
  const m = d.getMonth() + 1;
  switch (rule) {
    case 'last':
      return nr;
    case 'hourly':
      return ((y * 100 + m) * 100 + d.getDate()) * 100 + d.getHours();
    case 'daily':
      return (y * 100 + m) * 100 + d.getDate();
    case 'weekly':
      return isoWeek(d);
    case 'monthly':
      return y * 100 + m;
    case 'yearly':
      return y;
  }
}

export function hasKeepRules(r: KeepRules): boolean {
  return BUCKET_RULES.some((k) => r[k] !== undefined) || r.within !== undefined;
}

/**
 * Which of the points (epoch seconds, newest first) the rules keep, and why: one list
 * of reasons per point ("daily", "oldest monthly", "within 30D"), empty when no rule
 * keeps it. `withinLabel` names the --keep-within duration in reasons.
 */
export function keepByCalendar(times: readonly number[], rules: KeepRules, withinLabel = 'the --keep-within duration'): string[][] {
  const reasons = times.map(() => [] as string[]);
  for (const rule of BUCKET_RULES) {
    let left = rules[rule];
    if (left === undefined || left === 0) continue;
    let last: number | undefined;
    times.forEach((t, nr) => {
      if (left === 0) return;
      const p = period(rule, t, nr);
      const oldest = nr === times.length - 1;
      if (p === last && !oldest) return;
      reasons[nr]!.push(p === last ? `oldest ${rule}` : rule);
      last = p;
      if (left! > 0) left!--;
    });
  }
  if (rules.within !== undefined && times.length > 0) {
    const from = times[0]! - rules.within;
    times.forEach((t, nr) => {
      if (t > from) reasons[nr]!.push(`within ${withinLabel}`);
    });
  }
  return reasons;
}
