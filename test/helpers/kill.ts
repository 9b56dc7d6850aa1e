/**
 * kill -9 at a known point of a run: when a condition on the files it wrote holds
 * (watched, not polled on a timer), so each kill really cuts the run.
 */
import type { ChildProcess } from 'node:child_process';
import { watch } from 'node:fs';

/**
 * Kills `child` with SIGKILL as soon as `ready()` holds, checking on every change below
 * `dir`. Fails if the child exits first. Resolves with the signal that ended it.
 */
export function killWhen(child: ChildProcess, dir: string, ready: () => boolean): Promise<NodeJS.Signals | null> {
  return new Promise((resolve, reject) => {
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)));
    let killed = false;
    const check = () => {
      if (killed || !ready()) return;
      killed = true;
      child.kill('SIGKILL');
    };
    const w = watch(dir, { recursive: true }, check);
    check();
    void exited.then((signal) => {
      w.close();
      if (killed) resolve(signal);
      else reject(new Error(`the run ended (${signal ?? 'exit'}) before it could be killed`));
    });
  });
}
