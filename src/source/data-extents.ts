/**
 * Where a sparse file's data lies, so a backup reads the data and not the holes: the
 * file system says so through lseek(SEEK_DATA/SEEK_HOLE), which Node does not expose
 * and no maintained npm package offers prebuilt. A small python3 helper, started once
 * per batch on its first sparse file, answers for each path; where python3 is missing
 * or the file system cannot tell, the file is read whole as before (the holes then
 * read as zeros, which the kernel fills cheaply: correct, only slower).
 *
 * Only files with at least MIN_HOLE bytes unallocated are asked about: a process
 * round trip costs more than reading a small hole.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';

/** A file is asked about when this much of its size is not allocated (st_blocks). */
export const MIN_HOLE = 1 << 20;

/** Data ranges [start, end) in file order. */
export type Extents = [number, number][];

// Reads hex-encoded paths, one per line; answers "start end start end …" or "!" (could
// not tell). ENXIO from SEEK_DATA means no data after pos.
const HELPER = String.raw`
import os, sys
for line in sys.stdin:
    out = []
    try:
        fd = os.open(bytes.fromhex(line.strip()), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            pos = 0
            while True:
                try:
                    d = os.lseek(fd, pos, os.SEEK_DATA)
                except OSError as e:
                    if e.errno == 6:
                        break
                    raise
                h = os.lseek(fd, d, os.SEEK_HOLE)
                out += [d, h]
                pos = h
        finally:
            os.close(fd)
        print(' '.join(map(str, out)), flush=True)
    except Exception:
        print('!', flush=True)
`;

/** Whether the helper could not be started once (python3 missing): not tried again. */
let unavailable = false;

export function looksSparse(st: { size: number; blocks: number }): boolean {
  return !unavailable && st.size - st.blocks * 512 >= MIN_HOLE;
}

export class ExtentProbe {
  #child: ChildProcessWithoutNullStreams | undefined;
  #lines: Interface | undefined;
  readonly #waiting: ((line: string | undefined) => void)[] = [];

  #start(): boolean {
    if (this.#child) return true;
    if (unavailable) return false;
    try {
      const child = spawn('python3', ['-c', HELPER], { stdio: ['pipe', 'pipe', 'pipe'] });
      child.on('error', () => {
        unavailable = true;
        this.#fail();
      });
      child.on('exit', () => this.#fail());
      child.stdin.on('error', () => undefined); // a helper gone is answered by 'exit'
      this.#lines = createInterface({ input: child.stdout });
      this.#lines.on('line', (l) => this.#waiting.shift()?.(l));
      this.#child = child;
      return true;
    } catch {
      unavailable = true;
      return false;
    }
  }

  #fail(): void {
    this.#child = undefined;
    for (const w of this.#waiting.splice(0)) w(undefined);
  }

  /** The file's data ranges within [0, size), or undefined when that cannot be told. */
  async extents(p: Buffer, size: number): Promise<Extents | undefined> {
    if (!this.#start()) return undefined;
    const answer = await new Promise<string | undefined>((resolve) => {
      this.#waiting.push(resolve);
      this.#child!.stdin.write(p.toString('hex') + '\n');
    });
    if (answer === undefined || answer === '!') return undefined;
    const n = answer === '' ? [] : answer.split(' ').map(Number);
    const out: Extents = [];
    for (let i = 0; i + 1 < n.length; i += 2) {
      const [s, e] = [n[i]!, Math.min(n[i + 1]!, size)];
      if (!(Number.isSafeInteger(s) && Number.isSafeInteger(e))) return undefined;
      if (s < e) out.push([s, e]);
    }
    return out;
  }

  close(): void {
    this.#lines?.close();
    this.#child?.stdin.end();
    this.#child?.kill();
    this.#child = undefined;
  }
}
