import { STATUS_CODES } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { nodeFail } from '../errors.js';
import { FileRoot } from '../files/file-root.js';
import type { AuthorityNode } from '../authority-node.js';
import { directoryRoutes } from './directory-routes.js';
import { introductionRoutes } from './introduction-routes.js';
import { dossierRoutes } from './dossier-routes.js';
import { nodeRoutes, userRoutes } from './admin-routes.js';
import { loginRoute, logoutRoute, requireSession } from './auth-routes.js';
import { metricsRoute } from './metrics-routes.js';
import type { ApiContext } from './context.js';
import { ApiError, toApiError } from './errors.js';
import {
  AddressBuckets,
  DEFAULT_API_LIMITS,
  limitConnectionsPerAddress,
  serverTimeoutOptions,
  type ApiLimits,
} from './limits.js';
import { DEFAULT_LOGIN_LIMITS, LoginLimiter, SessionStore, type LoginLimits } from './sessions.js';

export interface NodeApiOptions {
  readonly node: AuthorityNode;
  /** `false` for none; otherwise pino at `level` (default info), to `stream` (default stdout). */
  readonly logger?: false | { level?: string; stream?: { write(line: string): unknown } };
  /** Session lifetime (default 8 hours). */
  readonly sessionTtlMs?: number;
  readonly loginLimits?: Partial<LoginLimits>;
  /**
   * Addresses or CIDR ranges of the reverse proxies in front of the API.
   * Only a request whose peer is one of them has its client address taken
   * from `X-Forwarded-For` (the nearest address not itself a trusted
   * proxy); from anyone else the header is ignored. Default none.
   */
  readonly trustedProxies?: readonly string[];
  /**
   * When set, attachment paths and export directories must lie inside this
   * directory, with no symbolic link below it. Without it the API reads and
   * writes wherever the node's OS user may.
   */
  readonly fileRoot?: string;
  readonly clock?: () => number;
  /** Request body limit in bytes (default 4 MiB). */
  readonly bodyLimit?: number;
  /** Connections per address, HTTP timeouts and bad-token rate (defaults: DEFAULT_API_LIMITS). */
  readonly limits?: Partial<ApiLimits>;
  /** Serves GET /metrics (Prometheus) to requests bearing this token; without it there is no /metrics. */
  readonly metricsToken?: string;
}

/** Refused connections are logged as one summary line a minute at most: each one is a client's doing. */
const REFUSED_LOG_INTERVAL_MS = 60_000;

export const API_PREFIX = '/api/v1';

/** Trusted proxies as Fastify takes them: each an IPv4 or IPv6 address, or one with a `/prefix`. */
export function checkedProxies(list: readonly string[]): string[] {
  return list.map((entry) => {
    const [address, prefix, extra] = entry.trim().split('/');
    const family = isIP(address ?? '');
    const bits = family === 4 ? 32 : 128;
    const ok =
      family !== 0 &&
      extra === undefined &&
      (prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits));
    if (!ok) nodeFail('INPUT_INVALID', 'a trusted proxy must be an IP address or CIDR range');
    return entry.trim();
  });
}

/**
 * Requests Node's HTTP parser refuses (broken framing, oversized request
 * line or headers) never reach a route: answer them in the API's error
 * shape (INPUT_INVALID) rather than Fastify's default body, unless an
 * answer is already under way on that connection; a timed-out client gets
 * none. Never logged: any client can cause them at will.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (
    err.code !== 'ERR_HTTP_REQUEST_TIMEOUT' &&
    socket.writable &&
    inFlight?.headersSent !== true
  ) {
    const e = new ApiError(
      'INPUT_INVALID',
      err.code === 'HPE_HEADER_OVERFLOW' ? 'request headers too large' : 'malformed HTTP request',
    );
    const body = JSON.stringify(e.body());
    socket.write(
      `HTTP/1.1 ${String(e.status)} ${STATUS_CODES[e.status] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${String(Buffer.byteLength(body))}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * The node's REST API for the web UI. Listening is the caller's business
 * (`rogatory serve`, or `app.inject()` in tests); closing the app does not
 * close the node.
 */
