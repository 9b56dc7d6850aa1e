/**
 * Backup sets and chains from a target's file listing (duplicity's dup_collections):
 * files are grouped into sets by type and times; a set is complete when its manifest
 * exists; fulls start chains and incrementals attach where START equals a chain's end.
 * Pure functions over names, no I/O.
 */
import { parseName, parseSealName, type Encoding, type ParsedName, type SetType } from './file-naming.js';

export interface RemoteFile {
  name: string;
  size: number;
}

export interface BackupSet {
  type: SetType;
  start: number;
  end: number;
  /** Manifest file, when the set is complete. */
  manifest?: RemoteFile;
  /** Volume files by number. */
  volumes: Map<number, RemoteFile>;
  /** The set's signature file, if any. */
  signature?: RemoteFile;
  /** tapechain's seal (signed list of the set's files), if any. */
  seal?: RemoteFile;
  encoding: Encoding;
}

export interface Chain {
  full: BackupSet;
  incs: BackupSet[];
  /** Time of the full set. */
  start: number;
  /** END of the last set. */
  end: number;
}

export interface Collection {
  chains: Chain[];
  /** Sets without a manifest. */
  incomplete: BackupSet[];
  /** Complete incremental sets no chain accepts. */
  orphans: BackupSet[];
  /** Files that are ours by name but fit no set (e.g. signatures of removed sets). */
  strays: RemoteFile[];
  /** Files that are not ours at all (not duplicity's or tapechain's names). */
  unknown: RemoteFile[];
  /** Sets that another set of the same chain replaced (duplicity's "preferring"). */
  superseded: BackupSet[];
}

const key = (type: SetType, start: number, end: number) => `${type}:${start}:${end}`;

export function setKey(s: Pick<BackupSet, 'type' | 'start' | 'end'>): string {
  return key(s.type, s.start, s.end);
}

/** Every file that belongs to a set (manifest, volumes, signature). */
export function setFiles(s: BackupSet): RemoteFile[] {
  const out: RemoteFile[] = [];
  if (s.manifest) out.push(s.manifest);
  out.push(...[...s.volumes.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]));
  if (s.signature) out.push(s.signature);
  if (s.seal) out.push(s.seal);
  return out;
}

export function buildCollection(files: Iterable<RemoteFile>): Collection {
  const sets = new Map<string, BackupSet>();
  const sigs: [ParsedName, RemoteFile][] = [];
  const seals: [{ type: SetType; start: number; end: number }, RemoteFile][] = [];
  const unknown: RemoteFile[] = [];
  const get = (p: ParsedName): BackupSet => {
    const k = key(p.type, p.start, p.end);
    let s = sets.get(k);
    if (!s) {
      s = { type: p.type, start: p.start, end: p.end, volumes: new Map(), encoding: p.encoding };
      sets.set(k, s);
    }
    return s;
  };
  for (const f of files) {
    const p = parseName(f.name);
    if (!p) {
      const seal = parseSealName(f.name);
      if (seal) seals.push([seal, f]);
      // duplicity's own extras and tapechain's lock are not unknown files
      else if (!f.name.startsWith('.') && !/\.par2$|\.jsonstat/.test(f.name) && !f.name.startsWith('tapechain-lock')) unknown.push(f); // lock objects: repo/lock.ts
      continue;
    }
    if (p.partial) continue;
    if (p.kind === 'signature') {
      sigs.push([p, f]);
      continue;
    }
    const s = get(p);
    if (p.kind === 'manifest') s.manifest = f;
    else s.volumes.set(p.volume!, f);
  }
  const strays: RemoteFile[] = [];
  for (const [p, f] of sigs) {
    const s = sets.get(key(p.type, p.start, p.end));
    if (s) s.signature = f;
    else strays.push(f);
  }
  for (const [p, f] of seals) {
    const s = sets.get(key(p.type, p.start, p.end));
    if (s) s.seal = f;
    else strays.push(f);
  }
  const all = [...sets.values()];
  const { chains, orphans, superseded } = linkChains(all.filter((s) => s.manifest));
  return { chains, incomplete: all.filter((s) => !s.manifest), orphans, strays, superseded, unknown };
}

/**
 * Links complete sets into chains, in time order: each full starts one; an incremental
 * joins the chain that ends where it starts, or replaces that chain's last incremental
 * when both start together and it ends later (a re-run of that increment); otherwise
 * it is an orphan.
 */
function linkChains(sets: BackupSet[]): { chains: Chain[]; orphans: BackupSet[]; superseded: BackupSet[] } {
  const complete = sets.sort((a, b) => a.end - b.end || a.start - b.start);
  const chains: Chain[] = [];
  const orphans: BackupSet[] = [];
  const superseded: BackupSet[] = [];
  for (const s of complete) {
    if (s.type === 'full') {
      chains.push({ full: s, incs: [], start: s.start, end: s.end });
      continue;
    }
    let placed = false;
    for (const c of chains) {
      if (c.end === s.start) {
        c.incs.push(s);
        c.end = s.end;
        placed = true;
        break;
      }
      const last = c.incs[c.incs.length - 1];
      if (last && last.start === s.start && last.end < s.end) {
        superseded.push(last);
        c.incs[c.incs.length - 1] = s;
        c.end = s.end;
        placed = true;
        break;
      }
    }
    if (!placed) orphans.push(s);
  }
  chains.sort((a, b) => a.start - b.start);
  return { chains, orphans, superseded };
}


/** The sets of a chain in order. */
export function chainSets(c: Chain): BackupSet[] {
  return [c.full, ...c.incs];
}

/**
 * The chain and sets to restore for time `t` (duplicity-format.md 3.5): the chain with
 * start ≤ t ≤ end, else the newest ending before t, else the oldest; the full set plus
 * every incremental whose END ≤ t.
 */
export function pickForTime(col: Collection, t: number): { chain: Chain; sets: BackupSet[] } | undefined {
  if (col.chains.length === 0) return undefined;
  const covering = col.chains.filter((c) => c.start <= t && t <= c.end);
  let chain = covering[covering.length - 1];
  if (!chain) {
    const before = col.chains.filter((c) => c.end < t);
    chain = before[before.length - 1] ?? col.chains[0]!;
  }
  return { chain, sets: [chain.full, ...chain.incs.filter((s) => s.end <= t)] };
}
