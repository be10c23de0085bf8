import {
  signEnvelope,
  newEnvelopeId,
  withHop,
  type Envelope,
  type SigningKeyPair,
} from '@rogatory/protocol';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RelayPeerClient, isRelayClientError } from '../src/index.js';
import type { FakeRelay } from './fake-relay.js';
import { makeChunk, recordingRuntime, startRelay, streamOf, testWorld } from './helpers.js';

const FROM = 'relay@casc';
const TO = 'relay@wacap';
let key: SigningKeyPair;
let otherKey: SigningKeyPair;

beforeAll(async () => {
  const world = await testWorld();
  key = world.networks['casc']!.relay.key;
  otherKey = world.networks['global']!.relay.key;
});

describe('RelayPeerClient against a relay that verifies with verifyRelayCall', () => {
  let relay: FakeRelay;

  beforeEach(async () => {
    relay = await startRelay();
  });

  afterEach(async () => {
    await relay.close();
  });

  function peer(options: { key?: SigningKeyPair; to?: string } = {}): RelayPeerClient {
    return new RelayPeerClient({
      baseUrl: relay.url,
      from: FROM,
      to: options.to ?? TO,
      key: options.key ?? key,
      trust: relay.world.trustFor('casc'),
      runtime: recordingRuntime().runtime,
    });
  }

  function inbound(recipients: string[], dossier = makeChunk(100)): Envelope {
    const world = relay.world;
    const now = Date.now();
    const env = signEnvelope(
      {
        id: newEnvelopeId(),
        sender: 'kz-gpo@casc',
        recipients,
        createdAt: now,
        expiresAt: now + 3600_000,
        maxHops: 4,
        dossier: { id: dossier.id, size: dossier.bytes.length },
        chunks: [],
      },
      world.authority('kz-gpo@casc').identity,
    );
    return withHop(env, { relay: FROM, receivedAt: now });
  }

  it('signs missing, streamed chunk uploads, envelopes and evidences so the callee accepts them', async () => {
    const client = peer();
    const a = makeChunk(40_000);
    const b = makeChunk(5_000);
    expect(await client.missingChunks([a.id, b.id])).toEqual([a.id, b.id]);
    expect(await client.putChunk(a.id, streamOf(a.bytes, 4096), a.bytes.length)).toMatchObject({
      created: true,
    });
    expect(await client.uploadChunks([a, b])).toMatchObject({
      chunksSkipped: 1,
      chunksUploaded: 1,
    });
    expect(Buffer.from(relay.chunks.get(a.id)!).equals(a.bytes)).toBe(true);

    const envelope = inbound(['sn-moj@wacap', 'ng-agf@wacap']);
    const evidences = await client.forwardEnvelope(envelope);
    expect(evidences.map((e) => [e.body.kind, e.body.recipient])).toEqual([
      ['relay-acceptance', 'sn-moj@wacap'],
      ['relay-acceptance', 'ng-agf@wacap'],
    ]);
    await client.forwardEvidences(evidences.map((evidence) => ({ evidence, envelope })));
    expect(relay.relayCalls.every((c) => c.from === FROM)).toBe(true);
    expect(relay.relayCalls.map((c) => c.path)).toContain(`/v1/relay/chunks/${a.id}`);
  });

  it("checks objects sent along with a hand-over before any call: the envelope's, within limits, hashing to their ids", async () => {
    const dossier = makeChunk(100);
    const envelope = inbound(['sn-moj@wacap'], dossier);
    const client = peer();
    const calls = relay.relayCalls.length;
    const codeOf = (inline: { id: string; bytes: Uint8Array }[]): Promise<unknown> =>
      client.forwardEnvelope(envelope, { inline }).then(
        () => 'ok',
        (e: unknown) => (isRelayClientError(e) ? e.code : e),
      );
    const other = makeChunk(100);
    expect(await codeOf([other])).toBe('MALFORMED');
    const tampered = dossier.bytes.slice();
    tampered[0]! ^= 1;
    expect(await codeOf([{ id: dossier.id, bytes: tampered }])).toBe('CHUNK_HASH_MISMATCH');
    expect(await codeOf(Array.from({ length: 17 }, () => dossier))).toBe('LIMIT_EXCEEDED');
    expect(relay.relayCalls.length).toBe(calls);
  });

  it('carries the RelayRejections of a refused envelope', async () => {
    const err = await peer()
      .forwardEnvelope(inbound(['ge-pog@casc']))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isRelayClientError(err, 'RECIPIENT_UNKNOWN')).toBe(true);
    expect(isRelayClientError(err) && err.evidences?.map((e) => e.body.kind)).toEqual([
      'relay-rejection',
    ]);
  });

  it('is refused with a key the caller does not hold, or when signed for another relay', async () => {
    const a = makeChunk(10);
    const wrongKey = await peer({ key: otherKey })
      .missingChunks([a.id])
      .then(
        () => 'ok',
        (e: unknown) => (isRelayClientError(e) ? e.code : e),
      );
    expect(wrongKey).toBe('UNAUTHENTICATED');
    const forged = await peer({ key: { ...otherKey, kid: key.kid } })
      .missingChunks([a.id])
      .then(
        () => 'ok',
        (e: unknown) => (isRelayClientError(e) ? e.code : e),
      );
    expect(forged).toBe('SIGNATURE_INVALID');
    const elsewhere = await peer({ to: 'relay@global' })
      .missingChunks([a.id])
      .then(
        () => 'ok',
        (e: unknown) => (isRelayClientError(e) ? e.code : e),
      );
    expect(elsewhere).toBe('SIGNATURE_INVALID');
    expect(relay.relayCalls).toHaveLength(0);
  });
});
