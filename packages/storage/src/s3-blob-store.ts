import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Client } from 'minio';
import { assertBlobId, BLOB_ID_PATTERN } from './blob-id.js';
import {
  DEFAULT_MAX_BLOB_SIZE,
  type BlobSource,
  type BlobStore,
  type PutOptions,
  type PutResult,
} from './blob-store.js';
import { mapLimit } from './concurrency.js';
import { errnoCode, storageFail, toStorageError } from './errors.js';
import { assertMaxBlobSize, asUint8Array, ingest, readSource, resolveLimits } from './ingest.js';

export interface S3BlobStoreOptions {
  readonly endPoint: string;
  readonly port?: number;
  readonly useSSL?: boolean;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly bucket: string;
  /** Key prefix, e.g. `relay/chunks`; blobs are stored as `<prefix>/<id>`. Default: none. */
  readonly prefix?: string;
  /** Default `us-east-1`. Giving it saves the client a bucket-location request. */
  readonly region?: string;
  /** Largest blob accepted; defaults to {@link DEFAULT_MAX_BLOB_SIZE}, at most {@link S3_MAX_BLOB_SIZE}. */
  readonly maxBlobSize?: number;
  /** Create the bucket if it does not exist (default true). */
  readonly createBucket?: boolean;
}

/**
 * Ceiling on `maxBlobSize` for S3: a blob is held in memory until its hash
 * is verified, then sent in one PUT.
 */
export const S3_MAX_BLOB_SIZE = 1024 * 1024 * 1024;

/**
 * minio's putObject sends a Buffer in one PUT whatever its size, and a
 * stream in one PUT only when its size is at most the part size; the
 * largest part size S3 allows keeps even a stream out of multipart.
 */
const PART_SIZE = 5 * 1024 * 1024 * 1024;
const HEAD_CONCURRENCY = 16;
const BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
const NOT_FOUND_CODES = new Set(['NoSuchKey', 'NotFound']);
const BUCKET_RACE_CODES = new Set(['BucketAlreadyOwnedByYou', 'BucketAlreadyExists']);

function isNotFound(err: unknown): boolean {
  const code = errnoCode(err);
  return code !== undefined && NOT_FOUND_CODES.has(code);
}

function normalisePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '') return '';
  if (typeof prefix !== 'string') storageFail('OPTIONS_INVALID', 'prefix must be a string');
  const segments = prefix.replace(/\/$/, '').split('/');
  if (!segments.every((segment) => PREFIX_SEGMENT.test(segment) && segment !== '..')) {
    storageFail(
      'OPTIONS_INVALID',
      'prefix must be slash-separated segments of letters, digits, dot, dash and underscore',
    );
  }
  return `${segments.join('/')}/`;
}

/**
 * A BlobStore in an S3 bucket (MinIO in production), one object per blob
 * under `<prefix>/<id>`. A put collects the blob in memory (chunks are at most
 * a few MiB), verifies its hash and size, and only then sends it in one
 * PUT: S3 makes an object visible atomically when its PUT completes, so a
 * failed or tampered upload never leaves an object behind, and no multipart
 * upload is ever left half-done (nor needed: S3 allows 5 GiB in one PUT).
 */
export class S3BlobStore implements BlobStore {
  readonly bucket: string;
  readonly prefix: string;
  readonly #client: Client;
  readonly #agent: HttpAgent;
  readonly #maxBlobSize: number;

  private constructor(
    client: Client,
    agent: HttpAgent,
    bucket: string,
    prefix: string,
    maxBlobSize: number,
  ) {
    this.#client = client;
    this.#agent = agent;
    this.bucket = bucket;
    this.prefix = prefix;
    this.#maxBlobSize = maxBlobSize;
  }

  /** Connects, creates the bucket if missing (unless told not to) and returns a ready store. */
  static async open(options: S3BlobStoreOptions): Promise<S3BlobStore> {
    if (typeof options.bucket !== 'string' || !BUCKET_PATTERN.test(options.bucket)) {
      storageFail('OPTIONS_INVALID', 'bucket must be a valid S3 bucket name');
    }
    if (typeof options.endPoint !== 'string' || options.endPoint === '')
      storageFail('OPTIONS_INVALID', 'endPoint must be a host name');
    const prefix = normalisePrefix(options.prefix);
    const maxBlobSize = options.maxBlobSize ?? DEFAULT_MAX_BLOB_SIZE;
    assertMaxBlobSize(maxBlobSize, S3_MAX_BLOB_SIZE);
    const region = options.region ?? 'us-east-1';
    const useSSL = options.useSSL ?? true;
    // Our own agent, so close() can release its sockets.
    const agent = useSSL ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    let client: Client;
    try {
      client = new Client({
        endPoint: options.endPoint,
        ...(options.port === undefined ? {} : { port: options.port }),
        useSSL,
        accessKey: options.accessKey,
        secretKey: options.secretKey,
        region,
        partSize: PART_SIZE,
        transportAgent: agent,
      });
    } catch (cause) {
      agent.destroy();
      return storageFail('OPTIONS_INVALID', 'the S3 client rejected the connection options', {
        cause,
      });
    }
    const store = new S3BlobStore(client, agent, options.bucket, prefix, maxBlobSize);
    try {
      if (options.createBucket ?? true) await store.#ensureBucket(region);
      else if (!(await client.bucketExists(options.bucket)))
        storageFail('STORAGE_UNAVAILABLE', 'the bucket does not exist');
    } catch (err) {
      agent.destroy();
      throw toStorageError(err, 'opening the bucket');
    }
    return store;
  }

