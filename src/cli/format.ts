/** Human-readable sizes, times and sets for CLI output. */
import type { BackupSet } from '../chain/collection.js';
import { describeTime, formatTimestamp } from '../chain/time.js';

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function pickedLine(sets: BackupSet[]): string {
  const last = sets[sets.length - 1]!;
  const what = last.type === 'full' ? `full ${formatTimestamp(last.start)}` : `incremental ${formatTimestamp(last.start)}.to.${formatTimestamp(last.end)}`;
  return `Using backup set ${what} at ${describeTime(last.end)}; ${sets.length} set(s) in the chain\n`;
}
