/**
 * Packs tar blocks (one header plus at most 64 KiB of data each) into numbered
 * volumes, encoding each into a temp file and rotating when the stored size nears the
 * cap. Each finished volume goes to `onVolume` (the uploader), which may hold the
 * writer back: the next volume is not started until it resolves (backpressure).
 *
 * It records, per volume, the index (and multivol chunk) of its first and last entry:
 * the manifest's StartingPath/EndingPath, which restore uses to pick volumes.
 */
import { join } from 'node:path';
import type { Encoder } from '../crypto/encoding.js';
import { EncodedFileWriter, type EncodedFileResult } from './encoded-file.js';
import type { Index } from './entry-name.js';
import { BLOCK, ZERO_BLOCK, encodeHeader, padding, type TarHeader } from './tar-header.js';

/** One tar entry as the writer sees it. */
export interface TarBlock {
  index: Index;
  header: TarHeader;
  data?: Buffer;
  /** Multivol chunk number, and whether it is the final chunk. */
  chunk?: number;
  finalChunk?: boolean;
}

/** The position of a block in the index order: its path and, for chunks, which one. */
type BlockPosition = Pick<TarBlock, 'index' | 'chunk' | 'finalChunk'>;

export interface FinishedVolume extends EncodedFileResult {
  number: number;
  start: Index;
  startBlock?: number;
  end: Index;
  endBlock?: number;
}

export interface VolumeWriterOptions {
  /** Directory for temp files. */
  dir: string;
  /** Stored-size cap per volume in bytes. */
  volsize: number;
  encoder: Encoder;
  /** File name for volume n (also used for the temp file). */
  nameFor: (n: number) => string;
  /** Receives each finished volume; the writer waits for it before starting the next. */
  onVolume: (v: FinishedVolume) => Promise<void>;
  /** Also compute SHA-256 of each stored volume (for seals). @default false */
  sha256?: boolean;
  /** Number of the first volume (a resumed set goes on after the stored ones). @default 1 */
  firstNumber?: number;
}

const END_MARKER = Buffer.alloc(2 * BLOCK);
/** Stop filling once the stored bytes are this close to the cap (one more block). */
const MARGIN = 64 * 1024 + 2 * BLOCK;

export class VolumeWriter {
  readonly #o: Required<VolumeWriterOptions>;
  #cur: EncodedFileWriter | undefined;
  #number = 0;
  /** Where the current volume starts and ends (for StartingPath/EndingPath). */
  #first: BlockPosition | undefined;
  #last: BlockPosition | undefined;
  readonly volumes: FinishedVolume[] = [];

  constructor(o: VolumeWriterOptions) {
    this.#o = { sha256: false, firstNumber: 1, ...o };
    this.#number = this.#o.firstNumber - 1;
  }

  async add(b: TarBlock): Promise<void> {
    if (!this.#cur) {
      this.#number++;
      this.#cur = new EncodedFileWriter(join(this.#o.dir, this.#o.nameFor(this.#number)), await this.#o.encoder.transforms(), { sha256: this.#o.sha256 });
      this.#first = b;
    }
    const size = b.data?.length ?? 0;
    await this.#cur.write(encodeHeader(b.header));
    if (size > 0) {
      await this.#cur.write(b.data!);
      const pad = padding(size);
      if (pad) await this.#cur.write(ZERO_BLOCK.subarray(0, pad));
    }
    this.#last = b;
    if (this.#cur.storedBytesBound + MARGIN >= this.#o.volsize) await this.#closeCurrent();
  }

  async #closeCurrent(): Promise<void> {
    const w = this.#cur!;
    this.#cur = undefined;
    await w.write(END_MARKER);
    const res = await w.finish();
    const blockOf = (b: BlockPosition) => (b.chunk !== undefined && !b.finalChunk ? b.chunk : undefined);
    const v: FinishedVolume = { ...res, number: this.#number, start: this.#first!.index, end: this.#last!.index };
    const sb = blockOf(this.#first!);
    const eb = blockOf(this.#last!);
    if (sb !== undefined) v.startBlock = sb;
    if (eb !== undefined) v.endBlock = eb;
    this.volumes.push(v);
    await this.#o.onVolume(v);
  }

  /**
   * Closes the last volume. A set always has at least one volume (duplicity never writes
   * a manifest without one): with nothing to store, it is an empty tar spanning the root.
   */
  async finish(): Promise<void> {
    if (!this.#cur && this.#number === 0) {
      this.#number++;
      this.#cur = new EncodedFileWriter(join(this.#o.dir, this.#o.nameFor(this.#number)), await this.#o.encoder.transforms(), { sha256: this.#o.sha256 });
      this.#first = this.#last = { index: [] };
    }
    await this.close();
  }

  /** Closes the volume being written, if any (finish() also writes one when there was none). */
  async close(): Promise<void> {
    if (this.#cur) await this.#closeCurrent();
  }

  async abort(): Promise<void> {
    await this.#cur?.abort();
    this.#cur = undefined;
  }
}
