/**
 * A relay whose own storage is full refuses an upload with STORAGE_FULL
 * (507), a code of its own that operators can alert on and that clients
 * retry like UNAVAILABLE; nothing of the refused chunk is kept, and uploads
 * work again once space returns.
 */
import { createHash, randomBytes } from 'node:crypto';
import { isRelayClientError, isTransientError } from '@rogatory/client';
import { ready } from '@rogatory/protocol';
import { StorageError } from '@rogatory/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromStorageError } from '../src/errors.js';
import { startTestRelays, type TestNetworkOfRelays } from '../src/testing/harness.js';
import { nodeClient } from '../src/testing/relay-helpers.js';

let net: TestNetworkOfRelays;

beforeAll(async () => {
  await ready();
  net = await startTestRelays({ backend: { kind: 'embedded' }, networks: ['wacap'] });
});

afterAll(async () => {
  await net.stop();
});

describe('relay storage full', () => {
  it('maps the storage layer’s STORAGE_FULL to its own code, other storage failures to UNAVAILABLE', () => {
    const full = fromStorageError(new StorageError('STORAGE_FULL', 'put: out of space'));
    expect([full.code, full.status]).toEqual(['STORAGE_FULL', 507]);
    const down = fromStorageError(new StorageError('STORAGE_UNAVAILABLE', 'put failed'));
    expect([down.code, down.status]).toEqual(['UNAVAILABLE', 503]);
  });

  it('refuses an upload with STORAGE_FULL, keeps nothing of it, and takes it once space returns', async () => {
    const wacap = net.relays['wacap']!;
    const blobs = wacap.blobs;
    const put = blobs.put.bind(blobs);
    blobs.put = () => Promise.reject(new StorageError('STORAGE_FULL', 'put: out of space'));
    const bytes = new Uint8Array(randomBytes(4096));
    const id = createHash('sha256').update(bytes).digest('hex');
    const client = nodeClient(net.world, wacap.url, 'sn-moj@wacap');
    await client.login();
    try {
      const err = await client.putChunk(id, bytes, bytes.length).catch((e: unknown) => e);
      expect(isRelayClientError(err, 'STORAGE_FULL')).toBe(true);
      expect((err as { status?: number }).status).toBe(507);
      expect(isTransientError(err)).toBe(true);
      expect(await blobs.missing([id])).toEqual([id]);
    } finally {
      blobs.put = put;
    }
    await client.putChunk(id, bytes, bytes.length);
    expect(await blobs.missing([id])).toEqual([]);
  });
});
