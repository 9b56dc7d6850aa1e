/**
 * Fault injection for tests (kopia's blobtesting/faulty.go): a backend that fails
 * scripted calls — N times, after a delay, or by cutting a put off after K bytes —
 * before passing them to the real backend.
 */
import { Readable, Transform } from 'node:stream';
import { PermanentBackendError, TransientBackendError } from '../errors.js';
import type { Backend, GetOptions, ObjectInfo, OpOptions, PutSource } from './backend.js';
import { WrappedBackend } from './wrappers.js';

export type FaultMethod = 'put' | 'get' | 'stat' | 'list' | 'delete';

export interface Fault {
  method: FaultMethod;
  /** Only names matching this. @default every name */
  match?: RegExp;
  /** How many calls fail before calls pass. @default Infinity */
  times?: number;
  kind?: 'transient' | 'permanent';
  /** For put: let this many bytes through to the inner backend, then fail mid-stream; for get: hand on this many bytes, then fail as a dropped connection. */
  cutAfterBytes?: number;
  /** For put: store the object, then fail as if the reply were lost. */
  afterStoring?: boolean;
  /** Wait before failing or passing, in ms. @default 0 */
  delayMs?: number;
}

export class FaultyBackend extends WrappedBackend {
  readonly faults: Fault[];
  /** Calls seen per method, for assertions. */
  readonly calls: Record<FaultMethod, string[]> = { put: [], get: [], stat: [], list: [], delete: [] };

  constructor(inner: Backend, faults: Fault[] = []) {
    super(inner);
    this.faults = faults;
  }

  /** Not a local path: a reader that opened the files itself would pass the faults by. */
  override get properties() {
    const { localPath: _, ...rest } = this.inner.properties;
    return rest;
  }

  override describe(): string {
    return `faulty(${this.inner.describe()})`;
  }

  async #maybeFail(method: FaultMethod, name: string): Promise<Fault | undefined> {
    this.calls[method].push(name);
    const f = this.faults.find((x) => x.method === method && (!x.match || x.match.test(name)) && (x.times ?? Infinity) > 0);
    if (!f) return undefined;
    if (f.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
    // A cut counts per opening of the source: each retry is a new transfer.
    if (f.cutAfterBytes !== undefined || f.afterStoring) return f;
    if (f.times !== undefined) f.times--;
    throw this.#fault(f, `${method} ${name}`);
  }

  #fault(f: Fault, what: string): Error {
    const msg = `injected ${f.kind ?? 'transient'} fault: ${what}`;
    return f.kind === 'permanent' ? new PermanentBackendError(msg) : new TransientBackendError(msg);
  }

  async put(name: string, source: PutSource, opts?: OpOptions): Promise<void> {
    const f = await this.#maybeFail('put', name);
    if (f?.afterStoring) {
      await this.inner.put(name, source, opts);
      if (f.times !== undefined) f.times--;
      throw this.#fault(f, `${name} was stored, the reply lost`);
    }
    if (f?.cutAfterBytes === undefined) return this.inner.put(name, source, opts);
    const limit = f.cutAfterBytes;
    const cut: PutSource = {
      size: source.size,
      ...(source.growth ? { growth: source.growth } : {}),
      open: () => {
        if ((f.times ?? Infinity) <= 0) return source.open();
        if (f.times !== undefined) f.times--;
        let seen = 0;
        return source.open().pipe(
          new Transform({
            transform(chunk: Buffer, _e, cb) {
              if (seen + chunk.length > limit) return cb(new TransientBackendError(`injected cut after ${limit} bytes: put ${name}`));
              seen += chunk.length;
              cb(null, chunk);
            },
          }),
        );
      },
    };
    return this.inner.put(name, cut, opts);
  }

  async get(name: string, opts?: GetOptions): Promise<Readable> {
    const f = await this.#maybeFail('get', name);
    const stream = await this.inner.get(name, opts);
    if (f?.cutAfterBytes === undefined) return stream;
    if (f.times !== undefined) f.times--;
    // the connection drops after `cutAfterBytes`: the bytes before it arrive, then an error
    const limit = f.cutAfterBytes;
    async function* cut(): AsyncGenerator<Buffer> {
      let seen = 0;
      for await (const c of stream) {
        const chunk = c as Buffer;
        if (seen + chunk.length > limit) {
          if (limit > seen) yield chunk.subarray(0, limit - seen);
          stream.destroy();
          throw new Error(`injected cut after ${limit} bytes: get ${name}`);
        }
        seen += chunk.length;
        yield chunk;
      }
    }
    return Readable.from(cut(), { objectMode: false });
  }

  async stat(name: string, opts?: OpOptions): Promise<ObjectInfo> {
    await this.#maybeFail('stat', name);
    return this.inner.stat(name, opts);
  }

  async *list(prefix = '', opts?: OpOptions): AsyncIterable<ObjectInfo> {
    await this.#maybeFail('list', prefix);
    yield* this.inner.list(prefix, opts);
  }

  async delete(name: string, opts?: OpOptions): Promise<void> {
    await this.#maybeFail('delete', name);
    return this.inner.delete(name, opts);
  }

}
