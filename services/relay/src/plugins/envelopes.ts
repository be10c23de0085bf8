import type { FastifyInstance } from 'fastify';
import { jsonOf, requireSession } from '../context.js';
import { RelayError } from '../errors.js';

/** Submission of envelopes and of Delivery / Retrieval evidences by nodes. */
export function envelopeRoutes(app: FastifyInstance): void {
  const { relay } = app;
  app.post('/v1/envelopes', { bodyLimit: relay.limits.maxEnvelopeBytes, preHandler: requireSession }, async (request) => {
    if (!(request.body instanceof Uint8Array)) throw new RelayError('MALFORMED', 'the envelope must be sent as application/json');
    const evidence = await relay.core.submit(request.session!.address, request.body);
    return { evidence };
  });

  app.post('/v1/evidences', { bodyLimit: relay.limits.maxEnvelopeBytes + 64 * 1024, preHandler: requireSession }, async (request, reply) => {
    await relay.core.routeEvidence(jsonOf(request.body), { issuer: request.session!.address });
    return reply.code(202).send({});
  });
}
