/**
 * Worker thread of `verify --compare`: receives the archived state from the main thread
 * (headers, and signatures in pieces) and runs the live comparison (compare-live.ts).
 *
 * Messages in: `entry` (kind, index, header), then for a regular file `sig` pieces and
 * `sigEnd`; `end` after the last entry. Out: `problem`, `ack` (every ACK_EVERY messages
 * read: the main thread keeps at most a window of messages unread), and `done` or
 * `error`. Buffers arrive as plain Uint8Arrays (structured clone) and are rewrapped.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EngineError } from '../errors.js';
import type { Index } from '../volume/entry-name.js';
import type { TarHeader } from '../volume/tar-header.js';
import { compareLive, type ArchivedEntry } from './compare-live.js';

export const ACK_EVERY = 32;

export type ToWorker =
  | { t: 'entry'; kind: ArchivedEntry['kind']; index: readonly Uint8Array[]; header: TarHeader }
  | { t: 'sig'; chunk: Uint8Array }
  | { t: 'sigEnd' }
  | { t: 'end' };
export type FromWorker =
  | { t: 'problem'; file: string; problem: string }
  | { t: 'ack'; n: number }
  | { t: 'done' }
  | { t: 'error'; message: string; code?: string; exitCode?: number };

const port = parentPort!;
const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** Incoming messages as a pull queue. */
const inbox: ToWorker[] = [];
let wake: (() => void) | undefined;
let read = 0;
port.on('message', (m: ToWorker) => {
  inbox.push(m);
  wake?.();
});
async function next(): Promise<ToWorker> {
  while (inbox.length === 0) await new Promise<void>((r) => (wake = r));
  wake = undefined;
  if (++read % ACK_EVERY === 0) port.postMessage({ t: 'ack', n: ACK_EVERY } satisfies FromWorker);
  return inbox.shift()!;
}

/**
 * A signature's pieces. Stopping early (a mismatch found, an unread entry) still reads
 * to its `sigEnd`, so the next message is the next entry's.
 */
function signature(): AsyncIterable<Buffer> {
  let ended = false;
  const drain = async () => {
    while (!ended) if ((await next()).t === 'sigEnd') ended = true;
  };
  const it: AsyncIterator<Buffer> = {
    async next() {
      if (ended) return { done: true, value: undefined };
      const m = await next();
      if (m.t === 'sig') return { done: false, value: buf(m.chunk) };
      ended = true;
      return { done: true, value: undefined };
    },
    async return() {
      await drain();
      return { done: true, value: undefined };
    },
  };
  return { [Symbol.asyncIterator]: () => it };
}

async function* archived(): AsyncGenerator<ArchivedEntry> {
  for (let m = await next(); m.t !== 'end'; m = await next()) {
    if (m.t !== 'entry') throw new Error(`compare worker: ${m.t} message out of place`);
    const h = m.header;
    const header: TarHeader = { ...h, name: buf(h.name), linkname: buf(h.linkname) };
    const index: Index = m.index.map(buf);
    yield m.kind === 'signature' ? { kind: m.kind, index, header, signature: signature() } : { kind: m.kind, index, header };
  }
}

const { root, owners } = workerData as { root: string; owners: boolean };
compareLive(archived(), { root, owners, report: (file, problem) => port.postMessage({ t: 'problem', file, problem } satisfies FromWorker) }).then(
  () => port.postMessage({ t: 'done' } satisfies FromWorker),
  (e: unknown) => {
    const err = e as Error;
    port.postMessage({ t: 'error', message: err.message, ...(e instanceof EngineError ? { code: e.code, exitCode: e.exitCode } : {}) } satisfies FromWorker);
  },
);
