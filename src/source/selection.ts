/**
 * File selection as duplicity does it: --include/--exclude globs (and filelists) tested
 * in command-line order, first match wins, everything else included. A glob matches a
 * whole absolute path and everything below it:
 * `*` any run of characters but `/`, `**` any run including `/`, `?` one
 * character but `/`, `[...]` a class; `ignorecase:` makes one glob case-insensitive. An
 * included glob also includes the directories that lead to what it can match, so
 * `--include /home/me/docs --exclude '**'` keeps /home and /home/me as containers.
 * An excluded directory is not descended into. Plus --exclude-if-present NAME,
 * --exclude-other-filesystems, --exclude-caches (the Cache Directory Tagging spec, as
 * GNU tar and restic: a directory holding a valid CACHEDIR.TAG keeps only that tag) and
 * --exclude-larger-than SIZE (regular files).
 */
import type { Stats } from 'node:fs';
import { constants as fsc, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { globSource } from '../util/glob.js';
import { UsageError } from '../errors.js';

export type SelectionRule =
  | { kind: 'include' | 'exclude'; glob: string }
  | { kind: 'exclude-filelist' | 'include-filelist'; file: string };

export interface SelectionOptions {
  rules: SelectionRule[];
  excludeIfPresent?: string[];
  excludeOtherFilesystems?: boolean;
  /** Leave out the contents of directories tagged with a valid CACHEDIR.TAG (the tag stays). @default false */
  excludeCaches?: boolean;
  /** Leave out regular files larger than this many bytes. @default none */
  excludeLargerThan?: number;
}

/** https://bford.info/cachedir/: a tag file must begin with exactly these bytes. */
const CACHEDIR_TAG = 'CACHEDIR.TAG';
const CACHEDIR_SIGNATURE = Buffer.from('Signature: 8a477f597d28d172789f06886806bc55');

/** Whether `dir` holds a valid cache directory tag (a regular file that starts with the signature). */
async function isTaggedCache(dir: string): Promise<boolean> {
  let fh: fs.FileHandle | undefined;
  try {
    const tag = path.join(dir, CACHEDIR_TAG);
    if (!(await fs.lstat(tag)).isFile()) return false;
    fh = await fs.open(tag, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
    const head = Buffer.alloc(CACHEDIR_SIGNATURE.length);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return bytesRead === head.length && head.equals(CACHEDIR_SIGNATURE);
  } catch {
    return false; // no tag, or not readable: not a tagged cache
  } finally {
    await fh?.close();
  }
}

interface CompiledGlob {
  include: boolean;
  /** Matches the path itself. */
  full: RegExp;
  /** Per-component regexes, for "could something below this directory match?". */
  parts: (RegExp | '**')[];
}

export function compileGlob(raw: string, include: boolean, cwd = process.cwd()): CompiledGlob {
  let glob = raw;
  let flags = 's';
  if (glob.startsWith('ignorecase:')) {
    glob = glob.slice('ignorecase:'.length);
    flags += 'i';
  }
  if (!glob.startsWith('/') && !glob.startsWith('**')) glob = path.resolve(cwd, glob);
  if (glob.length > 1) glob = glob.replace(/\/+$/, '');
  const parts = glob
    .split('/')
    .filter((c, i) => c !== '' || i === 0)
    .slice(1)
    .map((c) => (c.includes('**') ? ('**' as const) : new RegExp(`^${globSource(c, false)}$`, flags.replace('s', ''))));
  // As duplicity: a glob matches a path and everything below it.
  return { include, full: new RegExp(`^${globSource(glob, true)}(/.*)?$`, flags), parts };
}

/** Could a path below directory `p` match? (component-wise; `**` matches anything). */
function couldContain(g: CompiledGlob, p: string): boolean {
  const comps = p.split('/').filter(Boolean);
  for (let i = 0; i < comps.length; i++) {
    const part = g.parts[i];
    if (part === undefined) return false;
    if (part === '**') return true;
    if (!part.test(comps[i]!)) return false;
  }
  return g.parts.length > comps.length;
}

function readFilelist(file: string, include: boolean): CompiledGlob[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`filelist ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const out: CompiledGlob[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('+ ')) out.push(compileGlob(line.slice(2), true));
    else if (line.startsWith('- ')) out.push(compileGlob(line.slice(2), false));
    else out.push(compileGlob(line, include));
  }
  return out;
}

export class Selection {
  readonly #globs: CompiledGlob[];
  readonly #ifPresent: string[];
  readonly #oneFs: boolean;
  readonly #caches: boolean;
  readonly #maxSize: number | undefined;
  /** Directories seen, tagged as caches or not (the walk asks per entry; one lookup per directory). */
  readonly #tagged = new Map<string, Promise<boolean>>();
  #rootDev: number | undefined;

  constructor(o: SelectionOptions) {
    this.#globs = o.rules.flatMap((r) => ('glob' in r ? [compileGlob(r.glob, r.kind === 'include')] : readFilelist(r.file, r.kind === 'include-filelist')));
    this.#ifPresent = o.excludeIfPresent ?? [];
    this.#oneFs = o.excludeOtherFilesystems ?? false;
    this.#caches = o.excludeCaches ?? false;
    this.#maxSize = o.excludeLargerThan;
  }

  get empty(): boolean {
    return this.#globs.length === 0 && this.#ifPresent.length === 0 && !this.#oneFs && !this.#caches && this.#maxSize === undefined;
  }

  /** Whether `abs` lies in a tagged cache directory (and is not its tag). */
  async #inCache(abs: string): Promise<boolean> {
    if (path.basename(abs) === CACHEDIR_TAG) return false;
    const dir = path.dirname(abs);
    let tagged = this.#tagged.get(dir);
    if (!tagged) {
      // The walk finishes a directory's entries before it leaves it: a few recent ones are enough.
      if (this.#tagged.size >= 256) this.#tagged.clear();
      tagged = isTaggedCache(dir);
      this.#tagged.set(dir, tagged);
    }
    return tagged;
  }

  setRoot(st: Stats): void {
    this.#rootDev = st.dev;
  }

  /** Whether an entry (absolute path, lstat) is backed up; excluded directories are not walked. */
  async includes(abs: string, st: Stats): Promise<boolean> {
    if (this.#oneFs && this.#rootDev !== undefined && st.dev !== this.#rootDev) return false;
    if (this.#maxSize !== undefined && st.isFile() && st.size > this.#maxSize) return false;
    if (this.#caches && (await this.#inCache(abs))) return false;
    const dir = st.isDirectory();
    for (const g of this.#globs) {
      if (g.full.test(abs)) {
        if (!g.include) return false;
        break;
      }
      // A directory on the way to what an include can match is kept as a container.
      if (g.include && dir && couldContain(g, abs)) break;
    }
    if (dir) {
      for (const name of this.#ifPresent) {
        try {
          await fs.access(path.join(abs, name));
          return false;
        } catch {
          // not present
        }
      }
    }
    return true;
  }
}