  async put(id: string, source: BlobSource, options?: PutOptions): Promise<PutResult> {
    assertBlobId(id);
    const limits = resolveLimits(this.#maxBlobSize, options, id);
    // Copies (a source may reuse its buffer once we ask for the next chunk),
    // straight into one body when the size is announced (the usual case: a
    // chunk upload), else piece by piece and joined at the end.
    const announced = limits.expectedSize;
    const whole = announced === undefined ? undefined : Buffer.allocUnsafe(announced);
    const chunks: Buffer[] = [];
    let filled = 0;
    const size = await ingest(id, readSource(source), limits, (chunk) => {
      // ingest has checked that the total stays within the announced size.
      if (whole !== undefined) whole.set(chunk, filled);
      else chunks.push(Buffer.from(chunk));
      filled += chunk.length;
    });
    const body = whole ?? (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    try {
      if (await this.#exists(id)) return { id, size, created: false };
      // A Buffer with its length: minio sends it in one PUT (see PART_SIZE).
      await this.#client.putObject(this.bucket, this.#key(id), body, size, {
        'Content-Type': 'application/octet-stream',
      });
    } catch (err) {
      throw toStorageError(err, 'writing a blob', id);
    }
    return { id, size, created: true };
  }

  async *get(id: string): AsyncIterable<Uint8Array> {
    assertBlobId(id);
    let stream: AsyncIterable<unknown>;
    try {
      stream = await this.#client.getObject(this.bucket, this.#key(id));
    } catch (err) {
      if (isNotFound(err)) storageFail('BLOB_NOT_FOUND', 'no blob under this id', { blobId: id });
      throw toStorageError(err, 'opening a blob', id);
    }
    const iterator = stream[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        let step: IteratorResult<unknown>;
        try {
          step = await iterator.next();
        } catch (err) {
          finished = true;
          throw toStorageError(err, 'reading a blob', id);
        }
        if (step.done === true) {
          finished = true;
          return;
        }
        yield asUint8Array(step.value as Uint8Array);
      }
    } finally {
      // Destroys the response stream when the consumer stops early.
      if (!finished) await Promise.resolve(iterator.return?.()).catch(() => undefined);
    }
  }

  async getBytes(id: string): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of this.get(id)) {
      chunks.push(chunk);
      total += chunk.length;
    }
    return asUint8Array(Buffer.concat(chunks, total));
  }

  async has(id: string): Promise<boolean> {
    assertBlobId(id);
    try {
      return await this.#exists(id);
    } catch (err) {
      throw toStorageError(err, 'checking a blob', id);
    }
  }

  async missing(ids: readonly string[]): Promise<string[]> {
    for (const id of ids) assertBlobId(id);
    const unique = [...new Set(ids)];
    const present = await mapLimit(unique, HEAD_CONCURRENCY, (id) => this.has(id));
    return unique.filter((_, index) => !present[index]);
  }

  async size(id: string): Promise<number> {
    assertBlobId(id);
    try {
      return (await this.#client.statObject(this.bucket, this.#key(id))).size;
    } catch (err) {
      if (isNotFound(err)) storageFail('BLOB_NOT_FOUND', 'no blob under this id', { blobId: id });
      throw toStorageError(err, 'reading a blob size', id);
    }
  }

  async delete(id: string): Promise<void> {
    assertBlobId(id);
    try {
      // S3 answers 204 for an absent key as well: deleting is idempotent.
      await this.#client.removeObject(this.bucket, this.#key(id));
    } catch (err) {
      if (!isNotFound(err)) throw toStorageError(err, 'deleting a blob', id);
    }
  }

  async *list(): AsyncIterable<string> {
    const stream = this.#client.listObjectsV2(this.bucket, this.prefix, true);
    try {
      for await (const item of stream) {
        const name = (item as { name?: string }).name;
        if (name === undefined || !name.startsWith(this.prefix)) continue;
        const id = name.slice(this.prefix.length);
        if (BLOB_ID_PATTERN.test(id)) yield id;
      }
    } catch (err) {
      throw toStorageError(err, 'listing blobs');
    }
  }

  async verify(id: string): Promise<boolean> {
    assertBlobId(id);
    const hash = createHash('sha256');
    for await (const chunk of this.get(id)) hash.update(chunk);
    return hash.digest('hex') === id;
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    this.#agent.destroy();
    return Promise.resolve();
  }

  #key(id: string): string {
    return this.prefix + id;
  }

  async #exists(id: string): Promise<boolean> {
    try {
      await this.#client.statObject(this.bucket, this.#key(id));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async #ensureBucket(region: string): Promise<void> {
    if (await this.#client.bucketExists(this.bucket)) return;
    try {
      await this.#client.makeBucket(this.bucket, region);
    } catch (err) {
      const code = errnoCode(err);
      if (code === undefined || !BUCKET_RACE_CODES.has(code)) throw err;
    }
  }
}
