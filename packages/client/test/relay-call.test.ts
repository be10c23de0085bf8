import {
  CONTEXTS,
  signEnvelope,
  newEnvelopeId,
  verifySignature,
  withHop,
  type Envelope,
  type SigningKeyPair,
} from '@rogatory/protocol';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  EMPTY_BODY_SHA256,
  RELAY_CALL_HEADERS,
  RelayPeerClient,
  isRelayClientError,
  relayCallBodySha256,
  relayCallHeaders,
  sha256Hex,
  verifyRelayCall,
  type RelayClientErrorCode,
  type VerifyRelayCallOptions,
} from '../src/index.js';
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

function codeOf(fn: () => unknown): RelayClientErrorCode | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (isRelayClientError(err)) return err.code;
    throw err;
  }
}

describe('relay-call signatures', () => {
  const T = Date.UTC(2026, 10, 1, 12);
  const body = new TextEncoder().encode('{"evidences":[]}');
  const path = '/v1/relay/evidences?x=1';

  function signed(
    overrides: Partial<{
      method: string;
      path: string;
      bodySha256: string;
      timestamp: number;
      to: string;
    }> = {},
  ) {
    return relayCallHeaders({
      from: FROM,
      to: TO,
      method: 'POST',
      path,
      bodySha256: sha256Hex(body),
      timestamp: T,
      key,
      ...overrides,
    });
  }

  function verify(
    headers: VerifyRelayCallOptions['headers'],
    overrides: Partial<VerifyRelayCallOptions> = {},
  ) {
    return verifyRelayCall({
      headers,
      to: TO,
      method: 'POST',
      path,
      bodySha256: sha256Hex(body),
      now: T + 1000,
      resolveKey: ({ relay, kid }) => {
        if (relay !== FROM || kid !== key.kid) throw new Error('unknown key');
        return key.publicKey;
      },
      ...overrides,
    });
  }

  it('signs exactly { type, from, to, method, path, bodySha256, timestamp } under rogatory/v1/relay-call', () => {
    const headers = signed();
    expect(Object.keys(headers).sort()).toEqual([
      'rogatory-kid',
      'rogatory-relay',
      'rogatory-signature',
      'rogatory-timestamp',
    ]);
    expect(headers[RELAY_CALL_HEADERS.relay]).toBe(FROM);
    expect(headers[RELAY_CALL_HEADERS.kid]).toBe(key.kid);
    expect(headers[RELAY_CALL_HEADERS.timestamp]).toBe(String(T));
    const signedBody = {
      type: 'relay-call',
      from: FROM,
      to: TO,
      method: 'POST',
      path,
      bodySha256: sha256Hex(body),
      timestamp: T,
    };
    const signature = { kid: key.kid, value: headers[RELAY_CALL_HEADERS.signature]! };
    expect(() =>
      verifySignature(CONTEXTS.relayCall, signedBody, signature, key.publicKey),
    ).not.toThrow();
    expect(() =>
      verifySignature(CONTEXTS.sessionChallenge, signedBody, signature, key.publicKey),
    ).toThrow();
  });

  it('round-trips: verify accepts what was signed and names the caller', () => {
    expect(verify(signed())).toEqual({ from: FROM, kid: key.kid, timestamp: T });
    expect(verify(new Headers(signed()))).toMatchObject({ from: FROM });
    const mixedCase = Object.fromEntries(
      Object.entries(signed()).map(([k, v]) => [k.replace(/(^|-)r/g, '$1R'), v]),
    );
    expect(verify(mixedCase)).toMatchObject({ from: FROM });
  });

  it('rejects tampering with path, body, method, timestamp, target relay or caller', () => {
    expect(codeOf(() => verify(signed(), { path: '/v1/relay/evidences?x=2' }))).toBe(
      'SIGNATURE_INVALID',
    );
    expect(codeOf(() => verify(signed(), { path: '/v1/relay/envelopes?x=1' }))).toBe(
      'SIGNATURE_INVALID',
    );
    expect(
      codeOf(() =>
        verify(signed(), { bodySha256: sha256Hex(new TextEncoder().encode('{"evidences":[1]}')) }),
      ),
    ).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => verify(signed(), { method: 'PUT' }))).toBe('SIGNATURE_INVALID');
    expect(
      codeOf(() => verify({ ...signed(), [RELAY_CALL_HEADERS.timestamp]: String(T + 1) })),
    ).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => verify(signed({ to: 'relay@global' })))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => verify(signed(), { to: 'relay@global' }))).toBe('SIGNATURE_INVALID');
    const byOther = relayCallHeaders({
      from: FROM,
      to: TO,
      method: 'POST',
      path,
      bodySha256: sha256Hex(body),
      timestamp: T,
      key: { ...otherKey, kid: key.kid },
    });
    expect(codeOf(() => verify(byOther))).toBe('SIGNATURE_INVALID');
  });

  it('rejects a timestamp outside the window, unknown keys and missing, malformed or repeated headers as UNAUTHENTICATED', () => {
    expect(codeOf(() => verify(signed(), { now: T + 6 * 60_000 }))).toBe('UNAUTHENTICATED');
    expect(codeOf(() => verify(signed(), { now: T - 6 * 60_000 }))).toBe('UNAUTHENTICATED');
    expect(codeOf(() => verify(signed(), { now: T + 60_000, maxSkewMs: 30_000 }))).toBe(
      'UNAUTHENTICATED',
    );
    expect(codeOf(() => verify({ ...signed(), [RELAY_CALL_HEADERS.relay]: 'relay@global' }))).toBe(
      'UNAUTHENTICATED',
    );
    const { [RELAY_CALL_HEADERS.signature]: _dropped, ...unsigned } = signed();
    expect(codeOf(() => verify(unsigned))).toBe('UNAUTHENTICATED');
    expect(codeOf(() => verify({ ...signed(), [RELAY_CALL_HEADERS.timestamp]: '1e12' }))).toBe(
      'UNAUTHENTICATED',
    );
    expect(codeOf(() => verify({ ...signed(), [RELAY_CALL_HEADERS.signature]: 'abc' }))).toBe(
      'UNAUTHENTICATED',
    );
    const headers = signed();
    expect(
      codeOf(() =>
        verify({
          ...headers,
          [RELAY_CALL_HEADERS.kid]: [
            headers[RELAY_CALL_HEADERS.kid]!,
            headers[RELAY_CALL_HEADERS.kid]!,
          ],
        }),
      ),
    ).toBe('UNAUTHENTICATED');
    const err = (() => {
      try {
        verify(signed(), { now: T + 6 * 60_000 });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isRelayClientError(err) && err.status).toBe(401);
  });

  it('bodySha256: the hash of the exact body, of nothing when empty, and the chunk id for a chunk PUT', () => {
    expect(EMPTY_BODY_SHA256).toBe(sha256Hex(new Uint8Array(0)));
    expect(relayCallBodySha256({ method: 'POST', path: '/v1/relay/evidences', body })).toBe(
      sha256Hex(body),
    );
    expect(relayCallBodySha256({ method: 'GET', path: '/v1/relay/chunks/x' })).toBe(
      EMPTY_BODY_SHA256,
    );
    const chunk = makeChunk(100);
    expect(
      relayCallBodySha256({ method: 'PUT', path: `/prefix/v1/relay/chunks/${chunk.id}` }),
    ).toBe(chunk.id);
    expect(
      relayCallBodySha256({
        method: 'PUT',
        path: `/v1/relay/chunks/${chunk.id}`,
        body: new Uint8Array(3),
      }),
    ).toBe(chunk.id);
    expect(
      relayCallBodySha256({ method: 'POST', path: `/v1/relay/chunks/${chunk.id}`, body }),
    ).toBe(sha256Hex(body));
  });
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

  it('checks objects sent along with a hand-over before any call: the envelope\'s, within limits, hashing to their ids', async () => {
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
