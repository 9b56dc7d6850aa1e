import { describe, expect, test } from '@jest/globals';
import { formatManifest, parseManifest, quote, unquote } from '../../../src/chain/manifest.js';
import { pathToIndex } from '../../../src/volume/entry-name.js';

const I = (s: string) => pathToIndex(Buffer.from(s));

describe('manifest', () => {
  test('written byte-for-byte as duplicity writes it', () => {
    const text = formatManifest({
      hostname: 'vm',
      localdir: Buffer.from('src'),
      volumes: [
        { number: 1, start: [], end: I('big.bin'), endBlock: 16, hashType: 'SHA1', hash: 'b7a68284ee7c0874d9b99c9b616f809f89fdc7a1' },
        { number: 2, start: I('big.bin'), startBlock: 17, end: I('small.txt'), hashType: 'SHA1', hash: '1fc292f269d7ae8d8d3c83104226bf109b25781e' },
      ],
      files: [
        { action: 'new', path: Buffer.from('big.bin') },
        { action: 'deleted', path: Buffer.from('name with space.txt') },
      ],
    }).toString('utf8');
    expect(text).toBe(
      'Hostname vm\nLocaldir src\nVolume 1:\n    StartingPath   .  \n    EndingPath     big.bin 16\n' +
        '    Hash SHA1 b7a68284ee7c0874d9b99c9b616f809f89fdc7a1\nVolume 2:\n    StartingPath   big.bin 17\n' +
        '    EndingPath     small.txt  \n    Hash SHA1 1fc292f269d7ae8d8d3c83104226bf109b25781e\nFilelist 2\n' +
        '    new      big.bin\n    deleted  "name\\x20with\\x20space.txt"\n',
    );
  });

  test('round trip keeps indexes, blocks, hashes and raw bytes', () => {
    const weird = Buffer.concat([Buffer.from("it's \"odd\"\\\t\n"), Buffer.from([0xff])]);
    const m = {
      hostname: 'host',
      localdir: Buffer.from('/home/me/my docs'),
      volumes: [{ number: 1, start: [weird], startBlock: 3, end: [Buffer.from('z')], hashType: 'SHA1' as const, hash: 'ab'.repeat(20) }],
      files: [{ action: 'changed' as const, path: weird }],
    };
    const back = parseManifest(formatManifest(m), 'manifest', { withFiles: true });
    expect(back.hostname).toBe('host');
    expect(back.localdir!.equals(m.localdir)).toBe(true);
    expect(back.volumes[0]!.start[0]!.equals(weird)).toBe(true);
    expect(back.volumes[0]!.startBlock).toBe(3);
    expect(back.volumes[0]!.endBlock).toBeUndefined();
    expect(back.files[0]!.path.equals(weird)).toBe(true);
  });

  test('lenient: any case, Filelist first, missing blank, repeated volume, MD5', () => {
    const text = [
      'hostname h',
      'localdir d',
      'filelist 1',
      '    new      x',
      'VOLUME 1:',
      '    startingpath .',
      '    endingpath a',
      '    hash MD5 0123456789abcdef0123456789abcdef',
      'Volume 1:',
      '    StartingPath   .  ',
      '    EndingPath     b  ',
      '    Hash SHA1 ' + 'c'.repeat(40),
      '',
    ].join('\n');
    const m = parseManifest(Buffer.from(text), 'manifest', { withFiles: true });
    expect(m.volumes).toHaveLength(1);
    expect(m.volumes[0]!.end.map(String)).toEqual(['b']);
    expect(m.volumes[0]!.hashType).toBe('SHA1');
    expect(m.files).toHaveLength(1);
  });

  test('a volume without a hash is an error naming the file', () => {
    expect(() => parseManifest(Buffer.from('Volume 1:\n    StartingPath   .  \n    EndingPath     a  \n'), 'x.manifest')).toThrow(/x.manifest: volume 1 has no hash/);
  });

  test('quoting', () => {
    expect(quote(Buffer.from('plain-é')).toString()).toBe('plain-é');
    expect(quote(Buffer.from('a b')).toString()).toBe('"a\\x20b"');
    expect(unquote(Buffer.from('"a\\x20b\\x5c"')).toString()).toBe('a b\\');
  });
});
