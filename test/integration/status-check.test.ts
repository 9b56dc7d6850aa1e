/** status --check on real targets: the verdicts and exit codes monitoring relies on. */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { FaultyBackend } from '../../src/backend/faulty.js';
import { FileBackend } from '../../src/backend/file.js';
import { runBackup } from '../../src/backup/backup.js';
import { SymmetricEncryptor } from '../../src/crypto/encrypt.js';
import { ExitCode } from '../../src/errors.js';
import { ArchiveCache } from '../../src/repo/archive-cache.js';
import { runCli } from '../helpers/cli.js';
import { tempDirs } from '../helpers/tmp.js';
import { nextSecond } from '../helpers/wait.js';

const tmp = tempDirs();

describe('status --check', () => {
  test('OK; stale verify until a verify ran; an incomplete set; a broken chain; each with its exit code and one line', async () => {
    const dir = tmp('check');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'a'), 'a');
    const target = join(dir, 't');
    const env = { PASSPHRASE: 'pw', XDG_CACHE_HOME: join(dir, 'cache') };
    const check = async (...args: string[]) => {
      const r = await runCli(['status', '--check', ...args, target], env);
      expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
      return { code: r.code, line: r.stdout.trim() };
    };
    expect((await runCli(['backup', src, target], env)).code).toBe(0);
    expect(await check('--max-age', '26h')).toEqual({ code: 0, line: expect.stringMatching(/^OK: last backup \d+s ago, no verify recorded$/) });
    expect(await check('--max-age', '26h', '--max-verify-age', '8D')).toEqual({ code: ExitCode.STALE_VERIFY, line: 'STALE VERIFY: no verify of these sets is recorded in the local cache' });
    expect((await runCli(['verify', target], env)).code).toBe(0);
    expect(await check('--max-verify-age', '8D')).toEqual({ code: 0, line: expect.stringMatching(/^OK: last backup \d+s ago, last verify \d+s ago$/) });
    const json = JSON.parse((await runCli(['status', '--check', '--json', target], env)).stdout) as { state: string; findings: string[] };
    expect(json).toMatchObject({ state: 'ok', findings: [] });

    // an interrupted incremental: its volumes are there, its manifest is not
    await nextSecond();
    fs.writeFileSync(join(src, 'b'), 'b');
    const failing = new FaultyBackend(new FileBackend(target), [{ method: 'put', match: /manifest/, kind: 'permanent' }]);
    const backup = (backend: FileBackend | FaultyBackend) =>
      runBackup({ source: src, backend, encryptor: new SymmetricEncryptor(Buffer.from('pw'), { codedCount: 96 }), keys: { passphrase: Buffer.from('pw') }, cache: new ArchiveCache(join(dir, 'other-cache')) });
    await expect(backup(failing)).rejects.toThrow(/manifest/);
    expect(await check()).toEqual({ code: ExitCode.INCOMPLETE_SET, line: expect.stringMatching(/^INCOMPLETE SET: 1 incomplete set\(s\)/) });

    // the interrupted set completed, then one more incremental; losing the middle manifest orphans the last
    await backup(new FileBackend(target));
    await nextSecond();
    fs.writeFileSync(join(src, 'c'), 'c');
    await backup(new FileBackend(target));
    const manifests = fs.readdirSync(target).filter((n) => /^duplicity-inc\..*\.manifest/.test(n)).sort();
    expect(manifests).toHaveLength(2);
    fs.rmSync(join(target, manifests[0]!));
    const broken = await check('--max-age', '26h');
    expect(broken.code).toBe(ExitCode.BROKEN_CHAIN);
    expect(broken.line).toMatch(/^BROKEN CHAIN: 1 incremental set\(s\) that no chain accepts .*; 1 incomplete set\(s\)/);
  });

  test('a target without a backup is "nothing found" (4); --max-age without --check, or a bad age, is a usage error', async () => {
    const dir = tmp('check-none');
    fs.mkdirSync(join(dir, 't'));
    expect((await runCli(['status', '--check', join(dir, 't')])).code).toBe(ExitCode.NOT_FOUND);
    const r = await runCli(['status', '--max-age', '26h', join(dir, 't')]);
    expect({ code: r.code, err: r.stderr }).toEqual({ code: ExitCode.USAGE, err: expect.stringMatching(/--max-age and --max-verify-age go with --check/) });
    expect((await runCli(['status', '--check', '--max-age', '26 hours', join(dir, 't')])).stderr).toMatch(/--max-age: expected an age such as 26h, 8D or 1W, got "26 hours"/);
  });
});
