/**
 * A temp file written through encoding transforms (OpenPGP or gzip), counting and
 * hashing the stored bytes on their way to disk. `write()` resolves once the chunk has
 * been accepted downstream (backpressure: at most the streams' buffers are in memory).
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { localWriteError } from '../errors.js';

class Meter extends Transform {
  bytes = 0;
  readonly sha1 = createHash('sha1');
  readonly sha256: Hash | undefined;
  constructor(sha256: boolean) {
    super();
    this.sha256 = sha256 ? createHash('sha256') : undefined;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.sha1.update(chunk);
    this.sha256?.update(chunk);
    cb(null, chunk);
  }
}

/** A transform that holds input beyond its stream buffers (the parallel compressor). */
export interface PendingBytes {
  readonly pendingBytes: number;
}

export interface EncodedFileResult {
  path: string;
  /** Stored bytes. */
  size: number;
  /** SHA1 hex of the stored bytes (what the manifest records). */
  sha1: string;
  /** Plaintext bytes written. */
  plainSize: number;
  /** SHA-256 hex of the stored bytes, when asked for (seals). */
  sha256?: string;
}

export class EncodedFileWriter {
  readonly path: string;
  readonly #head = new PassThrough({ highWaterMark: 64 * 1024 });
  readonly #meter: Meter;
  readonly #stages: Transform[];
  readonly #done: Promise<void>;
  #error: unknown;
  #plain = 0;

  constructor(path: string, transforms: Transform[], opts: { sha256?: boolean } = {}) {
    this.path = path;
    this.#meter = new Meter(opts.sha256 ?? false);
    this.#stages = [this.#head, ...transforms];
    this.#done = pipeline([this.#head, ...transforms, this.#meter, createWriteStream(path, { flags: 'wx', mode: 0o600 })]).catch((e: unknown) => {
      throw localWriteError(e, path);
    });
    this.#done.catch((e: unknown) => {
      this.#error = e;
    });
  }

  /**
   * Stored bytes so far plus everything still inside the encoders, counted as if it
   * will be stored uncompressed: an upper bound, so a volume never overshoots its cap
   * by what the parallel compressor holds (up to a few MiB).
   */
  get storedBytesBound(): number {
    let n = this.#meter.bytes;
    for (const t of this.#stages) n += t.writableLength + t.readableLength + ((t as Partial<PendingBytes>).pendingBytes ?? 0);
    return n;
  }

  get plainBytes(): number {
    return this.#plain;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#error) throw this.#error;
    this.#plain += chunk.length;
    if (!this.#head.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          this.#head.off('error', onErr);
          resolve();
        };
        const onErr = (e: unknown) => {
          this.#head.off('drain', onDrain);
          reject(localWriteError(e, this.path));
        };
        this.#head.once('drain', onDrain);
        this.#head.once('error', onErr);
        this.#done.catch(onErr);
      });
    }
  }

  async finish(): Promise<EncodedFileResult> {
    this.#head.end();
    await this.#done;
    const r: EncodedFileResult = { path: this.path, size: this.#meter.bytes, sha1: this.#meter.sha1.digest('hex'), plainSize: this.#plain };
    if (this.#meter.sha256) r.sha256 = this.#meter.sha256.digest('hex');
    return r;
  }

  /** Stops writing after a failure; the caller removes the file. */
  async abort(): Promise<void> {
    this.#head.destroy();
    await this.#done.catch(() => undefined); // aborting: the pipeline's end, not its error, is awaited
  }
}
