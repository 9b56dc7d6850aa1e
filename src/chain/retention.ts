/**
 * Retention as pure functions over a collection: which restore points (sets) stay and
 * which go, and why. Whole chains or whole tails of chains only, so no kept point ever
 * loses a set it depends on (an incremental needs its full and every set between).
 * The newest chain is always kept whole.
 *
 * Two kinds of rules combine:
 * - calendar rules (`keep`: last, hourly … yearly, within; calendar.ts) keep points, and
 *   a point is kept when any of them keeps it — when one is given, a point none keeps
 *   goes unless a later kept point of its chain needs it;
 * - `olderThan`, `keepFull` and `keepIncOf` remove on top of that, as they always did.
 */
import { hasKeepRules, keepByCalendar, type KeepRules } from './calendar.js';
import { chainSets, type BackupSet, type Chain, type Collection } from './collection.js';
import { formatTimestamp } from './time.js';

export interface RetentionPolicy {
  /** Remove chains that ended before this time (epoch seconds). */
  olderThan?: number;
  /** Keep the newest N chains, remove the others. */
  keepFull?: number;
  /** Remove the incrementals of all but the newest N chains (their fulls stay). */
  keepIncOf?: number;
  /** Calendar rules; with none, every point is kept unless a rule above removes it. */
  keep?: KeepRules;
  /** How --keep-within was written, for reasons. */
  withinLabel?: string;
}

export interface Removal {
  set: BackupSet;
  reason: string;
}

/** One restore point and the verdict on it. */
export interface PointVerdict {
  set: BackupSet;
  chain: Chain;
  keep: boolean;
  /** Why it stays (the rules that keep it, or the kept point that needs it) or goes. */
  reasons: string[];
}

export interface RetentionPlan {
  /** Every point, oldest first. */
  points: PointVerdict[];
  /** Sets to remove, newest first within a chain (an interrupted prune leaves valid chains). */
  removals: Removal[];
}

/** What the chain-level rules remove: per set, the reason. */
function chainRuleRemovals(chains: Chain[], p: RetentionPolicy): Map<BackupSet, string> {
  const out = new Map<BackupSet, string>();
  const newest = chains.length - 1;
  chains.forEach((c, i) => {
    if (i === newest) return;
    let reason: string | undefined;
    if (p.olderThan !== undefined && c.end < p.olderThan) reason = 'chain ended before the time given';
    if (p.keepFull !== undefined && i < chains.length - p.keepFull) reason ??= `not among the newest ${p.keepFull} chain(s)`;
    if (reason) for (const s of chainSets(c)) out.set(s, reason);
    else if (p.keepIncOf !== undefined && i < chains.length - p.keepIncOf) {
      for (const s of c.incs) out.set(s, `incremental of a chain older than the newest ${p.keepIncOf}`);
    }
  });
  return out;
}

/** Reasons the calendar rules give each set (none given: every set kept "by default"). */
function calendarReasons(chains: Chain[], p: RetentionPolicy): Map<BackupSet, string[]> {
  const sets = chains.flatMap(chainSets).sort((a, b) => b.end - a.end);
  const out = new Map<BackupSet, string[]>();
  if (!p.keep || !hasKeepRules(p.keep)) {
    for (const s of sets) out.set(s, []);
    return out;
  }
  const reasons = keepByCalendar(sets.map((s) => s.end), p.keep, p.withinLabel);
  sets.forEach((s, i) => out.set(s, reasons[i]!));
  return out;
}

export function planRetention(col: Collection, p: RetentionPolicy): RetentionPlan {
  const chains = [...col.chains].sort((a, b) => a.start - b.start);
  const removedByChainRule = chainRuleRemovals(chains, p);
  const calendar = calendarReasons(chains, p);
  const byRules = p.keep !== undefined && hasKeepRules(p.keep);
  const points: PointVerdict[] = [];
  const removals: Removal[] = [];
  chains.forEach((chain, ci) => {
    const sets = chainSets(chain);
    const newestChain = ci === chains.length - 1;
    // the newest point of the chain a rule keeps: it and everything before it stay
    let lastKept = sets.length - 1;
    if (byRules && !newestChain) {
      lastKept = -1;
      sets.forEach((s, i) => {
        if (calendar.get(s)!.length > 0 && !removedByChainRule.has(s)) lastKept = i;
      });
    }
    const verdicts = sets.map((set, i): PointVerdict => {
      const ruleRemoval = removedByChainRule.get(set);
      if (ruleRemoval) return { set, chain, keep: false, reasons: [ruleRemoval] };
      if (newestChain) return { set, chain, keep: true, reasons: calendar.get(set)!.length > 0 ? calendar.get(set)! : ['newest chain'] };
      if (i > lastKept) return { set, chain, keep: false, reasons: [lastKept < 0 ? 'no rule keeps a point of its chain' : 'no rule keeps it or a later point of its chain'] };
      const own = calendar.get(set)!;
      if (own.length > 0 || !byRules) return { set, chain, keep: true, reasons: own };
      return { set, chain, keep: true, reasons: [`needed by ${formatTimestamp(sets[lastKept]!.end)}`] };
    });
    points.push(...verdicts);
    for (const v of [...verdicts].reverse()) if (!v.keep) removals.push({ set: v.set, reason: v.reasons[0]! });
  });
  return { points, removals };
}
