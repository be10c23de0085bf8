import { publicKeyOf } from '@rogatory/protocol';
import {
  BatchRequestSchema,
  EvidenceItemSchema,
  HandOverSchema,
  RelayEvidencesRequestSchema,
  envelopeBodyLimits,
  isRelayCallError,
  messageCheck,
  relayCallBodySha256,
  verifyRelayCall,
} from '@rogatory/relay-api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { checkMessage, messageOf } from '../context.js';
import { RelayError, errorBodyOf, toRelayError } from '../errors.js';

const HandOver = messageCheck(HandOverSchema);
const EvidenceItem = messageCheck(EvidenceItemSchema);
const RelayEvidences = messageCheck(RelayEvidencesRequestSchema);
const Batch = messageCheck(BatchRequestSchema);

/**
 * preHandler of /v1/relay routes: the call is signed by a relay listed in a
 * manifest this relay trusts (its own network's or a peer's). Chunk uploads
 * are signed over their id; the blob store then checks the bytes hash to it.
 */
export function requirePeerRelay(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: (err?: Error) => void,
): void {
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
      resolveKey: ({ relay: caller, kid, timestamp }) =>
        publicKeyOf(relay.trust.resolveSigningKey(caller, kid, timestamp, ['relay']).key),
    });
    if (call.from === relay.relayId)
      throw new RelayError('FORBIDDEN', 'a relay does not call itself');
    if (!relay.rate.hit(`relay:${call.from}`, relay.limits.requestsPerMinute * 10))
      throw new RelayError('RATE_LIMITED', 'too many requests');
    request.peerRelay = call.from;
    done();
  } catch (err) {
    if (isRelayCallError(err)) {
      done(new RelayError(err.code, 'relay call refused', { cause: err }));
    } else {
      done(err as Error);
    }
  }
}

/** Envelopes and evidences handed over by peer relays. */
export function federationRoutes(app: FastifyInstance): void {
  const { relay } = app;
  const bodyLimits = envelopeBodyLimits(relay.limits.maxEnvelopeBytes);
  app.post(
    '/v1/relay/envelopes',
    { bodyLimit: bodyLimits.handOver, preHandler: requirePeerRelay },
    async (request) => {
      const evidences = await relay.core.acceptFromPeer(
        request.peerRelay!,
        messageOf(request.body, HandOver, 'hand-over'),
      );
      return { evidences };
    },
  );

  app.post(
    '/v1/relay/evidences',
    { bodyLimit: bodyLimits.relayEvidences, preHandler: requirePeerRelay },
    async (request, reply) => {
      const { items } = messageOf(request.body, RelayEvidences, 'evidence items');
      for (const item of items)
        await relay.core.routeEvidence(checkMessage(item, EvidenceItem, 'evidence item'));
      return reply.code(202).send({});
    },
  );

  /**
   * Many hand-overs and evidences in one call. Each item is handled as its
   * single-item route would handle it, all at once (their backend writes go
   * out together), and answered on its own: `{ status, ...body }` in the
   * order sent. One bad item refuses only itself. Every item counts against
   * the peer's request rate.
   */
  app.post(
    '/v1/relay/batch',
    { bodyLimit: bodyLimits.batch, preHandler: requirePeerRelay },
    async (request) => {
      const body = messageOf(request.body, Batch, 'batch');
      if (body.envelopes.length + body.evidences.length === 0)
        throw new RelayError('MALFORMED', 'an empty batch');
      const caller = request.peerRelay!;
      const refused = (err: unknown): Record<string, unknown> => {
        const error = toRelayError(err);
        relay.metrics.rejectedRequests.inc({ code: error.code });
        if (error.status >= 500)
          request.log.error({ code: error.code, route: '/v1/relay/batch' }, 'batch item failed');
        return { status: error.status, ...errorBodyOf(error) };
      };
      // The call itself was one hit (preHandler); every further item is one more.
      let items = 0;
      const withinRate = (): boolean =>
        items++ === 0 || relay.rate.hit(`relay:${caller}`, relay.limits.requestsPerMinute * 10);
      // Async: an item not of its shape is refused as that item's answer, like any other refusal.
      const handOver = async (item: unknown) =>
        relay.core.acceptFromPeer(caller, checkMessage(item, HandOver, 'hand-over'));
      const evidence = async (item: unknown) =>
        relay.core.routeEvidence(checkMessage(item, EvidenceItem, 'evidence item'));
      const limited = () =>
        Promise.reject(
          new RelayError('RATE_LIMITED', 'too many requests', {
            retryAfterMs: 60_000 - (relay.clock() % 60_000),
          }),
        );
      const [envelopes, evidences] = await Promise.all([
        Promise.all(
          body.envelopes.map((item) =>
            (withinRate() ? handOver(item) : limited()).then(
              (evidences) => ({ status: 200, evidences }),
              refused,
            ),
          ),
        ),
        Promise.all(
          body.evidences.map((item) =>
            (withinRate() ? evidence(item) : limited()).then(() => ({ status: 202 }), refused),
          ),
        ),
      ]);
      return { envelopes, evidences };
    },
  );
}
