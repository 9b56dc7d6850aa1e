/**
 * One error base class for the whole engine, with stable string codes and the one
 * exit-code table. Only cli/ turns these into output and process exit codes.
 *
 * Exit codes are part of the user contract (scripts test them): never renumber,
 * only append. The README documents the same table.
 */

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
  /** A bug: an error that was not classified. */
  INTERNAL: 70,
  /** Interrupted (SIGINT, Ctrl-C): 128 + 2, as shells report it. */
  CANCELLED: 130,
  /** Stopped by SIGTERM (systemd, kill): 128 + 15. */
  TERMINATED: 143,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export interface EngineErrorOptions {
  cause?: unknown;
}

/** Base class: a stable machine-readable `code` plus the exit code it maps to. */
export class EngineError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  constructor(code: string, exitCode: ExitCodeValue, message: string, options?: EngineErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

export class UsageError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions) {
    super('USAGE', ExitCode.USAGE, message, options);
  }
}

export class ConfigError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions) {
    super('CONFIG', ExitCode.CONFIG, message, options);
  }
}

export class NotFoundError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: string }) {
    super(options?.code ?? 'NOT_FOUND', ExitCode.NOT_FOUND, message, options);
  }
}

export class SourceError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions) {
    super('SOURCE', ExitCode.SOURCE, message, options);
  }
}

export class DestinationError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: string }) {
    super(options?.code ?? 'DESTINATION', ExitCode.DESTINATION, message, options);
  }
}

/** Backend failures; `kind` says whether a retry can help. */
export type BackendErrorKind = 'not-found' | 'transient' | 'permanent';

export class BackendError extends EngineError {
  readonly kind: BackendErrorKind;
  constructor(kind: BackendErrorKind, message: string, options?: EngineErrorOptions) {
    super(`BACKEND_${kind.toUpperCase().replace('-', '_')}`, ExitCode.BACKEND, message, options);
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
  constructor(message: string, options?: EngineErrorOptions) {
    super('permanent', message, options);
  }
}

/** Hash, size, MDC or signature mismatch. */
export class IntegrityError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: string }) {
    super(options?.code ?? 'INTEGRITY', ExitCode.INTEGRITY, message, options);
  }
}

/** Wrong passphrase or key, or no usable key for a message. */
export class DecryptError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: string }) {
    super(options?.code ?? 'DECRYPT', ExitCode.DECRYPT, message, options);
  }
}

/** Malformed archive data: tar, manifest, OpenPGP packets, deltas. */
export class FormatError extends EngineError {
  constructor(message: string, options?: EngineErrorOptions & { code?: string }) {
    super(options?.code ?? 'FORMAT', ExitCode.FORMAT, message, options);
  }
}

/** Chain-level problems: no chain, gaps, mismatched source. */
export class ChainError extends EngineError {
  constructor(code: string, message: string, options?: EngineErrorOptions & { exitCode?: ExitCodeValue }) {
    super(code, options?.exitCode ?? ExitCode.NOT_FOUND, message, options);
  }
}

/** A run stopped on request: by SIGINT (exit 130), SIGTERM (143) or an abort. */
export class CancelledError extends EngineError {
  readonly signal: 'SIGINT' | 'SIGTERM' | undefined;
  constructor(message = 'cancelled', options?: EngineErrorOptions & { signal?: 'SIGINT' | 'SIGTERM' }) {
    super('CANCELLED', options?.signal === 'SIGTERM' ? ExitCode.TERMINATED : ExitCode.CANCELLED, message, options);
    this.signal = options?.signal;
  }
}

/** The same error (class, code, exit code) with another message; the original is its cause. */
function rewrap(err: EngineError, message: string): EngineError {
  const wrapped = Object.create(Object.getPrototypeOf(err)) as EngineError;
  Object.assign(wrapped, err);
  Object.defineProperty(wrapped, 'message', { value: message, enumerable: false, writable: true });
  Object.defineProperty(wrapped, 'stack', { value: err.stack, enumerable: false, writable: true });
  Object.defineProperty(wrapped, 'cause', { value: err, enumerable: false, writable: true });
  return wrapped;
}

/** The same error with `suffix` added to its message. */
export function withSuffix(err: EngineError, suffix: string): EngineError {
  return rewrap(err, `${err.message}${suffix}`);
}

/**
 * Prefix an error's message with the file (or volume) it concerns, keeping its class,
 * code and exit code, so the one line a user sees names what failed.
 */
export function withContext(err: unknown, context: string): Error {
  if (err instanceof EngineError) {
    if (err.message.startsWith(context)) return err;
    return rewrap(err, `${context}: ${err.message}`);
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return new EngineError('INTERNAL', ExitCode.INTERNAL, `${context}: ${e.message}`, { cause: e });
}
