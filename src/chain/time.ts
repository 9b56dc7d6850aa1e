/**
 * Duplicity time strings: `YYYYMMDDTHHMMSSZ` (UTC, whole seconds) in file names,
 * legacy W3C datetimes, and the user-facing `--time` forms.
 */
import { UsageError } from '../errors.js';

/** Epoch seconds → `20261121T232154Z`. */
export function formatTimestamp(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** Whether the fields name a real calendar time (no 30 February, no hour 24). */
function validFields(y: number, mo: number, d: number, h = 0, mi = 0, sec = 0): boolean {
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate(); // day 0 of the next month
  return mo >= 1 && mo <= 12 && d >= 1 && d <= days && h <= 23 && mi <= 59 && sec <= 59;
}

/**
 * Parses a time as found in file names: the 16-character form, a W3C datetime with
 * offset (legacy names), or bare epoch seconds. Returns undefined when it is none.
 */
export function parseNameTime(s: string): number | undefined {
  const t = s.toUpperCase();
  let m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(t);
  if (m && !validFields(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) return undefined;
  if (m) return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) / 1000;
  if (/^\d+$/.test(t)) return parseInt(t, 10);
  m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})[:;-]?(\d{2})[:;-]?(\d{2})(Z|[+-]\d{2}[:;-]?\d{2})$/.exec(t);
  if (m && !validFields(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) return undefined;
  if (m) {
    let off = 0;
    if (m[7] !== 'Z') {
      const sign = m[7]!.startsWith('-') ? -1 : 1;
      const digits = m[7]!.slice(1).replace(/[:;-]/, '');
      off = sign * (parseInt(digits.slice(0, 2), 10) * 3600 + parseInt(digits.slice(2), 10) * 60);
    }
    return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) / 1000 - off;
  }
  return undefined;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, D: 86400, W: 7 * 86400, M: 30 * 86400, Y: 365 * 86400 };

/** `3D`, `1h30m`, `2W` → seconds, or undefined when not an interval. */
export function parseInterval(s: string): number | undefined {
  if (!/^(\d+[smhDWMY])+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+)([smhDWMY])/g)) total += parseInt(m[1]!, 10) * UNIT_SECONDS[m[2]!]!;
  return total;
}

/**
 * A user-facing `--time`: now, epoch seconds, set timestamps, ISO 8601 with or without
 * offset (local time without), a date alone (local midnight... end of that day is not
 * implied), `YYYY/MM/DD`, `MM/DD/YYYY`, or an interval meaning that long ago.
 */
export function parseUserTime(s: string, now: number = Math.floor(Date.now() / 1000)): number {
  const v = s.trim();
  if (v === 'now') return now;
  const iv = parseInterval(v);
  if (iv !== undefined) return now - iv;
  const bad = () => new UsageError(`bad time "${s}": no such date or time of day`);
  // A stamp of the right shape but an impossible date is a typo, not another format.
  if (/^\d{8}T\d{6}Z$/i.test(v) || /^\d{4}-\d{2}-\d{2}T\d{2}[:;-]?\d{2}[:;-]?\d{2}(Z|[+-]\d{2}[:;-]?\d{2})$/i.test(v)) {
    const n = parseNameTime(v);
    if (n === undefined) throw bad();
    return n;
  }
  if (/^\d+$/.test(v)) return parseInt(v, 10);
  let m = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$/.exec(v) ?? null;
  if (m && !validFields(+m[1]!, +m[2]!, +m[3]!)) throw bad();
  if (m) return new Date(+m[1]!, +m[2]! - 1, +m[3]!).getTime() / 1000;
  m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(v);
  if (m && !validFields(+m[3]!, +m[1]!, +m[2]!)) throw bad();
  if (m) return new Date(+m[3]!, +m[1]! - 1, +m[2]!).getTime() / 1000;
  m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(v);
  if (m) {
    if (!validFields(+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +(m[6] ?? 0))) throw bad();
    const d = Date.parse(v);
    if (!Number.isNaN(d)) return Math.floor(d / 1000);
  }
  throw new UsageError(`bad time "${s}": use now, epoch seconds, 20261121T232154Z, 2026-11-21[T23:21:54[Z|+01:00]], or an interval such as 3D or 1h30m`);
}

/** "2026-11-22 00:21:54" in local time. */
export function localTime(epoch: number): string {
  const d = new Date(epoch * 1000);
  const pad = (x: number) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "2026-11-21 23:21:54 UTC (2026-11-22 00:21:54 local)" for messages. */
export function describeTime(epoch: number): string {
  const utc = new Date(epoch * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
  return `${utc} (${localTime(epoch)} local)`;
}
