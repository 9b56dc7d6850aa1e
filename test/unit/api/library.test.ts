/**
 * The library entry (dist/index.js, as built by `npm test`) does not load the AWS SDK:
 * a user of the local backend or the format code does not pay its ~22 MB; the S3
 * backend is its own entry, 'tapechain/s3'.
 */
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempDirs } from '../../helpers/tmp.js';

const tmp = tempDirs();

/** The bare specifiers under `prefix` resolved while importing `entry`. */
function resolvedWhileImporting(entry: string, prefix: string): string[] {
  const dir = tmp('api');
  const hook = join(dir, 'hook.mjs');
  fs.writeFileSync(hook, `export async function resolve(s, c, next) { if (s.startsWith(${JSON.stringify(prefix)})) process.stdout.write('RESOLVED ' + s + '\\n'); return next(s, c); }\n`);
  const main = join(dir, 'main.mjs');
  fs.writeFileSync(main, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\nawait import(${JSON.stringify(pathToFileURL(resolve(entry)).href)});\n`);
  const r = spawnSync(process.execPath, [main], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout.split('\n').filter((l) => l.startsWith('RESOLVED ')).map((l) => l.slice(9));
}

describe('library entry points', () => {
  test('importing the library loads no AWS SDK module; importing the S3 entry does', () => {
    expect(resolvedWhileImporting('dist/index.js', '@aws-sdk/')).toEqual([]);
    expect(resolvedWhileImporting('dist/backend/s3.js', '@aws-sdk/').length).toBeGreaterThan(0);
  });

  test('package.json names both entries', () => {
    const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));
    expect(pkg.exports['.'].default).toBe('./dist/index.js');
    expect(pkg.exports['./s3'].default).toBe('./dist/backend/s3.js');
  });
});
