/**
 * --compare SOURCE (duplicity's --compare-data): the archived state at a time against
 * the live tree — type, mode, owner (as root), whole-second mtime (directories too),
 * symlink target, device numbers and content — streaming, with no temp copy.
 *
 * The archived state comes from the chain's signature files (read from the target and
 * merged in index order); the live tree is walked and read on a worker thread
 * (compare-live.ts), which holds every live file block by block against the librsync
 * signature of its archived version. That the signatures describe the stored data is
 * what verify checks, volume by volume, on the main thread at the same time. Memory does
 * not grow with the tree: at most WINDOW messages are in flight to the worker.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Backend } from '../backend/backend.js';
import { checkSource } from '../backup/backup.js';
import { pickForTime } from '../chain/collection.js';
import type { DecryptKeys } from '../crypto/index.js';
import { ChainError, EngineError, ExitCode, type ExitCodeValue } from '../errors.js';
import { chainState } from '../inspect/signature-state.js';
import { ArchiveReader } from '../restore/archive.js';
import type { FromWorker, ToWorker } from './compare-worker.js';
import { problemCollector, type Problem } from './problems.js';

export interface CompareOptions {
  backend: Backend;
  keys: DecryptKeys;
  /** The archived state at this time. @default latest */
  time?: number;
  /** Compare owners. @default true when root (only root restores them) */
  owners?: boolean;
  signal?: AbortSignal;
}

/** Messages sent to the worker and not yet read by it, at most. */
const WINDOW = 256;

export async function compareWithSource(source: string, o: CompareOptions, onProblem?: (p: Problem) => void): Promise<Problem[]> {
  const root = await checkSource(source);
  const archive = new ArchiveReader(o.backend, o.keys); // the target's signature files, not a cache's
  const picked = pickForTime(await archive.collection(), o.time ?? Number.MAX_SAFE_INTEGER);
  if (!picked) throw new ChainError('NO_CHAIN', `no complete backup found at ${o.backend.describe()}`);
  await archive.proveKey(picked.sets);
  const { problems, report } = problemCollector(onProblem);
  const worker = new Worker(workerUrl(), { workerData: { root, owners: o.owners ?? process.getuid?.() === 0 } });
  const link = new WorkerLink(worker, report);
  const stop = () => void worker.terminate();
  o.signal?.addEventListener('abort', stop, { once: true });
  try {
    for await (const e of chainState(archive, picked.sets)) {
      o.signal?.throwIfAborted();
      await link.send({ t: 'entry', kind: e.kind === 'signature' ? 'signature' : 'snapshot', index: e.index, header: e.header });
      if (e.kind !== 'signature') continue;
      for await (const chunk of e.signatureStream()) await link.send({ t: 'sig', chunk });
      await link.send({ t: 'sigEnd' });
    }
    await link.send({ t: 'end' });
    await link.finished;
    return problems;
  } catch (e) {
    o.signal?.throwIfAborted();
    throw e;
  } finally {
    o.signal?.removeEventListener('abort', stop);
    await worker.terminate();
  }
}

/** The built worker; from the TypeScript sources (the tests), the one in dist/. */
function workerUrl(): URL {
  const here = new URL('./compare-worker.js', import.meta.url);
  return existsSync(fileURLToPath(here)) ? here : new URL('../../dist/verify/compare-worker.js', import.meta.url);
}

/** The main thread's end of the worker: bounded sending, problems in, the outcome. */
class WorkerLink {
  readonly finished: Promise<void>;
  readonly #worker: Worker;
  #unread = 0;
  #room: (() => void) | undefined;
  #failure: Error | undefined;

  constructor(worker: Worker, report: (file: string, problem: string) => void) {
    this.#worker = worker;
    this.finished = new Promise((resolve, reject) => {
      const fail = (e: Error) => {
        this.#failure ??= e;
        this.#room?.();
        reject(e);
      };
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'problem') report(m.file, m.problem);
        else if (m.t === 'ack') {
          this.#unread -= m.n;
          this.#room?.();
        } else if (m.t === 'done') resolve();
        else fail(m.code ? new EngineError(m.code, (m.exitCode ?? ExitCode.INTERNAL) as ExitCodeValue, m.message) : new Error(m.message));
      });
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`the comparison worker stopped (exit ${code})`)));
    });
    this.finished.catch(() => undefined); // observed by the caller through send() or finished
  }

  async send(m: ToWorker): Promise<void> {
    while (this.#unread >= WINDOW && !this.#failure) await new Promise<void>((r) => (this.#room = r));
    if (this.#failure) throw this.#failure;
    this.#worker.postMessage(m);
    this.#unread++;
  }
}
