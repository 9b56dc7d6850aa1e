/**
 * Append-only credentials on a real S3 server (radosgw): a second key of the account
 * (subuser test:append) that a bucket policy denies deletes: it may put, get and list. Backups (full, incremental, resumed
 * after kill -9) complete with them; what they cannot delete is marked released and
 * left for cleanup with full credentials.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { PutBucketPolicyCommand, S3Client } from '@aws-sdk/client-s3';
import { expect, test } from '@jest/globals';
import { listAll } from '../../src/backend/backend.js';
import { S3Backend } from '../../src/backend/s3.js';
import { PermanentBackendError } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { describeS3, newBucket, S3_CREDS, S3_ENDPOINT, S3_ENV } from '../helpers/s3.js';
import { tempDirs } from '../helpers/tmp.js';
import { describeTree, treeDiff } from '../helpers/tree.js';
import { until } from '../helpers/wait.js';

const tmp = tempDirs();
const APPEND = { accessKeyId: 'APPENDKEY', secretAccessKey: 'APPENDSECRET' };
const APPEND_ENV = { AWS_ACCESS_KEY_ID: APPEND.accessKeyId, AWS_SECRET_ACCESS_KEY: APPEND.secretAccessKey, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };

/** A bucket in which the key test:append may write and read but not delete. */
async function appendOnlyBucket(): Promise<string> {
  const bucket = await newBucket('append');
  const c = new S3Client({ endpoint: S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDS });
  const policy = {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Deny',
        Principal: { AWS: ['arn:aws:iam:::user/test:append'] },
        Action: ['s3:DeleteObject', 's3:DeleteObjectVersion'],
        Resource: [`arn:aws:s3:::${bucket}/*`],
      },
    ],
  };
  await c.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }));
  c.destroy();
  return bucket;
}

describeS3('append-only credentials (S3 bucket policy without delete)', () => {
  test('full, incremental and a backup resumed after kill -9 complete; locks are marked released; cleanup with full credentials removes them', async () => {
    const dir = tmp('append');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 8; i++) fs.writeFileSync(join(src, `f${i}`), randomBytes(1 << 20));
    const bucket = await appendOnlyBucket();
    const target = `s3://${bucket}/a`;
    const s3 = ['--s3-endpoint', S3_ENDPOINT!];
    const env = { ...APPEND_ENV, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    const restricted = new S3Backend({ bucket, prefix: 'a', endpoint: S3_ENDPOINT!, credentials: APPEND });
    // the policy holds: these credentials may not delete
    await restricted.put('probe', { size: 1, open: () => fs.createReadStream(join(src, 'f0'), { end: 0 }) });
    await expect(restricted.delete('probe')).rejects.toBeInstanceOf(PermanentBackendError);

    const full = await runCli(['backup', ...s3, '--volsize', '1', src, target], env);
    expect(full.code).toBe(0);
    expect(full.stderr).toMatch(/warning: cannot delete on .*: lock objects are marked released instead/);
    fs.appendFileSync(join(src, 'f1'), 'more');
    const inc = await runCli(['backup', ...s3, '--append-only', '--volsize', '1', src, target], env);
    expect({ code: inc.code, stderr: inc.stderr }).toEqual({ code: 0, stderr: '' }); // --append-only: no delete tried, nothing to warn about

    // kill -9 during a full, with the restricted key; the next run resumes it
    for (let i = 8; i < 16; i++) fs.writeFileSync(join(src, `f${i}`), randomBytes(1 << 20));
    const args = ['backup', ...s3, '--append-only', '--full', '--volsize', '1', '--compress-level', '9', src, target];
    const p = spawn('bin/tapechain', args, { env: { ...process.env, ...env } });
    const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    let done = false;
    void exited.then(() => (done = true));
    const volumesOfNewFull = async () => (await listAll(restricted)).filter((o) => /^duplicity-full\..*\.vol\d+\./.test(o.name)).length;
    const base = await volumesOfNewFull();
    await until(async () => done || (await volumesOfNewFull()) >= base + 3, 'three volumes of the new full on S3');
    p.kill('SIGKILL');
    expect(await exited).toBeNull();
    const resumed = spawnSync('bin/tapechain', args, { env: { ...process.env, ...env } });
    expect(resumed.status).toBe(0);
    expect(resumed.stderr.toString()).toMatch(/Resuming the interrupted set after volume \d+/);

    const out = join(dir, 'out');
    expect((await runCli(['restore', ...s3, target, out], { ...env, XDG_CACHE_HOME: join(dir, 'cache2') })).code).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(out))).toEqual([]);

    // the killed run's lock stays; the released ones are tidied by cleanup with full credentials
    const owner = { ...S3_ENV, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache3') };
    const locks = async () => (await listAll(restricted)).filter((o) => o.name.startsWith('tapechain-lock')).length;
    expect(await locks()).toBeGreaterThanOrEqual(3);
    const clean = await runCli(['cleanup', ...s3, '--force', target], owner);
    expect({ code: clean.code, stderr: clean.stderr }).toEqual({ code: 0, stderr: '' });
    expect(clean.stdout).toMatch(/deleted tapechain-lock-[0-9a-f]+\.json/);
    await restricted.close();
  });
});
