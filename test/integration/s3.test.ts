/**
 * The S3 target end to end against a real S3 server (radosgw): backups and restores by
 * tapechain and by real duplicity on the same bucket, and failures injected into the
 * uploads.
 */
import { expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { runBackup } from '../../src/backup/backup.js';
import { cleanupUploads } from '../../src/inspect/prune.js';
import { listAll } from '../../src/backend/backend.js';
import { FaultyBackend } from '../../src/backend/faulty.js';
import { S3Backend } from '../../src/backend/s3.js';
import { RetryBackend } from '../../src/backend/wrappers.js';
import type { PutSource } from '../../src/backend/backend.js';
import { GrowingFile } from '../../src/backup/growing-file.js';
import { SymmetricEncryptor } from '../../src/crypto/encrypt.js';
import { runRestore } from '../../src/restore/restore.js';
import { runCli } from '../helpers/cli.js';
import { describeS3, newBucket, S3_CREDS, S3_ENDPOINT, S3_ENV } from '../helpers/s3.js';
import { leftRunTempDirs, tempDirs } from '../helpers/tmp.js';
import { duplicity } from '../helpers/tools.js';
import { describeTree, makeTrickyTree, treeDiff } from '../helpers/tree.js';
import { nextSecond, until } from '../helpers/wait.js';

const tmp = tempDirs();

describeS3('S3 target', () => {
  test('a missing bucket is one clear line; --s3-create-bucket creates it', async () => {
    const dir = tmp('mkbucket');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'a'), 'a');
    const target = `s3://tc-created-${process.pid}-${Date.now().toString(36)}/x`;
    const env = { ...S3_ENV, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    const missing = await runCli(['backup', '--s3-endpoint', S3_ENDPOINT!, src, target], env);
    expect(missing.code).toBe(5);
    expect(missing.stderr.trim().split('\n')).toEqual([expect.stringMatching(/the bucket does not exist .*--s3-create-bucket/)]);
    const made = await runCli(['backup', '--s3-create-bucket', '--s3-endpoint', S3_ENDPOINT!, src, target], env);
    expect(made.stderr).toMatch(/Created the bucket/);
    expect(made.code).toBe(0);
    const again = await runCli(['backup', '--s3-create-bucket', '--s3-endpoint', S3_ENDPOINT!, src, target], env);
    expect({ code: again.code, created: /Created/.test(again.stderr) }).toEqual({ code: 0, created: false });
    expect((await runCli(['backup', '--s3-create-bucket', src, join(dir, 'local')], env)).code).toBe(2);
  });

  test('--limit-upload and --limit-download hold the transfer rates of a backup and a restore', async () => {
    const dir = tmp('s3limit');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(join(src, 'data.bin'), randomBytes(768 << 10));
    const bucket = await newBucket('limit');
    const target = `s3://${bucket}/l`;
    const env = { ...S3_ENV, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    const s3 = ['--s3-endpoint', S3_ENDPOINT!];
    // 768 KiB of incompressible data at 256 KiB/s: at least 3 s less the first 16 KiB step
    const atLeast = (768 - 16) / 256;
    let t0 = performance.now();
    const b = await runCli(['backup', ...s3, '--limit-upload', '256', src, target], env);
    expect(b.code).toBe(0);
    expect((performance.now() - t0) / 1000).toBeGreaterThanOrEqual(atLeast);
    t0 = performance.now();
    const r = await runCli(['restore', ...s3, '--limit-download', '256', target, join(dir, 'out')], env);
    expect(r.code).toBe(0);
    expect((performance.now() - t0) / 1000).toBeGreaterThanOrEqual(atLeast);
    expect(fs.readFileSync(join(dir, 'out', 'data.bin')).equals(fs.readFileSync(join(src, 'data.bin')))).toBe(true);
    const bad = await runCli(['backup', ...s3, '--limit-upload', '0', src, target], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--limit-upload: expected KiB per second \(a number above 0\), got "0"/);
  });

  test('full + incremental by tapechain; restored by tapechain and by duplicity', async () => {
    const dir = tmp('s3');
    const src = join(dir, 'src');
    makeTrickyTree(src);
    const bucket = await newBucket('tc');
    const target = `s3://${bucket}/backups/host1`;
    const env = { ...S3_ENV, PASSPHRASE: 's3 pass', XDG_CACHE_HOME: join(dir, 'cache') };
    const s3 = ['--s3-endpoint', S3_ENDPOINT!];
    const full = await runCli(['backup', ...s3, '--volsize', '2', src, target], env);
    expect(full.stderr).toBe('');
    expect(full.code).toBe(0);
    fs.appendFileSync(join(src, 'several-mib.bin'), randomBytes(1000));
    // whole-second mtimes: make the change visible even within the backup's second
    fs.utimesSync(join(src, 'several-mib.bin'), new Date(Date.now() + 5000), new Date(Date.now() + 5000));
    fs.writeFileSync(join(src, 'new on s3.txt'), 'new\n');
    const inc = await runCli(['backup', ...s3, '--volsize', '2', src, target], env);
    expect(inc.stdout).toMatch(/^Incremental/);
    const want = describeTree(src);
    const out = join(dir, 'out');
    const r = await runCli(['restore', ...s3, target, out], { ...env, XDG_CACHE_HOME: join(dir, 'cache2') });
    expect(r.code).toBe(0);
    expect(treeDiff(want, describeTree(out))).toEqual([]);
    // verify with two lanes: the volumes are downloaded to a temp dir, gone after
    const venv = { ...env, XDG_CACHE_HOME: join(dir, 'cache3') };
    const v1 = await runCli(['verify', ...s3, '--jobs', '1', target], venv);
    const v2 = await runCli(['verify', ...s3, '--jobs', '2', target], venv);
    expect(v2.code).toBe(0);
    expect(v2.stdout).toEqual(v1.stdout);
    expect(v2.stdout).toMatch(/ 0 problem\(s\)/);
    expect(leftRunTempDirs('verify')).toEqual([]);
    const d = duplicity(
      ['restore', '--s3-endpoint-url', S3_ENDPOINT!, '--archive-dir', join(dir, 'dupcache'), '--name', 's', `boto3+s3://${bucket}/backups/host1`, join(dir, 'dup-out')],
      dir,
      env,
    );
    expect(d.stderr).not.toMatch(/Traceback/);
    expect(d.status).toBe(0);
    expect(treeDiff(want, describeTree(join(dir, 'dup-out')))).toEqual([]);
  });

  test('tapechain restores and extends a chain duplicity put on S3', async () => {
    const dir = tmp('s3dup');
    const src = join(dir, 'src');
    makeTrickyTree(src);
    const bucket = await newBucket('dup');
    const env = { ...S3_ENV, PASSPHRASE: 'dup s3', XDG_CACHE_HOME: join(dir, 'cache') };
    const b = duplicity(['full', '--s3-endpoint-url', S3_ENDPOINT!, '--volsize', '2', '--archive-dir', join(dir, 'dc'), '--name', 'd', src, `boto3+s3://${bucket}/dup`], dir, env);
    expect(b.status).toBe(0);
    const want = describeTree(src);
    const r = await runCli(['restore', '--s3-endpoint', S3_ENDPOINT!, `s3://${bucket}/dup`, join(dir, 'out')], env);
    expect(r.code).toBe(0);
    expect(treeDiff(want, describeTree(join(dir, 'out')))).toEqual([]);
    await nextSecond(); // a new set needs a later second
    fs.writeFileSync(join(src, 'after duplicity.txt'), 'x');
    const inc = await runCli(['backup', '--s3-endpoint', S3_ENDPOINT!, src, `s3://${bucket}/dup`], env);
    expect(inc.stdout).toMatch(/^Incremental/);
    const r2 = await runCli(['restore', '--s3-endpoint', S3_ENDPOINT!, `s3://${bucket}/dup`, join(dir, 'out2')], env);
    expect(r2.code).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(join(dir, 'out2')))).toEqual([]);
  });

  test('uploads that fail mid-way are retried; a permanent failure leaves no manifest and no temp files', async () => {
    const dir = tmp('s3fault');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 6; i++) fs.writeFileSync(join(src, `f${i}`), randomBytes(700_000));
    const bucket = await newBucket('fault');
    const s3 = new S3Backend({ bucket, prefix: 'x', endpoint: S3_ENDPOINT!, credentials: S3_CREDS });
    const faulty = new FaultyBackend(s3, [
      { method: 'put', match: /vol2\./, cutAfterBytes: 100_000, times: 2 },
      { method: 'put', match: /vol3\./, kind: 'transient', times: 1 },
    ]);
    const retries: string[] = [];
    const backend = new RetryBackend(faulty, { baseDelayMs: 10, onRetry: (op) => retries.push(op) });
    const temp = join(dir, 'tmp');
    fs.mkdirSync(temp);
    const enc = new SymmetricEncryptor(Buffer.from('pw'), { codedCount: 96 });
    const res = await runBackup({ source: src, backend, encryptor: enc, keys: { passphrase: Buffer.from('pw') }, volsize: 1 << 20, tempDir: temp });
    expect(res.volumes).toBeGreaterThanOrEqual(3);
    expect(retries.filter((r) => r.includes('vol2.'))).toHaveLength(2);
    expect(retries.filter((r) => r.includes('vol3.'))).toHaveLength(1);
    expect(fs.readdirSync(temp)).toEqual([]);
    const out = join(dir, 'out');
    await runRestore({ backend: s3, dest: out, keys: { passphrase: Buffer.from('pw') }, tempDir: temp });
    expect(treeDiff(describeTree(src), describeTree(out))).toEqual([]);
    expect(fs.readdirSync(temp)).toEqual([]);

    // Now a permanent failure on volume 2 of a new full: the run fails, no manifest appears.
    const before = (await listAll(s3)).map((o) => o.name);
    const broken = new RetryBackend(new FaultyBackend(s3, [{ method: 'put', match: /vol2\./, kind: 'permanent' }]), { baseDelayMs: 10 });
    await nextSecond(); // a new full needs a later second
    await expect(runBackup({ source: src, backend: broken, encryptor: enc, keys: { passphrase: Buffer.from('pw') }, volsize: 1 << 20, tempDir: temp, full: true })).rejects.toThrow(/vol2/);
    const after = (await listAll(s3)).map((o) => o.name).filter((n) => !before.includes(n));
    expect(after.some((n) => n.includes('manifest'))).toBe(false);
    expect(fs.readdirSync(temp)).toEqual([]);
    const st = await runCli(['status', '--json', '--s3-endpoint', S3_ENDPOINT!, `s3://${bucket}/x`], S3_ENV);
    expect(JSON.parse(st.stdout).incomplete).toHaveLength(1);
    await s3.close();
  });
});

