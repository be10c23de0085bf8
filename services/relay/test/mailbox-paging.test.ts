import { CONTEXTS, TrustStore, canonicalBytes, ready, signBytes } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { MemoryBlobStore } from '@rogatory/storage';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRelayApp } from '../src/app.js';
import { openEmbeddedBackend } from '../src/backend/embedded.js';
import type { RelayBackend } from '../src/backend/types.js';

/** GET /v1/mailbox paging as docs/relay-api.md states it: `limit` default 100, taken into 1…1000; the cursor is the client's. */

let world: TestWorld;
let app: FastifyInstance;
let backend: RelayBackend;
let token: string;
const ADDRESS = 'sn-moj@wacap';
const ITEMS = 1005;

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
    sessionSecret: new Uint8Array(32).fill(5),
    logger: false,
    workers: false,
  });
  // Mailbox items straight into the backend: the route pages them, whatever they hold.
  for (let i = 0; i < ITEMS; i++) {
    await backend.pushEvidence(ADDRESS, `env-${i}`, `k-${i}`, canonicalBytes({ n: i }));
  }
  const { challenge, relay } = (
    await app.inject({
      method: 'POST',
      url: '/v1/session/challenge',
      payload: { address: ADDRESS },
    })
  ).json<{
    challenge: string;
    relay: string;
  }>();
  const body = { type: 'session', relay, address: ADDRESS, challenge, issuedAt: Date.now() };
  const signature = signBytes(CONTEXTS.sessionChallenge, body, world.authority(ADDRESS).identity);
  token = (
    await app.inject({ method: 'POST', url: '/v1/session', payload: { body, signature } })
  ).json<{ token: string }>().token;
});

afterAll(async () => {
  await app.close();
  await backend.close();
});

async function page(query: string): Promise<number[]> {
  const res = await app.inject({
    url: `/v1/mailbox${query}`,
    headers: { authorization: `Bearer ${token}` },
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ items: { seq: number }[] }>().items.map((i) => i.seq);
}

describe('mailbox paging', () => {
  it('answers 100 items by default, at most 1000, at least 1, oldest first after the given cursor', async () => {
    const all = await page('?limit=1000');
    expect(all).toHaveLength(1000);
    expect(all).toEqual([...all].sort((a, b) => a - b));
    expect(await page('')).toEqual(all.slice(0, 100));
    expect(await page('?limit=9999')).toEqual(all);
    expect(await page('?limit=0')).toEqual(all.slice(0, 1));
    expect(await page(`?after=${all[99]!}&limit=3`)).toEqual(all.slice(100, 103));
    // Reading moves nothing: the same cursor gives the same page again.
    expect(await page(`?after=${all[99]!}&limit=3`)).toEqual(all.slice(100, 103));
    const rest = await page(`?after=${all.at(-1)!}&limit=1000`);
    expect(rest).toHaveLength(ITEMS - 1000);
  });

  it('refuses a limit or cursor that is not a short decimal number', async () => {
    for (const query of ['?limit=abc', '?limit=10000', '?after=-1', '?after=1234567890123456']) {
      const res = await app.inject({
        url: `/v1/mailbox${query}`,
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.statusCode, query).toBe(400);
      expect(res.json<{ error: { code: string } }>().error.code, query).toBe('MALFORMED');
    }
  });
});
