import { TrustStore, ready } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { MAILBOX_LIMITS } from '@rogatory/relay-api';
import { MemoryBlobStore } from '@rogatory/storage';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRelayApp } from '../src/app.js';
import { openEmbeddedBackend } from '../src/backend/embedded.js';
import type { RelayBackend } from '../src/backend/types.js';
import { nodeClient } from '../src/testing/relay-helpers.js';

/** The relay and its client hold the same contract (@rogatory/relay-api): what one sends, the other takes. */

let world: TestWorld;
let app: FastifyInstance;
let backend: RelayBackend;
let url: string;
const ADDRESS = 'sn-moj@wacap';

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: Date.now() });
  const net = world.networks['wacap']!;
  const trust = new TrustStore({ pinned: [{ network: 'wacap', root: net.rootRef }] });
  trust.addManifest(net.manifest);
  backend = await openEmbeddedBackend({ file: ':memory:' });
  app = await buildRelayApp({
    relayId: net.relay.id,
    key: net.relay.key,
    trust,
    backend,
    blobs: new MemoryBlobStore(),
    sessionSecret: new Uint8Array(32).fill(7),
    logger: false,
    workers: false,
  });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app.close();
  await backend.close();
});

describe('relay API contract', () => {
  it('a client asking for its largest mailbox page is answered, not refused MALFORMED', async () => {
    // The relay takes `limit` of at most 4 digits and answers at most MAILBOX_LIMITS.maxPage items;
    // the client used to send its own maximum (limit=10000) as it was, and got 400 MALFORMED.
    const client = nodeClient(world, url, ADDRESS);
    await expect(client.readMailbox(0, 10_000)).resolves.toEqual([]);
    await expect(client.readMailbox(0, MAILBOX_LIMITS.maxPage + 1)).resolves.toEqual([]);
  });
});
