/**
 * Pull-based reader over an async iterable of byte chunks.
 *
 * The binary parsers (tar, OpenPGP packets, librsync deltas) are written against this
 * instead of 'data' events: a parser asks for exactly the bytes it needs, so
 * backpressure is implicit (nothing is pulled from upstream until asked for) and
 * memory holds at most one upstream chunk plus the bytes asked for.
 *
 * State: `#buf` holds unconsumed bytes of the current upstream chunk from `#pos`.
 */
export class ByteReader {
  readonly #it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  #done = false;
  /** Bytes consumed so far (for error messages: "at offset N"). */
  offset = 0;

  constructor(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.#it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  }

  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#buf.length) {
      if (this.#done) return false;
      const r = await this.#it.next();
      if (r.done) {
        this.#done = true;
        return false;
      }
      this.#buf = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      this.#pos = 0;
    }
    return true;
  }

  /** Reads up to `n` bytes; fewer only at end of input (an empty buffer at EOF). */
  async read(n: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    if (!(await this.#fill())) return Buffer.alloc(0);
    const avail = this.#buf.length - this.#pos;
    if (avail >= n) {
      const out = this.#buf.subarray(this.#pos, this.#pos + n);
      this.#pos += n;
      this.offset += n;
      return out;
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0 && (await this.#fill())) {
      const take = Math.min(need, this.#buf.length - this.#pos);
      parts.push(this.#buf.subarray(this.#pos, this.#pos + take));
      this.#pos += take;
      need -= take;
    }
    const out = Buffer.concat(parts);
    this.offset += out.length;
    return out;
  }

  /** Reads exactly `n` bytes or throws `onShort()` at end of input. */
  async readExact(n: number, onShort: () => Error): Promise<Buffer> {
    const b = await this.read(n);
    if (b.length !== n) throw onShort();
    return b;
  }

  /** Reads one byte, or -1 at end of input. */
  async readByte(): Promise<number> {
    if (!(await this.#fill())) return -1;
    this.offset++;
    return this.#buf[this.#pos++]!;
  }

  /**
   * Yields the next `n` bytes as they arrive, without copying whole upstream chunks.
   * Throws `onShort()` if the input ends first.
   */
  async *chunks(n: number, onShort: () => Error): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.#fill())) throw onShort();
      const take = Math.min(left, this.#buf.length - this.#pos);
      const out = this.#buf.subarray(this.#pos, this.#pos + take);
      this.#pos += take;
      this.offset += take;
      left -= take;
      yield out;
    }
  }

  /** Skips `n` bytes; returns how many were really skipped. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0 && (await this.#fill())) {
      const take = Math.min(left, this.#buf.length - this.#pos);
      this.#pos += take;
      this.offset += take;
      left -= take;
    }
    return n - left;
  }

  /** Yields everything that is left. */
  async *rest(): AsyncGenerator<Buffer> {
    while (await this.#fill()) {
      const out = this.#buf.subarray(this.#pos);
      this.offset += out.length;
      this.#pos = this.#buf.length;
      yield out;
    }
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    return !(await this.#fill());
  }

  /** Stops the upstream iterator (e.g. after a tar end marker, the rest is junk). */
  async close(): Promise<void> {
    this.#done = true;
    await this.#it.return?.();
  }
}
