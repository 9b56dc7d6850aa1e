/** Waiting in tests for what has no event to await. */

/**
 * Until the wall clock is in the next whole second: sets and mtimes are named and
 * compared by whole seconds (duplicity's too), and a clock tick is no event to await.
 */
export async function nextSecond(): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 1));
  while (Math.floor(Date.now() / 1000) === now) await new Promise((r) => setImmediate(r));
}

/** Until `cond` holds, checked between turns of the event loop (state on disk, a child's progress). */
export async function until(cond: () => boolean | Promise<boolean>, what = 'a condition', limitMs = 60_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Gives the event loop `n` turns: a consumer slower than its producer, without a clock. */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}
