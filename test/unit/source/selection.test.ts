import { describe, expect, test } from '@jest/globals';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { compileGlob, Selection } from '../../../src/source/selection.js';
import { tempDirs } from '../../helpers/tmp.js';

const tmp = tempDirs();

describe('duplicity glob rules', () => {
  const m = (g: string, p: string) => compileGlob(g, true, '/cwd').full.test(p);
  test.each([
    ['**/node_modules', '/a/b/node_modules', true],
    ['/a/*.txt', '/a/b.txt', true],
    ['/a/*.txt', '/a/b/c.txt', false],
    ['/a/b', '/a/b/deep/file', true], // a glob covers what is below it
    ['/a/**.txt', '/a/b/c.txt', true],
    ['/a/?.md', '/a/x.md', true],
    ['/a/?.md', '/a/xy.md', false],
    ['/a/[bc]1', '/a/c1', true],
    ['/a/[!bc]1', '/a/b1', false],
    ['ignorecase:/Docs/*.PDF', '/docs/x.pdf', true],
    ['rel/dir', '/cwd/rel/dir', true],
    ['/a.b', '/axb', false],
  ])('%s ~ %s: %s', (g, p, want) => expect(m(g, p)).toBe(want));
});

describe('selection', () => {
  test('first match wins; included paths keep their parent directories; excluded directories are pruned', async () => {
    const d = tmp('sel');
    for (const f of ['keep/docs/a.txt', 'keep/other.txt', 'skip/x.txt', 'cache/.nobackup', 'cache/big.bin']) {
      fs.mkdirSync(join(d, f, '..'), { recursive: true });
      fs.writeFileSync(join(d, f), 'x');
    }
    const sel = new Selection({ rules: [{ kind: 'include', glob: join(d, 'keep/docs') }, { kind: 'exclude', glob: join(d, 'keep/**') }, { kind: 'exclude', glob: join(d, 'skip') }], excludeIfPresent: ['.nobackup'] });
    const st = (p: string) => fs.lstatSync(join(d, p));
    const inc = (p: string) => sel.includes(join(d, p), st(p));
    expect(await inc('keep')).toBe(true); // a container of keep/docs
    expect(await inc('keep/docs')).toBe(true);
    expect(await inc('keep/docs/a.txt')).toBe(true); // below an included directory
    expect(await inc('keep/other.txt')).toBe(false);
    expect(await inc('skip')).toBe(false);
    expect(await inc('cache')).toBe(false); // holds .nobackup
  });

  test('filelists: one glob per line, + and - prefixes', async () => {
    const d = tmp('fl');
    fs.mkdirSync(join(d, 'a'));
    fs.writeFileSync(join(d, 'a', 'x.log'), '');
    fs.writeFileSync(join(d, 'a', 'y.txt'), '');
    fs.writeFileSync(join(d, 'list'), `# comment\n+ ${join(d, 'a/y.txt')}\n- ${join(d, 'a/*')}\n`);
    const sel = new Selection({ rules: [{ kind: 'exclude-filelist', file: join(d, 'list') }] });
    expect(await sel.includes(join(d, 'a/y.txt'), fs.lstatSync(join(d, 'a/y.txt')))).toBe(true);
    expect(await sel.includes(join(d, 'a/x.log'), fs.lstatSync(join(d, 'a/x.log')))).toBe(false);
  });

  test('--exclude-caches: a directory with a valid CACHEDIR.TAG keeps only the tag; a tag without the signature, or a symlink named so, tags nothing', async () => {
    const d = tmp('caches');
    const sig = 'Signature: 8a477f597d28d172789f06886806bc55\n# a cache (https://bford.info/cachedir/)\n';
    const files: Record<string, string> = { 'c/CACHEDIR.TAG': sig, 'c/blob': 'x', 'c/sub/deep': 'x', 'fake/CACHEDIR.TAG': 'Signature: 0000', 'fake/data': 'x', 'plain/data': 'x', 'target/CACHEDIR.TAG': sig };
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(join(d, f, '..'), { recursive: true });
      fs.writeFileSync(join(d, f), text);
    }
    fs.mkdirSync(join(d, 'linked'));
    fs.symlinkSync(join(d, 'target/CACHEDIR.TAG'), join(d, 'linked/CACHEDIR.TAG'));
    fs.writeFileSync(join(d, 'linked/data'), 'x');
    const sel = new Selection({ rules: [], excludeCaches: true });
    expect(sel.empty).toBe(false);
    const inc = (p: string) => sel.includes(join(d, p), fs.lstatSync(join(d, p)));
    expect(await inc('c')).toBe(true); // the directory stays, as in GNU tar and restic
    expect(await inc('c/CACHEDIR.TAG')).toBe(true);
    expect(await inc('c/blob')).toBe(false);
    expect(await inc('c/sub')).toBe(false); // not entered
    expect(await inc('fake/data')).toBe(true);
    expect(await inc('plain/data')).toBe(true);
    expect(await inc('linked/data')).toBe(true);
    expect(await new Selection({ rules: [] }).includes(join(d, 'c/blob'), fs.lstatSync(join(d, 'c/blob')))).toBe(true);
  });

  test('--exclude-larger-than: regular files over the size are left out, nothing else', async () => {
    const d = tmp('larger');
    fs.writeFileSync(join(d, 'small'), Buffer.alloc(1024));
    fs.writeFileSync(join(d, 'big'), Buffer.alloc(1025));
    fs.mkdirSync(join(d, 'dir'));
    fs.symlinkSync('big', join(d, 'link'));
    const sel = new Selection({ rules: [], excludeLargerThan: 1024 });
    const inc = (p: string) => sel.includes(join(d, p), fs.lstatSync(join(d, p)));
    expect([await inc('small'), await inc('big'), await inc('dir'), await inc('link')]).toEqual([true, false, true, true]);
  });
});
