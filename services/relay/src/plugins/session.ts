import { AddressSchema, validator } from '@rogatory/protocol';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { jsonOf } from '../context.js';
import { RelayError } from '../errors.js';

const ChallengeRequest = validator(Type.Object({ address: AddressSchema }, { additionalProperties: false }), 'challenge request');

/** Node sessions: challenge, then a signed answer for a bearer token (docs/relay-api.md). */
export function sessionRoutes(app: FastifyInstance): void {
  const limitLogin = (ip: string) => {
    const { relay } = app;
    if (!relay.rate.hit(`login:${ip}`, relay.limits.loginPerMinute)) throw new RelayError('RATE_LIMITED', 'too many session requests', { retryAfterMs: 60_000 });
  };
  app.post('/v1/session/challenge', { bodyLimit: 4096 }, (request) => {
    limitLogin(request.ip);
    const { address } = ChallengeRequest.parse(jsonOf(request.body));
    return app.relay.sessions.challenge(address);
  });
  app.post('/v1/session', { bodyLimit: 8192 }, async (request) => {
    limitLogin(request.ip);
    return app.relay.sessions.login(jsonOf(request.body));
  });
}
