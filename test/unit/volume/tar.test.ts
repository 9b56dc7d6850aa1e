import { describe, expect, test } from '@jest/globals';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { Readable } from 'node:stream';
import { compareIndex, entryName, parseEntryName, pathToIndex } from '../../../src/volume/entry-name.js';
import { encodeHeader, padding, type TarHeader } from '../../../src/volume/tar-header.js';
import { TarReader } from '../../../src/volume/tar-reader.js';
import { aclFromText, aclToText } from '../../../src/volume/posix-acl.js';
import { tempDirs } from '../../helpers/tmp.js';
import { runOk } from '../../helpers/tools.js';

const tmp = tempDirs();

function hdr(name: Buffer | string, extra: Partial<TarHeader> = {}): TarHeader {
  return { name: Buffer.from(name), type: 'file', mode: 0o644, uid: 1000, gid: 1000, uname: 'u', gname: 'g', size: 0, mtime: 1700000000, linkname: Buffer.alloc(0), devmajor: 0, devminor: 0, ...extra };
}

function archive(entries: [TarHeader, Buffer?][], end = Buffer.alloc(1024)): Buffer {
  const parts: Buffer[] = [];
  for (const [h, d] of entries) {
    parts.push(encodeHeader({ ...h, size: d?.length ?? 0 }));
    if (d) parts.push(d, Buffer.alloc(padding(d.length)));
  }
  parts.push(end);
  return Buffer.concat(parts);
}

async function readAll(data: Buffer, chunk = 1 << 20): Promise<[TarHeader, Buffer][]> {
  async function* src() {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  }
  const r = new TarReader(src());
  const out: [TarHeader, Buffer][] = [];
  for (;;) {
    const h = await r.next();
    if (!h) break;
    out.push([h, await r.readAll()]);
  }
  await r.drain();
  return out;
}

const binaryName = Buffer.concat([Buffer.from('snapshot/bad'), Buffer.from([0xff, 0xfe]), Buffer.from('name.txt')]);
const longName = Buffer.from('snapshot/' + 'x'.repeat(300));
const entries: [TarHeader, Buffer?][] = [
  [hdr('snapshot/./', { type: 'directory', mode: 0o755 })],
  [hdr('snapshot/héllo-日本.txt'), Buffer.from('unicode')],
  [hdr(binaryName), Buffer.from('binary')],
  [hdr(longName), Buffer.from('long')],
  [hdr('snapshot/link', { type: 'symlink', mode: 0o777, linkname: Buffer.from('t'.repeat(200)) })],
  [hdr('snapshot/dev', { type: 'char', devmajor: 1, devminor: 3 })],
  [hdr('snapshot/big-ids', { uid: 10_000_000, gid: 20_000_000, uname: 'a-very-long-user-name-over-32-bytes' })],
  [hdr('multivol_snapshot/f/1'), Buffer.alloc(65536, 7)],
];

