/**
 * The multivol runs of a set's volumes as they are read: a large file is stored as
 * chunks 1, 2, … of CHUNK bytes, the last one shorter, possibly across volumes. A run
 * with a gap, a repeat, a chunk after the final one, a missing first chunk or missing
 * later chunks is reported with the volume it shows in. Runs are judged only across
 * volumes read one after the other: a run that goes on in a volume not read (a sample)
 * or broken is left unjudged.
 */
import { compareIndex, displayIndex, type Index } from '../volume/entry-name.js';
import type { ProblemCollector } from './problems.js';

const CHUNK = 65536;

interface Run {
  kind: string;
  index: Index;
  next: number;
  lastSize: number;
  volume: string;
}

export class MultivolRuns {
  readonly #p: ProblemCollector;
  #run: Run | undefined;
  /** The volume read before was not read, or broke: the next may start inside a run. */
  #afterGap = false;

  constructor(p: ProblemCollector) {
    this.#p = p;
  }

  /** An entry of `volume`; true when it continues the current run. */
  entry(e: { kind: string; index: Index; chunk?: number }, volume: string): boolean {
    const multivol = e.kind === 'multivol_snapshot' || e.kind === 'multivol_diff';
    const run = this.#run;
    const continues = multivol && run !== undefined && run.kind === e.kind && compareIndex(run.index, e.index) === 0;
    if (continues) {
      const at = `multivol data of ${displayIndex(e.index)}: chunk ${e.chunk}`;
      if (run.lastSize < CHUNK) this.#p.report(volume, `${at} follows the final chunk ${run.next - 1}`);
      if (e.chunk !== run.next) this.#p.report(volume, `${at} where ${run.next} was expected`);
      run.next = (e.chunk ?? 0) + 1;
    } else {
      this.close();
      if (multivol) {
        if (e.chunk !== 1 && !this.#afterGap) this.#p.report(volume, `multivol data of ${displayIndex(e.index)} starts at chunk ${e.chunk}`);
        this.#run = { kind: e.kind, index: e.index, next: (e.chunk ?? 0) + 1, lastSize: 0, volume };
      }
    }
    this.#afterGap = false;
    return continues;
  }

  /** The size of the entry just read. */
  sized(size: number): void {
    if (this.#run) this.#run.lastSize = size;
  }

  /** The current run ends (another entry, or the last volume read). */
  close(): void {
    const run = this.#run;
    if (run && run.lastSize === CHUNK) this.#p.report(run.volume, `multivol data of ${displayIndex(run.index)} ends with a full chunk ${run.next - 1}: later chunks are missing`);
    this.#run = undefined;
  }

  /** A volume is not read, or broke: the run is left unjudged, and the next volume may start inside one. */
  gap(): void {
    this.#run = undefined;
    this.#afterGap = true;
  }
}
