/**
 * The spool of a set's signature file, cut into slices for the volume lanes: each slice
 * is a file of its own, removed once no slice handed out reads it; the entry before a
 * slice (its lead, which a volume continuing a run is checked against) stays readable
 * however early the volumes before are done.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { FileBackend } from '../../../src/backend/file.js';
import { ArchiveReader } from '../../../src/repo/archive.js';
import { sigtarEntries } from '../../../src/repo/signature-state.js';
import { DigestedBytes } from '../../../src/verify/signature-cursor.js';
import { SignatureSpool } from '../../../src/verify/signature-spool.js';
import { problemCollector } from '../../../src/verify/problems.js';
import { spooled, type SpooledEntries } from '../../../src/verify/volume-check.js';
import { displayIndex, pathToIndex } from '../../../src/volume/entry-name.js';
import { runCli } from '../../helpers/cli.js';
import { tempDirs } from '../../helpers/tmp.js';
import { bytes } from '../../helpers/tree.js';

const tmp = tempDirs();

/** The paths of the entries a slice (or its lead) holds. */
async function pathsIn(s: SpooledEntries): Promise<string[]> {
  const out: string[] = [];
  for await (const e of sigtarEntries(spooled(s), 'sigtar')) out.push(displayIndex(e.index));
  return out;
}

describe('SignatureSpool', () => {
  test('slices in files of their own, removed once released; a lead readable after the slices before it are released', async () => {
    const dir = tmp('spool-unit');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    for (let k = 0; k < 30; k++) fs.writeFileSync(join(src, `f${String(k).padStart(2, '0')}`), bytes(3000 + k, k));
    const target = join(dir, 't');
    expect((await runCli(['backup', '--no-encryption', src, target], { XDG_CACHE_HOME: join(dir, 'cache') })).code).toBe(0);
    const archive = new ArchiveReader(new FileBackend(target, { create: false }), {});
    const set = (await archive.collection()).chains[0]!.full;
    const spoolDir = join(dir, 'spool');
    fs.mkdirSync(spoolDir, { mode: 0o700 });
    const { problems, ...collector } = problemCollector();
    const spool = (await SignatureSpool.open(archive, set, new DigestedBytes(), spoolDir, { problems, ...collector }))!;
    const at = (name: string) => pathToIndex(Buffer.from(name));

    const first = (await spool.slice(at('f09')))!;
    expect(await pathsIn(first)).toEqual(['.', ...Array.from({ length: 10 }, (_, k) => `f0${k}`)]);
    spool.release(first); // its volume is done before the next slice is cut
    const second = (await spool.slice(at('f19')))!;
    expect(second.spool).not.toBe(first.spool);
    expect(await pathsIn(second.lead!)).toEqual(['f09']);
    expect(await pathsIn(second)).toEqual(Array.from({ length: 10 }, (_, k) => `f${10 + k}`));
    const last = (await spool.slice(undefined))!;
    expect(await pathsIn(last.lead!)).toEqual(['f19']);
    expect(await pathsIn(last)).toEqual(Array.from({ length: 10 }, (_, k) => `f${20 + k}`));
    // first's file went once second no longer needed it as its lead
    spool.release(second);
    expect(fs.existsSync(first.spool)).toBe(false);
    expect(fs.existsSync(second.spool)).toBe(true); // the lead of the last slice
    spool.release(last);
    await spool.close();
    expect(fs.readdirSync(spoolDir)).toEqual([]);
    expect(problems).toEqual([]);
  });
});
