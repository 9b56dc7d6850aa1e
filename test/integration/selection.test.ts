/** File selection on a real run: --exclude-caches and --exclude-larger-than through backup, ls, restore. */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { ExitCode } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';

const tmp = tempDirs();
const SIG = 'Signature: 8a477f597d28d172789f06886806bc55\n';

/** The restored tree: relative path → size (directories -1). */
function listing(root: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (rel: string) => {
    for (const n of fs.readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(join(root, r));
      out[r] = st.isDirectory() ? -1 : st.size;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

describe('selection options', () => {
  test('--exclude-caches keeps a tagged directory and its tag only; --exclude-larger-than leaves out bigger files; an incremental that starts excluding records them as deleted', async () => {
    const dir = tmp('sel');
    const src = join(dir, 'src');
    const files: Record<string, string | Buffer> = {
      'docs/a.txt': 'a',
      'docs/big.iso': Buffer.alloc(5000),
      'build/CACHEDIR.TAG': SIG,
      'build/obj/x.o': 'object',
      'later/data': 'becomes a cache',
    };
    for (const [f, data] of Object.entries(files)) {
      fs.mkdirSync(join(src, f, '..'), { recursive: true });
      fs.writeFileSync(join(src, f), data);
    }
    const target = join(dir, 't');
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') };
    const opts = ['--exclude-caches', '--exclude-larger-than', '4k'];
    expect((await runCli(['backup', ...opts, src, target], env)).code).toBe(0);
    const first = join(dir, 'first');
    expect((await runCli(['restore', target, first], env)).code).toBe(0);
    expect(listing(first)).toEqual({ build: -1, 'build/CACHEDIR.TAG': SIG.length, docs: -1, 'docs/a.txt': 1, later: -1, 'later/data': 15 });
    fs.writeFileSync(join(src, 'later/CACHEDIR.TAG'), SIG);
    const inc = await runCli(['backup', ...opts, src, target], env);
    expect(inc.code).toBe(0);
    const second = join(dir, 'second');
    expect((await runCli(['restore', target, second], env)).code).toBe(0);
    expect(listing(second)).toEqual({ build: -1, 'build/CACHEDIR.TAG': SIG.length, docs: -1, 'docs/a.txt': 1, later: -1, 'later/CACHEDIR.TAG': SIG.length });
  });

  test.each(['4x', '', '-1', 'k'])('--exclude-larger-than "%s" is a usage error', async (size) => {
    const dir = tmp('sel-bad');
    fs.mkdirSync(join(dir, 'src'));
    const r = await runCli(['backup', '--exclude-larger-than', size, join(dir, 'src'), join(dir, 't')], { PASSPHRASE: 'pw' });
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.stderr).toMatch(/--exclude-larger-than: expected a size such as 500, 64k, 1\.5M or 2G/);
    expect(fs.existsSync(join(dir, 't'))).toBe(false);
  });
});