describe('tar codec', () => {
  test.each([1, 511, 513, 1 << 20])('round trip, fed in %d-byte chunks', async (chunk) => {
    const got = await readAll(archive(entries), chunk);
    expect(got.length).toBe(entries.length);
    got.forEach(([h, d], i) => {
      const [want, wd] = entries[i]!;
      expect(h.name.equals(want.name)).toBe(true);
      expect(h.type).toBe(want.type);
      expect(h.linkname.equals(want.linkname)).toBe(true);
      expect([h.uid, h.gid, h.uname, h.mtime, h.mode, h.devmajor, h.devminor]).toEqual([want.uid, want.gid, want.uname, want.mtime, want.mode, want.devmajor, want.devminor]);
      expect(d.equals(wd ?? Buffer.alloc(0))).toBe(true);
    });
  });

  test('GNU tar and tar-stream read what we write', async () => {
    const dir = tmp('tar');
    const file = join(dir, 'a.tar');
    writeFileSync(file, archive(entries));
    const listing = runOk('tar', ['tvf', file, '--numeric-owner']).toString('utf8');
    expect(listing).toContain('snapshot/' + 'x'.repeat(300));
    expect(listing).toContain('10000000/20000000');
    const names: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const ex = extract();
      ex.on('entry', (h, s, next) => {
        names.push(h.name);
        s.resume();
        s.on('end', next);
      });
      ex.on('finish', resolve);
      ex.on('error', reject);
      Readable.from([readFileSync(file)]).pipe(ex);
    });
    expect(names).toContain('snapshot/héllo-日本.txt');
    expect(names.length).toBe(entries.length);
  });

  test('reads GNU long names written by GNU tar', async () => {
    const dir = tmp('gnu');
    const long = 'd'.repeat(150);
    mkdirSync(join(dir, 'src', long), { recursive: true });
    writeFileSync(join(dir, 'src', long, 'f'.repeat(120)), 'gnu');
    runOk('tar', ['--format=gnu', '-cf', join(dir, 'g.tar'), '-C', join(dir, 'src'), long]);
    const got = await readAll(readFileSync(join(dir, 'g.tar')));
    const f = got.find(([h]) => h.type === 'file')!;
    expect(f[0].name.toString()).toBe(`${long}/${'f'.repeat(120)}`);
    expect(f[1].toString()).toBe('gnu');
  });

  test('a single zero block, no end marker, and junk after the end are accepted', async () => {
    const base = archive(entries.slice(0, 2), Buffer.alloc(0));
    expect((await readAll(base)).length).toBe(2);
    expect((await readAll(Buffer.concat([base, Buffer.alloc(512)]))).length).toBe(2);
    expect((await readAll(Buffer.concat([base, Buffer.alloc(512), Buffer.from('junk junk junk')]))).length).toBe(2);
  });

  test.each([1000, 65536, 70000])('an entry whose data is read part way (the first piece, fed in %d-byte chunks): the next entry still reads, and where each starts is told', async (chunk) => {
    const a = archive([[hdr('signature/a'), Buffer.alloc(200_000, 1)], [hdr(longName), Buffer.from('next')], [hdr('signature/c'), Buffer.from('c')]]);
    async function* src() {
      for (let i = 0; i < a.length; i += chunk) yield a.subarray(i, i + chunk);
    }
    const r = new TarReader(src());
    expect((await r.next())!.name.toString()).toBe('signature/a');
    expect(r.entryOffset).toBe(0);
    const first = await r.data().next(); // one piece, then the consumer stops
    expect(first.value!.length).toBeLessThan(200_000);
    const h = await r.next();
    expect(h!.name.equals(longName)).toBe(true);
    expect(r.entryOffset).toBe(512 + 200_192); // its long-name header, not its own
    expect((await r.readAll()).toString()).toBe('next');
    expect((await r.next())!.name.toString()).toBe('signature/c');
  });

  test('a corrupt header or truncated data is an error, not a silent end', async () => {
    const a = archive(entries.slice(0, 3));
    const bad = Buffer.from(a);
    bad[512 * 3 + 10] = bad[512 * 3 + 10]! ^ 0xff; // inside the second entry's headers
    await expect(readAll(bad)).rejects.toThrow(/checksum|pax/);
    await expect(readAll(a.subarray(0, 512 * 3 + 100))).rejects.toThrow(/truncated/);
  });
});

describe('entry names and index order', () => {
  test('root forms', () => {
    expect(entryName('snapshot', [], { isDir: true }).toString()).toBe('snapshot/./');
    expect(entryName('snapshot', [], { isDir: true, sigtarRoot: true }).toString()).toBe('snapshot/');
    expect(parseEntryName(Buffer.from('snapshot/./')).index).toEqual([]);
    expect(parseEntryName(Buffer.from('snapshot/')).index).toEqual([]);
  });

  test('multivol names carry the chunk', () => {
    const p = parseEntryName(Buffer.from('multivol_diff/a b/c/17'));
    expect(p.kind).toBe('multivol_diff');
    expect(p.chunk).toBe(17);
    expect(p.index.map(String)).toEqual(['a b', 'c']);
  });

  test.each(['snapshot/../etc/passwd', 'snapshot//etc/passwd', 'snapshot/a/../../x', 'diff/a/./b', 'deleted/..'])('rejects %s', (n) => {
    expect(() => parseEntryName(Buffer.from(n))).toThrow(/unsafe/);
  });

  test('a, a/b, a-b: component order, not string order', () => {
    const xs = ['a-b', 'a/b', 'a'].map((s) => pathToIndex(Buffer.from(s)));
    xs.sort(compareIndex);
    expect(xs.map((x) => x.join('/'))).toEqual(['a', 'a/b', 'a-b']);
  });

  test('raw byte order, not UTF-16 order', () => {
    // U+FF61 (UTF-8 ef bd a1) vs U+1F600 (UTF-8 f0 9f 98 80): UTF-16 puts the emoji first.
    const a = [Buffer.from('\uff61')];
    const b = [Buffer.from('\u{1f600}')];
    expect(compareIndex(a, b)).toBeLessThan(0);
  });
});

