/**
 * Exit 70 is for bugs only. Every stored file of a small chain is damaged in every way a
 * disk, a network or a person damages files, and restore, verify and ls each end with
 * one line and a documented exit code — never 70.
 */
import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ExitCode } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';

const tmp = tempDirs();

type Damage = [string, (b: Buffer) => Buffer];
const damages: Damage[] = [
  ['emptied', () => Buffer.alloc(0)],
  ['cut to 1 byte', (b) => b.subarray(0, 1)],
  ['cut to half', (b) => b.subarray(0, b.length >> 1)],
  ['last byte cut', (b) => b.subarray(0, b.length - 1)],
  ['a byte flipped near the start', (b) => flip(b, Math.min(40, b.length - 1))],
  ['a byte flipped in the middle', (b) => flip(b, b.length >> 1)],
  ['garbage appended', (b) => Buffer.concat([b, randomBytes(700)])],
  ['replaced by garbage', (b) => randomBytes(b.length)],
];

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x55;
  return c;
}

const documented = new Set<number>([ExitCode.NOT_FOUND, ExitCode.BACKEND, ExitCode.INTEGRITY, ExitCode.DECRYPT, ExitCode.FORMAT]);

describe.each([
  ['encrypted', []],
  ['gzip (--no-encryption)', ['--no-encryption']],
])('%s chain: every damaged file gives a documented exit code and one line', (_label, flags) => {
  test('full + incremental, each file damaged each way', async () => {
    const dir = tmp('damage');
    const src = join(dir, 'src');
    fs.mkdirSync(join(src, 'd'), { recursive: true });
    fs.writeFileSync(join(src, 'big'), randomBytes(1_500_000));
    fs.writeFileSync(join(src, 'd', 'small'), 'small');
    const pristine = join(dir, 'pristine');
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') };
    expect((await runCli(['backup', ...flags, '--volsize', '1', src, pristine], env)).code).toBe(0);
    fs.appendFileSync(join(src, 'big'), randomBytes(100_000));
    fs.writeFileSync(join(src, 'd', 'new'), 'new');
    expect((await runCli(['backup', ...flags, '--volsize', '1', src, pristine], env)).code).toBe(0);
    const seen: string[] = [];
    for (const file of fs.readdirSync(pristine).filter((n) => n.startsWith('duplicity-'))) {
      for (const [how, damage] of damages) {
        const target = join(dir, 'target');
        fs.rmSync(target, { recursive: true, force: true });
        fs.cpSync(pristine, target, { recursive: true });
        fs.writeFileSync(join(target, file), damage(fs.readFileSync(join(pristine, file))));
        // no cache: every command reads what is stored
        const cold = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, `cold-${seen.length}`) };
        for (const cmd of [['restore', target, join(dir, `out-${seen.length}`)], ['verify', target], ['ls', target]]) {
          const r = await runCli(cmd, cold);
          const lines = r.stderr.split('\n').filter((l) => l.startsWith('tapechain: '));
          const what = `${cmd[0]} with ${file} ${how}`;
          seen.push(what);
          // verify reads every stored file, restore every manifest and volume; ls may not
          // need the damaged file, and a plain manifest (--no-encryption) has no integrity
          // check of its own: a cut final newline changes nothing it says
          const plainManifest = /\.manifest$/.test(file);
          const mustFail = !plainManifest && (cmd[0] === 'verify' || (cmd[0] === 'restore' && !file.includes('sigtar')));
          expect({ what, failed: r.code !== 0 || !mustFail }).toEqual({ what, failed: true });
          if (r.code === 0) continue;
          expect({ what, code: r.code, internal: /internal error/.test(r.stderr) }).toEqual({ what, code: expect.any(Number), internal: false });
          expect({ what, documented: documented.has(r.code) || r.code === ExitCode.DESTINATION }).toEqual({ what, documented: true });
          if (cmd[0] !== 'verify') expect({ what, lines: lines.length }).toEqual({ what, lines: 1 });
        }
        fs.rmSync(join(dir, `out-${seen.length - 3}`), { recursive: true, force: true });
      }
    }
    expect(seen.length).toBeGreaterThan(100);
  });
});
