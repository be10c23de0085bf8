import { EvidenceItemSchema, envelopeBodyLimits, messageCheck } from '@rogatory/relay-api';
import type { FastifyInstance } from 'fastify';
import { messageOf, requireSession } from '../context.js';
import { RelayError } from '../errors.js';

const EvidenceItem = messageCheck(EvidenceItemSchema);

/** Submission of envelopes and of Delivery / Retrieval evidences by nodes. */
export function envelopeRoutes(app: FastifyInstance): void {
  const { relay } = app;
  const bodyLimits = envelopeBodyLimits(relay.limits.maxEnvelopeBytes);
  app.post(
    '/v1/envelopes',
    { bodyLimit: bodyLimits.submission, preHandler: requireSession },
    async (request) => {
      if (!(request.body instanceof Uint8Array))
        throw new RelayError('MALFORMED', 'the envelope must be sent as application/json');
      const evidence = await relay.core.submit(request.session!.address, request.body);
      return { evidence };
    },
  );

  app.post(
    '/v1/evidences',
    { bodyLimit: bodyLimits.evidence, preHandler: requireSession },
    async (request, reply) => {
      await relay.core.routeEvidence(messageOf(request.body, EvidenceItem, 'evidence item'), {
        issuer: request.session!.address,
      });
      return reply.code(202).send({});
    },
  );
}
