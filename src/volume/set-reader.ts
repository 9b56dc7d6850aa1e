/**
 * Reads the entries of one backup set across its volumes, in order, as logical
 * entries: multivol chunks of one file (which may span volumes) are joined into one
 * data stream, and the kind loses its `multivol_` prefix.
 *
 * Each volume's stored bytes are hashed as they stream and compared with the manifest
 * when the volume ends, after its decoded stream was read to the end (so the OpenPGP
 * MDC has been checked too). Consumers stage what they read and commit nothing until
 * the whole generator has finished: a late failure then loses nothing.
 *
 * A consumer must read a file entry's data fully, or not at all, before asking for
 * the next entry.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { decodeStored, type DecryptKeys, type DecryptOptions, type StoredEncoding } from '../crypto/index.js';
import { IntegrityError, withContext } from '../errors.js';
import { compareIndex, parseEntryName, type EntryKind, type Index } from './entry-name.js';
import type { TarHeader } from './tar-header.js';
import { TarReader } from './tar-reader.js';

export interface VolumeRef {
  name: string;
  /** Expected hash of the stored bytes (manifest), if known. */
  hash?: { type: 'SHA1' | 'MD5'; hex: string };
  encoding: StoredEncoding;
  /** Stored size, when the listing gave it. */
  size?: number;
  open: () => Promise<Readable>;
}

export interface RawEntry {
  kind: EntryKind;
  index: Index;
  chunk?: number;
  header: TarHeader;
  data: () => AsyncIterable<Buffer>;
  volume: string;
}

export interface LogicalEntry {
  kind: 'snapshot' | 'diff' | 'deleted' | 'signature';
  index: Index;
  header: TarHeader;
  /** The entry's data (file content, delta or signature); empty for other types. */
  data: AsyncIterable<Buffer>;
  /** The volume the entry starts in (for messages). */
  volume: string;
}

async function* hashing(src: AsyncIterable<Buffer>, h: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  for await (const c of src) {
    h.update(c);
    yield c;
  }
}

/** Raw tar entries of the given volumes, in order, with per-volume hash checks. */
export async function* rawEntries(volumes: VolumeRef[], keys: DecryptKeys, opts: DecryptOptions = {}): AsyncGenerator<RawEntry> {
  for (const v of volumes) {
    const hash = createHash(v.hash?.type === 'MD5' ? 'md5' : 'sha1');
    let stream: Readable;
    try {
      stream = await v.open();
    } catch (e) {
      throw withContext(e, v.name);
    }
    const stored = hashing(stream as AsyncIterable<Buffer>, hash);
    const tar = new TarReader(decodeStored(v.encoding, stored, keys, opts));
    const expectHash = async (digest: string) => {
      if (v.hash && digest !== v.hash.hex) {
        throw new IntegrityError(`${v.name}: hash mismatch (manifest ${v.hash.type} ${v.hash.hex}, stored file ${digest})`, { code: 'HASH_MISMATCH' });
      }
    };
    // After a decode failure the streamed hash covers only part of the file: hash the
    // whole file again, because a hash mismatch explains the failure better.
    const explain = async (decodeErr: unknown): Promise<never> => {
      if (v.hash) {
        let digest: string | undefined;
        try {
          const h2 = createHash(v.hash.type === 'MD5' ? 'md5' : 'sha1');
          for await (const c of await v.open()) h2.update(c as Buffer);
          digest = h2.digest('hex');
        } catch {
          // unreadable now: report the original failure
        }
        if (digest !== undefined) await expectHash(digest);
      }
      throw withContext(decodeErr, v.name);
    };
    // Entry data is pulled by the consumer, outside this generator's try: give its
    // failures the same explanation (a hash mismatch beats "truncated").
    const guarded = async function* (g: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
      try {
        yield* g;
      } catch (err) {
        stream.destroy();
        await explain(err);
      }
    };
    let ok = false;
    try {
      for (;;) {
        const h = await tar.next();
        if (!h) break;
        const p = parseEntryName(h.name);
        const e: RawEntry = { kind: p.kind, index: p.index, header: h, data: () => guarded(tar.data()), volume: v.name };
        if (p.chunk !== undefined) e.chunk = p.chunk;
        yield e;
      }
      await tar.drain();
      ok = true;
    } catch (err) {
      stream.destroy();
      await explain(err);
    } finally {
      if (!ok) stream.destroy();
    }
    await expectHash(hash.digest('hex'));
  }
}

/** Joins multivol chunks into logical entries. */
export async function* logicalEntries(raw: AsyncIterator<RawEntry>): AsyncGenerator<LogicalEntry> {
  let pending: RawEntry | undefined;
  const pull = async () => {
    const n = await raw.next();
    return n.done ? undefined : n.value;
  };
  pending = await pull();
  while (pending) {
    const first = pending;
    pending = undefined;
    if (first.kind === 'multivol_snapshot' || first.kind === 'multivol_diff') {
      const kind = first.kind === 'multivol_snapshot' ? 'snapshot' : 'diff';
      let finished = false;
      const data = (async function* () {
        let cur: RawEntry | undefined = first;
        while (cur) {
          yield* cur.data();
          const next = await pull();
          if (next && next.kind === first.kind && compareIndex(next.index, first.index) === 0) cur = next;
          else {
            pending = next;
            cur = undefined;
          }
        }
        finished = true;
      })();
      yield { kind, index: first.index, header: first.header, data, volume: first.volume };
      if (!finished) for await (const _ of data) { /* skip unread chunks */ }
      continue;
    }
    yield { kind: first.kind as LogicalEntry['kind'], index: first.index, header: first.header, data: first.data(), volume: first.volume };
    pending = await pull();
  }
}
