/**
 * Sets restored entries' extended attributes (POSIX ACLs and file capabilities among
 * them). Called after content and owner — chown clears `security.capability` — and
 * before mode and times. What this process may not set (`trusted.*` and
 * `security.*` without root, any on a filesystem without xattrs) is a warning once
 * per kind, not per file: a restore as a user of a tree with capabilities would
 * otherwise print one line per file.
 *
 * A path that is not valid UTF-8 goes through the python3 helper, asynchronously: its
 * xattrs are set by the time `settled()` resolves (after its mode: setxattr leaves the
 * mode and mtime alone, and the ACL's mask is the mode's group bits either way).
 */
import { setXattr, setXattrSync, XattrError, type Xattr } from '../util/xattr.js';

export class XattrWriter {
  readonly #onWarning: ((message: string) => void) | undefined;
  /** Kinds (namespace and errno) already warned about. */
  readonly #warned = new Set<string>();
  /** Xattrs that could not be set. */
  skipped = 0;
  /** Settings under way through the helper. */
  readonly #pending = new Set<Promise<void>>();

  constructor(onWarning: ((message: string) => void) | undefined) {
    this.#onWarning = onWarning;
  }

  /** Sets `xattrs` on `p` (not followed when it is a symlink); `shown` names it in warnings. */
  apply(p: Buffer, xattrs: Xattr[] | undefined, shown: () => string): void {
    if (!xattrs) return;
    for (const x of xattrs) {
      try {
        setXattrSync(p, x);
      } catch (e) {
        if (e instanceof XattrError && e.code === 'NOT_UTF8') this.#later(p, x, shown);
        else this.#failed(x.name, e, shown);
      }
    }
  }

  #later(p: Buffer, x: Xattr, shown: () => string): void {
    const done: Promise<void> = setXattr(p, x).then(
      () => void this.#pending.delete(done),
      (e: unknown) => {
        this.#pending.delete(done);
        this.#failed(x.name, e, shown);
      },
    );
    this.#pending.add(done);
  }

  /** Every xattr applied so far is set (or warned about). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
  }

  #failed(name: string, e: unknown, shown: () => string): void {
    this.skipped++;
    this.#warn(name, e, shown);
  }

  #warn(name: string, e: unknown, shown: () => string): void {
    const code = e instanceof XattrError ? e.code : 'EIO';
    const namespace = name.split('.')[0] ?? name;
    const kind = `${namespace}.* ${code}`;
    if (this.#warned.has(kind)) return;
    this.#warned.add(kind);
    const why = code === 'EPERM' ? 'not permitted (needs root)' : code === 'ENOTSUP' ? 'the destination filesystem does not support it' : (e as Error).message;
    this.#onWarning?.(`${shown()}: extended attribute ${name} not restored: ${why} (${code}); not repeated for other ${namespace}.* attributes`);
  }
}
