import { NetworkIdSchema } from '@rogatory/protocol';
import { TRUST_LIMITS, TrustPublicationsQuerySchema, messageCheck } from '@rogatory/relay-api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Compile } from 'typebox/compile';
import { checkMessage, jsonOf } from '../context.js';
import { RelayError } from '../errors.js';
import { WitnessConflict } from '../trust/service.js';

const PublicationsQuery = messageCheck(TrustPublicationsQuerySchema);
const networkId = Compile(NetworkIdSchema);

/**
 * Key transparency (docs/relay-api.md "Trust distribution"): publications of
 * the relay's own network pushed by its secretariat, the chains it holds
 * served to nodes and peer relays, and the witness of its peers' logs. No
 * session: publications and checkpoints are root-signed. Rate-limited per
 * source address.
 */
export function trustRoutes(app: FastifyInstance): void {
  const limit = (request: FastifyRequest): void => {
    const { relay } = app;
    if (!relay.rate.hit(`trust:${request.ip}`, relay.limits.trustPerMinute))
      throw new RelayError('RATE_LIMITED', 'too many trust requests', {
        retryAfterMs: 60_000 - (relay.clock() % 60_000),
      });
  };

  app.post(
    '/v1/trust/publications',
    { bodyLimit: TRUST_LIMITS.maxPublicationBytes },
    async (request) => {
      limit(request);
      return app.relay.trustService.publish(jsonOf(request.body));
    },
  );

  app.get('/v1/trust/networks', (request) => {
    limit(request);
    return { networks: app.relay.trustService.networks() };
  });

  app.get<{ Params: { network: string } }>('/v1/trust/publications/:network', (request) => {
    limit(request);
    const { network } = request.params;
    if (!networkId.Check(network))
      throw new RelayError('MALFORMED', 'not a network id', { detail: 'SCHEMA_INVALID' });
    const query = checkMessage(request.query, PublicationsQuery, 'publications query');
    const after = Number(query.after ?? '0');
    return { publications: app.relay.trustService.publications(network, after) };
  });
}

/** `POST /v1/witness/add-checkpoint` (tlog-witness, text/plain), registered in a scope that parses text/plain. */
export function witnessRoutes(app: FastifyInstance): void {
  const limit = (request: FastifyRequest): void => {
    const { relay } = app;
    if (!relay.rate.hit(`trust:${request.ip}`, relay.limits.trustPerMinute))
      throw new RelayError('RATE_LIMITED', 'too many trust requests', {
        retryAfterMs: 60_000 - (relay.clock() % 60_000),
      });
  };
  app.post(
    '/v1/witness/add-checkpoint',
    { bodyLimit: TRUST_LIMITS.maxWitnessRequestBytes },
    async (request, reply) => {
      limit(request);
      if (!(request.body instanceof Uint8Array))
        throw new RelayError('CHECKPOINT_INVALID', 'a text/plain body is required', {
          detail: 'CHECKPOINT_INVALID',
        });
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(request.body);
      } catch (cause) {
        throw new RelayError('CHECKPOINT_INVALID', 'body is not UTF-8', {
          cause,
          detail: 'CHECKPOINT_INVALID',
        });
      }
      try {
        const line = await app.relay.trustService.addCheckpoint(text);
        return await reply.code(200).header('content-type', 'text/plain; charset=utf-8').send(line);
      } catch (err) {
        if (err instanceof WitnessConflict) {
          app.relay.metrics.rejectedRequests.inc({ code: err.code });
          return reply
            .code(409)
            .header('content-type', 'text/plain; charset=utf-8')
            .send(`${err.storedSize}\n`);
        }
        throw err;
      }
    },
  );
}
