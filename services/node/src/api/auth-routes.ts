import type { FastifyInstance } from 'fastify';
import { isNodeError } from '../errors.js';
import { accountOf, actorOf } from './context.js';
import { ApiError } from './errors.js';
import { AUTHED, LoginBody, LoginReply, Ok, errorResponses } from './schemas.js';

const BEARER = /^Bearer ([A-Za-z0-9_-]{43})$/;

/** POST /login: the one public route that acts; checks the rate limits before hashing the password. */
export function loginRoute(app: FastifyInstance): void {
  app.post<{ Body: LoginBody }>(
    '/login',
    {
      schema: {
        tags: ['session'],
        summary: 'Log in: returns a bearer token',
        body: LoginBody,
        response: {
          200: LoginReply,
          ...errorResponses('AUTHENTICATION_FAILED', 'RATE_LIMITED'),
        },
      },
    },
    (request) => {
      const { sessions, limiter, node } = app.nodeApi;
      const { username, password } = request.body;
      const address = request.ip;
      const wait = limiter.blockedFor(username, address);
      if (wait > 0)
        throw new ApiError('RATE_LIMITED', 'too many failed logins; try again later', {
          retryAfterSeconds: wait,
        });
      let actor;
      try {
        actor = node.login(username, password);
      } catch (err) {
        if (isNodeError(err, 'AUTHENTICATION_FAILED')) limiter.failed(username, address);
        throw err;
      }
      limiter.succeeded(username, address);
      const user = accountOf(node, actor);
      const { token, session } = sessions.create(actor);
      request.log.info({ user: user.username }, 'login');
      return {
        token,
        expiresAt: session.expiresAt,
        user: { username: user.username, roles: [user.role], clearances: [...user.clearances] },
      };
    },
  );
}

/** The hook that makes every route of its scope authenticated: `Authorization: Bearer <token>`. */
export function requireSession(app: FastifyInstance): void {
  app.decorateRequest('nodeApiSession', null);
  app.decorateRequest('nodeApiToken', null);
  app.addHook('onRequest', (request, _reply, done) => {
    const header = request.headers.authorization;
    const m = header === undefined ? null : BEARER.exec(header);
    const session = m ? app.nodeApi.sessions.find(m[1]!) : undefined;
    if (!m || !session) {
      done(new ApiError('UNAUTHENTICATED', 'a valid bearer token is required'));
      return;
    }
    request.nodeApiSession = session;
    request.nodeApiToken = m[1]!;
    done();
  });
}

export function logoutRoute(app: FastifyInstance): void {
  app.post(
    '/logout',
    {
      schema: {
        tags: ['session'],
        summary: 'End the session of the bearer token',
        security: [{ bearer: [] }],
        response: { 200: Ok, ...errorResponses(...AUTHED) },
      },
    },
    (request) => {
      actorOf(request);
      if (request.nodeApiToken !== null) app.nodeApi.sessions.revoke(request.nodeApiToken);
      return { ok: true };
    },
  );
}
