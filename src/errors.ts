/**
 * One error base class for the whole engine, with stable string codes and the one
 * exit-code table. Only cli/ turns these into output and process exit codes.
 *
 * Exit codes are part of the user contract (scripts test them): never renumber,
 * only append. The README documents the same table.
 */
import { dirname } from 'node:path';

/** Process exit codes. Stable: documented in the README, never renumbered. */
export const ExitCode = {
  OK: 0,
  /** The run finished but skipped or reported something (e.g. unreadable files). */
  WARNINGS: 1,
  /** Bad command line: unknown option, missing argument. */
  USAGE: 2,
  /** Bad configuration: no passphrase, unreadable key file, bad target URL. */
  CONFIG: 3,
  /** Nothing to work on: no backup chain at the target, source missing. */
  NOT_FOUND: 4,
  /** The storage backend failed (permanent error or retries exhausted). */
  BACKEND: 5,
  /** Stored data does not match what the manifest or signature promises. */
  INTEGRITY: 6,
  /** Decryption failed: wrong passphrase or key. */
  DECRYPT: 7,
  /** The restore destination is unusable (not empty without --force, not writable). */
  DESTINATION: 8,
  /** The archive is malformed (bad tar, manifest, OpenPGP packet or delta). */
  FORMAT: 9,
  /** Another process holds the lock. */
  LOCKED: 10,
  /** The source tree could not be read. */
  SOURCE: 11,
  /** status --check: the newest complete set is older than --max-age. */
  STALE_BACKUP: 12,
  /** status --check: no verify recorded, or older than --max-verify-age. */
  STALE_VERIFY: 13,
  /** status --check: an incomplete set (an interrupted backup) is at the target. */
  INCOMPLETE_SET: 14,
  /** status --check: orphaned incrementals (a broken chain). */
  BROKEN_CHAIN: 15,
  /** A bug: an error that was not classified. */
  INTERNAL: 70,
  /** Interrupted (SIGINT, Ctrl-C): 128 + 2, as shells report it. */
  CANCELLED: 130,
  /** Stopped by SIGTERM (systemd, kill): 128 + 15. */
  TERMINATED: 143,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * Every error code the engine raises: stable, for scripts and the CLI's hints. The
 * class sets the exit code; the code says which case of it.
 */
export type ErrorCode =
  // usage and configuration
  | 'USAGE' | 'BAD_OPTION' | 'CONFIG' | 'NO_PASSPHRASE' | 'CLOCK_BEHIND' | 'SOURCE_MISMATCH' | 'CHAIN_KEY_MISMATCH' | 'REPAIR_REFUSED'
  // nothing to work on
  | 'NOT_FOUND' | 'NO_CHAIN' | 'NO_SET_AT_TIME' | 'PATH_NOT_FOUND'
  | 'TEMP_SPACE' | 'SOURCE' | 'STRICT' | 'DESTINATION' | 'DEST_NOT_EMPTY' | 'UNSAFE_PATH' | 'LOCKED' | 'CANCELLED'
  | 'BACKEND_NOT_FOUND' | 'BACKEND_TRANSIENT' | 'BACKEND_PERMANENT' | 'NO_BUCKET' | 'NO_CREDENTIALS'
  // keys
  | 'DECRYPT' | 'BAD_PASSPHRASE' | 'BAD_KEY_PASSPHRASE' | 'NO_KEY' | 'WRONG_KEY'
  // stored data that does not match its promises
  | 'INTEGRITY' | 'HASH_MISMATCH' | 'MDC' | 'CORRUPT_DATA' | 'MISSING_VOLUME' | 'MISSING_MANIFEST'
  | 'MISSING_SIGNATURE' | 'MULTIVOL_INCOMPLETE' | 'SIGNATURE_INVALID' | 'SIGNATURE_MISSING'
  | 'SIGNATURE_UNKNOWN_KEY' | 'BAD_SEAL' | 'SEAL_UNSIGNED' | 'SEAL_SIGNATURE'
  // malformed archive data
  | 'FORMAT' | 'BAD_MANIFEST' | 'BAD_DELTA' | 'DIFF_WITHOUT_BASIS' | 'TRAILING_DATA' | 'ENTRY_ORDER' | 'ENTRY_REPEATED'
  | 'INTERNAL';

/**
 * What an error concerns, kept apart from its message so a reporter can show each part
 * where it belongs (verify's problem list names the file in a column of its own). The
 * one-line form is made by `renderError`.
 */
export interface ErrorContext {
  /** What was being done: "uploading", "reading". */
  action?: string;
  /** A file of the target: volume, manifest, signature file, seal. */
  file?: string;
  /** An entry of the backed-up tree, or a path of the source or DEST. */
  path?: string;
  /** An option of the operation, by its name in the options object ("compressLevel"). */
  option?: string;
}

export interface EngineErrorOptions {
  cause?: unknown;
  context?: ErrorContext;
}

/** "uploading vol3: a/b: detail": the context's parts that are set, then the detail. */
export function renderError(detail: string, c: ErrorContext): string {
  const subject = [c.option, c.file, c.path].filter((x) => x !== undefined).join(': ');
  const head = c.action ? `${c.action} ${subject}`.trim() : subject;
  return head ? `${head}: ${detail}` : detail;
}

/** `message` as the error's detail and context rendered at the time it is read. */
function renderedMessage(e: EngineError): void {
  Object.defineProperty(e, 'message', { get: () => renderError(e.detail, e.context), enumerable: false, configurable: true });
}

/**
 * Base class: a stable machine-readable `code`, the exit code it maps to, the
 * `detail` of what went wrong and the `context` it concerns. `message` is the two
 * rendered as one line (renderError), so every `catch` that prints it names the file.
 */
export class EngineError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCodeValue;
  readonly detail: string;
  context: ErrorContext;
  constructor(code: ErrorCode, exitCode: ExitCodeValue, detail: string, options?: EngineErrorOptions) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.detail = detail;
    this.context = options?.context ?? {};
    renderedMessage(this);
  }
}

