/**
 * How a backup talks while it runs: a one-line progress display on stderr when that is
 * a terminal (files, bytes, rate, ETA from a background scan of the source, volume and
 * upload counts), JSON lines of events on stdout with --json, nothing extra with
 * --quiet; and duplicity-style statistics at the end.
 */
import { stat } from 'node:fs/promises';
import type { BackupResult } from '../backup/backup.js';
import { walkTree, type WalkWarning } from '../backup/walk.js';
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
  #total: number | undefined;
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
      let total = 0;
      try {
        for await (const e of walkTree(Buffer.from((await stat(source)) && source))) if (e.stat.isFile()) total += e.stat.size;
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
    this.#io.stderr(`${w.code === 'SKIPPED_SOCKET' ? 'note' : 'warning'}: ${w.path.toString('utf8')}: ${w.message}\n`);
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
    let eta = '';
    if (this.#total && rate > 0) {
      const left = Math.max(0, this.#total - p.sourceBytes) / rate;
      eta = `, ETA ${Math.floor(left / 60)}m${String(Math.round(left % 60)).padStart(2, '0')}s`;
    }
    const of = this.#total ? ` of ${bytes(this.#total)}` : '';
    this.#io.stderr(`\r\x1b[K${p.sourceFiles} files, ${bytes(p.sourceBytes)}${of} scanned, ${bytes(rate)}/s${eta}; volume ${p.volumes + 1}, ${this.#stored} file(s) uploaded (${bytes(this.#storedBytes)})`);
    this.#line = true;
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
