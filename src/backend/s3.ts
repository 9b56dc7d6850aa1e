/**
 * S3-compatible storage (`s3://bucket/prefix`): AWS S3, Backblaze B2, Ceph, MinIO.
 *
 * - Checksums: `requestChecksumCalculation`/`responseChecksumValidation` are
 *   WHEN_REQUIRED. With the SDK defaults, streamed uploads are sent with aws-chunked
 *   trailers that B2 rejects and some servers store verbatim (silent corruption).
 *   Integrity is ours anyway: the manifest's SHA1 and a size check after every upload.
 * - Large objects go multipart, each part read from its file range (nothing buffered),
 *   parts retried individually; a failed upload is aborted so no parts linger.
 * - Path-style addressing whenever an endpoint is given (IP and custom endpoints need
 *   it), unless virtual-host style is asked for.
 * - Credentials come from the AWS default chain (env, shared config/profile, IMDS).
 * - The SDK's own retries are off: RetryBackend retries transient errors, with one
 *   policy for every backend.
 */
import {
  AbortMultipartUploadCommand,
  GetObjectRetentionCommand,
  PutObjectRetentionCommand,
  CreateBucketCommand,
  HeadBucketCommand,
  type BucketLocationConstraint,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import PQueue from 'p-queue';
import { BackendError, BackendNotFoundError, ConfigError, PermanentBackendError, TransientBackendError } from '../errors.js';
import type { Backend, BackendProperties, GetOptions, ObjectInfo, OpOptions, PutSource, Retention } from './backend.js';

export interface S3Options {
  bucket: string;
  /** Key prefix; a trailing slash is added when missing. @default '' */
  prefix?: string;
  /** Custom endpoint (B2, Ceph, MinIO…), e.g. https://s3.us-west-004.backblazeb2.com */
  endpoint?: string;
  /** @default us-east-1 (the CLI passes AWS_REGION) */
  region?: string;
  /** Virtual-host style even with an endpoint. @default false */
  virtualHost?: boolean;
  /** Objects above this size go multipart. @default 64 MiB */
  multipartThreshold?: number;
  /** Part size. @default 64 MiB (best measured throughput to rgw) */
  partSize?: number;
  /** Parallel part uploads within one object. @default 2 */
  partConcurrency?: number;
  /** Explicit credentials; else the AWS default chain (env, shared config/profile, IMDS). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

const TRANSIENT_NAMES = new Set(['SlowDown', 'RequestTimeout', 'RequestTimeTooSkewed', 'InternalError', 'ServiceUnavailable', 'TimeoutError', 'ThrottlingException', 'RequestTimeoutException']);
const NET_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_STREAM_PREMATURE_CLOSE']);

/** SDK and network failures → not-found / transient / permanent. */
export function classifyS3Error(err: unknown, what: string): BackendError {
  if (err instanceof BackendError) return err;
  const e = err as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? e.code ?? '';
  const msg = `${what}: ${name ? `${name} ` : ''}${status ? `(HTTP ${status}) ` : ''}${e.message ?? ''}`.trim();
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket')) return new BackendNotFoundError(msg, { cause: err });
  if (name === 'NoSuchBucket') return new PermanentBackendError('the bucket does not exist', { context: { file: what }, code: 'NO_BUCKET', cause: err });
  if (name === 'CredentialsProviderError') {
    return new PermanentBackendError('no S3 credentials', { context: { file: what }, code: 'NO_CREDENTIALS', cause: err });
  }
  if (e.code === 'ENOTFOUND' || name === 'ENOTFOUND') {
    // No such host: a typo or an S3-compatible service reached at AWS's name. Retrying
    // cannot help (EAI_AGAIN, a resolver that did not answer, still is retried).
    const host = /getaddrinfo ENOTFOUND (\S+)/.exec(e.message ?? '')?.[1];
    return new PermanentBackendError(`${what}: no such host${host ? ` ${host}` : ''} (for Backblaze B2, Ceph, MinIO and other S3-compatible services give --s3-endpoint URL)`, { cause: err });
  }
  if (status === 429 || (status !== undefined && status >= 500) || TRANSIENT_NAMES.has(name) || NET_CODES.has(e.code ?? '') || NET_CODES.has(name) || e.$retryable) {
    return new TransientBackendError(msg, { cause: err });
  }
  if (status === 403 || name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') {
    return new PermanentBackendError(`access denied (check the credentials and the bucket's permissions): ${name}`, { context: { file: what }, cause: err });
  }
  if (status !== undefined && status >= 400) return new PermanentBackendError(msg, { cause: err });
  // No HTTP status: a network-level failure before any answer.
  return new TransientBackendError(msg, { cause: err });
}

/** Parses `s3://bucket/prefix`. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(url);
  if (!m || !m[1]) throw new ConfigError(`bad S3 target "${url}": expected s3://bucket[/prefix]`);
  return { bucket: m[1], prefix: m[2] ?? '' };
}

/**
 * The request body for an upload: the source piped through a byte count that fails
 * when the source is shorter or longer than announced. A failing source aborts the
 * request at once (the SDK would otherwise wait for the missing bytes until its
 * timeout, and an error on a body stream it pipes is never handled).
 */
function guardedBody(src: Readable, size: number, what: string, ac: AbortController): { body: PassThrough; failure: () => unknown } {
  let seen = 0;
  let failure: unknown;
  const count = new Transform({
    transform(chunk: Buffer, _e, cb) {
      seen += chunk.length;
      if (seen > size) return cb(new TransientBackendError(`source longer than ${size} bytes`, { context: { file: what } }));
      cb(null, chunk);
    },
    flush(cb) {
      cb(seen === size ? null : new TransientBackendError(`source ended after ${seen} of ${size} bytes`, { context: { file: what } }));
    },
  });
  const body = new PassThrough();
  pipeline(src, count, body).catch((e: unknown) => {
    failure = e;
    ac.abort();
  });
  return { body, failure: () => failure };
}

/** Runs one upload request with a guarded body; a source failure wins over the SDK's. */
/** The Object Lock parameters of a put (AWS then wants a Content-MD5 on each upload: contentMd5). */
function lockParams(r: Retention | undefined) {
  return r ? { ObjectLockMode: r.mode, ObjectLockRetainUntilDate: r.until } : {};
}

/**
 * Content-MD5 of bytes [start, end) of `source`, for uploads with a retention: AWS
 * requires it then. Read from the source once more (a local temp file), not as a
 * streamed checksum, which some servers store as data and B2 refuses.
 */
async function contentMd5(source: PutSource, start: number, end: number): Promise<{ ContentMD5?: string }> {
  if (!source.retention) return {};
  const h = createHash('md5');
  for await (const c of source.openRange && (source.growth || start > 0 || end < source.size) ? source.openRange(start, end) : source.open()) h.update(c as Buffer);
  return { ContentMD5: h.digest('base64') };
}

async function sendBody<T>(make: (body: PassThrough, signal: AbortSignal) => Promise<T>, src: Readable, size: number, what: string, outer?: AbortSignal): Promise<T> {
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  outer?.addEventListener('abort', onAbort, { once: true });
  const { body, failure } = guardedBody(src, size, what, ac);
  try {
    return await make(body, ac.signal);
  } catch (e) {
    throw failure() ?? e;
  } finally {
    outer?.removeEventListener('abort', onAbort);
    body.destroy();
  }
}

/** The part size of a source still being written (S3's smallest part is 5 MiB). */
const GROWING_PART = 16 << 20;

export class S3Backend implements Backend {
  readonly properties: BackendProperties = { maxConnections: 4, atomicPut: true, objectLock: true, streamsParts: true };
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #endpoint: string | undefined;
  readonly #threshold: number;
  readonly #partSize: number;
  readonly #partConcurrency: number;

  constructor(o: S3Options) {
    this.#bucket = o.bucket;
    this.#prefix = o.prefix ? o.prefix.replace(/\/*$/, '/').replace(/^\/+/, '') : '';
    this.#endpoint = o.endpoint;
    this.#threshold = o.multipartThreshold ?? 64 << 20;
    this.#partSize = Math.max(5 << 20, o.partSize ?? 64 << 20);
    this.#partConcurrency = o.partConcurrency ?? 2;
    this.#client = new S3Client({
      region: o.region ?? 'us-east-1', // the CLI passes AWS_REGION when no --s3-region is given
      ...(o.endpoint ? { endpoint: o.endpoint, forcePathStyle: !o.virtualHost } : {}),
      ...(o.credentials ? { credentials: o.credentials } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      // The SDK would print its own warnings (e.g. on a failed streaming upload); failures
      // reach the user once, as tapechain errors.
      logger: { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 300_000 },
    });
  }

  /**
   * Creates the bucket when it does not exist (`backup --s3-create-bucket`); returns
   * whether it did. A bucket that exists but is another account's is an access error.
   */
  async ensureBucket(): Promise<boolean> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }));
      return false;
    } catch (e) {
      const c = classifyS3Error(e, `checking bucket ${this.#bucket}`);
      if (c.kind !== 'not-found' && !/does not exist/.test(c.message)) throw c;
    }
    const region = await this.#client.config.region();
    try {
      await this.#client.send(new CreateBucketCommand({ Bucket: this.#bucket, ...(region && region !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } } : {}) }));
    } catch (e) {
      throw classifyS3Error(e, `creating bucket ${this.#bucket}`);
    }
    return true;
  }

  describe(): string {
    return `s3://${this.#bucket}/${this.#prefix}${this.#endpoint ? ` (endpoint ${this.#endpoint})` : ''}`;
  }

  #key(name: string): string {
    if (name.includes('/') || name === '') throw new PermanentBackendError(`invalid object name "${name}"`);
    return this.#prefix + name;
  }

  async put(name: string, source: PutSource, opts: OpOptions = {}): Promise<void> {
    const key = this.#key(name);
    let size = source.size;
    try {
      if (source.growth && source.openRange) size = await this.#multipart(key, source, opts);
      else if (source.size > this.#threshold && source.openRange) await this.#multipart(key, source, opts);
      else {
        const md5 = await contentMd5(source, 0, source.size);
        await sendBody(
          (Body, abortSignal) => this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body, ContentLength: source.size, ...lockParams(source.retention), ...md5 }), { abortSignal }),
          source.open(),
          source.size,
          `uploading ${name}`,
          opts.signal,
        );
      }
    } catch (e) {
      throw classifyS3Error(e, `uploading ${name}`);
    }
    // Some servers have acknowledged truncated uploads: check what is really stored.
    const st = await this.stat(name, opts);
    if (st.size !== size) throw new TransientBackendError(`uploading ${name}: stored ${st.size} bytes, expected ${size}`);
  }

  /**
   * The parts of a multipart upload: of `partSize` bytes but the last, as the source's
   * bytes are there (a source still being written: each part as soon as it is whole, in
   * parts of at most 16 MiB, so what is left to send when the file is done is small).
   */
  async *#parts(source: PutSource): AsyncGenerator<[number, number]> {
    const growth = source.growth;
    if (!growth) {
      for (let start = 0; start < source.size; start += this.#partSize) yield [start, Math.min(source.size, start + this.#partSize)];
      return;
    }
    const partSize = Math.min(this.#partSize, GROWING_PART);
    for (let start = 0; ; start += partSize) {
      const g = await growth.until(start + partSize);
      // a part of nothing only for a file of nothing: a multipart upload needs one
      if (g.bytes > start || start === 0) yield [start, Math.min(g.bytes, start + partSize)];
      if (g.done && g.bytes <= start + partSize) return;
    }
  }

  /** Uploads the source in parts; returns its size. */
  async #multipart(key: string, source: PutSource, opts: OpOptions): Promise<number> {
    // a file still to come may never come (cancelled): then nothing was started
    await source.growth?.until(1);
    const created = await this.#client.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: key, ...lockParams(source.retention) }), { abortSignal: opts.signal });
    const uploadId = created.UploadId!;
    try {
      const parts: { PartNumber: number; ETag: string }[] = [];
      const queue = new PQueue({ concurrency: this.#partConcurrency });
      const tasks: Promise<void>[] = [];
      let size = 0;
      for await (const [start, end] of this.#parts(source)) {
        const i = tasks.length;
        size = end;
        tasks.push(queue.add(async () => {
          // One retry per part here (a whole-object retry would resend every part).
          const md5 = await contentMd5(source, start, end);
          for (let attempt = 0; ; attempt++) {
            try {
              const r = await sendBody(
                (Body, abortSignal) =>
                  this.#client.send(new UploadPartCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, Body, ContentLength: end - start, ...md5 }), { abortSignal }),
                source.openRange!(start, end),
                end - start,
                `part ${i + 1}`,
                opts.signal,
              );
              parts[i] = { PartNumber: i + 1, ETag: r.ETag! };
              return;
            } catch (e) {
              const c = classifyS3Error(e, `part ${i + 1}`);
              if (c.kind !== 'transient' || attempt >= 2) throw e;
              await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
            }
          }
        }));
        tasks[i]!.catch(() => undefined); // judged below, with the others
      }
      const results = await Promise.allSettled(tasks);
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      if (failed) throw failed.reason;
      await this.#client.send(new CompleteMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), { abortSignal: opts.signal });
      // radosgw stores a multipart object without the retention its upload was started
      // with (AWS applies it): set it on the object itself
      if (source.retention) {
        await this.#client.send(new PutObjectRetentionCommand({ Bucket: this.#bucket, Key: key, Retention: { Mode: source.retention.mode, RetainUntilDate: source.retention.until } }), { abortSignal: opts.signal });
      }
      return size;
    } catch (e) {
      // the upload's own failure is the one to report; an upload left unaborted is what cleanup lists
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
      throw e;
    }
  }

  /** The object's Object Lock retention, if it has one. */
  async retention(name: string): Promise<Retention | undefined> {
    try {
      const r = await this.#client.send(new GetObjectRetentionCommand({ Bucket: this.#bucket, Key: this.#key(name) }));
      const until = r.Retention?.RetainUntilDate;
      const mode = r.Retention?.Mode;
      return until && (mode === 'GOVERNANCE' || mode === 'COMPLIANCE') ? { mode, until: new Date(until) } : undefined;
    } catch (e) {
      // no retention, or a bucket without Object Lock: nothing holds the object
      const code = (e as { name?: string }).name ?? '';
      if (/NoSuchObjectLockConfiguration|ObjectLockConfigurationNotFound|InvalidRequest/i.test(code)) return undefined;
      throw classifyS3Error(e, `reading the retention of ${name}`);
    }
  }

  async get(name: string, opts: GetOptions = {}): Promise<Readable> {
    const r = opts.range;
    try {
      const out = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key(name), ...(r ? { Range: `bytes=${r.start}-${r.end !== undefined ? r.end - 1 : ''}` } : {}) }),
        { abortSignal: opts.signal },
      );
      return out.Body as Readable;
    } catch (e) {
      throw classifyS3Error(e, `reading ${name}`);
    }
  }

  async stat(name: string, opts: OpOptions = {}): Promise<ObjectInfo> {
    try {
      const h = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(name) }), { abortSignal: opts.signal });
      return { name, size: h.ContentLength ?? 0 };
    } catch (e) {
      throw classifyS3Error(e, `stat ${name}`);
    }
  }

  async *list(prefix = '', opts: OpOptions = {}): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: this.#prefix + prefix, ...(token ? { ContinuationToken: token } : {}) }),
          { abortSignal: opts.signal },
        );
      } catch (e) {
        throw classifyS3Error(e, `listing ${this.describe()}`);
      }
      for (const o of page.Contents ?? []) {
        const name = (o.Key ?? '').slice(this.#prefix.length);
        if (name && !name.includes('/')) yield { name, size: o.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(name: string, opts: OpOptions = {}): Promise<void> {
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(name) }), { abortSignal: opts.signal });
    } catch (e) {
      const c = classifyS3Error(e, `deleting ${name}`);
      if (c.kind !== 'not-found') throw c;
    }
  }

  /** Multipart uploads started under the prefix and never completed (for cleanup). */
  async listIncompleteUploads(): Promise<{ key: string; uploadId: string; initiated?: Date }[]> {
    const out: { key: string; uploadId: string; initiated?: Date }[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const r = await this.#client.send(
        new ListMultipartUploadsCommand({ Bucket: this.#bucket, Prefix: this.#prefix, ...(keyMarker ? { KeyMarker: keyMarker, UploadIdMarker: idMarker } : {}) }),
      );
      for (const u of r.Uploads ?? []) out.push({ key: u.Key!, uploadId: u.UploadId!, ...(u.Initiated ? { initiated: u.Initiated } : {}) });
      if (!r.IsTruncated) return out;
      keyMarker = r.NextKeyMarker;
      idMarker = r.NextUploadIdMarker;
    }
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId }));
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}
