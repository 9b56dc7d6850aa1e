/**
 * Hand-made plain (unencrypted, uncompressed) full sets holding exactly the given tar
 * entries: the way to put hostile or damaged archives in front of restore and verify.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatManifest, type VolumeInfo } from '../../src/chain/manifest.js';
import { parseEntryName, pathToIndex, type Index } from '../../src/volume/entry-name.js';
import { encodeHeader, padding, type TarHeader } from '../../src/volume/tar-header.js';

export type RawEntrySpec = [TarHeader, (string | Buffer)?];

export function h(name: string, extra: Partial<TarHeader> = {}): TarHeader {
  return { name: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', size: 0, mtime: 1700000000, linkname: Buffer.alloc(0), devmajor: 0, devminor: 0, ...extra };
}

export const ROOT: RawEntrySpec = [h('snapshot/./', { type: 'directory', mode: 0o755 })];

/** Chunk entries `multivol_snapshot/NAME/n` for the given chunk numbers and sizes. */
export function chunks(name: string, spec: [number, number][], fill = 0x61): RawEntrySpec[] {
  return spec.map(([n, size]) => [h(`multivol_snapshot/${name}/${n}`), Buffer.alloc(size, fill + n)]);
}

export interface RawSetOptions {
  /** Override a volume's manifest range (by volume position). */
  ranges?: Record<number, { start: Index; end: Index }>;
}

/** An entry's index; `fallback` for a hostile name the parser refuses. */
function indexOf(name: Buffer, fallback: Index): Index {
  try {
    return parseEntryName(name).index;
  } catch {
    return fallback;
  }
}

/** Writes one set of one or more volumes; the manifest ranges follow the entries. */
export function rawSet(dir: string, volumes: RawEntrySpec[] | RawEntrySpec[][], o: RawSetOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  const vols = (Array.isArray(volumes[0]?.[0]) ? volumes : [volumes]) as RawEntrySpec[][];
  const t = '20261121T000000Z';
  const infos: VolumeInfo[] = vols.map((entries, i) => {
    const parts: Buffer[] = [];
    for (const [hd, data] of entries) {
      const d = Buffer.from(data ?? '');
      parts.push(encodeHeader({ ...hd, size: d.length }), d, Buffer.alloc(padding(d.length)));
    }
    parts.push(Buffer.alloc(1024));
    const vol = Buffer.concat(parts);
    writeFileSync(join(dir, `duplicity-full.${t}.vol${i + 1}.difftar`), vol);
    const first = indexOf(entries[0]![0].name, []);
    const last = indexOf(entries[entries.length - 1]![0].name, pathToIndex(Buffer.from('zzz')));
    const range = o.ranges?.[i] ?? { start: first, end: last };
    return { number: i + 1, start: range.start, end: range.end, hashType: 'SHA1', hash: createHash('sha1').update(vol).digest('hex') };
  });
  writeFileSync(join(dir, `duplicity-full.${t}.manifest`), formatManifest({ hostname: 'h', localdir: Buffer.from('src'), volumes: infos, files: [] }));
}
