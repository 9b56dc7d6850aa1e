import { describe, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { CHUNK, SmallReadPolicy, pieces, readBuffers, readWhole, type ReadSeen } from '../../../src/source/read-file.js';
import { looksSparse, type Extents } from '../../../src/source/data-extents.js';
import { fsHelper } from '../../../src/util/fs-helper.js';
import { tempDirs } from '../../helpers/tmp.js';

const tmp = tempDirs();

async function readAll(p: string, size: number, whole: boolean): Promise<{ sizes: number[]; seen: ReadSeen; data: Buffer }> {
  const seen: ReadSeen = { read: 0, grew: false };
  const path = Buffer.from(p);
  const out: Buffer[] = [];
  for await (const piece of pieces(readBuffers(path, size, seen, whole ? { whole: readWhole(path, size) } : {}))) out.push(piece);
  return { sizes: out.map((b) => b.length), seen, data: Buffer.concat(out) };
}

describe('reading source files in duplicity pieces', () => {
  test.each([false, true])('sizes 0, 1, 64 KiB, 64 KiB+1 and 3 MiB+5 give the pieces duplicity writes (read whole: %s)', async (whole) => {
    const dir = tmp('read');
    mkdirSync(dir, { recursive: true });
    for (const [n, expected] of [
      [0, [0]],
      [1, [1]],
      [CHUNK, [CHUNK, 0]],
      [CHUNK + 1, [CHUNK, 1]],
      [3 * 1048576 + 5, [...Array(48).fill(CHUNK), 5]],
    ] as [number, number[]][]) {
      const p = join(dir, `f${n}`);
      const content = Buffer.alloc(n, 7);
      writeFileSync(p, content);
      const r = await readAll(p, n, whole);
      expect(r.sizes).toEqual(expected);
      expect(r.data.equals(content)).toBe(true);
      expect(r.seen).toEqual({ read: n, grew: false });
    }
  });

  test.each([false, true])('a file that grew after stat is read up to its stat size and flagged; one that shrank, as far as it goes (read whole: %s)', async (whole) => {
    const dir = tmp('read-change');
    mkdirSync(dir, { recursive: true });
    const p = join(dir, 'grows');
    writeFileSync(p, Buffer.alloc(100_000, 1));
    appendFileSync(p, Buffer.alloc(10, 2)); // after the "stat" that said 100,000
    const g = await readAll(p, 100_000, whole);
    expect(g.data.length).toBe(100_000);
    expect(g.seen).toEqual({ read: 100_000, grew: true });
    const q = join(dir, 'shrinks');
    writeFileSync(q, Buffer.alloc(100_000, 1));
    truncateSync(q, 70_000);
    const s = await readAll(q, 100_000, whole);
    expect(s.data.length).toBe(70_000);
    expect(s.seen.read).toBe(70_000);
  });
});

/** 0.2 ms on average over 32 reads, then 3 files on the thread pool. */
class SyncPolicyForTest extends SmallReadPolicy {
  constructor() {
    super(0.2, 32, 3);
  }
}

describe('small files: read synchronously while that is fast, else on the thread pool', () => {
  test('slow synchronous reads on average send the next files to the thread pool, then it tries again', () => {
    const policy = new SyncPolicyForTest();
    for (let i = 0; i < 200; i++) policy.took(0.01); // the page cache
    policy.took(3); // one preemption of the main thread: not the storage
    expect(policy.sync).toBe(true);
    for (let i = 0; i < 3; i++) policy.took(1.5); // a network filesystem: 3 ms + 4.5 ms > 0.2 ms × 32
    expect([policy.sync, policy.sync, policy.sync, policy.sync]).toEqual([false, false, false, true]);
    policy.took(0.01);
    expect(policy.sync).toBe(true);
  });

  test.each(['sync', 'thread pool'])('%s: the same content, growth seen, a missing file rejected (not thrown)', async (mode) => {
    const dir = tmp('whole');
    mkdirSync(dir, { recursive: true });
    const policy = () => {
      const p = new SmallReadPolicy();
      if (mode !== 'sync') p.took(1e9);
      return p;
    };
    const f = join(dir, 'f');
    writeFileSync(f, Buffer.alloc(5000, 3));
    const r = await readWhole(Buffer.from(f), 5000, policy());
    expect([r.data.length, r.data.equals(Buffer.alloc(5000, 3)), r.grew]).toEqual([5000, true, false]);
    const grown = await readWhole(Buffer.from(f), 4000, policy());
    expect([grown.data.length, grown.grew]).toEqual([4000, true]);
    const missing = readWhole(Buffer.from(join(dir, 'nope')), 10, policy());
    await expect(missing).rejects.toThrow(/ENOENT/);
  });
});

test('a file swapped for a fifo after its lstat does not hang the read (sync, thread pool, streamed)', async () => {
  const dir = tmp('fifo');
  mkdirSync(dir, { recursive: true });
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const outcome = (p: Promise<unknown>) => p.then(
    () => 'done',
    () => 'failed',
  );
  const slow = new SmallReadPolicy();
  slow.took(1e9);
  expect(['done', 'failed']).toContain(await outcome(readWhole(Buffer.from(fifo), 100)));
  expect(['done', 'failed']).toContain(await outcome(readWhole(Buffer.from(fifo), 100, slow)));
  expect(['done', 'failed']).toContain(await outcome(readAll(fifo, 100, false)));
}, 5000);

describe('sparse files: only the data the file system reports is read', () => {
  const MiB = 1 << 20;
  /** A sparse file: data at these [offset, bytes], holes elsewhere, `size` long. */
  function sparseFile(p: string, size: number, data: [number, number][]): Buffer {
    const content = Buffer.alloc(size);
    writeFileSync(p, '');
    truncateSync(p, size);
    const fd = openSync(p, 'r+');
    for (const [at, n] of data) {
      const piece = randomBytes(n);
      piece.copy(content, at);
      writeSync(fd, piece, 0, n, at);
    }
    closeSync(fd);
    return content;
  }

  test('the helper reports the data ranges; a missing path or one it cannot open: undefined; it does not keep the process alive', async () => {
    const dir = tmp('extents');
    const p = join(dir, 'img');
    sparseFile(p, 64 * MiB, [[8 * MiB, 5000], [40 * MiB, 2 * MiB]]);
    const probe = fsHelper();
    {
      const ext = (await probe.extents(Buffer.from(p), 64 * MiB))!;
      // file systems allocate whole blocks: each range covers the data written, on block bounds
      expect(ext).toHaveLength(2);
      expect(ext[0]![0]).toBeLessThanOrEqual(8 * MiB);
      expect(ext[0]![1]).toBeGreaterThanOrEqual(8 * MiB + 5000);
      expect(ext[1]![0]).toBeLessThanOrEqual(40 * MiB);
      expect(ext[1]![1]).toBeGreaterThanOrEqual(42 * MiB);
      expect(await probe.extents(Buffer.from(join(dir, 'missing')), 10)).toBeUndefined();
      expect(await probe.extents(Buffer.from(dir + '/img\n'), 10)).toBeUndefined(); // a newline in a name is carried, not split on
      expect(looksSparse(statSync(p))).toBe(true);
      // a process that asked and has nothing else to do exits (the helper ends with it)
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', `import { fsHelper } from ${JSON.stringify(resolve('dist/util/fs-helper.js'))}; console.log(JSON.stringify(await fsHelper().extents(Buffer.from(${JSON.stringify(p)}), 64 << 20)));`], { timeout: 30_000 });
      expect({ status: child.status, out: JSON.parse(child.stdout.toString()) }).toEqual({ status: 0, out: ext });
      expect(looksSparse({ size: 64 * MiB, blocks: (64 * MiB) / 512 })).toBe(false);
    }
  });

  test('read by extents: the same bytes and 64 KiB pieces as a plain read, holes at the start, between and at the end; stale extents of a shrunk file end at its data', async () => {
    const dir = tmp('sparse-read');
    const p = join(dir, 'img');
    const size = 5 * MiB + 12345;
    const content = sparseFile(p, size, [[0, 100], [MiB - 10, 20], [3 * MiB + 4096, MiB + 7]]);
    const probe = fsHelper();
    {
      const extents = (await probe.extents(Buffer.from(p), size))!;
      const read = async (o: { extents?: Extents }, n = size) => {
        const seen: ReadSeen = { read: 0, grew: false };
        const out: Buffer[] = [];
        for await (const piece of pieces(readBuffers(Buffer.from(p), n, seen, o))) out.push(piece);
        return { sizes: out.map((b) => b.length), seen, data: Buffer.concat(out) };
      };
      const plain = await read({});
      const sparse = await read({ extents });
      expect(sparse.data.equals(content)).toBe(true);
      expect(sparse.sizes).toEqual(plain.sizes);
      expect(sparse.seen).toEqual({ read: size, grew: false });
      // extents made up by hand: a range past a shrunk end stops the read there
      truncateSync(p, 3 * MiB + 5000);
      const shrunk = await read({ extents: [[0, MiB + 100], [3 * MiB, size]] });
      expect(shrunk.seen.read).toBe(3 * MiB + 5000);
      expect(shrunk.data.equals(content.subarray(0, 3 * MiB + 5000))).toBe(true);
      appendFileSync(p, 'more');
      expect((await read({ extents: [[0, 100]] }, 3 * MiB)).seen.grew).toBe(true);
    }
  });
});
