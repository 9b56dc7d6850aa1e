/**
 * File names as text: names are bytes, and may hold newlines, carriage returns, other
 * control characters and byte sequences that are not UTF-8. Printed raw, one name shows
 * as two lines, CR rewrites the terminal line, and invalid bytes become U+FFFD (lost).
 *
 * `escapeName` writes them as GNU tar and ls (`--quoting-style=escape`) do: a backslash
 * as `\\`, the C escapes `\a \b \t \n \v \f \r`, and every other control byte or byte
 * that is not part of valid UTF-8 as `\xHH`; valid UTF-8 text is kept as it is.
 * `unescapeName` reverses it exactly, so a name can be copied from a listing.
 */
import { isUtf8 } from 'node:buffer';

const C_ESCAPES: Record<number, string> = { 7: 'a', 8: 'b', 9: 't', 10: 'n', 11: 'v', 12: 'f', 13: 'r', 0x5c: '\\' };
const C_UNESCAPES: Record<string, number> = Object.fromEntries(Object.entries(C_ESCAPES).map(([k, v]) => [v, Number(k)]));

const hex = (b: number) => `\\x${b.toString(16).padStart(2, '0')}`;

/** Length of the UTF-8 sequence a lead byte starts (0: not a lead byte). */
function seqLength(b: number): number {
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return 2;
  if (b >= 0xe0 && b <= 0xef) return 3;
  if (b >= 0xf0 && b <= 0xf4) return 4;
  return 0;
}

export function escapeName(name: Buffer): string {
  let out = '';
  let plainFrom = 0;
  const flush = (to: number) => {
    if (to > plainFrom) out += name.toString('utf8', plainFrom, to);
  };
  for (let i = 0; i < name.length; ) {
    const b = name[i]!;
    const n = seqLength(b);
    const escape = C_ESCAPES[b] ?? (b < 0x20 || b === 0x7f ? hex(b) : undefined);
    if (escape !== undefined) {
      flush(i);
      out += escape.length === 1 ? `\\${escape}` : escape;
      plainFrom = ++i;
    } else if (n === 0 || i + n > name.length || (n > 1 && !isUtf8(name.subarray(i, i + n)))) {
      flush(i);
      out += hex(b);
      plainFrom = ++i;
    } else if (isC1(name, i, n)) {
      flush(i);
      out += hex(b) + hex(name[i + 1]!);
      plainFrom = i += 2;
    } else i += n;
  }
  flush(name.length);
  return out;
}

/** U+0080–U+009F: control characters too (a terminal acts on some of them). */
function isC1(name: Buffer, i: number, n: number): boolean {
  return n === 2 && name[i] === 0xc2 && name[i + 1]! >= 0x80 && name[i + 1]! <= 0x9f;
}

/** The bytes an escaped name stands for; undefined when an escape is malformed. */
export function unescapeName(s: string): Buffer | undefined {
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '\\') continue;
    parts.push(Buffer.from(s.slice(from, i), 'utf8'));
    const c = s[i + 1];
    if (c === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
      parts.push(Buffer.from([parseInt(s.slice(i + 2, i + 4), 16)]));
      i += 3;
    } else if (c !== undefined && C_UNESCAPES[c] !== undefined) {
      parts.push(Buffer.from([C_UNESCAPES[c]!]));
      i += 1;
    } else return undefined;
    from = i + 1;
  }
  parts.push(Buffer.from(s.slice(from), 'utf8'));
  return Buffer.concat(parts);
}
