/** In-memory backend for tests: the same contract, no persistence. */
import { Readable } from 'node:stream';
import { BackendNotFoundError, TransientBackendError } from '../errors.js';
import type { Backend, BackendProperties, GetOptions, ObjectInfo, PutSource } from './backend.js';

export class MemoryBackend implements Backend {
  readonly properties: BackendProperties = { maxConnections: 4, atomicPut: true, local: true };
  readonly objects = new Map<string, Buffer>();

  describe(): string {
    return 'memory:';
  }

  async put(name: string, source: PutSource): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of source.open()) parts.push(c as Buffer);
    const data = Buffer.concat(parts);
    if (data.length !== source.size) throw new TransientBackendError(`got ${data.length} bytes, expected ${source.size}`, { context: { file: name } });
    this.objects.set(name, data);
  }

  async get(name: string, opts: GetOptions = {}): Promise<Readable> {
    const d = this.objects.get(name);
    if (!d) throw new BackendNotFoundError(`not found`, { context: { file: name } });
    const r = opts.range;
    return Readable.from([r ? d.subarray(r.start, r.end ?? d.length) : d]);
  }

  async stat(name: string): Promise<ObjectInfo> {
    const d = this.objects.get(name);
    if (!d) throw new BackendNotFoundError(`not found`, { context: { file: name } });
    return { name, size: d.length };
  }

  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    for (const [name, d] of [...this.objects]) if (name.startsWith(prefix)) yield { name, size: d.length };
  }

  async delete(name: string): Promise<void> {
    this.objects.delete(name);
  }

  async close(): Promise<void> {}
}