describe('xattr, ACL and inode records', () => {
  test('xattrs (binary values, names with = and %, multibyte) and the inode state round trip; Python tarfile reads the archive', async () => {
    const acl = aclFromText('user::rw-\nuser:1234:rw-\ngroup::r--\nmask::rw-\nother::r--\n', () => undefined);
    const xattrs = [
      { name: 'security.capability', value: Buffer.from('0100000200200000000000000000000000000000', 'hex') },
      { name: 'system.posix_acl_access', value: acl },
      { name: 'user.bin', value: Buffer.from([0, 255, 10, 61, 13]) },
      { name: 'user.odd=na%me', value: Buffer.from('v') },
      { name: 'user.ünï', value: Buffer.from('ö') },
    ];
    const inode = { ctime: 1_800_000_000_123.4567, nlink: 3, xattrs: { digest: 'ab'.repeat(16), names: ['user.a,b', 'user.%', 'user.x\ny'] } };
    const entries = await readAll(archive([[hdr('snapshot/f', { xattrs }), Buffer.from('data')], [hdr('signature/f', { inode })], [hdr('snapshot/plain')]]));
    expect(entries.map(([h]) => [h.xattrs, h.inode])).toEqual([[xattrs, undefined], [undefined, inode], [undefined, undefined]]);
    expect(entries[0]![1].toString()).toBe('data');

    const dir = tmp('pax');
    writeFileSync(join(dir, 'a.tar'), archive([[hdr('snapshot/f', { xattrs }), Buffer.from('data')]]));
    const py = runOk('python3', ['-c', 'import sys,tarfile\nt=tarfile.open(sys.argv[1])\nfor m in t: print(m.name, sorted(k for k in m.pax_headers if k.startswith("SCHILY")))', join(dir, 'a.tar')]).toString();
    expect(py).toContain("'SCHILY.acl.access'");
    expect(py).toContain("'SCHILY.xattr.user.odd%3Dna%25me'");
  });

  test('ACLs: the kernel form and the text form convert both ways; text from other tools (names, commas, star ids, comments) is read; bad text is refused', () => {
    const text = 'user::rwx\nuser:1001:r-x\ngroup::r--\ngroup:4321:rw-\nmask::rwx\nother::---\n';
    const value = aclFromText(text, () => undefined);
    expect(value.readUInt32LE(0)).toBe(2);
    expect(aclToText(value)).toBe(text);
    // entries in any order, names looked up, star's fourth field and comments ignored
    const names = (kind: 'user' | 'group', n: string) => (kind === 'user' && n === 'alice' ? 1001 : kind === 'group' && n === 'staff' ? 4321 : undefined);
    expect(aclFromText('other::---,group:staff:rw-:4321,user::rwx #owner\nmask::rwx,u:alice:r-x,g::r--', names)).toEqual(value);
    for (const bad of ['user:nobody-here:rw-', 'user::rwz', 'team::rw-', 'user:99999999999:r--']) expect(() => aclFromText(bad, () => undefined)).toThrow(/POSIX ACL/);
    expect(() => aclToText(Buffer.from([2, 0, 0, 0, 1]))).toThrow(/malformed/);
  });

  test('an ACL given only as text is read as its xattr; text that does not parse is left out, the entry still reads', async () => {
    const pax = (records: [string, string][]) => {
      const body = Buffer.concat(records.map(([k, v]) => {
        const rec = ` ${k}=${v}\n`;
        let len = rec.length + 2;
        if (String(len).length + rec.length !== len) len = rec.length + String(len).length;
        return Buffer.from(`${len}${rec}`);
      }));
      return [hdr('././@PaxHeader'), body] as const;
    };
    const good = pax([['SCHILY.acl.access', 'user::rw-\ngroup::r--\nother::r--\nuser:77:r--\nmask::r--\n']]);
    const bad = pax([['SCHILY.acl.default', 'not an acl']]);
    /** A pax header block (type x) with these records, then the entry `name`. */
    const build = (p: readonly [TarHeader, Buffer], name: string) => {
      const block = encodeHeader({ ...p[0], size: p[1].length });
      block[156] = 0x78;
      // the checksum again, for the changed type flag
      block.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of block) sum += b;
      block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
      return Buffer.concat([block, p[1], Buffer.alloc(padding(p[1].length)), encodeHeader(hdr(name))]);
    };
    const data = Buffer.concat([build(good, 'snapshot/a'), build(bad, 'snapshot/b'), Buffer.alloc(1024)]);
    const entries = await readAll(data);
    expect(entries.map(([h]) => h.name.toString())).toEqual(['snapshot/a', 'snapshot/b']);
    expect(entries[0]![0].xattrs?.map((x) => [x.name, aclToText(x.value)])).toEqual([['system.posix_acl_access', 'user::rw-\nuser:77:r--\ngroup::r--\nmask::r--\nother::r--\n']]);
    expect(entries[1]![0].xattrs).toBeUndefined();
  });
});
