import { CONTEXTS, TrustStore, canonicalBytes, ready, signBytes } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { MemoryBlobStore } from '@rogatory/storage';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRelayApp } from '../src/app.js';
import { openEmbeddedBackend } from '../src/backend/embedded.js';
import type { RelayBackend } from '../src/backend/types.js';
import { WsProbe } from './support/ws-probe.js';

/** The mailbox epoch on the wire (docs/relay-api.md, Mailbox): pages and item frames carry it; acks of another epoch are refused. */

let world: TestWorld;
let app: FastifyInstance;
let backend: RelayBackend;
let token: string;
let url: string;
let epoch: string;
const ADDRESS = 'sn-moj@wacap';
const STALE = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';

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
  for (let i = 1; i <= 5; i++)
    await backend.pushEvidence(ADDRESS, `env-${i}`, `k-${i}`, canonicalBytes({ n: i }));
  epoch = await backend.mailboxEpoch();
  const { challenge, relay } = (
    await app.inject({
      method: 'POST',
      url: '/v1/session/challenge',
      payload: { address: ADDRESS },
    })
  ).json<{ challenge: string; relay: string }>();
  const body = { type: 'session', relay, address: ADDRESS, challenge, issuedAt: Date.now() };
  const signature = signBytes(CONTEXTS.sessionChallenge, body, world.authority(ADDRESS).identity);
  token = (
    await app.inject({ method: 'POST', url: '/v1/session', payload: { body, signature } })
  ).json<{ token: string }>().token;
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app.close();
  await backend.close();
});

function ack(payload: unknown) {
  return app.inject({
    method: 'POST',
    url: '/v1/mailbox/ack',
    headers: { authorization: `Bearer ${token}` },
    payload: payload as Record<string, unknown>,
  });
}

async function seqs(): Promise<number[]> {
  return (await backend.readMailbox(ADDRESS, 0, 100)).map((item) => item.seq);
}

function socket(): WsProbe {
  return new WsProbe(`${url.replace(/^http/, 'ws')}/v1/mailbox/ws?token=${token}`);
}

function itemFrames(ws: WsProbe): { seq: number; epoch: unknown }[] {
  return ws.frames
    .filter((f): f is { type: 'item'; item: { seq: number }; epoch: unknown } => {
      return (f as { type?: unknown }).type === 'item';
    })
    .map((f) => ({ seq: f.item.seq, epoch: f.epoch }));
}

describe('mailbox epoch on the wire', () => {
  it('GET /v1/mailbox gives the epoch with the items', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/v1/mailbox?after=3',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ items: { seq: number }[]; epoch: string }>();
    expect(body.epoch).toBe(epoch);
    expect(body.items.map((i) => i.seq)).toEqual([4, 5]);
  });

  it('an ack naming another epoch is refused with MAILBOX_RESET and acks nothing; its own epoch or none acks', async () => {
    const stale = await ack({ seqs: [1], epoch: STALE });
    expect(stale.statusCode).toBe(409);
    expect(stale.json<{ error: { code: string } }>().error.code).toBe('MAILBOX_RESET');
    expect(await seqs()).toEqual([1, 2, 3, 4, 5]);
    const malformed = await ack({ seqs: [1], epoch: 'x' });
    expect(malformed.statusCode).toBe(400);
    expect(await seqs()).toEqual([1, 2, 3, 4, 5]);
    expect((await ack({ seqs: [1], epoch })).json()).toEqual({ acked: 1 });
    expect((await ack({ seqs: [2] })).json()).toEqual({ acked: 1 });
    expect(await seqs()).toEqual([3, 4, 5]);
  });

  it('WebSocket: items carry the epoch; a subscribe of another epoch is served from 0, of this one from its cursor', async () => {
    const current = socket();
    expect(await current.opened).toBe(true);
    current.send(JSON.stringify({ type: 'subscribe', after: 4, epoch }));
    expect(await current.until(() => itemFrames(current).length >= 1)).toBe(true);
    expect(itemFrames(current)).toEqual([{ seq: 5, epoch }]);
    await current.close();

    const stale = socket();
    expect(await stale.opened).toBe(true);
    stale.send(JSON.stringify({ type: 'subscribe', after: 4, epoch: STALE }));
    expect(await stale.until(() => itemFrames(stale).length >= 3)).toBe(true);
    expect(itemFrames(stale)).toEqual([
      { seq: 3, epoch },
      { seq: 4, epoch },
      { seq: 5, epoch },
    ]);
    // An ack of the old epoch names other items: refused, nothing acked.
    stale.send(JSON.stringify({ type: 'ack', seqs: [3], epoch: STALE }));
    expect(
      await stale.until(() =>
        stale.frames.some((f) => (f as { code?: unknown }).code === 'MAILBOX_RESET'),
      ),
    ).toBe(true);
    expect(await seqs()).toEqual([3, 4, 5]);
    stale.send(JSON.stringify({ type: 'ack', seqs: [3], epoch }));
    expect(
      await stale.until(() => stale.frames.some((f) => (f as { type?: unknown }).type === 'acked')),
    ).toBe(true);
    expect(await seqs()).toEqual([4, 5]);
    await stale.close();
  });

  it('WebSocket: a malformed epoch is a malformed frame', async () => {
    const ws = socket();
    expect(await ws.opened).toBe(true);
    ws.send(JSON.stringify({ type: 'subscribe', after: 0, epoch: 'not an epoch!' }));
    expect(
      await ws.until(() => ws.frames.some((f) => (f as { code?: unknown }).code === 'MALFORMED')),
    ).toBe(true);
    expect(itemFrames(ws)).toEqual([]);
    await ws.close();
  });
});
