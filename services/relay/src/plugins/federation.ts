import { INLINE_CHUNK_LIMITS, isRelayClientError, relayCallBodySha256, verifyRelayCall } from '@rogatory/client';
import { publicKeyOf } from '@rogatory/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { jsonOf } from '../context.js';
import { RelayError } from '../errors.js';

/**
 * preHandler of /v1/relay routes: the call is signed by a relay listed in a
 * manifest this relay trusts (its own network's or a peer's). Chunk uploads
 * are signed over their id; the blob store then checks the bytes hash to it.
 */
export function requirePeerRelay(request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
  const { relay } = request.server;
  try {
    const body = request.body instanceof Uint8Array ? request.body : undefined;
    const bodySha256 = relayCallBodySha256({ method: request.method, path: request.url, body });
    const call = verifyRelayCall({
      headers: request.headers,
      to: relay.relayId,
      method: request.method,
      path: request.url,
      bodySha256,
      now: relay.clock(),
      resolveKey: ({ relay: caller, kid, timestamp }) => publicKeyOf(relay.trust.resolveSigningKey(caller, kid, timestamp, ['relay']).key),
    });
    if (call.from === relay.relayId) throw new RelayError('FORBIDDEN', 'a relay does not call itself');
    if (!relay.rate.hit(`relay:${call.from}`, relay.limits.requestsPerMinute * 10)) throw new RelayError('RATE_LIMITED', 'too many requests');
    request.peerRelay = call.from;
    done();
  } catch (err) {
    if (isRelayClientError(err)) {
      done(new RelayError(err.code === 'SIGNATURE_INVALID' ? 'SIGNATURE_INVALID' : 'UNAUTHENTICATED', 'relay call refused', { cause: err }));
    } else {
      done(err as Error);
    }
  }
}

/** Largest hand-over body: the envelope, what wraps it, and up to INLINE_CHUNK_LIMITS of small objects in base64url. */
export function handOverBodyLimit(maxEnvelopeBytes: number): number {
  return maxEnvelopeBytes + 64 * 1024 + Math.ceil((INLINE_CHUNK_LIMITS.maxTotalBytes * 4) / 3) + INLINE_CHUNK_LIMITS.maxCount * 128;
}

/** Envelopes and evidences handed over by peer relays. */
export function federationRoutes(app: FastifyInstance): void {
  const { relay } = app;
  app.post('/v1/relay/envelopes', { bodyLimit: handOverBodyLimit(relay.limits.maxEnvelopeBytes), preHandler: requirePeerRelay }, async (request) => {
    const evidences = await relay.core.acceptFromPeer(request.peerRelay!, jsonOf(request.body));
    return { evidences };
  });

  app.post('/v1/relay/evidences', { bodyLimit: relay.limits.maxEnvelopeBytes + 1024 * 1024, preHandler: requirePeerRelay }, async (request, reply) => {
    const body = jsonOf(request.body) as { items?: unknown } | null;
    const items = body?.items;
    if (!Array.isArray(items) || items.length === 0 || items.length > 100) throw new RelayError('MALFORMED', 'items must be a list of 1 to 100 evidences');
    for (const item of items) await relay.core.routeEvidence(item);
    return reply.code(202).send({});
  });
}
