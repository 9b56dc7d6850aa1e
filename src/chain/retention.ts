/**
 * Retention policies as pure functions over a collection: which sets go. Whole chains
 * or whole tails of chains only, so no kept set ever loses a set it depends on (an
 * incremental needs its full and every set between). The newest chain is always kept.
 */
import { chainSets, type BackupSet, type Collection } from './collection.js';

export interface RetentionPolicy {
  /** Remove chains that ended before this time (epoch seconds). */
  olderThan?: number;
  /** Keep the newest N chains, remove the others. */
  keepFull?: number;
  /** Remove the incrementals of all but the newest N chains (their fulls stay). */
  keepIncOf?: number;
}

export interface Removal {
  set: BackupSet;
  reason: string;
}

/** Sets to remove, newest first within a chain (an interrupted prune leaves valid chains). */
export function planRetention(col: Collection, p: RetentionPolicy): Removal[] {
  const chains = [...col.chains].sort((a, b) => a.start - b.start);
  const newest = chains.length - 1;
  const out: Removal[] = [];
  const gone = new Set<number>();
  chains.forEach((c, i) => {
    if (i === newest) return;
    let reason: string | undefined;
    if (p.olderThan !== undefined && c.end < p.olderThan) reason = 'chain ended before the time given';
    if (p.keepFull !== undefined && i < chains.length - p.keepFull) reason ??= `not among the newest ${p.keepFull} chain(s)`;
    if (reason) {
      gone.add(i);
      for (const s of chainSets(c).reverse()) out.push({ set: s, reason });
    }
  });
  if (p.keepIncOf !== undefined) {
    chains.forEach((c, i) => {
      if (gone.has(i) || i >= chains.length - p.keepIncOf!) return;
      for (const s of [...c.incs].reverse()) out.push({ set: s, reason: `incremental of a chain older than the newest ${p.keepIncOf}` });
    });
  }
  return out;
}
