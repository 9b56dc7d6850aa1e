import { describe, expect, test } from '@jest/globals';
import { buildCollection, pickForTime } from '../../../src/chain/collection.js';
import { formatName, parseName } from '../../../src/chain/file-naming.js';
import { formatTimestamp, parseInterval, parseNameTime, parseUserTime } from '../../../src/chain/time.js';

const T1 = parseNameTime('20261121T222412Z')!;
const T2 = parseNameTime('20261121T222456Z')!;
const T3 = parseNameTime('20261122T010000Z')!;

describe('file names', () => {
  test('long form both ways', () => {
    const names = [
      formatName({ kind: 'volume', type: 'full', start: T1, end: T1, volume: 3, encoding: 'gpg' }),
      formatName({ kind: 'manifest', type: 'full', start: T1, end: T1, encoding: 'gz' }),
      formatName({ kind: 'signature', type: 'inc', start: T1, end: T2, encoding: 'gz' }),
      formatName({ kind: 'volume', type: 'inc', start: T1, end: T2, volume: 10, encoding: 'plain' }),
    ];
    expect(names).toEqual([
      'duplicity-full.20261121T222412Z.vol3.difftar.gpg',
      'duplicity-full.20261121T222412Z.manifest',
      'duplicity-new-signatures.20261121T222412Z.to.20261121T222456Z.sigtar.gz',
      'duplicity-inc.20261121T222412Z.to.20261121T222456Z.vol10.difftar',
    ]);
    expect(parseName(names[3]!)).toMatchObject({ kind: 'volume', type: 'inc', start: T1, end: T2, volume: 10, encoding: 'plain' });
    expect(parseName(names[2]!)).toMatchObject({ kind: 'signature', type: 'inc', encoding: 'gz' });
  });

  test('short and legacy forms, partial, and names to ignore', () => {
    expect(parseName('df.tovibj.1.dt.g')).toMatchObject({ kind: 'volume', type: 'full', volume: 1, encoding: 'gpg', start: parseInt('tovibj', 36) });
    expect(parseName('di.tovibj.tovibn.m.g')).toMatchObject({ kind: 'manifest', type: 'inc', end: parseInt('tovibn', 36) });
    expect(parseName('duplicity-full.2002-08-17T16:17:01-07:00.vol1.difftar.gpg')).toMatchObject({ start: Date.UTC(2002, 7, 17, 23, 17, 1) / 1000 });
    expect(parseName('duplicity-full.20261121T222412Z.manifest.part')?.partial).toBe(true);
    expect(parseName('duplicity-full.20261121T222412Z.vol1.difftar.gpg.par2')).toBeUndefined();
    expect(parseName('duplicity-full.20261121T222412Z.jsonstat.gpg')).toBeUndefined();
    expect(parseName('README')).toBeUndefined();
    expect(parseName('duplicity-full.20261121t222412z.vol1.difftar.gpg')?.start).toBe(T1);
  });
});

describe('chains', () => {
  const files = (names: string[]) => names.map((name) => ({ name, size: 1 }));
  const full = (t: number) => [`duplicity-full.${formatTimestamp(t)}.manifest.gpg`, `duplicity-full.${formatTimestamp(t)}.vol1.difftar.gpg`, `duplicity-full-signatures.${formatTimestamp(t)}.sigtar.gpg`];
  const inc = (a: number, b: number) => [`duplicity-inc.${formatTimestamp(a)}.to.${formatTimestamp(b)}.manifest.gpg`, `duplicity-inc.${formatTimestamp(a)}.to.${formatTimestamp(b)}.vol1.difftar.gpg`];

  test('fulls start chains, incrementals attach by START, the rest is orphaned or incomplete', () => {
    const col = buildCollection(
      files([...full(T1), ...inc(T1, T2), ...inc(T2 + 5, T3), `duplicity-full.${formatTimestamp(T3 + 100)}.vol1.difftar.gpg`, ...full(T3 + 200)]),
    );
    expect(col.chains).toHaveLength(2);
    expect(col.chains[0]!.incs).toHaveLength(1);
    expect(col.chains[0]!.end).toBe(T2);
    expect(col.orphans).toHaveLength(1);
    expect(col.incomplete).toHaveLength(1);
    expect(col.chains[0]!.full.signature?.name).toContain('full-signatures');
  });

  test('picking sets for a time', () => {
    const col = buildCollection(files([...full(T1), ...inc(T1, T2), ...full(T3)]));
    expect(pickForTime(col, T2)!.sets).toHaveLength(2);
    expect(pickForTime(col, T1)!.sets).toHaveLength(1);
    expect(pickForTime(col, T3 + 10)!.chain.start).toBe(T3);
    expect(pickForTime(col, T2 + 10)!.chain.start).toBe(T1); // newest chain ending before t
    expect(pickForTime(col, T1 - 100)!.chain.start).toBe(T1); // none before: the oldest
  });
});

describe('times', () => {
  const now = T3;
  test.each([
    ['now', now],
    ['1700000000', 1700000000],
    ['20261121T222412Z', T1],
    ['2026-11-21T22:24:12Z', T1],
    ['2026-11-21T23:24:12+01:00', T1],
    ['3D', now - 3 * 86400],
    ['1h30m', now - 5400],
    ['2W', now - 14 * 86400],
  ])('%s', (s, want) => expect(parseUserTime(s, now)).toBe(want));

  test('dates alone are local midnight', () => {
    expect(parseUserTime('2026-11-21', now)).toBe(new Date(2026, 10, 21).getTime() / 1000);
    expect(parseUserTime('11/21/2026', now)).toBe(new Date(2026, 10, 21).getTime() / 1000);
  });

  test('garbage is a usage error', () => {
    expect(() => parseUserTime('yesterday-ish', now)).toThrow(/bad time/);
    expect(parseInterval('5x')).toBeUndefined();
  });
});
