import { createHash, randomBytes } from 'node:crypto';
import { CONTEXTS, ready, verifySignature, type SigningKeyPair } from '@rogatory/protocol';
import { buildTestWorld } from '@rogatory/protocol/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  EMPTY_BODY_SHA256,
  RELAY_CALL_HEADERS,
  isRelayCallError,
  relayCallBodySha256,
  relayCallHeaders,
  verifyRelayCall,
  type RelayErrorCode,
  type VerifyRelayCallOptions,
} from '../src/index.js';

const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const makeChunk = (size: number): { id: string; bytes: Uint8Array } => {
  const bytes = new Uint8Array(randomBytes(size));
  return { id: sha256Hex(bytes), bytes };
};

const FROM = 'relay@casc';
const TO = 'relay@wacap';
let key: SigningKeyPair;
let otherKey: SigningKeyPair;

beforeAll(async () => {
  await ready();
  const world = buildTestWorld({ now: Date.now() });
  key = world.networks['casc']!.relay.key;
  otherKey = world.networks['global']!.relay.key;
});

function codeOf(fn: () => unknown): RelayErrorCode | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (isRelayCallError(err)) return err.code;
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
    expect(isRelayCallError(err) && err.status).toBe(401);
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
