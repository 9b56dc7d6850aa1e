/**
 * Signals at a known point of a run: when a condition on what it wrote holds, so each
 * kill really cuts the run. The condition is checked between turns of the event loop
 * until it holds or the child exits: fs.watch cannot serve here (a recursive watch on
 * Linux reads new directories itself, and fails on those a run creates and removes at
 * once, such as temp and staging directories).
 */
import type { ChildProcess } from 'node:child_process';

export interface Signalled {
  /** Exit code, null when the signal's default action ended the child. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Sends `sig` to `child` as soon as `ready()` holds; fails if the child exits first. */
export async function signalWhen(child: ChildProcess, sig: NodeJS.Signals, ready: () => boolean): Promise<Signalled> {
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  let ended: Signalled | undefined;
  const exited = new Promise<Signalled>((r) => child.on('exit', (code, signal) => r((ended = { code, signal, stderr }))));
  for (;;) {
    if (ended) throw new Error(`the run ended (${ended.signal ?? ended.code}) before ${sig} could be sent: ${stderr}`);
    let now = false;
    try {
      now = ready();
    } catch {
      // a file of the run was there and is gone again: not yet
    }
    if (now) break;
    await new Promise((r) => setImmediate(r));
  }
  child.kill(sig);
  const r = await exited;
  return { ...r, stderr };
}

/** kill -9 once `ready()` holds; resolves with the signal that ended the child. */
export async function killWhen(child: ChildProcess, ready: () => boolean): Promise<NodeJS.Signals | null> {
  return (await signalWhen(child, 'SIGKILL', ready)).signal;
}
