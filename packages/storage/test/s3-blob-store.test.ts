import { randomUUID } from 'node:crypto';
import { Client } from 'minio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startS3, type S3Server } from '@rogatory/test-services';
import {
  blobIdOf,
  isStorageError,
  S3_MAX_BLOB_SIZE,
  S3BlobStore,
  type S3BlobStoreOptions,
} from '../src/index.js';
import { runBlobStoreConformance } from './conformance.js';

let s3: S3Server;
let admin: Client;

beforeAll(async () => {
  s3 = await startS3();
  admin = new Client({
    endPoint: s3.endPoint,
    port: s3.port,
    useSSL: false,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    region: s3.region,
  });
});
afterAll(async () => {
  await s3.stop();
});

function connection(): Omit<S3BlobStoreOptions, 'bucket'> {
  return {
    endPoint: s3.endPoint,
    port: s3.port,
    useSSL: false,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    region: s3.region,
  };
}

async function removeBucket(bucket: string): Promise<void> {
  const names: string[] = [];
  for await (const item of admin.listObjectsV2(bucket, '', true)) {
    const name = (item as { name?: string }).name;
    if (name !== undefined) names.push(name);
  }
  for (const name of names) await admin.removeObject(bucket, name);
  await admin.removeBucket(bucket);
}

/** Each test gets its own bucket and prefix, removed afterwards. */
runBlobStoreConformance('s3 (s3rver)', async () => {
  const bucket = `test-${randomUUID()}`;
  const prefix = `test-${randomUUID()}/chunks`;
  const store = await S3BlobStore.open({ ...connection(), bucket, prefix });
  return {
    store,
    corrupt: async (id) => {
      await admin.putObject(bucket, `${prefix}/${id}`, Buffer.from('not the original bytes'));
    },
    dispose: async () => {
      await store.close();
      await removeBucket(bucket);
    },
  };
});

describe('S3BlobStore', () => {
  it('sends a multi-MiB blob in one PUT, never a multipart upload', async () => {
    const bucket = `test-${randomUUID()}`;
    const store = await S3BlobStore.open({ ...connection(), bucket, prefix: 'chunks' });
    // Above minio's smallest part size (5 MiB), so a client that chose multipart could.
    const bytes = new Uint8Array(6 * 1024 * 1024).map((_, index) => index & 0xff);
    const id = blobIdOf(bytes);
    const before = s3.requests().length;
    async function* pieces(): AsyncGenerator<Uint8Array> {
      for (let offset = 0; offset < bytes.length; offset += 256 * 1024) {
        await new Promise((resolve) => setImmediate(resolve));
        yield bytes.slice(offset, offset + 256 * 1024);
      }
    }
    await store.put(id, pieces(), { maxSize: 16 * 1024 * 1024 });
    const sent = s3.requests().slice(before);
    const writes = sent.filter((request) => request.method === 'PUT' || request.method === 'POST');
    expect(writes).toEqual([{ method: 'PUT', url: `/${bucket}/chunks/${id}` }]);
    expect(sent.some((request) => /[?&](uploads|uploadId|partNumber)\b/.test(request.url))).toBe(
      false,
    );

    // Putting it again sends nothing: the object is not rewritten.
    const again = s3.requests().length;
    expect((await store.put(id, bytes, { maxSize: 16 * 1024 * 1024 })).created).toBe(false);
    expect(
      s3
        .requests()
        .slice(again)
        .filter((request) => request.method === 'PUT'),
    ).toEqual([]);
    await store.close();
    await removeBucket(bucket);
  });

  it('sends nothing to S3 for a rejected put', async () => {
    const bucket = `test-${randomUUID()}`;
    const store = await S3BlobStore.open({ ...connection(), bucket });
    const before = s3.requests().length;
    const bytes = new Uint8Array(1000).fill(1);
    await expect(store.put(blobIdOf(bytes), new Uint8Array(1000))).rejects.toSatisfy((err) =>
      isStorageError(err, 'BLOB_HASH_MISMATCH'),
    );
    expect(s3.requests().slice(before)).toEqual([]);
    await store.close();
    await removeBucket(bucket);
  });

  it('creates a missing bucket, reuses an existing one, and can be told not to create', async () => {
    const bucket = `test-${randomUUID()}`;
    expect(await admin.bucketExists(bucket)).toBe(false);
    const first = await S3BlobStore.open({ ...connection(), bucket });
    expect(await admin.bucketExists(bucket)).toBe(true);
    const bytes = new Uint8Array([1, 2, 3]);
    await first.put(blobIdOf(bytes), bytes);
    const second = await S3BlobStore.open({ ...connection(), bucket });
    expect(await second.has(blobIdOf(bytes))).toBe(true);
    await first.close();
    await second.close();
    await removeBucket(bucket);

    await expect(
      S3BlobStore.open({ ...connection(), bucket: `test-${randomUUID()}`, createBucket: false }),
    ).rejects.toSatisfy((err) => isStorageError(err, 'STORAGE_UNAVAILABLE'));
  });

  it('keeps prefixes apart and lists only well-formed ids under its own prefix', async () => {
    const bucket = `test-${randomUUID()}`;
    const a = await S3BlobStore.open({ ...connection(), bucket, prefix: 'node-a' });
    const b = await S3BlobStore.open({ ...connection(), bucket, prefix: 'node-a-other/' });
    const bytes = new Uint8Array([4, 5, 6]);
    const id = blobIdOf(bytes);
    await a.put(id, bytes);
    await admin.putObject(bucket, 'node-a/readme.txt', Buffer.from('x'));
    await admin.putObject(bucket, `node-a/nested/${id}`, Buffer.from('x'));
    expect(await b.has(id)).toBe(false);
    const listedA: string[] = [];
    for await (const listed of a.list()) listedA.push(listed);
    expect(listedA).toEqual([id]);
    const listedB: string[] = [];
    for await (const listed of b.list()) listedB.push(listed);
    expect(listedB).toEqual([]);
    await a.close();
    await b.close();
    await removeBucket(bucket);
  });

  it('rejects bad options with OPTIONS_INVALID', async () => {
    for (const options of [
      { bucket: 'Bad_Bucket' },
      { bucket: 'ok-bucket', prefix: '../escape' },
      { bucket: 'ok-bucket', prefix: 'a//b' },
      { bucket: 'ok-bucket', maxBlobSize: S3_MAX_BLOB_SIZE + 1 },
    ]) {
      await expect(S3BlobStore.open({ ...connection(), ...options })).rejects.toSatisfy((err) =>
        isStorageError(err, 'OPTIONS_INVALID'),
      );
    }
  });

  it('reports an unreachable server as STORAGE_UNAVAILABLE', async () => {
    const port = await freePort();
    const err: unknown = await S3BlobStore.open({
      ...connection(),
      port,
      bucket: `test-${randomUUID()}`,
    }).catch((caught: unknown) => caught);
    expect(isStorageError(err, 'STORAGE_UNAVAILABLE')).toBe(true);
    // The cause is kept for operators, never put in the message.
    expect((err as Error).message).not.toContain(String(port));
    expect((err as Error).cause).toBeDefined();
  });
});
