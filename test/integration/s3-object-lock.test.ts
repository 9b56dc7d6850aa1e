/** S3 Object Lock on the real S3 server (radosgw, a bucket created with Object Lock). */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, DeleteObjectCommand, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { expect, test } from '@jest/globals';
import { listAll } from '../../src/backend/backend.js';
import { S3Backend } from '../../src/backend/s3.js';
import { parseName } from '../../src/chain/file-naming.js';
import { ExitCode } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { describeS3, S3_CREDS, S3_ENDPOINT, S3_ENV } from '../helpers/s3.js';
import { tempDirs } from '../helpers/tmp.js';
import { describeTree, treeDiff } from '../helpers/tree.js';
import { nextSecond } from '../helpers/wait.js';

const tmp = tempDirs();
const DAY = 86400;

describeS3('S3 Object Lock', () => {
  test('--object-lock-days locks every file of a chain until its planned end plus N days; a delete fails, status shows it, prune keeps the chain and says until when; the chain restores', async () => {
    const dir = tmp('lock');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'a'), Buffer.alloc(300_000, 7));
    const bucket = `tc-lock-${process.pid}-${Date.now().toString(36)}`;
    const c = new S3Client({ endpoint: S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDS });
    await c.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    c.destroy();
    const target = `s3://${bucket}/l`;
    const s3 = ['--s3-endpoint', S3_ENDPOINT!];
    const env = { ...S3_ENV, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    const b = await runCli(['backup', ...s3, '--volsize', '0.25', '--full-if-older-than', '7D', '--object-lock-days', '2', src, target], env);
    expect({ code: b.code, stderr: b.stderr }).toEqual({ code: 0, stderr: '' });
    const backend = new S3Backend({ bucket, prefix: 'l', endpoint: S3_ENDPOINT!, credentials: S3_CREDS });
    const files = (await listAll(backend)).filter((o) => parseName(o.name));
    expect(files.length).toBeGreaterThanOrEqual(4); // volumes, signature file, manifest
    const start = parseName(files[0]!.name)!.start;
    for (const f of files) {
      const r = await backend.retention(f.name);
      expect({ name: f.name, mode: r?.mode, until: r ? Math.floor(r.until.getTime() / 1000) : undefined }).toEqual({ name: f.name, mode: 'GOVERNANCE', until: start + 9 * DAY });
    }
    // the locked version cannot be deleted (a plain delete in a versioned bucket only adds a marker)
    const vol = files.find((f) => parseName(f.name)?.kind === 'volume')!;
    const client = new S3Client({ endpoint: S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDS });
    const versions = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: `l/${vol.name}` }));
    const versionId = versions.Versions?.[0]?.VersionId;
    expect(versionId).toBeDefined();
    await expect(client.send(new DeleteObjectCommand({ Bucket: bucket, Key: `l/${vol.name}`, VersionId: versionId }))).rejects.toMatchObject({ name: 'AccessDenied' });
    client.destroy();

    const st = await runCli(['status', ...s3, target], env);
    expect(st.stdout).toMatch(/^Chain 1: .* locked until .* \(governance\)$/m);
    expect(JSON.parse((await runCli(['status', '--json', ...s3, target], env)).stdout).chains[0]).toMatchObject({ lockedUntil: start + 9 * DAY, lockMode: 'GOVERNANCE' });

    await nextSecond();
    expect((await runCli(['backup', '--full', ...s3, src, target], env)).code).toBe(0);
    const before = (await listAll(backend)).length;
    const p = await runCli(['prune', '--keep-full', '1', '--force', ...s3, target], env);
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(/^keeping the full set \d{8}T\d{6}Z and its chain: locked until .* \(object lock, governance\); it can be deleted after that$/m);
    expect(p.stdout).toMatch(/^Nothing to prune\.$/m);
    expect((await listAll(backend)).length).toBe(before);

    const out = join(dir, 'out');
    expect((await runCli(['restore', ...s3, '--time', String(start), target, out], { ...env, XDG_CACHE_HOME: join(dir, 'c2') })).code).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(out))).toEqual([]);
    await backend.close();
  });

  test('an object stored in parts (multipart) carries its retention too', async () => {
    const dir = tmp('lockmp');
    const bucket = `tc-lockmp-${process.pid}-${Date.now().toString(36)}`;
    const c = new S3Client({ endpoint: S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDS });
    await c.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    c.destroy();
    const backend = new S3Backend({ bucket, prefix: 'm', endpoint: S3_ENDPOINT!, credentials: S3_CREDS, multipartThreshold: 5 << 20, partSize: 5 << 20 });
    const file = join(dir, 'big');
    fs.writeFileSync(file, Buffer.alloc(12 << 20, 3));
    const until = new Date((Math.floor(Date.now() / 1000) + 3 * DAY) * 1000);
    await backend.put('duplicity-full.20260101T000000Z.vol1.difftar.gpg', {
      size: 12 << 20,
      retention: { mode: 'GOVERNANCE', until },
      open: () => fs.createReadStream(file),
      openRange: (start, end) => fs.createReadStream(file, { start, end: end - 1 }),
    });
    expect(await backend.retention('duplicity-full.20260101T000000Z.vol1.difftar.gpg')).toEqual({ mode: 'GOVERNANCE', until });
    await backend.close();
  });

  test('--object-lock-days on a target that cannot lock is a usage error', async () => {
    const dir = tmp('lock-local');
    fs.mkdirSync(join(dir, 'src'));
    const r = await runCli(['backup', '--object-lock-days', '2', join(dir, 'src'), join(dir, 't')], { PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') });
    expect(r.code).toBe(ExitCode.USAGE);
    expect(r.stderr).toMatch(/--object-lock-days: .* cannot keep objects locked \(S3 Object Lock\): only s3:\/\/ targets can/);
    expect((await runCli(['backup', '--object-lock-mode', 'strict', '--object-lock-days', '2', join(dir, 'src'), join(dir, 't')], { PASSPHRASE: 'p' })).stderr).toMatch(/--object-lock-mode: expected governance or compliance, got "strict"/);
  });
});
