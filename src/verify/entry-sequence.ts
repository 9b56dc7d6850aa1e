/**
 * The checks that span a set's volumes, entry by entry as they are read in volume order:
 * index order and multivol runs (multivol-runs.ts). One lane feeds it as it reads; a
 * parallel verify feeds it the lanes' entry summaries, in the same order.
 */
import { compareIndex, displayIndex, type Index } from '../volume/entry-name.js';
import { MultivolRuns } from './multivol-runs.js';
import type { ProblemCollector } from './problems.js';

export class EntrySequence {
  readonly #p: ProblemCollector;
  readonly #runs: MultivolRuns;
  #last: Index | undefined;

  constructor(p: ProblemCollector) {
    this.#p = p;
    this.#runs = new MultivolRuns(p);
  }

  /** An entry of `volume`; true when it continues the current multivol run. */
  entry(e: { kind: string; index: Index; chunk?: number }, volume: string): boolean {
    if (this.#last && compareIndex(e.index, this.#last) < 0) this.#p.report(volume, `entry ${displayIndex(e.index)} is out of index order`);
    this.#last = e.index;
    return this.#runs.entry(e, volume);
  }

  /** The size of the entry just read. */
  sized(size: number): void {
    this.#runs.sized(size);
  }

  /** A volume is not read, or broke (multivol-runs.ts). */
  gap(): void {
    this.#runs.gap();
  }

  /** The last volume was read. */
  close(): void {
    this.#runs.close();
  }
}
