/**
 * Bytes queued as the buffers they arrived in, taken out in lengths of the caller's
 * choosing (packet bodies, tar chunks, compression pieces) without copying: a buffer
 * that straddles a cut is sliced, not joined.
 */
export class BufferQueue {
  #parts: Buffer[] = [];
  /** Bytes queued. */
  size = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.#parts.push(b);
    this.size += b.length;
  }

  /** The first `n` queued bytes (n ≤ size), as slices of the queued buffers. */
  take(n: number): Buffer[] {
    const out: Buffer[] = [];
    for (let left = n; left > 0; ) {
      const p = this.#parts[0]!;
      if (p.length <= left) {
        out.push(this.#parts.shift()!);
        left -= p.length;
      } else {
        out.push(p.subarray(0, left));
        this.#parts[0] = p.subarray(left);
        left = 0;
      }
    }
    this.size -= n;
    return out;
  }

  /** Everything queued. */
  takeAll(): Buffer[] {
    return this.take(this.size);
  }
}

/** Joins slices into one buffer; a single slice is returned as is. */
export function joined(parts: Buffer[]): Buffer {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * Joins runs of small chunks into buffers of at least `min` bytes; chunks that are
 * already that large pass through uncopied (unless small ones are waiting before them,
 * to keep the order). gpg writes 8 KiB partial packet bodies, and every later stage
 * (CFB, MDC hash, inflate, tar, block sums) pays per chunk.
 */
export async function* coalesce(src: AsyncIterable<Buffer>, min: number): AsyncGenerator<Buffer> {
  const q = new BufferQueue();
  for await (const c of src) {
    if (q.size === 0 && c.length >= min) {
      yield c;
      continue;
    }
    q.push(c);
    if (q.size >= min) yield joined(q.takeAll());
  }
  if (q.size > 0) yield joined(q.takeAll());
}