export class UsageError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: ErrorCode }) {
    super(options?.code ?? 'USAGE', ExitCode.USAGE, message, options);
  }
}

export class ConfigError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: ErrorCode }) {
    super(options?.code ?? 'CONFIG', ExitCode.CONFIG, message, options);
  }
}

export class NotFoundError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: ErrorCode }) {
    super(options?.code ?? 'NOT_FOUND', ExitCode.NOT_FOUND, message, options);
  }
}

export class SourceError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: ErrorCode }) {
    super(options?.code ?? 'SOURCE', ExitCode.SOURCE, message, options);
  }
}

export class DestinationError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: ErrorCode }) {
    super(options?.code ?? 'DESTINATION', ExitCode.DESTINATION, message, options);
  }
}

/** Backend failures; `kind` says whether a retry can help. */
export type BackendErrorKind = 'not-found' | 'transient' | 'permanent';

export class BackendError extends EngineError {
  readonly kind: BackendErrorKind;
  constructor(kind: BackendErrorKind, message: string, options?: EngineErrorOptions & { code?: ErrorCode }) {
    super(options?.code ?? `BACKEND_${kind === 'not-found' ? 'NOT_FOUND' : kind === 'transient' ? 'TRANSIENT' : 'PERMANENT'}`, ExitCode.BACKEND, message, options);
    this.kind = kind;
  }
}

export class BackendNotFoundError extends BackendError {
  constructor(message: string, options?: EngineErrorOptions) {
    super('not-found', message, options);
  }
}

export class TransientBackendError extends BackendError {
  constructor(message: string, options?: EngineErrorOptions) {
    super('transient', message, options);
  }
}

export class PermanentBackendError extends BackendError {
  constructor(message: string, options?: EngineErrorOptions & { code?: ErrorCode }) {
    super('permanent', message, options);
  }
}

/** Hash, size, MDC or signature mismatch. */
export class IntegrityError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: ErrorCode }) {
    super(options?.code ?? 'INTEGRITY', ExitCode.INTEGRITY, message, options);
  }
}

/** Wrong passphrase or key, or no usable key for a message. */
export class DecryptError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: ErrorCode }) {
    super(options?.code ?? 'DECRYPT', ExitCode.DECRYPT, message, options);
  }
}

/** Malformed archive data: tar, manifest, OpenPGP packets, deltas. */
export class FormatError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: ErrorCode }) {
    super(options?.code ?? 'FORMAT', ExitCode.FORMAT, message, options);
  }
}

/** Chain-level problems: no chain, gaps, mismatched source. */
export class ChainError extends EngineError {
  constructor(code: ErrorCode, message: string, options?: EngineErrorOptions & { exitCode?: ExitCodeValue }) {
    super(code, options?.exitCode ?? ExitCode.NOT_FOUND, message, options);
  }
}

/**
 * A broken invariant of this engine's own (a bug, exit 70): raised on purpose where
 * the code relies on a condition its callers must keep, so the failure is named.
 */
export class InternalError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions) {
    super('INTERNAL', ExitCode.INTERNAL, message, options);
  }
}

/** A run stopped on request: by SIGINT (exit 130), SIGTERM (143) or an abort. */
export class CancelledError extends EngineError {
  /** SIGPIPE: standard output was closed (`tapechain ls | head`), which ends a run quietly, exit 0. */
  readonly signal: 'SIGINT' | 'SIGTERM' | 'SIGPIPE' | undefined;
  constructor(message = 'cancelled', options?: EngineErrorOptions & { signal?: 'SIGINT' | 'SIGTERM' | 'SIGPIPE' }) {
    super('CANCELLED', options?.signal === 'SIGTERM' ? ExitCode.TERMINATED : options?.signal === 'SIGPIPE' ? ExitCode.OK : ExitCode.CANCELLED, message, options);
    this.signal = options?.signal;
  }
}

