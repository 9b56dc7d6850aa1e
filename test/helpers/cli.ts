/** Runs the CLI in-process and captures its output (kopia's CLIInProcRunner). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from '@jest/globals';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
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
  const code = await main(argv, {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    env,
  });
  return { code, stdout, stderr };
}
