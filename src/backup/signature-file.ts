/**
 * The set's signature file (duplicity's sigtar: a plain tar of librsync signatures,
 * snapshots and deletions) written through the encoder as entries are stored.
 */
import { createReadStream } from 'node:fs';
import type { Encoder } from '../crypto/encoding.js';
import { Spool } from '../util/spool.js';
import { EncodedFileWriter } from '../volume/encoded-file.js';
import { BLOCK, ZERO_BLOCK, encodeHeader, padding, type TarHeader } from '../volume/tar-header.js';
import type { SyncAppender } from './checkpoint.js';

/**
 * Writes a sigtar (a plain tar stream with end marker) through an encoder, and — when
 * there is a cache — a plain copy synchronously beside it (the cache's signatures, and
 * the checkpoint a resumed run starts from). A resumed run first replays `prefix`.
 */
export class SignatureFileWriter {
  #w: EncodedFileWriter | undefined;
  #bytes = 0;
  constructor(
    private readonly file: string,
    private readonly encoder: Encoder,
    readonly local: SyncAppender | undefined,
    private readonly sha256 = false,
    private readonly prefix?: string,
  ) {}
  async #open(): Promise<EncodedFileWriter> {
    if (this.#w) return this.#w;
    this.#w = new EncodedFileWriter(this.file, await this.encoder.transforms(), { sha256: this.sha256 });
    if (this.prefix && this.local && this.local.length > 0) {
      // Replay what the interrupted run wrote, from the checkpoint copy.
      for await (const c of createReadStream(this.prefix, { end: this.local.length - 1, highWaterMark: 1 << 20 })) {
        this.#bytes += (c as Buffer).length;
        await this.#w.write(c as Buffer);
      }
    }
    return this.#w;
  }
  async #write(b: Buffer): Promise<void> {
    const w = await this.#open();
    this.#bytes += b.length;
    this.local?.append(b);
    await w.write(b);
  }
  async add(h: TarHeader, data?: Spool): Promise<void> {
    await this.#write(encodeHeader(h));
    if (!data || data.size === 0) return;
    for await (const c of data.read()) await this.#write(c);
    const pad = padding(data.size);
    if (pad) await this.#write(ZERO_BLOCK.subarray(0, pad));
  }
  /** Records already tar-encoded (headers, data, padding), as they are. */
  async addRecords(b: Buffer): Promise<void> {
    await this.#write(b);
  }
  async finish() {
    // Python's TarFile.close(): two zero blocks, padded to a 10240-byte record.
    const end = 2 * BLOCK + ((10240 - ((this.#bytes + 2 * BLOCK) % 10240)) % 10240);
    await this.#write(Buffer.alloc(end));
    return this.#w!.finish();
  }
  async abort() {
    await this.#w?.abort();
  }
}

