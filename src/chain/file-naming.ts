/**
 * Duplicity's remote file names (duplicity-format.md 2): pure functions from set
 * times and volume numbers to names and back. The long form is written; the short
 * (base-36) and legacy W3C forms are read too. Unknown names parse to undefined.
 */
import { formatTimestamp, parseNameTime } from './time.js';

export type FileKind = 'volume' | 'manifest' | 'signature';
export type SetType = 'full' | 'inc';
export type Encoding = 'gpg' | 'gz' | 'plain';

export interface ParsedName {
  kind: FileKind;
  type: SetType;
  /** Full: the set time. Inc: START. */
  start: number;
  /** Full: same as start. Inc: END. */
  end: number;
  volume?: number;
  encoding: Encoding;
  /** `.part` checkpoint (manifests and signatures, cache only). */
  partial: boolean;
}

export interface NameSpec {
  kind: FileKind;
  type: SetType;
  start: number;
  end: number;
  volume?: number;
  encoding: Encoding;
}

const SUFFIX: Record<Encoding, string> = { gpg: '.gpg', gz: '.gz', plain: '' };

/** Remote name of a file of a set, long form. Manifests are never gzipped. */
export function formatName(s: NameSpec): string {
  const enc = s.kind === 'manifest' && s.encoding === 'gz' ? '' : SUFFIX[s.encoding];
  const t = s.type === 'full' ? formatTimestamp(s.start) : `${formatTimestamp(s.start)}.to.${formatTimestamp(s.end)}`;
  switch (s.kind) {
    case 'volume':
      return `duplicity-${s.type}.${t}.vol${s.volume}.difftar${enc}`;
    case 'manifest':
      return `duplicity-${s.type}.${t}.manifest${enc}`;
    case 'signature':
      return `duplicity-${s.type === 'full' ? 'full' : 'new'}-signatures.${t}.sigtar${enc}`;
  }
}

function encodingOf(rest: string, short: boolean): Encoding {
  if (short) return rest.endsWith('.g') ? 'gpg' : rest.endsWith('.z') ? 'gz' : 'plain';
  // duplicity checks "gz" without a dot
  return rest.endsWith('.gpg') ? 'gpg' : rest.endsWith('gz') ? 'gz' : 'plain';
}

const T = '(.+?)';
const LONG: [RegExp, FileKind, SetType][] = [
  [new RegExp(`^duplicity-full\\.${T}\\.vol(\\d+)\\.difftar(?:$|\\.)`), 'volume', 'full'],
  [new RegExp(`^duplicity-inc\\.${T}\\.to\\.${T}\\.vol(\\d+)\\.difftar(?:$|\\.)`), 'volume', 'inc'],
  [new RegExp(`^duplicity-full\\.${T}\\.manifest(?:$|\\.)`), 'manifest', 'full'],
  [new RegExp(`^duplicity-inc\\.${T}\\.to\\.${T}\\.manifest(?:$|\\.)`), 'manifest', 'inc'],
  [new RegExp(`^duplicity-full-signatures\\.${T}\\.sigtar(?:$|\\.)`), 'signature', 'full'],
  [new RegExp(`^duplicity-new-signatures\\.${T}\\.to\\.${T}\\.sigtar(?:$|\\.)`), 'signature', 'inc'],
];
const B36 = '([0-9a-z]+)';
const SHORT: [RegExp, FileKind, SetType][] = [
  [new RegExp(`^df\\.${B36}\\.${B36}\\.dt(?:$|\\.)`), 'volume', 'full'],
  [new RegExp(`^di\\.${B36}\\.${B36}\\.${B36}\\.dt(?:$|\\.)`), 'volume', 'inc'],
  [new RegExp(`^df\\.${B36}\\.m(?:$|\\.)`), 'manifest', 'full'],
  [new RegExp(`^di\\.${B36}\\.${B36}\\.m(?:$|\\.)`), 'manifest', 'inc'],
  [new RegExp(`^dfs\\.${B36}\\.st(?:$|\\.)`), 'signature', 'full'],
  [new RegExp(`^dns\\.${B36}\\.${B36}\\.st(?:$|\\.)`), 'signature', 'inc'],
];

/** Parses a remote or cache file name; undefined for anything that is not ours. */
export function parseName(name: string): ParsedName | undefined {
  if (name.endsWith('.par2') || name.includes('.jsonstat')) return undefined;
  for (const [re, kind, type] of SHORT) {
    const m = re.exec(name);
    if (!m) continue;
    const nums = m.slice(1).map((x) => parseInt(x!, 36));
    const start = nums[0]!;
    const end = type === 'inc' ? nums[1]! : start;
    const volume = kind === 'volume' ? nums[type === 'inc' ? 2 : 1] : undefined;
    const rest = name.slice(m[0].length - (m[0].endsWith('.') ? 1 : 0));
    return build(kind, type, start, end, volume, encodingOf(rest, true), /\.p(\.|$)/.test(rest));
  }
  for (const [re, kind, type] of LONG) {
    const m = re.exec(name);
    if (!m) continue;
    const start = parseNameTime(m[1]!);
    const end = type === 'inc' ? parseNameTime(m[2]!) : start;
    if (start === undefined || end === undefined) return undefined;
    const volume = kind === 'volume' ? parseInt(m[type === 'inc' ? 3 : 2]!, 10) : undefined;
    const rest = name.slice(m[0].length - (m[0].endsWith('.') ? 1 : 0));
    return build(kind, type, start, end, volume, encodingOf(rest, false), /^\.part(\.|$)/.test(rest));
  }
  return undefined;
}

function build(kind: FileKind, type: SetType, start: number, end: number, volume: number | undefined, encoding: Encoding, partial: boolean): ParsedName {
  const p: ParsedName = { kind, type, start, end, encoding, partial };
  if (volume !== undefined) p.volume = volume;
  return p;
}

/**
 * Seal files (tapechain's signed list of a set's files, for verification without the
 * decryption key). Named so that duplicity's parser matches none of its patterns and
 * ignores them: `tapechain-seal.full.<T>.asc`, `tapechain-seal.inc.<S>.to.<E>.asc`.
 */
export function sealName(type: SetType, start: number, end: number): string {
  return type === 'full' ? `tapechain-seal.full.${formatTimestamp(start)}.asc` : `tapechain-seal.inc.${formatTimestamp(start)}.to.${formatTimestamp(end)}.asc`;
}

export function parseSealName(name: string): { type: SetType; start: number; end: number } | undefined {
  let m = /^tapechain-seal\.full\.(\d{8}T\d{6}Z)\.asc$/.exec(name);
  if (m) {
    const t = parseNameTime(m[1]!);
    return t === undefined ? undefined : { type: 'full', start: t, end: t };
  }
  m = /^tapechain-seal\.inc\.(\d{8}T\d{6}Z)\.to\.(\d{8}T\d{6}Z)\.asc$/.exec(name);
  if (!m) return undefined;
  const s = parseNameTime(m[1]!);
  const e = parseNameTime(m[2]!);
  return s === undefined || e === undefined ? undefined : { type: 'inc', start: s, end: e };
}
