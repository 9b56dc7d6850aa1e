/**
 * The real tools the interop tests run: duplicity, gpg, rdiff, GNU tar. Each test
 * gets its own GNUPGHOME. A missing tool fails the test with a message that says how
 * to install it (the CI script installs them; tests never skip silently).
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export function requireTool(name: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${name}`]);
  if (r.status !== 0) throw new Error(`${name} is not installed: apt-get install -y duplicity gnupg rdiff (see README)`);
}

export interface RunResult {
  status: number;
  stdout: Buffer;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(cmd, args, { maxBuffer: 1 << 30, ...opts });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout as Buffer, stderr: (r.stderr as Buffer | null)?.toString() ?? '' };
}

export function runOk(cmd: string, args: string[], opts: SpawnSyncOptions = {}): Buffer {
  const r = run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** Environment for gpg and duplicity with a private keyring under `dir`. */
export function gpgEnv(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const home = join(dir, 'gnupg');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  return { ...process.env, GNUPGHOME: home, ...extra };
}

/** Runs duplicity non-interactively with a private cache. */
export function duplicity(args: string[], dir: string, env: Record<string, string> = {}): RunResult {
  requireTool('duplicity');
  return run('duplicity', [...args], { env: gpgEnv(dir, env), cwd: dir });
}
