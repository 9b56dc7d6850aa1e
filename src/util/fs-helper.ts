/**
 * The few file-system calls Node cannot make: lseek(SEEK_DATA/SEEK_HOLE) (where a sparse
 * file's data lies), and the xattr calls on a path that is not valid UTF-8 (the xattr
 * binding takes paths as strings). A small python3 process answers them, one line per
 * request, paths and values in hex; it is started on the first request of a thread and
 * ends when its stdin closes (the thread or process exits), so it never keeps one alive.
 * Without python3 every request answers undefined: the caller falls back (reads the
 * holes; warns about the xattrs).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { Xattr } from './xattr.js';

// E: data ranges "start end …" (ENXIO from SEEK_DATA: no data after pos).
// X: xattrs "name value …" (hex), not following a symlink. S: set one. "!" when it cannot.
const HELPER = String.raw`
import os, sys
def extents(path):
    out = []
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
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
    return ' '.join(map(str, out))
def xattrs(path):
    out = []
    for n in os.listxattr(path, follow_symlinks=False):
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
        except OSError:
            continue
        out += [os.fsencode(n).hex(), v.hex()]
    return ' '.join(out)
def setx(path, name, value):
    os.setxattr(path, os.fsdecode(bytes.fromhex(name)), bytes.fromhex(value), follow_symlinks=False)
    return ''
for line in sys.stdin:
    f = line.split()
    try:
        path = bytes.fromhex(f[1])
        r = extents(path) if f[0] == 'E' else xattrs(path) if f[0] == 'X' else setx(path, f[2], f[3] if len(f) > 3 else '')
        print('=' + r, flush=True)
    except OSError as e:
        print('!' + (os.strerror(e.errno) if e.errno else str(e)) + ' ' + str(e.errno or 0), flush=True)
    except Exception as e:
        print('!' + str(e).replace('\n', ' ') + ' 0', flush=True)
`;

type Helper = ChildProcessByStdio<Writable, Readable, null>;

/** A request's answer: its text, or why it failed (errno 0 when not a system error), or the helper is not there. */
type Answer = { ok: string } | { error: string; errno: number } | undefined;

export class FsHelper {
  #child: Helper | undefined;
  #unavailable = false;
  readonly #waiting: ((a: Answer) => void)[] = [];

  /** Whether python3 could not be started: requests answer undefined at once. */
  get unavailable(): boolean {
    return this.#unavailable;
  }

  #start(): Helper | undefined {
    if (this.#child || this.#unavailable) return this.#child;
    try {
      const child = spawn('python3', ['-c', HELPER], { stdio: ['pipe', 'pipe', 'ignore'] });
      child.on('error', () => {
        this.#unavailable = true;
        this.#gone();
      });
      child.on('exit', () => this.#gone());
      child.stdin.on('error', () => undefined); // a helper gone is answered by 'exit'
      createInterface({ input: child.stdout }).on('line', (l) => this.#waiting.shift()?.(parse(l)));
      this.#idle(child);
      this.#child = child;
    } catch {
      this.#unavailable = true;
    }
    return this.#child;
  }

  /** With nothing asked, the helper must not keep the thread alive. */
  #idle(child: Helper): void {
    child.unref();
    (child.stdout as unknown as { unref(): void }).unref();
    (child.stdin as unknown as { unref(): void }).unref();
  }

  #gone(): void {
    this.#child = undefined;
    for (const w of this.#waiting.splice(0)) w(undefined);
  }

  async #ask(line: string): Promise<Answer> {
    const child = this.#start();
    if (!child) return undefined;
    if (this.#waiting.length === 0) (child.stdout as unknown as { ref(): void }).ref();
    const answer = await new Promise<Answer>((resolve) => {
      this.#waiting.push(resolve);
      child.stdin.write(line + '\n');
    });
    if (this.#waiting.length === 0 && this.#child) (this.#child.stdout as unknown as { unref(): void }).unref();
    return answer;
  }

  /** A file's data ranges [start, end) within `size`, or undefined when that cannot be told. */
  async extents(p: Buffer, size: number): Promise<[number, number][] | undefined> {
    const a = await this.#ask(`E ${p.toString('hex')}`);
    if (!a || !('ok' in a)) return undefined;
    const n = a.ok === '' ? [] : a.ok.split(' ').map(Number);
    const out: [number, number][] = [];
    for (let i = 0; i + 1 < n.length; i += 2) {
      const [s, e] = [n[i]!, Math.min(n[i + 1]!, size)];
      if (!(Number.isSafeInteger(s) && Number.isSafeInteger(e))) return undefined;
      if (s < e) out.push([s, e]);
    }
    return out;
  }

  /** A path's xattrs (not followed), or the failure; undefined without the helper. */
  async xattrs(p: Buffer): Promise<Xattr[] | { error: string; errno: number } | undefined> {
    const a = await this.#ask(`X ${p.toString('hex')}`);
    if (!a || !('ok' in a)) return a;
    const f = a.ok === '' ? [] : a.ok.split(' ');
    const out: Xattr[] = [];
    for (let i = 0; i + 1 < f.length; i += 2) out.push({ name: Buffer.from(f[i]!, 'hex').toString('utf8'), value: Buffer.from(f[i + 1]!, 'hex') });
    return out;
  }

  /** Sets one xattr (not followed): undefined when done or without the helper, else the failure. */
  async setXattr(p: Buffer, x: Xattr): Promise<{ error: string; errno: number } | undefined | 'unavailable'> {
    const a = await this.#ask(`S ${p.toString('hex')} ${Buffer.from(x.name).toString('hex')} ${x.value.toString('hex')}`);
    if (!a) return 'unavailable';
    return 'ok' in a ? undefined : a;
  }
}

function parse(line: string): Answer {
  if (line.startsWith('=')) return { ok: line.slice(1) };
  const sp = line.lastIndexOf(' ');
  return { error: line.slice(1, sp), errno: Number(line.slice(sp + 1)) || 0 };
}

let shared: FsHelper | undefined;

/** The thread's helper. */
export function fsHelper(): FsHelper {
  return (shared ??= new FsHelper());
}
