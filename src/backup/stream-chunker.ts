import { BufferQueue, joined } from '../util/buffer-queue.js';
import { CHUNK } from '../source/read-file.js';

/**
 * Cuts a byte stream of unknown length (a delta) into duplicity's entries: one entry
 * when it is under 64 KiB, else 64 KiB multivol chunks with a final shorter (possibly
 * empty) one. One full chunk is held back until it is known whether more follows.
 */
export class StreamChunker {
  readonly #queue = new BufferQueue();
  #chunks = 0;
  constructor(private readonly out: (data: Buffer, chunk: number | undefined, final: boolean) => Promise<void>) {}
  /** Entries emitted so far. */
  get emitted(): number {
    return this.#chunks;
  }
  push(b: Buffer): void {
    this.#queue.push(b);
  }
  /** Emits every chunk that is surely not the last. */
  async flush(): Promise<void> {
    while (this.#queue.size > CHUNK) await this.out(joined(this.#queue.take(CHUNK)), ++this.#chunks, false);
  }
  async end(): Promise<void> {
    await this.flush();
    const rest = Buffer.concat(this.#queue.takeAll());
    if (this.#chunks === 0 && rest.length < CHUNK) return this.out(rest, undefined, true);
    if (rest.length === CHUNK) {
      await this.out(rest, ++this.#chunks, false);
      return this.out(Buffer.alloc(0), ++this.#chunks, true);
    }
    return this.out(rest, ++this.#chunks, true);
  }
}