/** The same error (class, code, exit code, context) with another detail; the original is its cause. */
function rewrap(err: EngineError, detail: string, context: ErrorContext): EngineError {
  const wrapped = Object.create(Object.getPrototypeOf(err)) as EngineError;
  Object.assign(wrapped, err);
  Object.defineProperty(wrapped, 'detail', { value: detail, enumerable: true });
  wrapped.context = context;
  renderedMessage(wrapped);
  Object.defineProperty(wrapped, 'stack', { value: err.stack, enumerable: false, writable: true });
  Object.defineProperty(wrapped, 'cause', { value: err, enumerable: false, writable: true });
  return wrapped;
}

/** The same error with `suffix` added to its detail. */
export function withSuffix(err: EngineError, suffix: string): EngineError {
  return rewrap(err, `${err.detail}${suffix}`, err.context);
}

/**
 * The error with what it concerns as its context, keeping its class, code and exit
 * code, so the one line a user sees names what failed. An error that names its file or
 * path already keeps that: the innermost layer knows best what failed. A plain Error
 * (from Node or a library) is one this engine did not foresee: it becomes INTERNAL,
 * exit 70.
 */
export function withContext(err: unknown, context: ErrorContext): Error {
  if (err instanceof EngineError) return err.context.file !== undefined || err.context.path !== undefined ? err : rewrap(err, err.detail, context);
  const e = err instanceof Error ? err : new Error(String(err));
  return new EngineError('INTERNAL', ExitCode.INTERNAL, e.message, { cause: e, context });
}

/**
 * An error as structured-clone data, to cross from a worker thread: a class instance
 * arrives as a plain object, so the class goes by name and the fields as data.
 */
export interface ErrorWire {
  name: string;
  message: string;
  stack?: string;
  engine?: { code: ErrorCode; exitCode: ExitCodeValue; detail: string; context: ErrorContext; kind?: BackendErrorKind; signal?: 'SIGINT' | 'SIGTERM' | 'SIGPIPE' };
  /** A Node system error's fields (ENOENT, EACCES…). */
  system?: { code?: string; errno?: number; syscall?: string; path?: string };
}

const ENGINE_CLASSES: Record<string, { prototype: EngineError }> = {
  EngineError, UsageError, ConfigError, NotFoundError, SourceError, DestinationError, BackendError, BackendNotFoundError,
  TransientBackendError, PermanentBackendError, IntegrityError, DecryptError, FormatError, ChainError, InternalError, CancelledError,
};

export function errorToWire(err: unknown): ErrorWire {
  const e = err instanceof Error ? err : new Error(String(err));
  const w: ErrorWire = { name: e.name, message: e.message, ...(e.stack !== undefined ? { stack: e.stack } : {}) };
  if (e instanceof EngineError) {
    w.engine = { code: e.code, exitCode: e.exitCode, detail: e.detail, context: e.context };
    if (e instanceof BackendError) w.engine.kind = e.kind;
    if (e instanceof CancelledError && e.signal) w.engine.signal = e.signal;
  } else {
    const s = e as NodeJS.ErrnoException;
    if (s.code !== undefined) w.system = { code: s.code, ...(s.errno !== undefined ? { errno: s.errno } : {}), ...(s.syscall ? { syscall: s.syscall } : {}), ...(s.path ? { path: s.path } : {}) };
  }
  return w;
}

/** The error `errorToWire` described, of the same class (engine errors) or with the same system fields. */
export function errorFromWire(w: ErrorWire): Error {
  if (w.engine) {
    const e = Object.create((ENGINE_CLASSES[w.name] ?? EngineError).prototype) as EngineError;
    Object.assign(e, { name: w.name, code: w.engine.code, exitCode: w.engine.exitCode, detail: w.engine.detail, context: w.engine.context });
    if (w.engine.kind) Object.assign(e, { kind: w.engine.kind });
    if (w.engine.signal) Object.assign(e, { signal: w.engine.signal });
    renderedMessage(e);
    Object.defineProperty(e, 'stack', { value: w.stack, enumerable: false, writable: true });
    return e;
  }
  const e = new Error(w.message);
  e.name = w.name;
  if (w.stack) e.stack = w.stack;
  if (w.system) Object.assign(e, w.system);
  return e;
}

/**
 * A failed write to a local working file (temp volumes, spools, checkpoints): out of
 * space or quota is this machine's setup, not a bug — one line naming the directory;
 * anything else is returned as it is.
 */
export function localWriteError(err: unknown, file: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return err;
  return new ConfigError(`no space left on the local disk (${code}) for working files: free space there, or point TMPDIR at a larger disk`, { code: 'TEMP_SPACE', cause: err, context: { path: dirname(file) } });
}