describeS3('S3 target, kill -9', () => {
  test('an interrupted backup to S3 is resumed by the next run and restores exactly', async () => {
    const { spawn, spawnSync } = await import('node:child_process');
    const dir = tmp('s3kill');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 16; i++) fs.writeFileSync(join(src, `f${i}`), randomBytes(1 << 20));
    const bucket = await newBucket('kill');
    const target = `s3://${bucket}/k`;
    const env = { ...process.env, ...S3_ENV, PASSPHRASE: 'k', XDG_CACHE_HOME: join(dir, 'cache') };
    const args = ['backup', '--s3-endpoint', S3_ENDPOINT!, '--volsize', '1', '--compress-level', '9', src, target];
    // Kill it as soon as two volumes are stored (watching the bucket), so the kill lands mid-set.
    const watcher = new S3Backend({ bucket, prefix: 'k', endpoint: S3_ENDPOINT!, credentials: S3_CREDS });
    let resumed = 0;
    const p = spawn('bin/tapechain', args, { env });
    const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    let done = false;
    void exited.then(() => (done = true));
    await until(async () => done || (await listAll(watcher)).some((o) => o.name.includes('.vol2.')), 'volume 2 on S3');
    p.kill('SIGKILL');
    expect(await exited).toBeNull(); // killed, not finished
    await watcher.close();
    const last = spawnSync('bin/tapechain', args, { env });
    if (/Resuming/.test(last.stderr.toString())) resumed++;
    expect(last.status).toBe(0);
    expect(resumed).toBeGreaterThan(0);
    const r = await runCli(['restore', '--s3-endpoint', S3_ENDPOINT!, target, join(dir, 'out')], { ...S3_ENV, PASSPHRASE: 'k', XDG_CACHE_HOME: join(dir, 'cache2') });
    expect(r.code).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(join(dir, 'out')))).toEqual([]);
  });
});

