import { join } from 'node:path';
import { FileBackend } from '../../src/backend/file.js';
import { MemoryBackend } from '../../src/backend/memory.js';
import { S3Backend } from '../../src/backend/s3.js';
import { LimitBackend, RetryBackend } from '../../src/backend/wrappers.js';
import { newBucket, S3_CREDS, S3_ENDPOINT, describeS3 } from '../helpers/s3.js';
import { tempDirs } from '../helpers/tmp.js';
import { describeBackendContract } from './backend.contract.js';
import { expectCutGetsResumed, expectEndlessCutsFail } from '../helpers/resume-get.js';
import { test } from '@jest/globals';

const tmp = tempDirs();

describeBackendContract('memory', async () => new MemoryBackend());
describeBackendContract('file', async () => new FileBackend(join(tmp('file'), 'target')), { largeSize: 3 << 20 });
describeBackendContract('file, wrapped in retry and limit', async () => new RetryBackend(new LimitBackend(new FileBackend(tmp('wrapped')))));

describeS3('S3 (radosgw)', () => {
  const make = (prefix: string) => async () =>
    new S3Backend({ bucket: await newBucket('contract'), prefix, endpoint: S3_ENDPOINT!, credentials: S3_CREDS, multipartThreshold: 5 << 20, partSize: 5 << 20 });
  describeBackendContract('s3, with a prefix', make('some/prefix'), { largeSize: 12 << 20 });
  describeBackendContract('s3, bucket root', make(''));
  test('a download cut mid-stream goes on by ranged GETs, byte-exact', async () => expectCutGetsResumed(await make('resume')(), 1 << 20, 2));
  test('a download cut more often in a row than the retries fails', async () => expectEndlessCutsFail(await make('resume')()));
});
