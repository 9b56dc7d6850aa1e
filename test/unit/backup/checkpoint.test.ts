import { describe, expect, test } from '@jest/globals';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { CheckpointFiles, CheckpointWriter, SyncAppender, emptyCheckpoint, settle, type CheckpointStep } from '../../../src/backup/checkpoint.js';
import { tempDirs } from '../../helpers/tmp.js';

const tmp = tempDirs();
const spec = { type: 'full' as const, start: 100, end: 100, encoding: 'gpg' };

const step = (n: number): CheckpointStep => ({
  volume: { number: n, name: `vol${n}`, size: 1000 + n, sha1: 'ab', start: ['61'], end: [Buffer.from(`f${n}`).toString('hex')] },
  sigtarLength: n * 512,
  filelistLength: n * 10,
  resume: { index: [Buffer.from(`f${n}`).toString('hex')], done: true },
});

describe('settle', () => {
  const stored = [step(1), step(2)].reduce((st, s) => ({ ...st, volumes: [...st.volumes, s.volume], sigtarLength: s.sigtarLength, filelistLength: s.filelistLength, resume: s.resume }), emptyCheckpoint(spec, '/src'));

  test('pending volumes at the target as recorded are adopted in order, up to the first that is not', () => {
    const st = { ...stored, pending: [step(3), step(4), step(5)] };
    const at = new Set(['vol3', 'vol5']); // vol4 never arrived: vol5 cannot count
    const s = settle(st, (v) => at.has(v.name))!;
    expect(s.volumes.map((v) => v.number)).toEqual([1, 2, 3]);
    expect(s.sigtarLength).toBe(3 * 512);
    expect(s.filelistLength).toBe(30);
    expect(s.resume).toEqual(step(3).resume);
    expect(s.pending).toBeUndefined();
  });

  test('a checkpoint with no volume stored and none that arrived is nothing to resume', () => {
    expect(settle({ ...emptyCheckpoint(spec, '/src'), pending: [step(1)] }, () => false)).toBeUndefined();
    expect(settle({ ...emptyCheckpoint(spec, '/src'), pending: [step(1)] }, () => true)?.volumes).toHaveLength(1);
  });
});

describe('CheckpointWriter', () => {
  test('a volume is pending once closed and stored once it and all before it are uploaded', async () => {
    const dir = tmp('cp');
    const files = new CheckpointFiles(dir);
    const w = new CheckpointWriter(files, emptyCheckpoint(spec, '/src'), () => {
      throw new Error('no save should fail');
    });
    await w.closed(step(1));
    await w.closed(step(2));
    expect(files.load()!.pending!.map((p) => p.volume.number)).toEqual([1, 2]);
    await w.uploaded(2); // out of order: volume 1 is still in flight
    expect(files.load()!.volumes).toEqual([]);
    await w.uploaded(1);
    const st = files.load()!;
    expect(st.volumes.map((v) => v.number)).toEqual([1, 2]);
    expect(st.pending).toBeUndefined();
    expect(st.resume).toEqual(step(2).resume);
  });

  test('a failed save is told once and the writer goes on', async () => {
    const dir = tmp('cp-fail');
    const files = new CheckpointFiles(join(dir, 'missing', 'dir'));
    const told: unknown[] = [];
    const w = new CheckpointWriter(files, emptyCheckpoint(spec, '/src'), (e) => told.push(e));
    await w.closed(step(1));
    await w.uploaded(1);
    await w.flush();
    expect(told).toHaveLength(1);
    expect((told[0] as NodeJS.ErrnoException).code).toBe('ENOENT');
  });
});

describe('SyncAppender', () => {
  test('keeps the first `keep` bytes of an existing file and appends after them; a recorded length is on disk after sync', () => {
    const p = join(tmp('append'), 'f');
    const a = new SyncAppender(p, undefined);
    a.append(Buffer.from('hello '));
    a.append(Buffer.from('world'));
    a.sync();
    expect(fs.readFileSync(p, 'utf8')).toBe('hello world');
    a.close();
    const b = new SyncAppender(p, 5);
    b.append(Buffer.from(', again'));
    b.close();
    expect(fs.readFileSync(p, 'utf8')).toBe('hello, again');
  });
});
