import { relayCallBodySha256, relayCallHeaders } from '@rogatory/relay-api';
import { CONTEXTS, canonicalBytes, signBytes, type SigningKeyPair } from '@rogatory/protocol';
import type { HttpProbe } from './http-probe.js';

/** Node sessions and relay-call signatures built by hand, so tests can also build them wrong. */

export interface Challenge {
  readonly challenge: string;
  readonly relay: string;
  readonly expiresAt: number;
}

export async function askChallenge(probe: HttpProbe, address: string): Promise<Challenge> {
  const outcome = await probe.send({
    method: 'POST',
    path: '/v1/session/challenge',
    headers: { 'content-type': 'application/json' },
    body: canonicalBytes({ address }),
  });
  if (outcome.kind !== 'response' || outcome.response.status !== 200)
    throw new Error(`no challenge for ${address}`);
  return JSON.parse(outcome.response.body.toString('utf8')) as Challenge;
}

export interface SessionRequestBody {
  type: string;
  relay: string;
  address: string;
  challenge: string;
  issuedAt: number;
}

/** The signed answer to a challenge (POST /v1/session body), from its parts. */
export function sessionRequest(
  body: SessionRequestBody,
  key: SigningKeyPair,
): { body: SessionRequestBody; signature: { kid: string; value: string } } {
  return { body, signature: signBytes(CONTEXTS.sessionChallenge, body, key) };
}

/** Log in as `address` and return the bearer token. */
export async function loginToken(
  probe: HttpProbe,
  address: string,
  key: SigningKeyPair,
): Promise<string> {
  const c = await askChallenge(probe, address);
  const request = sessionRequest(
    { type: 'session', relay: c.relay, address, challenge: c.challenge, issuedAt: Date.now() },
    key,
  );
  const outcome = await probe.send({
    method: 'POST',
    path: '/v1/session',
    headers: { 'content-type': 'application/json' },
    body: canonicalBytes(request),
  });
  if (outcome.kind !== 'response' || outcome.response.status !== 200)
    throw new Error(`login of ${address} failed`);
  return (JSON.parse(outcome.response.body.toString('utf8')) as { token: string }).token;
}

/** Headers of a relay call signed by `from` for `to` over exactly this method, path and body. */
export function signedRelayHeaders(options: {
  from: string;
  to: string;
  key: SigningKeyPair;
  method: string;
  path: string;
  body?: Uint8Array;
  timestamp?: number;
}): Record<string, string> {
  return relayCallHeaders({
    from: options.from,
    to: options.to,
    key: options.key,
    method: options.method,
    path: options.path,
    bodySha256: relayCallBodySha256({
      method: options.method,
      path: options.path,
      body: options.body,
    }),
    timestamp: options.timestamp ?? Date.now(),
  });
}
