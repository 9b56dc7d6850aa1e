/**
 * An engine error as the one line the CLI prints: its context rendered with options
 * named as their flags, and a hint keyed by its code — what to type next, which the
 * engine, not knowing the command line, does not say.
 */
import { EngineError, renderError, type ErrorCode } from '../errors.js';

/** Engine option names -> the flags that set them. */
const FLAGS: Record<string, string> = {
  compressLevel: '--compress-level',
  volsize: '--volsize',
  maxStaged: '--max-staged',
  uploadConcurrency: '--upload-concurrency',
  jobs: '--jobs',
  objectLock: '--object-lock-days',
};

const HINTS: Partial<Record<ErrorCode, string>> = {
  NO_BUCKET: 'create it, or let backup do it with --s3-create-bucket',
  NO_CREDENTIALS: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile',
  NO_PASSPHRASE: 'set PASSPHRASE or use --passphrase-file',
  NO_KEY: 'give the secret key with --decrypt-key',
  SIGNATURE_UNKNOWN_KEY: '--public-key or --sign-key',
  CHAIN_KEY_MISMATCH: "give the chain's key, or start a new chain with backup --full",
  SOURCE_MISMATCH: 'use --allow-source-mismatch to continue it, or --full',
  CLOCK_BEHIND: 'fix the clock, or allow it with --allow-clock-skew (this set is then named after that one)',
  STRICT: '--strict: a warning fails the run',
  DEST_NOT_EMPTY: 'use --force to restore into it (a merge: what the backup lacks stays)',
};

export function renderForCli(e: EngineError): string {
  const option = e.context.option !== undefined ? (FLAGS[e.context.option] ?? e.context.option) : undefined;
  const line = renderError(e.detail, { ...e.context, ...(option !== undefined ? { option } : {}) }).split('\n')[0]!;
  const hint = HINTS[e.code];
  return hint ? `${line} (${hint})` : line;
}
