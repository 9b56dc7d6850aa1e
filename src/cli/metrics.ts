/**
 * --metrics-file: a run's figures as a Prometheus textfile, for node_exporter's
 * textfile collector. The file is replaced atomically (written beside it, then renamed:
 * the collector never reads half a file) and merged with what is there: a run replaces
 * its own series (same metric, same target) and keeps every other, so backup, verify and
 * prune of several targets can share one file. A run that fails before it has figures
 * updates only its run time, exit code and duration: the last success's figures stay.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** What each figure means, by command; the metric is tapechain_<command>_<figure>. */
const HELP: Record<string, Record<string, string>> = {
  common: {
    last_run_timestamp_seconds: 'When the last run ended (Unix time).',
    last_success_timestamp_seconds: 'When the last successful run ended (exit 0 or 1, Unix time).',
    last_exit_code: 'Exit code of the last run (see the README table).',
    duration_seconds: 'Wall time of the last run.',
  },
  backup: {
    read_bytes: 'Bytes of file data read by the last successful backup.',
    stored_bytes: 'Bytes the last successful backup stored at the target.',
    files: 'Regular files the last successful backup stored (new or changed).',
    source_files: 'Entries of the source tree walked by the last successful backup.',
    changed_entries: 'Entries the last successful backup stored as changed.',
    deleted_entries: 'Entries the last successful backup recorded as deleted.',
    warnings: 'Warnings of the last successful backup (unreadable, vanished, changing files).',
    volumes: 'Volumes of the set the last successful backup wrote.',
    full: '1 when the last successful backup was a full, 0 for an incremental.',
    chain_sets: 'Sets in the chain the last successful backup extended (full included).',
  },
  verify: {
    problems: 'Problems the last verify found (its exit code is 6 when there are any).',
    sets: 'Sets the last verify covered.',
    volumes_checked: 'Volumes the last verify read and checked.',
    volumes: 'Volumes of the sets the last verify covered.',
    coverage_ratio: 'Share of the volumes the last verify read (1: all; less with --sample).',
  },
  prune: {
    deleted_files: 'Files the last prune deleted (0 when it only listed them).',
    deleted_bytes: 'Bytes the last prune deleted.',
  },
};

interface Family {
  help: string;
  type: string;
  /** Label text ("" or {target="..."}) → value. */
  series: Map<string, string>;
}

/** The families of a textfile; lines it cannot read are dropped. */
function parse(text: string): Map<string, Family> {
  const fams = new Map<string, Family>();
  const fam = (name: string) => {
    let f = fams.get(name);
    if (!f) fams.set(name, (f = { help: '', type: 'untyped', series: new Map() }));
    return f;
  };
  for (const line of text.split('\n')) {
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      if (m[1] === 'HELP') fam(m[2]!).help = m[3]!;
      else fam(m[2]!).type = m[3]!;
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (m) fam(m[1]!).series.set(m[2] ?? '', m[3]!);
  }
  return fams;
}

function format(fams: Map<string, Family>): string {
  let out = '';
  for (const name of [...fams.keys()].sort()) {
    const f = fams.get(name)!;
    if (f.series.size === 0) continue;
    if (f.help) out += `# HELP ${name} ${f.help}\n`;
    out += `# TYPE ${name} ${f.type}\n`;
    for (const [labels, value] of [...f.series].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out += `${name}${labels} ${value}\n`;
  }
  return out;
}

const labelValue = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

export interface RunMetrics {
  command: string;
  target: string;
  exit: number;
  /** Epoch seconds. */
  started: number;
  ended: number;
  /** The figures the command reported (by the names in HELP). */
  figures: Map<string, number>;
}

/** Merges one run's series into `file`, atomically. */
export async function writeRunMetrics(file: string, r: RunMetrics): Promise<void> {
  let old = '';
  try {
    old = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const fams = parse(old);
  const labels = `{target="${labelValue(r.target)}"}`;
  const set = (figure: string, value: number) => {
    const name = `tapechain_${r.command}_${figure}`;
    const help = HELP[r.command]?.[figure] ?? HELP['common']![figure] ?? figure;
    const f = fams.get(name) ?? { help, type: 'gauge', series: new Map<string, string>() };
    f.help = help;
    f.type = 'gauge';
    f.series.set(labels, String(value));
    fams.set(name, f);
  };
  set('last_run_timestamp_seconds', r.ended);
  set('last_exit_code', r.exit);
  set('duration_seconds', Math.round((r.ended - r.started) * 1000) / 1000);
  if (r.exit === 0 || r.exit === 1) set('last_success_timestamp_seconds', r.ended);
  // what the command reported: a backup only when it succeeded, a verify also when it found problems
  for (const [figure, value] of r.figures) set(figure, value);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}`);
  await fs.writeFile(tmp, format(fams), { mode: 0o644 });
  await fs.rename(tmp, file).catch(async (e: unknown) => {
    await fs.rm(tmp, { force: true });
    throw e;
  });
}
