/**
 * The BlobStore conformance suite: every adapter runs these same tests.
 *
 *   runBlobStoreConformance('fs', async () => ({ store, dispose }));
 *
 * Call it at the top level of a `*.test.ts` file; the factory runs before
 * every test and must return a fresh, empty store in its own namespace.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  blobIdOf,
  isStorageError,
  type BlobStore,
  type StorageError,
  type StorageErrorCode,
} from '../src/index.js';

export interface BlobStoreHarness {
  /** A fresh, empty store. */
  readonly store: BlobStore;
  /**
   * Replaces the stored bytes of `id` behind the store's back, so `verify`
   * can be seen to fail. Leave out where the backend cannot be reached
   * directly; that test is then skipped.
   */
  readonly corrupt?: (id: string) => Promise<void>;
  /** Closes the store and removes everything it created. */
  readonly dispose: () => Promise<void>;
}

export type BlobStoreFactory = () => Promise<BlobStoreHarness>;

const MiB = 1024 * 1024;
const EMPTY_ID = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function random(size: number): Uint8Array {
  return new Uint8Array(randomBytes(size));
}

/** Lets other tasks run, as a network source would between packets. */
async function tick(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

/** Yields copies of `bytes` in pieces of `chunkSize`, giving other tasks a turn between pieces. */
async function* streamOf(bytes: Uint8Array, chunkSize: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += chunkSize) {
    await tick();
    yield bytes.slice(offset, offset + chunkSize);
  }
}

async function collect(
  iterable: AsyncIterable<Uint8Array>,
): Promise<{ bytes: Uint8Array; chunks: number }> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const part of iterable) {
    expect(part).toBeInstanceOf(Uint8Array);
    parts.push(part);
    total += part.length;
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return { bytes, chunks: parts.length };
}

async function listAll(store: BlobStore): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of store.list()) ids.push(id);
  return ids.sort();
}

