/**
 * repair: puts back manifests and signature files that a target lost (deleted by hand,
 * a failed sync, a bucket rule) from the local cache's copies — the cache may hold the
 * only good copy, so no command deletes it while the target still has the set.
 *
 * A copy is only put back when it provably belongs to the stored set: for a manifest,
 * every volume it lists must be at the target with the SHA1 it records (each volume is
 * read whole), and the key given must be the chain's (a volume decrypts with it, or is
 * encrypted to the same recipients). Files are encoded as the set's other files are and
 * uploaded signature file first, manifest last, as a backup does.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createGunzip } from 'node:zlib';
import { keyMismatch } from '../repo/key-check.js';
import type { Backend } from '../backend/backend.js';
import { listAll } from '../backend/backend.js';
import type { ArchiveCache } from '../repo/archive-cache.js';
import { buildCollection, type BackupSet } from '../chain/collection.js';
import { parseName } from '../chain/file-naming.js';
import { parseManifest } from '../chain/manifest.js';
import { DEFAULT_COMPRESS_LEVEL, gpgEncoder, gzipEncoder, plainEncoder, type DecryptKeys, type Encoder } from '../crypto/index.js';
import type { MessageEncryptor } from '../crypto/encrypt.js';
import { DecryptError } from '../errors.js';
import { makeTempDir } from '../util/temp-dir.js';
import { EncodedFileWriter } from '../volume/encoded-file.js';

export interface RepairItem {
  /** The remote name to put back. */
  name: string;
  kind: 'manifest' | 'signature';
  /** The cached decoded copy. */
  local: string;
  set: BackupSet;
  /** Why it cannot be put back, when it cannot. */
  problem?: string;
}

/** The cached copies the target lacks, each checked against the stored set. */
export async function planRepair(backend: Backend, cache: ArchiveCache): Promise<RepairItem[]> {
  const files = await listAll(backend);
  const col = buildCollection(files);
  const sets = [...col.incomplete, ...col.chains.flatMap((c) => [c.full, ...c.incs]), ...col.orphans];
  const items: RepairItem[] = [];
  for (const local of await cache.lost(files.map((f) => f.name))) {
    const p = parseName(local)!;
    const set = sets.find((s) => s.type === p.type && s.start === p.start && s.end === p.end);
    if (!set) continue;
    const kind = p.kind === 'manifest' ? 'manifest' : 'signature';
    const name = remoteName(local, set);
    const item: RepairItem = { name, kind, local: cache.pathOf(local), set };
    if (kind === 'manifest') {
      const problem = await manifestProblem(backend, item.local, set);
      if (problem) item.problem = problem;
    }
    items.push(item);
  }
  return items;
}

/** The remote name of a cached file: the cache drops the encoding suffix. */
function remoteName(local: string, set: BackupSet): string {
  const base = local.replace(/\.gz$/, '');
  const p = parseName(local)!;
  if (set.encoding === 'gpg') return `${base}.gpg`;
  return p.kind === 'signature' && set.encoding === 'gz' ? `${base}.gz` : base;
}

async function manifestProblem(backend: Backend, local: string, set: BackupSet): Promise<string | undefined> {
  let m;
  try {
    m = parseManifest(await fs.readFile(local), local);
  } catch (e) {
    return `the cached copy is not a readable manifest: ${(e as Error).message}`;
  }
  const listed = new Set(m.volumes.map((v) => v.number));
  for (const n of set.volumes.keys()) if (!listed.has(n)) return `the cached copy does not list volume ${n}, which is at the target`;
  for (const v of m.volumes) {
    const f = set.volumes.get(v.number);
    if (!f) return `volume ${v.number} that the cached copy lists is not at the target`;
    const h = createHash(v.hashType === 'MD5' ? 'md5' : 'sha1');
    for await (const c of await backend.get(f.name)) h.update(c as Buffer);
    if (h.digest('hex') !== v.hash) return `${f.name} does not have the hash the cached copy records`;
  }
  return undefined;
}

/**
 * Proves that `encryptor` is the chain's key: a passphrase must decrypt the set's first
 * volume; public keys must be the recipients that volume is encrypted to.
 */
async function checkRepairKey(backend: Backend, set: BackupSet, encryptor: MessageEncryptor | null, keys: DecryptKeys): Promise<void> {
  const first = [...set.volumes.entries()].sort((a, b) => a[0] - b[0])[0]?.[1];
  if (!first) return;
  const why = await keyMismatch(backend, first.name, encryptor, keys, 'whole');
  if (why) throw new DecryptError(`the set ${why}`, { context: { file: first.name }, code: 'CHAIN_KEY_MISMATCH' });
}

/**
 * Puts back the items that can be (signature files first: a manifest makes its set look
 * complete), each set's key proven once. `onDone` is told of each file stored.
 */
export async function runRepair(backend: Backend, items: RepairItem[], encryptor: MessageEncryptor | null, keys: DecryptKeys, onDone?: (name: string) => void): Promise<void> {
  const proven = new Set<BackupSet>();
  const order = items.filter((i) => !i.problem).sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'signature' ? -1 : 1));
  for (const i of order) {
    if (!proven.has(i.set)) await checkRepairKey(backend, i.set, encryptor, keys);
    proven.add(i.set);
    await putBack(backend, i, encoderFor(i, encryptor));
    onDone?.(i.name);
  }
}

/** As a backup encodes them: OpenPGP; else duplicity's plain manifest and gzipped signatures (plain with compression off). */
function encoderFor(item: RepairItem, encryptor: MessageEncryptor | null): Encoder {
  if (encryptor) return gpgEncoder(encryptor, DEFAULT_COMPRESS_LEVEL);
  return item.kind === 'signature' && item.set.encoding === 'gz' ? gzipEncoder() : plainEncoder;
}

/** Encodes a cached copy as the set's files are encoded and uploads it. */
async function putBack(backend: Backend, item: RepairItem, encoder: Encoder): Promise<void> {
  const dir = await makeTempDir(tmpdir(), 'repair');
  try {
    const transforms = await encoder.transforms();
    const w = new EncodedFileWriter(path.join(dir, 'file'), transforms);
    const src = createReadStream(item.local);
    const plain = item.kind === 'signature' ? src.pipe(createGunzip()) : src;
    src.on('error', (e) => plain.destroy(e));
    for await (const c of plain) await w.write(c as Buffer);
    const r = await w.finish();
    await backend.put(item.name, { size: r.size, open: () => createReadStream(r.path), path: r.path });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

