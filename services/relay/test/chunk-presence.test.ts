import { createHash } from 'node:crypto';
import { MemoryBlobStore } from '@rogatory/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { openEmbeddedBackend } from '../src/backend/embedded.js';
import type { RelayBackend } from '../src/backend/types.js';
import { ChunkPresence } from '../src/chunk-presence.js';

const GRACE = 10_000;
const RETENTION = { chunkRetentionMs: 1000, uploadGraceMs: GRACE };
const opened: RelayBackend[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
});

function chunk(text: string): { id: string; bytes: Uint8Array } {
  const bytes = new TextEncoder().encode(text);
  return { id: createHash('sha256').update(bytes).digest('hex'), bytes };
}

/** A memory blob store that counts the ids `missing` is asked about. */
class CountingBlobs extends MemoryBlobStore {
  asked: string[] = [];
  override async missing(ids: readonly string[]): Promise<string[]> {
    this.asked.push(...ids);
    return super.missing(ids);
  }
}

async function setUp(options: { maxEntries?: number } = {}) {
  let now = 1_700_000_000_000;
  const clock = () => now;
  const backend = await openEmbeddedBackend({ file: ':memory:', clock });
  opened.push(backend);
  const blobs = new CountingBlobs();
  const presence = new ChunkPresence({ blobs, backend, clock, uploadGraceMs: GRACE, ...options });
  return {
    backend,
    blobs,
    presence,
    clock,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('chunk presence', () => {
  it('answers for remembered chunks for half the upload grace, then asks the blob store again', async () => {
    const { blobs, presence, clock, advance } = await setUp();
    const a = chunk('a');
    const b = chunk('b');
    await blobs.put(a.id, a.bytes);
    presence.remember(a.id, clock());
    expect(await presence.missing([a.id, b.id, a.id])).toEqual([b.id]);
    expect(blobs.asked).toEqual([b.id]);
    advance(GRACE / 2 - 1);
    expect(await presence.missing([a.id])).toEqual([]);
    expect(blobs.asked).toEqual([b.id]);
    advance(1);
    blobs.asked = [];
    expect(await presence.missing([a.id])).toEqual([]);
    expect(blobs.asked).toEqual([a.id]);
  });

  it('does not remember a note already older than half the grace, forgets on request and keeps at most maxEntries', async () => {
    const { blobs, presence, clock } = await setUp({ maxEntries: 2 });
    const [a, b, c] = [chunk('a'), chunk('b'), chunk('c')];
    presence.remember(a.id, clock() - GRACE / 2);
    expect(await presence.missing([a.id])).toEqual([a.id]);
    presence.remember(a.id, clock());
    presence.forget(a.id);
    expect(await presence.missing([a.id])).toEqual([a.id]);
    for (const x of [a, b, c]) presence.remember(x.id, clock());
    blobs.asked = [];
    // The oldest entry made room: a is asked about (and missing, it was never stored).
    expect(await presence.missing([a.id, b.id, c.id])).toEqual([a.id]);
    expect(blobs.asked).toEqual([a.id]);
  });

  it('deletes an orphan chunk, but not one uploaded again after GC chose it, and forgets both', async () => {
    const { backend, blobs, presence, clock, advance } = await setUp();
    const stale = chunk('stale');
    const renewed = chunk('renewed');
    for (const x of [stale, renewed]) {
      await blobs.put(x.id, x.bytes);
      await backend.noteUpload(x.id, clock(), { identity: 'ng-moj@wacap', size: x.bytes.length });
      presence.remember(x.id, clock());
    }
    advance(GRACE + 1);
    // Another instance takes an upload of `renewed` between the backend's choice and the delete.
    const racing: RelayBackend = Object.create(backend) as RelayBackend;
    racing.collectGarbage = async (now, retention) => {
      const result = await backend.collectGarbage(now, retention);
      expect([...result.orphanChunks].sort()).toEqual([stale.id, renewed.id].sort());
      await backend.noteUpload(renewed.id, clock(), {
        identity: 'sn-moj@wacap',
        size: renewed.bytes.length,
      });
      return result;
    };
    const gc = new ChunkPresence({ blobs, backend: racing, clock, uploadGraceMs: GRACE });
    gc.remember(stale.id, clock());
    expect(await gc.collectGarbage(clock, RETENTION)).toBe(1);
    expect(await blobs.has(stale.id)).toBe(false);
    expect(await blobs.has(renewed.id)).toBe(true);
    blobs.asked = [];
    expect(await gc.missing([stale.id])).toEqual([stale.id]);
    expect(blobs.asked).toEqual([stale.id]);
  });
});
