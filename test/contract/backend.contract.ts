/**
 * The one contract every backend passes (restic's backend/test/suite.go, kopia's
 * blobtesting/verify.go): atomic put of re-openable sources, get with ranges, stat,
 * list, idempotent delete, and not-found reported as BackendNotFoundError.
 */
import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Backend, PutSource } from '../../src/backend/backend.js';
import { getBytes, listAll } from '../../src/backend/backend.js';
import { FaultyBackend } from '../../src/backend/faulty.js';
import { RetryBackend } from '../../src/backend/wrappers.js';
import { BackendError, BackendNotFoundError } from '../../src/errors.js';

export function bufferSource(data: Buffer, opened?: { count: number }): PutSource {
  return {
    size: data.length,
    open: () => {
      if (opened) opened.count++;
      return Readable.from([data]);
    },
    openRange: (start, end) => Readable.from([data.subarray(start, end)]),
  };
}

export interface ContractOptions {
  /** A size that makes this backend use its large-object path (multipart). */
  largeSize?: number;
}

export function describeBackendContract(name: string, make: () => Promise<Backend>, o: ContractOptions = {}): void {
  describe(`backend contract: ${name}`, () => {
    test('put, get, stat and list agree; overwrite replaces', async () => {
      const b = await make();
      const data = randomBytes(100_000);
      await b.put('duplicity-full.20261121T000000Z.vol1.difftar.gpg', bufferSource(data));
      expect((await getBytes(b, 'duplicity-full.20261121T000000Z.vol1.difftar.gpg')).equals(data)).toBe(true);
      expect(await b.stat('duplicity-full.20261121T000000Z.vol1.difftar.gpg')).toEqual({ name: 'duplicity-full.20261121T000000Z.vol1.difftar.gpg', size: 100_000 });
      expect(await listAll(b)).toEqual([{ name: 'duplicity-full.20261121T000000Z.vol1.difftar.gpg', size: 100_000 }]);
      const again = Buffer.from('replaced');
      await b.put('duplicity-full.20261121T000000Z.vol1.difftar.gpg', bufferSource(again));
      expect((await getBytes(b, 'duplicity-full.20261121T000000Z.vol1.difftar.gpg')).equals(again)).toBe(true);
      await b.close();
    });

    test('empty objects and odd names', async () => {
      const b = await make();
      for (const n of ['empty', 'a+b=c', 'x y', 'dot.name-1_2', 'é-ü']) await b.put(n, bufferSource(n === 'empty' ? Buffer.alloc(0) : Buffer.from(n)));
      const names = (await listAll(b)).map((x) => x.name).sort();
      expect(names).toEqual(['a+b=c', 'dot.name-1_2', 'empty', 'x y', 'é-ü'].sort());
      expect((await b.stat('empty')).size).toBe(0);
      expect((await getBytes(b, 'x y')).toString()).toBe('x y');
      await b.close();
    });

    test('ranges', async () => {
      const b = await make();
      const data = randomBytes(10_000);
      await b.put('r', bufferSource(data));
      const read = async (start: number, end?: number) => {
        const parts: Buffer[] = [];
        for await (const c of await b.get('r', { range: end === undefined ? { start } : { start, end } })) parts.push(c as Buffer);
        return Buffer.concat(parts);
      };
      expect((await read(100, 200)).equals(data.subarray(100, 200))).toBe(true);
      expect((await read(9_990)).equals(data.subarray(9_990))).toBe(true);
      await b.close();
    });

    test('list by prefix', async () => {
      const b = await make();
      await b.put('aa1', bufferSource(Buffer.from('1')));
      await b.put('aa2', bufferSource(Buffer.from('22')));
      await b.put('bb1', bufferSource(Buffer.from('3')));
      expect((await listAll(b, 'aa')).map((x) => x.name).sort()).toEqual(['aa1', 'aa2']);
      await b.close();
    });

    test('not found: get and stat say so; delete is idempotent', async () => {
      const b = await make();
      await expect(b.get('missing')).rejects.toBeInstanceOf(BackendNotFoundError);
      await expect(b.stat('missing')).rejects.toBeInstanceOf(BackendNotFoundError);
      await b.put('d', bufferSource(Buffer.from('x')));
      await b.delete('d');
      await b.delete('d');
      await expect(b.stat('d')).rejects.toBeInstanceOf(BackendNotFoundError);
      expect(await listAll(b)).toEqual([]);
      await b.close();
    });

    test('a source shorter than announced fails, and leaves no object', async () => {
      const b = await make();
      const liar: PutSource = { size: 1000, open: () => Readable.from([Buffer.alloc(10)]), openRange: () => Readable.from([Buffer.alloc(10)]) };
      await expect(b.put('liar', liar)).rejects.toBeInstanceOf(Error);
      await expect(b.stat('liar')).rejects.toBeInstanceOf(BackendNotFoundError);
      await b.close();
    });

    test('a put cut off mid-stream is retried from a reopened source; the object is whole', async () => {
      const inner = await make();
      const faulty = new FaultyBackend(inner, [{ method: 'put', cutAfterBytes: 30_000, times: 2 }]);
      const b = new RetryBackend(faulty, { baseDelayMs: 1, random: () => 0.5 });
      const data = randomBytes(100_000);
      const opened = { count: 0 };
      await b.put('cut', bufferSource(data, opened));
      expect(opened.count).toBe(3);
      expect((await getBytes(inner, 'cut')).equals(data)).toBe(true);
      await inner.close();
    });

    test('a permanent failure is not retried', async () => {
      const inner = await make();
      const faulty = new FaultyBackend(inner, [{ method: 'put', kind: 'permanent', times: 1 }]);
      const b = new RetryBackend(faulty, { baseDelayMs: 1 });
      await expect(b.put('p', bufferSource(Buffer.from('x')))).rejects.toMatchObject({ kind: 'permanent' });
      expect(faulty.calls.put).toEqual(['p']);
      await inner.close();
    });

    if (o.largeSize) {
      test('a large object (multipart where the backend has it) round-trips', async () => {
        const b = await make();
        const data = randomBytes(o.largeSize!);
        await b.put('large', bufferSource(data));
        expect((await b.stat('large')).size).toBe(data.length);
        expect((await getBytes(b, 'large', 1 << 30)).equals(data)).toBe(true);
        await b.close();
      });
    }

    test('errors are BackendErrors with a kind', async () => {
      const b = await make();
      for (const call of [() => b.get('nope'), () => b.stat('nope'), () => b.get('nope', { range: { start: 0, end: 10 } })]) {
        const e = await call().then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(e).toBeInstanceOf(BackendError);
        expect((e as BackendError).kind).toBe('not-found');
      }
      await b.close();
    });
  });
}
