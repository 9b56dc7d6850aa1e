/** The test S3 server (started by test/setup/s3-server.js) and fresh buckets on it. */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { describe } from '@jest/globals';

export const S3_ENDPOINT = process.env['TAPECHAIN_S3_ENDPOINT'];
export const S3_CREDS = { accessKeyId: process.env['TAPECHAIN_S3_KEY'] ?? 'TESTKEY', secretAccessKey: process.env['TAPECHAIN_S3_SECRET'] ?? 'TESTSECRET' };
/** Environment for the CLI and duplicity (AWS default credential chain). */
export const S3_ENV = { AWS_ACCESS_KEY_ID: S3_CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDS.secretAccessKey, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };

/** describe() when the server is there; a visible skip when it was skipped on purpose. */
export const describeS3 = (name: string, fn: () => void): void => (S3_ENDPOINT ? describe : describe.skip)(name, fn);

let n = 0;
export async function newBucket(label: string): Promise<string> {
  const bucket = `tc-${label}-${process.pid}-${++n}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63);
  const c = new S3Client({ endpoint: S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDS, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  await c.send(new CreateBucketCommand({ Bucket: bucket }));
  c.destroy();
  return bucket;
}