/** Awaits `action` and asserts it rejects with a StorageError of `code`. */
async function rejectsWith(
  action: Promise<unknown>,
  code: StorageErrorCode,
): Promise<StorageError> {
  let caught: unknown;
  try {
    await action;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a StorageError ${code}`).toBeDefined();
  if (!isStorageError(caught))
    throw new Error(`expected a StorageError ${code}`, { cause: caught });
  expect(caught.code).toBe(code);
  return caught;
}

/** Equality of byte contents regardless of the array's class (Buffer or Uint8Array). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  expect(Buffer.compare(actual, expected)).toBe(0);
}

/** Runs every BlobStore behaviour against the stores `factory` makes. */
export function runBlobStoreConformance(name: string, factory: BlobStoreFactory): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let harness: BlobStoreHarness;
    let store: BlobStore;

    beforeEach(async () => {
      harness = await factory();
      store = harness.store;
    });
    afterEach(async () => {
      await harness.dispose();
    });

    describe('put and read back', () => {
      it('stores bytes under their hash and reads them back whole and streamed', async () => {
        const bytes = random(100_000);
        const id = blobIdOf(bytes);
        expect(await store.has(id)).toBe(false);
        expect(await store.put(id, bytes)).toEqual({ id, size: bytes.length, created: true });
        expect(await store.has(id)).toBe(true);
        expect(await store.size(id)).toBe(bytes.length);
        expectSameBytes(await store.getBytes(id), bytes);
        expectSameBytes((await collect(store.get(id))).bytes, bytes);
        expect(await store.verify(id)).toBe(true);
        expect(await listAll(store)).toEqual([id]);
      });

      it('accepts an async iterable source of uneven pieces', async () => {
        const bytes = random(50_000);
        const id = blobIdOf(bytes);
        async function* uneven(): AsyncGenerator<Uint8Array> {
          let offset = 0;
          for (const size of [1, 0, 7, 4096, 13, 30_000]) {
            await tick();
            yield bytes.slice(offset, offset + size);
            offset += size;
          }
          yield bytes.slice(offset);
        }
        expect(
          await store.put(id, uneven(), { maxSize: bytes.length, expectedSize: bytes.length }),
        ).toEqual({
          id,
          size: bytes.length,
          created: true,
        });
        expectSameBytes(await store.getBytes(id), bytes);
      });

      it('accepts a Node Readable (what an HTTP request body is) as the source', async () => {
        const bytes = random(200_000);
        const id = blobIdOf(bytes);
        const readable = Readable.from([
          Buffer.from(bytes.subarray(0, 70_000)),
          Buffer.from(bytes.subarray(70_000)),
        ]);
        await store.put(id, readable, { maxSize: MiB });
        expectSameBytes(await store.getBytes(id), bytes);
      });

      it('stores a 0-byte blob', async () => {
        expect(blobIdOf(new Uint8Array(0))).toBe(EMPTY_ID);
        expect(await store.put(EMPTY_ID, new Uint8Array(0))).toEqual({
          id: EMPTY_ID,
          size: 0,
          created: true,
        });
        expect(await store.has(EMPTY_ID)).toBe(true);
        expect(await store.size(EMPTY_ID)).toBe(0);
        expect((await store.getBytes(EMPTY_ID)).length).toBe(0);
        expect((await collect(store.get(EMPTY_ID))).bytes.length).toBe(0);
        expect(await store.verify(EMPTY_ID)).toBe(true);
        expect(await listAll(store)).toEqual([EMPTY_ID]);
        // From an empty stream too: the same blob, already there.
        async function* nothing(): AsyncGenerator<Uint8Array> {}
        expect(await store.put(EMPTY_ID, nothing(), { maxSize: 0, expectedSize: 0 })).toEqual({
          id: EMPTY_ID,
          size: 0,
          created: false,
        });
      });

      it('streams a 5 MiB blob in and out in pieces', async () => {
        const bytes = random(5 * MiB);
        const id = blobIdOf(bytes);
        await store.put(id, streamOf(bytes, 64 * 1024), {
          maxSize: 16 * MiB,
          expectedSize: bytes.length,
        });
        expect(await store.size(id)).toBe(5 * MiB);
        const read = await collect(store.get(id));
        expect(read.chunks).toBeGreaterThan(1);
        expectSameBytes(read.bytes, bytes);
        expect(await store.verify(id)).toBe(true);
      });

      it('lets a reader stop early and read again', async () => {
        const bytes = random(2 * MiB);
        const id = blobIdOf(bytes);
        await store.put(id, bytes);
        let seen = 0;
        for await (const chunk of store.get(id)) {
          seen += chunk.length;
          break;
        }
        expect(seen).toBeGreaterThan(0);
        expect(seen).toBeLessThan(bytes.length);
        expectSameBytes((await collect(store.get(id))).bytes, bytes);
        await store.delete(id);
        expect(await store.has(id)).toBe(false);
      });

      it('keeps its own copy: mutating the arrays passed in or handed out changes nothing stored', async () => {
        const bytes = random(10_000);
        const original = bytes.slice();
        const id = blobIdOf(bytes);
        await store.put(id, bytes);
        bytes.fill(0);
        const read = await store.getBytes(id);
        expectSameBytes(read, original);
        read.fill(1);
        for await (const chunk of store.get(id)) chunk.fill(2);
        expectSameBytes(await store.getBytes(id), original);
      });
    });

    describe('idempotence and concurrency', () => {
      it('putting an existing id succeeds, reports created: false and keeps the bytes', async () => {
        const bytes = random(4096);
        const id = blobIdOf(bytes);
        expect((await store.put(id, bytes)).created).toBe(true);
        expect(await store.put(id, streamOf(bytes, 1000), { maxSize: 4096 })).toEqual({
          id,
          size: 4096,
          created: false,
        });
        expectSameBytes(await store.getBytes(id), bytes);
        expect(await listAll(store)).toEqual([id]);
      });

      it('still verifies the bytes when the id already exists', async () => {
        const bytes = random(4096);
        const id = blobIdOf(bytes);
        await store.put(id, bytes);
        await rejectsWith(store.put(id, random(4096)), 'BLOB_HASH_MISMATCH');
        expectSameBytes(await store.getBytes(id), bytes);
      });

      it('concurrent puts of the same id all succeed and leave one intact blob', async () => {
        const bytes = random(300_000);
        const id = blobIdOf(bytes);
        const results = await Promise.all(
          Array.from({ length: 8 }, () =>
            store.put(id, streamOf(bytes, 16 * 1024), { maxSize: MiB }),
          ),
        );
        for (const result of results) expect(result).toMatchObject({ id, size: bytes.length });
        expect(results.some((result) => result.created)).toBe(true);
        expectSameBytes(await store.getBytes(id), bytes);
        expect(await listAll(store)).toEqual([id]);
      });

      it('concurrent good and tampered puts of one id: the good succeed, the tampered fail, the blob is intact', async () => {
        const bytes = random(100_000);
        const tampered = bytes.slice();
        tampered[50_000] = (tampered[50_000]! + 1) & 0xff;
        const id = blobIdOf(bytes);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 8 }, (_, index) =>
            store.put(id, streamOf(index % 2 === 0 ? bytes : tampered, 8192), { maxSize: MiB }),
          ),
        );
        outcomes.forEach((outcome, index) => {
          if (index % 2 === 0) expect(outcome.status).toBe('fulfilled');
          else
            expect(
              outcome.status === 'rejected' && isStorageError(outcome.reason, 'BLOB_HASH_MISMATCH'),
            ).toBe(true);
        });
        expectSameBytes(await store.getBytes(id), bytes);
        expect(await store.verify(id)).toBe(true);
      });

      it('concurrent puts of different ids are all listed', async () => {
        const blobs = Array.from({ length: 20 }, (_, index) => random(1000 + index));
        const ids = blobs.map(blobIdOf);
        await Promise.all(
          blobs.map((bytes, index) =>
            store.put(ids[index]!, streamOf(bytes, 300), { maxSize: MiB }),
          ),
        );
        expect(await listAll(store)).toEqual([...ids].sort());
      });
    });

    describe('rejected puts store nothing', () => {
      it('rejects bytes that do not hash to the id', async () => {
        const bytes = random(10_000);
        const id = blobIdOf(bytes);
        const err = await rejectsWith(store.put(id, random(10_000)), 'BLOB_HASH_MISMATCH');
        expect(err.blobId).toBe(id);
        await rejectsWith(
          store.put(id, streamOf(random(10_000), 999), { maxSize: MiB }),
          'BLOB_HASH_MISMATCH',
        );
        expect(await store.has(id)).toBe(false);
        expect(await store.missing([id])).toEqual([id]);
        expect(await listAll(store)).toEqual([]);
        await rejectsWith(store.getBytes(id), 'BLOB_NOT_FOUND');
      });

      it('a source that throws midway stores nothing, passes the cause on, and leaves the id usable', async () => {
        const bytes = random(200_000);
        const id = blobIdOf(bytes);
        const boom = new Error('connection reset');
        async function* aborted(): AsyncGenerator<Uint8Array> {
          yield bytes.slice(0, 100_000);
          await tick();
          throw boom;
        }
        const err = await rejectsWith(
          store.put(id, aborted(), { maxSize: MiB }),
          'BLOB_SOURCE_FAILED',
        );
        expect(err.cause).toBe(boom);
        expect(await store.has(id)).toBe(false);
        expect(await listAll(store)).toEqual([]);
        await rejectsWith(store.size(id), 'BLOB_NOT_FOUND');
        expect((await store.put(id, bytes)).created).toBe(true);
        expect(await listAll(store)).toEqual([id]);
      });

      it('a destroyed Node stream stores nothing', async () => {
        const bytes = random(100_000);
        const id = blobIdOf(bytes);
        const readable = new Readable({ read() {} });
        readable.push(Buffer.from(bytes.subarray(0, 50_000)));
        setImmediate(() => readable.destroy(new Error('client went away')));
        await rejectsWith(store.put(id, readable, { maxSize: MiB }), 'BLOB_SOURCE_FAILED');
        expect(await listAll(store)).toEqual([]);
      });

      it('a source that yields something other than bytes stores nothing', async () => {
        const id = blobIdOf(random(10));
        const strings = Readable.from(['not bytes']) as AsyncIterable<Uint8Array>;
        await rejectsWith(store.put(id, strings, { maxSize: MiB }), 'BLOB_SOURCE_FAILED');
        await rejectsWith(
          store.put(id, 'not bytes' as unknown as Uint8Array, { maxSize: MiB }),
          'OPTIONS_INVALID',
        );
        expect(await listAll(store)).toEqual([]);
      });

      it('accepts exactly maxSize bytes and rejects one more', async () => {
        const ok = random(1000);
        await store.put(blobIdOf(ok), ok, { maxSize: 1000 });
        const over = random(1001);
        const err = await rejectsWith(
          store.put(blobIdOf(over), over, { maxSize: 1000 }),
          'BLOB_TOO_LARGE',
        );
        expect(err.blobId).toBe(blobIdOf(over));
        await rejectsWith(
          store.put(blobIdOf(over), streamOf(over, 100), { maxSize: 1000 }),
          'BLOB_TOO_LARGE',
        );
        expect(await listAll(store)).toEqual([blobIdOf(ok)]);
      });

      it('stops reading an oversize source as soon as it passes the limit, and closes it', async () => {
        let pulled = 0;
        let closed = false;
        async function* endless(): AsyncGenerator<Uint8Array> {
          try {
            for (;;) {
              await tick();
              pulled++;
              yield new Uint8Array(1024);
            }
          } finally {
            closed = true;
          }
        }
        await rejectsWith(
          store.put(blobIdOf(random(10)), endless(), { maxSize: 10 * 1024 }),
          'BLOB_TOO_LARGE',
        );
        expect(pulled).toBe(11);
        expect(closed).toBe(true);
        expect(await listAll(store)).toEqual([]);
      });

      it('rejects an announced size above the limit without reading the source', async () => {
        let pulled = 0;
        async function* source(): AsyncGenerator<Uint8Array> {
          await tick();
          pulled++;
          yield new Uint8Array(1);
        }
        await rejectsWith(
          store.put(blobIdOf(random(10)), source(), { maxSize: 100, expectedSize: 101 }),
          'BLOB_TOO_LARGE',
        );
        expect(pulled).toBe(0);
      });

      it('rejects a source shorter or longer than the announced size', async () => {
        const bytes = random(5000);
        const id = blobIdOf(bytes);
        await rejectsWith(
          store.put(id, bytes, { maxSize: MiB, expectedSize: 4999 }),
          'BLOB_SIZE_MISMATCH',
        );
        await rejectsWith(
          store.put(id, streamOf(bytes, 1000), { maxSize: MiB, expectedSize: 5001 }),
          'BLOB_SIZE_MISMATCH',
        );
        await rejectsWith(
          store.put(id, streamOf(bytes, 1000), { maxSize: MiB, expectedSize: 2500 }),
          'BLOB_SIZE_MISMATCH',
        );
        expect(await listAll(store)).toEqual([]);
        expect((await store.put(id, bytes, { maxSize: MiB, expectedSize: 5000 })).created).toBe(
          true,
        );
      });

      it('rejects invalid size options', async () => {
        const bytes = random(10);
        const id = blobIdOf(bytes);
        for (const options of [
          { maxSize: -1 },
          { maxSize: 1.5 },
          { maxSize: Number.NaN },
          { maxSize: 100, expectedSize: -1 },
        ]) {
          await rejectsWith(store.put(id, bytes, options), 'OPTIONS_INVALID');
        }
        expect(await listAll(store)).toEqual([]);
      });
    });

    describe('ids', () => {
      const valid = blobIdOf(new TextEncoder().encode('rogatory'));
      const invalid: readonly [string, unknown][] = [
        ['empty', ''],
        ['path traversal', '../etc/passwd'],
        ['path traversal padded to 64', `../../${valid.slice(6)}`],
        ['absolute path', `/${valid.slice(1)}`],
        ['uppercase hex', valid.toUpperCase()],
        ['63 characters', valid.slice(0, 63)],
        ['65 characters', `${valid}0`],
        ['trailing newline', `${valid}\n`],
        ['leading space', ` ${valid.slice(1)}`],
        ['non-hex letters', 'g'.repeat(64)],
        ['slash inside', `${valid.slice(0, 2)}/${valid.slice(3)}`],
        ['not a string', 42],
        ['undefined', undefined],
      ];

      it.each(invalid)(
        'rejects an invalid id (%s) in every method, without echoing it',
        async (_label, id) => {
          expect(valid.toUpperCase()).not.toBe(valid);
          const bad = id as string;
          const checks: Promise<unknown>[] = [
            store.put(bad, new Uint8Array(1)),
            store.getBytes(bad),
            collect(store.get(bad)),
            store.has(bad),
            store.size(bad),
            store.delete(bad),
            store.verify(bad),
            store.missing([valid, bad]),
          ];
          for (const check of checks) {
            const err = await rejectsWith(check, 'BLOB_ID_INVALID');
            expect(err.blobId).toBeUndefined();
            if (typeof id === 'string' && id.length > 3) expect(err.message).not.toContain(id);
          }
          expect(await listAll(store)).toEqual([]);
        },
      );
    });

    describe('missing, delete, list, verify', () => {
      it('missing() names the ids not stored, de-duplicated, in first-seen order', async () => {
        const [absent1, absent2, absent3] = [random(10), random(11), random(12)].map(blobIdOf) as [
          string,
          string,
          string,
        ];
        const blobA = random(100);
        const blobB = random(200);
        const idA = blobIdOf(blobA);
        const idB = blobIdOf(blobB);
        await store.put(idA, blobA);
        await store.put(idB, blobB);
        expect(await store.missing([absent2, idA, absent3, absent2, idB, absent1])).toEqual([
          absent2,
          absent3,
          absent1,
        ]);
        expect(await store.missing([idA, idB, idA])).toEqual([]);
        expect(await store.missing([])).toEqual([]);
        const many = Array.from({ length: 50 }, (_, index) => blobIdOf(random(20 + index)));
        expect(await store.missing([...many, idA])).toEqual(many);
      });

      it('delete removes a blob and is idempotent', async () => {
        const bytes = random(1000);
        const id = blobIdOf(bytes);
        const other = random(1000);
        await store.put(id, bytes);
        await store.put(blobIdOf(other), other);
        await store.delete(id);
        expect(await store.has(id)).toBe(false);
        expect(await store.missing([id])).toEqual([id]);
        await rejectsWith(store.getBytes(id), 'BLOB_NOT_FOUND');
        await rejectsWith(store.size(id), 'BLOB_NOT_FOUND');
        await store.delete(id);
        await store.delete(blobIdOf(random(5)));
        expect(await listAll(store)).toEqual([blobIdOf(other)]);
        // And it can come back.
        expect((await store.put(id, bytes)).created).toBe(true);
        expectSameBytes(await store.getBytes(id), bytes);
      });

      it('reads of an absent id fail with BLOB_NOT_FOUND, streamed reads on the first read', async () => {
        const id = blobIdOf(random(10));
        let iterable: AsyncIterable<Uint8Array> | undefined;
        expect(() => (iterable = store.get(id))).not.toThrow();
        const err = await rejectsWith(collect(iterable!), 'BLOB_NOT_FOUND');
        expect(err.blobId).toBe(id);
        await rejectsWith(store.getBytes(id), 'BLOB_NOT_FOUND');
        await rejectsWith(store.size(id), 'BLOB_NOT_FOUND');
        await rejectsWith(store.verify(id), 'BLOB_NOT_FOUND');
        expect(await store.has(id)).toBe(false);
      });

      it('list() follows puts and deletes', async () => {
        const blobs = Array.from({ length: 12 }, (_, index) => random(100 + index));
        const ids = blobs.map(blobIdOf);
        for (const [index, bytes] of blobs.entries()) await store.put(ids[index]!, bytes);
        expect(await listAll(store)).toEqual([...ids].sort());
        const kept = ids.filter((_, index) => index % 3 !== 0);
        for (const [index, id] of ids.entries()) if (index % 3 === 0) await store.delete(id);
        expect(await listAll(store)).toEqual([...kept].sort());
      });

      it('verify() detects bytes changed behind the store', async (context) => {
        if (harness.corrupt === undefined) {
          context.skip();
          return;
        }
        const bytes = random(10_000);
        const id = blobIdOf(bytes);
        await store.put(id, bytes);
        expect(await store.verify(id)).toBe(true);
        await harness.corrupt(id);
        expect(await store.verify(id)).toBe(false);
      });
    });
  });
}
