/** Runs the CLI in-process and captures its output (kopia's CLIInProcRunner). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll } from '@jest/globals';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** What was written to the binary output (cat, export). */
  bytes: Buffer;
}

/**
 * One cache root per test file for the tests that name none, so ~/.cache is never
 * touched; removed after the file (jest ends its workers without 'exit' handlers).
 */
const defaultCache = mkdtempSync(join(tmpdir(), 'tapechain-test-cache-'));
afterAll(() => rmSync(defaultCache, { recursive: true, force: true }));

export async function runCli(argv: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  env = { XDG_CACHE_HOME: defaultCache, ...env };
  let stdout = '';
  let stderr = '';
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(c: Buffer, _enc, done) {
      chunks.push(c);
      done();
    },
  });
  const code = await main(argv, {
    out,
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    env,
  });
  return { code, stdout, stderr, bytes: Buffer.concat(chunks) };
}
