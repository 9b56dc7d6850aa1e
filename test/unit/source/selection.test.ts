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
});
