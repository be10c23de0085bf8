import {
  BODY_LIMITS,
  ChallengeRequestSchema,
  SessionRequestSchema,
  messageCheck,
} from '@rogatory/relay-api';
import type { FastifyInstance } from 'fastify';
import { messageOf } from '../context.js';
import { RelayError } from '../errors.js';

const ChallengeRequest = messageCheck(ChallengeRequestSchema);
const SessionRequest = messageCheck(SessionRequestSchema);

/** Node sessions: challenge, then a signed answer for a bearer token (docs/relay-api.md). */
export function sessionRoutes(app: FastifyInstance): void {
  const limitLogin = (ip: string) => {
    const { relay } = app;
    if (!relay.rate.hit(`login:${ip}`, relay.limits.loginPerMinute))
      throw new RelayError('RATE_LIMITED', 'too many session requests', { retryAfterMs: 60_000 });
  };
  app.post('/v1/session/challenge', { bodyLimit: BODY_LIMITS.challenge }, (request) => {
    limitLogin(request.ip);
    const { address } = messageOf(request.body, ChallengeRequest, 'challenge request');
    return app.relay.sessions.challenge(address);
  });
  app.post('/v1/session', { bodyLimit: BODY_LIMITS.login }, async (request) => {
    limitLogin(request.ip);
    return app.relay.sessions.login(messageOf(request.body, SessionRequest, 'session request'));
  });
}
