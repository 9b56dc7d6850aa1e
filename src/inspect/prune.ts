/**
 * prune and cleanup: list what a retention policy (or cleanup) would delete and, when
 * told to, delete it — per set the manifest first, so an interrupted run leaves an
 * incomplete set (which cleanup removes later), never a complete-looking set with
 * missing volumes. Cache copies follow on the next run (the target is authoritative).
 */
import { unwrap } from '../backend/wrappers.js';
import type { Backend } from '../backend/backend.js';
import { getBytes, listAll, type Retention } from '../backend/backend.js';
import { LOCK_PREFIX, type LockInfo } from '../repo/lock.js';
import { buildCollection, chainSets, setFiles, setKey, type BackupSet, type RemoteFile } from '../chain/collection.js';
import { parseName, parseSealName } from '../chain/file-naming.js';
import { formatTimestamp } from '../chain/time.js';
import { planRetention, type PointVerdict, type RetentionPolicy } from '../chain/retention.js';

export interface DeletionItem {
  file: RemoteFile;
  reason: string;
}

export interface MultipartLeftover {
  key: string;
  uploadId: string;
  initiated?: Date;
}

/** Backends that can list and abort unfinished multipart uploads (S3). */
export interface MultipartCapable {
  listIncompleteUploads(): Promise<MultipartLeftover[]>;
  abortUpload(key: string, uploadId: string): Promise<void>;
}

function setItems(s: BackupSet, reason: string): DeletionItem[] {
  const files = setFiles(s);
  // manifest first (setFiles lists it first), then volumes, signatures, seal
  return files.map((file) => ({ file, reason }));
}

/** The verdict on every restore point, and the files to delete (per set, manifest first). */
export async function planPrune(backend: Backend, policy: RetentionPolicy): Promise<{ points: PointVerdict[]; items: DeletionItem[] }> {
  const plan = planRetention(buildCollection(await listAll(backend)), policy);
  return { points: plan.points, items: plan.removals.flatMap((r) => setItems(r.set, r.reason)) };
}

/**
 * What cleanup removes. An incomplete set whose manifest the local cache still holds
 * (`recoverable`, cache names) is kept: `repair` can make it whole again.
 */
export async function planCleanup(backend: Backend, recoverable: (names: string[]) => Promise<string[]> = async () => []): Promise<{ items: DeletionItem[]; kept: BackupSet[] }> {
  const files = await listAll(backend);
  const col = buildCollection(files);
  const lost = new Set((await recoverable(files.map((f) => f.name))).map((n) => parseName(n)).filter((p) => p?.kind === 'manifest').map((p) => setKey(p!)));
  const kept = col.incomplete.filter((s) => lost.has(setKey(s)));
  const items = [
    ...col.incomplete.filter((s) => !lost.has(setKey(s))).flatMap((s) => setItems(s, 'incomplete set (no manifest)')),
    ...col.orphans.flatMap((s) => setItems(s, 'orphaned incremental set (no chain accepts it)')),
    ...col.superseded.flatMap((s) => setItems(s, 'incremental set replaced by a later one')),
    ...col.strays.map((file) => ({ file, reason: 'belongs to no backup set' })),
    ...(await releasedLocks(backend, files)).map((file) => ({ file, reason: 'a released lock (left by a run that could not delete it)' })),
  ];
  return { items, kept };
}

/** What Object Lock keeps: a set (or stray file) and until when. */
export interface LockedItem {
  /** The set ("the full set 20261130T…Z"), or the file's name. */
  what: string;
  until: number;
  mode: Retention['mode'];
}

/**
 * The items Object Lock lets go now, and what it keeps. A set is judged by its manifest
 * (else its first file); a locked set keeps every item of its chain, as deleting part of
 * a chain would leave sets that restore nothing and cannot be deleted either.
 */
