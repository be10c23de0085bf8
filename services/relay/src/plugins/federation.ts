import { BATCH_LIMITS, INLINE_CHUNK_LIMITS, isRelayClientError, relayCallBodySha256, verifyRelayCall } from '@rogatory/client';
import { publicKeyOf, validator } from '@rogatory/protocol';
import { Type } from 'typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { jsonOf } from '../context.js';
import { RelayError, errorBodyOf, toRelayError } from '../errors.js';

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

const Batch = validator(
  Type.Object(
    {
      envelopes: Type.Array(Type.Unknown(), { maxItems: BATCH_LIMITS.maxEnvelopes }),
      evidences: Type.Array(Type.Unknown(), { maxItems: BATCH_LIMITS.maxEvidences }),
    },
    { additionalProperties: false },
  ),
  'batch',
);

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

  /**
   * Many hand-overs and evidences in one call. Each item is handled as its
   * single-item route would handle it, all at once (their backend writes go
   * out together), and answered on its own: `{ status, ...body }` in the
   * order sent. One bad item refuses only itself. Every item counts against
   * the peer's request rate.
   */
  app.post('/v1/relay/batch', { bodyLimit: BATCH_LIMITS.maxBytes, preHandler: requirePeerRelay }, async (request) => {
    const body = jsonOf(request.body);
    if (!Batch.check(body)) throw new RelayError('MALFORMED', 'expected { envelopes, evidences } within the batch limits');
    if (body.envelopes.length + body.evidences.length === 0) throw new RelayError('MALFORMED', 'an empty batch');
    const caller = request.peerRelay!;
    const refused = (err: unknown): Record<string, unknown> => {
      const error = toRelayError(err);
      relay.metrics.rejectedRequests.inc({ code: error.code });
      if (error.status >= 500) request.log.error({ code: error.code, route: '/v1/relay/batch' }, 'batch item failed');
      return { status: error.status, ...errorBodyOf(error) };
    };
    // The call itself was one hit (preHandler); every further item is one more.
    let items = 0;
    const withinRate = (): boolean => items++ === 0 || relay.rate.hit(`relay:${caller}`, relay.limits.requestsPerMinute * 10);
    const limited = () => Promise.reject(new RelayError('RATE_LIMITED', 'too many requests', { retryAfterMs: 60_000 - (relay.clock() % 60_000) }));
    const [envelopes, evidences] = await Promise.all([
      Promise.all(
        body.envelopes.map((item) =>
          (withinRate() ? relay.core.acceptFromPeer(caller, item) : limited()).then((evidences) => ({ status: 200, evidences }), refused),
        ),
      ),
      Promise.all(body.evidences.map((item) => (withinRate() ? relay.core.routeEvidence(item) : limited()).then(() => ({ status: 202 }), refused))),
    ]);
    return { envelopes, evidences };
  });
}
