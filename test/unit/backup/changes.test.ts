import { describe, expect, test } from '@jest/globals';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { diffTree, type Change } from '../../../src/backup/changes.js';
import { blockSizeFor, signatureSize } from '../../../src/diff/signature.js';
import type { StateEntry } from '../../../src/repo/signature-state.js';
import { entryType, headerFromStat } from '../../../src/source/entry-meta.js';
import type { WalkEntry } from '../../../src/source/walk.js';
import { pathToIndex } from '../../../src/volume/entry-name.js';
import { tempDirs } from '../../helpers/tmp.js';

const tmp = tempDirs();

async function* from<T>(xs: T[]): AsyncGenerator<T> {
  yield* xs;
}

const walkEntry = (root: string, name: string): WalkEntry => {
  const path = Buffer.from(join(root, name));
  return { index: pathToIndex(Buffer.from(name)), path, stat: fs.lstatSync(path) };
};

/** The state a previous backup recorded for `name` as it is now (a file: its signature entry). */
const stateOf = (root: string, name: string, change: (h: ReturnType<typeof headerFromStat>) => object = () => ({})): StateEntry => {
  const st = fs.lstatSync(join(root, name));
  const type = entryType(st)!;
  const link = type === 'symlink' ? fs.readlinkSync(join(root, name), { encoding: 'buffer' }) : Buffer.alloc(0);
  const h = headerFromStat(Buffer.from(name), st, type, link);
  const header = { ...h, ...(type === 'file' ? { size: signatureSize(st.size, blockSizeFor(st.size)) } : {}), ...change(h) };
  return { kind: type === 'file' ? 'signature' : 'snapshot', index: pathToIndex(Buffer.from(name)), header, signature: async () => Buffer.alloc(0), signatureStream: () => from([]), offset: 0 };
};

const ops = (cs: Change[]) => cs.map((c) => `${c.op} ${(c.op === 'deleted' ? c.index : c.entry.index).join('/')}${c.op === 'snapshot' ? (c.isNew ? ' new' : ' changed') : ''}`);

async function collect(walk: WalkEntry[], state: StateEntry[]): Promise<Change[]> {
  const out: Change[] = [];
  for await (const c of diffTree(from(walk), from(state), { xattrs: false })) out.push(c);
  return out;
}

describe('diffTree', () => {
  test('unchanged paths yield nothing; new, gone, changed content, changed mode and changed type each their change, in index order', async () => {
    const root = tmp('changes');
    const t = new Date('2026-01-01T00:00:00Z');
    for (const n of ['a', 'b', 'c', 'd', 'gone']) {
      fs.writeFileSync(join(root, n), `content of ${n}`);
      fs.utimesSync(join(root, n), t, t);
    }
    const state = ['a', 'b', 'c', 'd', 'gone'].map((n) => stateOf(root, n));
    fs.writeFileSync(join(root, 'b'), 'new content of b'); // a new mtime
    fs.chmodSync(join(root, 'c'), 0o600);
    fs.rmSync(join(root, 'd'));
    fs.mkdirSync(join(root, 'd'));
    fs.rmSync(join(root, 'gone'));
    fs.writeFileSync(join(root, 'e'), 'new');
    const walk = ['a', 'b', 'c', 'd', 'e'].map((n) => walkEntry(root, n));
    expect(ops(await collect(walk, state))).toEqual(['diff b', 'diff c', 'snapshot d changed', 'snapshot e new', 'deleted gone']);
  });

  test('a file whose size cannot match its stored signature is a change even at the same mtime', async () => {
    const root = tmp('changes-size');
    fs.writeFileSync(join(root, 'f'), 'x'.repeat(10));
    const old = stateOf(root, 'f');
    fs.writeFileSync(join(root, 'f'), 'x'.repeat(100_000));
    fs.utimesSync(join(root, 'f'), old.header.mtime, old.header.mtime);
    expect(ops(await collect([walkEntry(root, 'f')], [old]))).toEqual(['diff f']);
  });

  test('a symlink pointing elsewhere is a new snapshot of it', async () => {
    const root = tmp('changes-link');
    fs.symlinkSync('one', join(root, 'l'));
    const old = stateOf(root, 'l');
    fs.rmSync(join(root, 'l'));
    fs.symlinkSync('two', join(root, 'l'));
    expect(ops(await collect([walkEntry(root, 'l')], [old]))).toEqual(['snapshot l changed']);
  });
});
