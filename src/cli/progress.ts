/**
 * How a backup talks while it runs: a one-line progress display on stderr when that is
 * a terminal (files, bytes, rate, ETA from a background scan of the source, volume and
 * upload counts), JSON lines of events on stdout with --json, nothing extra with
 * --quiet; and duplicity-style statistics at the end.
 */
import { stat } from 'node:fs/promises';
import type { BackupResult } from '../backup/backup.js';
import { walkTree, type WalkWarning } from '../source/walk.js';
import { escapeName } from '../util/escape-name.js';
import { bytes } from './format.js';
import type { CliIo } from './io.js';

export interface ReporterOptions {
  json: boolean;
  quiet: boolean;
}

export class BackupReporter {
  readonly #io: CliIo;
  readonly #o: ReporterOptions;
  readonly #t0 = Date.now();
  #last = 0;
  #total: { bytes: number; files: number } | undefined;
  #etaSmooth: number | undefined;
  #line = false;
  #stored = 0;
  #storedBytes = 0;

  constructor(io: CliIo, o: ReporterOptions) {
    this.#io = io;
    this.#o = o;
  }

  get #live(): boolean {
    return !this.#o.quiet && !this.#o.json && this.#io.isTTY === true;
  }

  /** Sums the source's file sizes in the background, for an ETA (terminal only). */
  startScan(source: string): void {
    if (!this.#live) return;
    void (async () => {
      const total = { bytes: 0, files: 0 };
      try {
        for await (const e of walkTree(Buffer.from((await stat(source)) && source))) {
          total.files++;
          if (e.stat.isFile()) total.bytes += e.stat.size;
        }
        this.#total = total;
      } catch {
        // no ETA then
      }
    })();
  }

  #clear(): void {
    if (this.#line) this.#io.stderr('\r\x1b[K');
    this.#line = false;
  }

  warning(w: WalkWarning): void {
    if (this.#o.json) {
      this.#io.stdout(JSON.stringify({ event: 'warning', code: w.code, path: w.path.toString('utf8'), message: w.message }) + '\n');
      return;
    }
    this.#clear();
    this.#io.stderr(`${w.code === 'SKIPPED_SOCKET' ? 'note' : 'warning'}: ${escapeName(w.path)}: ${w.message}\n`);
  }

  /** Files of the set stored at the target so far. */
  get storedCount(): number {
    return this.#stored;
  }

  stored(name: string, size: number): void {
    this.#stored++;
    this.#storedBytes += size;
    if (this.#o.json) this.#io.stdout(JSON.stringify({ event: 'stored', name, size }) + '\n');
  }

  progress(p: { sourceFiles: number; bytesRead: number; sourceBytes: number; volumes: number }): void {
    if (!this.#live) return;
    const now = Date.now();
    if (now - this.#last < 250) return;
    this.#last = now;
    const secs = (now - this.#t0) / 1000;
    const rate = p.sourceBytes / Math.max(secs, 0.001);
    const line = fitLine(this.#fields(p, rate, secs), (this.#io.columns?.() ?? 80) - 1);
    this.#io.stderr(`\r\x1b[K${line}`);
    this.#line = true;
  }

  /** The progress fields, most important first; the line keeps as many as fit. */
  #fields(p: { sourceFiles: number; sourceBytes: number; volumes: number }, rate: number, secs: number): string[] {
    const of = this.#total ? ` of ${bytes(this.#total.bytes)}` : '';
    const fields = [`${p.sourceFiles} files, ${bytes(p.sourceBytes)}${of}`];
    const eta = this.#eta(p, secs);
    if (eta) fields.push(eta);
    fields.push(`${bytes(rate)}/s`, `volume ${p.volumes + 1}`);
    // nothing uploaded yet is no news (and a local target stores a volume at a time)
    if (this.#stored > 0) fields.push(`${this.#stored} stored (${bytes(this.#storedBytes)})`);
    return fields;
  }

  /**
   * Time left, from the share done of both bytes and files (many small files cost per
   * file, not per byte), smoothed so that it does not swing with every update.
   */
  #eta(p: { sourceFiles: number; sourceBytes: number }, secs: number): string | undefined {
    const t = this.#total;
    if (!t || secs < 2) return undefined;
    const done = (Math.min(1, p.sourceBytes / Math.max(1, t.bytes)) + Math.min(1, p.sourceFiles / Math.max(1, t.files))) / 2;
    if (done <= 0) return undefined;
    const left = (secs * (1 - done)) / done;
    this.#etaSmooth = this.#etaSmooth === undefined ? left : 0.8 * this.#etaSmooth + 0.2 * left;
    const s = Math.round(this.#etaSmooth);
    return `ETA ${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  }

  summary(r: BackupResult, target: string, name: string): void {
    this.#clear();
    const elapsed = (Date.now() - this.#t0) / 1000;
    const stats = {
      type: r.type,
      set: name,
      target,
      dryRun: r.dryRun,
      elapsedSeconds: Number(elapsed.toFixed(2)),
      sourceFiles: r.sourceFiles,
      sourceFileSize: r.sourceBytes,
      filesStored: r.files,
      changedEntries: r.changed,
      deletedEntries: r.deleted,
      bytesRead: r.bytesRead,
      deltaBytes: r.deltaBytes,
      volumes: r.volumes,
      totalDestinationSizeChange: r.storedBytes,
      warnings: r.warnings,
      skippedSockets: r.skippedSockets,
    };
    if (this.#o.json) {
      this.#io.stdout(JSON.stringify({ event: 'summary', ...stats }) + '\n');
      return;
    }
    if (r.dryRun) {
      this.#io.stdout(`Dry run: ${r.type === 'full' ? 'a full' : 'an incremental'} backup would store ${r.files} file(s) (${r.changed} changed, ${r.deleted} deleted entries); nothing written\n`);
      return;
    }
    if (this.#o.quiet) return; // cron mails what a job prints: nothing on success
    this.#io.stdout(`${r.type === 'full' ? 'Full' : 'Incremental'} backup ${name} to ${target}\n`);
    const row = (k: string, v: number | string, human?: string) => this.#io.stdout(`${k.padEnd(27)}${v}${human ? ` (${human})` : ''}\n`);
    this.#io.stdout('--------------[ Backup Statistics ]--------------\n');
    row('ElapsedTime', elapsed.toFixed(2), `${elapsed.toFixed(2)} seconds`);
    row('SourceFiles', r.sourceFiles);
    row('SourceFileSize', r.sourceBytes, bytes(r.sourceBytes));
    row('FilesStored', r.files);
    row('ChangedEntries', r.changed);
    row('DeletedEntries', r.deleted);
    row('BytesRead', r.bytesRead, bytes(r.bytesRead));
    if (r.type === 'inc') row('DeltaBytes', r.deltaBytes, bytes(r.deltaBytes));
    row('Volumes', r.volumes);
    row('TotalDestinationSizeChange', r.storedBytes, bytes(r.storedBytes));
    row('Warnings', r.warnings);
    if (r.skippedSockets) row('SkippedSockets', r.skippedSockets);
    this.#io.stdout('-------------------------------------------------\n');
    if (r.warnings) this.#io.stdout(`${r.warnings} file(s) skipped or changed while being read (see the warnings above)\n`);
  }
}

/**
 * Joins fields with ", " while they fit in `width` columns, dropping the least
 * important (last) first; the first is cut if it alone is too wide. A line wider than
 * the terminal wraps, and "\r" then clears only its last row: every update would leave
 * a stale row behind.
 */
export function fitLine(fields: string[], width: number): string {
  let line = '';
  for (const f of fields) {
    const next = line ? `${line}, ${f}` : f;
    if (next.length > width) break;
    line = next;
  }
  return line || (fields[0] ?? '').slice(0, Math.max(0, width));
}