describeS3('S3 target, volumes sent while they are written', () => {
  test('a growing file goes up in parts as it grows: the first part is sent before the file is complete', async () => {
    const dir = tmp('growing');
    const bucket = await newBucket('growing');
    const s3 = new S3Backend({ bucket, prefix: 'g', endpoint: S3_ENDPOINT!, credentials: S3_CREDS });
    const file = join(dir, 'vol');
    const data = randomBytes(40 << 20);
    fs.writeFileSync(file, data.subarray(0, 20 << 20));
    const growing = new GrowingFile(file);
    growing.grew(20 << 20);
    let firstPartRead!: () => void;
    const firstPart = new Promise<void>((r) => (firstPartRead = r));
    const source: PutSource = {
      size: Number.NaN,
      growth: growing,
      open: () => fs.createReadStream(file),
      openRange: (start, end) => {
        if (start === 0) firstPartRead();
        return fs.createReadStream(file, { start, end: end - 1 });
      },
    };
    const put = s3.put('duplicity-full.20260101T000000Z.vol1.difftar.gpg', source);
    put.catch(() => undefined);
    await firstPart; // never, if nothing is sent before the file is complete
    fs.appendFileSync(file, data.subarray(20 << 20));
    growing.grew(data.length);
    growing.finish(data.length);
    await put;
    const stored: Buffer[] = [];
    for await (const c of await s3.get('duplicity-full.20260101T000000Z.vol1.difftar.gpg')) stored.push(c as Buffer);
    expect(Buffer.concat(stored).equals(data)).toBe(true);
    await s3.close();
  });

  test('a file that never comes (cancelled) starts no upload', async () => {
    const bucket = await newBucket('cancelled');
    const s3 = new S3Backend({ bucket, prefix: 'c', endpoint: S3_ENDPOINT!, credentials: S3_CREDS });
    const growing = new GrowingFile('/nonexistent/vol');
    const put = s3.put('duplicity-full.20260101T000000Z.vol2.difftar.gpg', { size: Number.NaN, growth: growing, open: () => fs.createReadStream('/nonexistent/vol'), openRange: () => fs.createReadStream('/nonexistent/vol') });
    growing.cancel(new Error('the batch made no further volume'));
    await expect(put).rejects.toThrow(/no further volume/);
    const client = new S3Client({ endpoint: S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDS });
    try {
      expect((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
    } finally {
      client.destroy();
    }
    await s3.close();
  });

  test('a full with volumes of several parts, written by two workers: stored while written, restores exactly, no multipart upload left', async () => {
    const dir = tmp('s3stream');
    const src = join(dir, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 4; i++) fs.writeFileSync(join(src, `f${i}.bin`), randomBytes(18 << 20));
    fs.writeFileSync(join(src, 'small'), 'small');
    const bucket = await newBucket('stream');
    const target = `s3://${bucket}/s`;
    const env = { ...S3_ENV, PASSPHRASE: 'p', XDG_CACHE_HOME: join(dir, 'cache') };
    const s3 = ['--s3-endpoint', S3_ENDPOINT!];
    const b = await runCli(['backup', ...s3, '--volsize', '25', '--compress-level', '0', '--jobs', '2', src, target], env);
    expect({ code: b.code, stderr: b.stderr }).toEqual({ code: 0, stderr: '' });
    const r = await runCli(['restore', ...s3, target, join(dir, 'out')], env);
    expect(r.code).toBe(0);
    expect(treeDiff(describeTree(src), describeTree(join(dir, 'out')))).toEqual([]);
    const v = await runCli(['verify', ...s3, target], env);
    expect(v.code).toBe(0);
    const client = new S3Client({ endpoint: S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDS });
    try {
      expect((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
    } finally {
      client.destroy();
    }
    expect(leftRunTempDirs('backup')).toEqual([]);
  });
});

describeS3('S3 target, cleanup', () => {
  test('an unfinished multipart upload is kept while young, listed, and aborted by cleanup --force once old', async () => {
    const bucket = await newBucket('multipart');
    const client = new S3Client({ endpoint: S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDS });
    try {
      const started = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'bk/duplicity-full.20260101T000000Z.vol1.difftar.gpg' }));
      expect(started.UploadId).toBeTruthy();
      const env = { ...S3_ENV };
      const young = await runCli(['cleanup', '--force', '--s3-endpoint', S3_ENDPOINT!, `s3://${bucket}/bk`], env);
      expect(young.code).toBe(0);
      expect(young.stdout).toMatch(/keeping \(started less than a day ago\) unfinished multipart upload of .*vol1/);
      const s3 = new S3Backend({ bucket, prefix: 'bk', endpoint: S3_ENDPOINT!, credentials: S3_CREDS });
      const inTwoDays = Date.now() + 2 * 86400_000;
      expect(await cleanupUploads(s3, false, inTwoDays)).toEqual([{ key: expect.stringContaining('vol1'), action: 'would abort' }]);
      expect(await cleanupUploads(s3, true, inTwoDays)).toEqual([{ key: expect.stringContaining('vol1'), action: 'aborted' }]);
      expect((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
      await s3.close();
    } finally {
      client.destroy();
    }
  });
});