export async function buildNodeApi(options: NodeApiOptions): Promise<FastifyInstance> {
  const clock = options.clock ?? Date.now;
  const trustedProxies = checkedProxies(options.trustedProxies ?? []);
  const limits = { ...DEFAULT_API_LIMITS, ...options.limits };
  const timeouts = serverTimeoutOptions(limits);
  const app = Fastify({
    trustProxy: trustedProxies.length === 0 ? false : trustedProxies,
    logger:
      options.logger === false || options.logger === undefined
        ? false
        : {
            level: options.logger.level ?? 'info',
            ...(options.logger.stream ? { stream: options.logger.stream } : {}),
            redact: {
              paths: ['req.headers.authorization', 'req.headers.cookie'],
              censor: '[redacted]',
            },
            serializers: {
              // Query strings may carry case references: log the path only. Bodies are never logged.
              req: (req: { method: string; url: string; ip?: string }) => ({
                method: req.method,
                path: req.url.split('?')[0],
              }),
            },
          },
    bodyLimit: options.bodyLimit ?? 4 * 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, allErrors: true } },
    forceCloseConnections: true,
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: timeouts.keepAliveTimeout,
    http: timeouts.http,
    clientErrorHandler: answerClientError,
    // Bad URL encodings and the like never reach a route: answer them in the API's error shape.
    frameworkErrors: (err, _request, reply) => {
      const e = toApiError(err);
      void (reply as FastifyReply).code(e.status).send(e.body());
    },
  });

  const context: ApiContext = {
    node: options.node,
    sessions: new SessionStore({ ttlMs: options.sessionTtlMs ?? 8 * 3600 * 1000, clock }),
    limiter: new LoginLimiter({ ...DEFAULT_LOGIN_LIMITS, ...options.loginLimits }, clock),
    fileRoot: options.fileRoot === undefined ? undefined : await FileRoot.open(options.fileRoot),
    clock,
  };
  app.decorate('nodeApi', context);

  let refused = 0;
  let refusedLoggedAt = -Infinity;
  limitConnectionsPerAddress(app.server, limits.maxConnectionsPerAddress, () => {
    refused++;
    const now = clock();
    if (now - refusedLoggedAt < REFUSED_LOG_INTERVAL_MS) return;
    app.log.warn(
      { refused, maxPerAddress: limits.maxConnectionsPerAddress },
      'connections refused: too many from one address',
    );
    refused = 0;
    refusedLoggedAt = now;
  });
  // Only requests whose token is refused take from an address's bucket: valid sessions are never limited by it.
  const badTokens = new AddressBuckets(limits.badTokensPerMinute, clock);

  app.setErrorHandler((err, request, reply) => {
    let e = toApiError(err);
    if (e.code === 'UNAUTHENTICATED') {
      const wait = badTokens.take(request.ip);
      if (wait > 0)
        e = new ApiError('RATE_LIMITED', 'too many requests with invalid tokens; try again later', {
          retryAfterSeconds: wait,
        });
    }
    // Codes only: an error's text or cause may hold data.
    if (e.status >= 500)
      request.log.error(
        { code: e.code, detail: e.detail, route: request.routeOptions.url },
        'request failed',
      );
    else request.log.info({ code: e.code, route: request.routeOptions.url }, 'request refused');
    if (e.retryAfterSeconds !== undefined) void reply.header('retry-after', e.retryAfterSeconds);
    return reply.code(e.status).send(e.body());
  });
  app.setNotFoundHandler((_request, reply) => {
    const e = new ApiError('ROUTE_NOT_FOUND', 'no such route');
    return reply.code(e.status).send(e.body());
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Rogatory authority node API',
        version: '1.0.0',
        description:
          'REST API of an authority node for its web UI. Every route but login needs `Authorization: Bearer <token>`; errors are `{ error: { code, message, detail?, issues? } }`.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
      tags: [{ name: 'session' }, { name: 'dossiers' }, { name: 'users' }, { name: 'node' }],
    },
  });

  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
  if (options.metricsToken !== undefined)
    metricsRoute(app, { token: options.metricsToken, status: () => options.node.status() });

  await app.register(
    async (v1) => {
      loginRoute(v1);
      // A child scope: its auth hook covers these routes and not login.
      await v1.register((authed, _opts, done) => {
        requireSession(authed);
        logoutRoute(authed);
        dossierRoutes(authed);
        userRoutes(authed);
        nodeRoutes(authed);
        directoryRoutes(authed);
        introductionRoutes(authed);
        done();
      });
    },
    { prefix: API_PREFIX },
  );
  return app;
}
