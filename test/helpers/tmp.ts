/** Per-test temp directories, removed after the test file. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from '@jest/globals';

export function tempDirs(): (name?: string) => string {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  return (name = 't') => {
    const d = mkdtempSync(join(tmpdir(), `tapechain-test-${name}-`));
    made.push(d);
    return d;
  };
}

/** Run temp directories of `kind` made by this process (runCli runs the CLI in it) that are still there. */
export function leftRunTempDirs(kind: string): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith(`tapechain-${kind}.${process.pid}.`));
}