export async function withoutLocked(backend: Backend, items: DeletionItem[], now = Date.now() / 1000): Promise<{ items: DeletionItem[]; locked: LockedItem[] }> {
  if (!backend.properties.objectLock || !backend.retention) return { items, locked: [] };
  const bySet = new Map<string, DeletionItem[]>();
  for (const i of items) bySet.set(setOf(i), [...(bySet.get(setOf(i)) ?? []), i]);
  const chainOf = new Map<string, string>();
  for (const c of buildCollection(await listAll(backend)).chains) for (const s of chainSets(c)) chainOf.set(setKey(s), setKey(c.full));
  const locked: LockedItem[] = [];
  const keptChains = new Set<string>();
  for (const [key, its] of bySet) {
    const probe = its.find((i) => parseName(i.file.name)?.kind === 'manifest') ?? its[0]!;
    const r = await backend.retention(probe.file.name);
    if (!r || r.until.getTime() / 1000 <= now) continue;
    const p = parseName(probe.file.name) ?? parseSealName(probe.file.name);
    locked.push({ what: p ? `the ${p.type === 'full' ? 'full' : 'incremental'} set ${formatTimestamp(p.end)}` : key, until: Math.floor(r.until.getTime() / 1000), mode: r.mode });
    keptChains.add(chainOf.get(key) ?? key);
  }
  const keep = (i: DeletionItem) => keptChains.has(chainOf.get(setOf(i)) ?? setOf(i));
  return { items: items.filter((i) => !keep(i)), locked };
}

/** The set an item's file belongs to (its key), or the file itself when it belongs to none. */
function setOf(i: DeletionItem): string {
  const p = parseName(i.file.name) ?? parseSealName(i.file.name);
  return p ? setKey(p) : i.file.name;
}

/** Lock objects marked released by runs whose credentials could not delete them. */
async function releasedLocks(backend: Backend, files: RemoteFile[]): Promise<RemoteFile[]> {
  const out: RemoteFile[] = [];
  for (const f of files.filter((x) => x.name.startsWith(LOCK_PREFIX))) {
    try {
      if ((JSON.parse((await getBytes(backend, f.name, 1 << 16)).toString('utf8')) as LockInfo).released !== undefined) out.push(f);
    } catch {
      // gone meanwhile, or unreadable: a lock the next run judges, not cleanup
    }
  }
  return out;
}

export async function deleteItems(backend: Backend, items: DeletionItem[], onDeleted?: (i: DeletionItem) => void): Promise<void> {
  for (const i of items) {
    await backend.delete(i.file.name);
    onDeleted?.(i);
  }
}

export function isMultipartCapable(b: unknown): b is MultipartCapable {
  return typeof (b as MultipartCapable).listIncompleteUploads === 'function';
}

/** An upload younger than this may belong to a backup that is running now. */
export const UPLOAD_GRACE_MS = 86400_000;

export interface UploadCleanup {
  key: string;
  /** aborted (with `force`), would abort (without), or kept: started within UPLOAD_GRACE_MS. */
  action: 'aborted' | 'would abort' | 'kept';
}

/**
 * Unfinished multipart uploads of an S3 target (none for other backends): those older
 * than UPLOAD_GRACE_MS (or of unknown age) are aborted with `force`, else listed. Run
 * it under cleanup's exclusive lock, like every deletion.
 */
export async function cleanupUploads(backend: Backend, force: boolean, now = Date.now(), onEach?: (u: UploadCleanup) => void): Promise<UploadCleanup[]> {
  const inner = unwrap(backend);
  if (!isMultipartCapable(inner)) return [];
  const out: UploadCleanup[] = [];
  for (const u of await inner.listIncompleteUploads()) {
    const old = !u.initiated || u.initiated.getTime() < now - UPLOAD_GRACE_MS;
    if (force && old) await inner.abortUpload(u.key, u.uploadId);
    const done: UploadCleanup = { key: u.key, action: !old ? 'kept' : force ? 'aborted' : 'would abort' };
    out.push(done);
    onEach?.(done);
  }
  return out;
}
