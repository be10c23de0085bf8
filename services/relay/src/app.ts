import websocket from '@fastify/websocket';
import { mkdtemp } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { networkOf } from '@rogatory/protocol';
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { ChunkPresence } from './chunk-presence.js';
import type { RelayContext } from './context.js';
import { MAILBOX_LIMITS, statusOf, type RelayErrorCode } from '@rogatory/relay-api';
import { RelayError, errorBodyOf, isRelayError, toRelayError } from './errors.js';
import {
  DEFAULT_CONNECTION_LIMITS,
  limitConnectionsPerAddress,
  serverTimeoutOptions,
} from './limits.js';
import { RelayMetrics } from './metrics.js';
import {
  DEFAULT_FORWARDING,
  DEFAULT_LIMITS,
  DEFAULT_RETENTION,
  type RelayOptions,
} from './options.js';
import { PeerDirectory } from './peers.js';
import { RateWindow } from './rate-window.js';
import { chunkRoutes } from './plugins/chunks.js';
import { envelopeRoutes } from './plugins/envelopes.js';
import { federationRoutes } from './plugins/federation.js';
import { mailboxRoutes } from './plugins/mailbox.js';
import { opsRoutes } from './plugins/ops.js';
import { sessionRoutes } from './plugins/session.js';
import { RelayKeyring } from './key-rotation.js';
import { RelayCore } from './relay-core.js';
import { trustRoutes, witnessRoutes } from './plugins/trust.js';
import { TrustFiles } from './trust/files.js';
import { TrustService } from './trust/service.js';
import type { RelayTlsMaterial } from './tls.js';
import { DEFAULT_SESSION_TTL_MS, SessionAuthority } from './sessions.js';

/** Body of an error answered outside the error handler, in the relay's error shape. */
function errorBody(code: RelayErrorCode): string {
  return JSON.stringify({
    error: { code, message: code === 'INTERNAL' ? 'internal error' : 'bad request' },
  });
}

/** Why Node refused a request before any route saw it, as a client-error metric reason. */
function clientErrorReason(code: string | undefined): string {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'request_timeout';
  if (code === 'HPE_HEADER_OVERFLOW') return 'header_overflow';
  return 'bad_request';
}

/**
 * Requests Node's HTTP parser refuses (broken framing, oversized headers,
 * headers or body too slow) never reach a route: answer them in the relay's
 * error shape too, unless an answer is already under way on that connection
 * (Node's own rule), then drop it. Counted, never logged: any client can
 * cause them at will.
 */
function clientErrorHandler(
  metrics: RelayMetrics,
): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const reason = clientErrorReason(err.code);
    metrics.clientErrors.inc({ reason });
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    // A slow client gets no answer: it would only be one more write to a peer that does not read.
    if (reason !== 'request_timeout' && socket.writable && inFlight?.headersSent !== true) {
      const code: RelayErrorCode = reason === 'header_overflow' ? 'LIMIT_EXCEEDED' : 'MALFORMED';
      const status = statusOf(code);
      const body = errorBody(code);
      socket.write(
        `HTTP/1.1 ${String(status)} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${String(Buffer.byteLength(body))}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

/**
 * Errors on an open mailbox WebSocket. Protocol violations by the peer
 * (oversize or invalid frames; `ws` codes them WS_ERR_*) are the client's
 * doing: counted and logged at debug, without the error object (its stack
 * is noise a client could have written once per socket). Anything else is
 * the relay's own failure.
 */
function webSocketErrorHandler(
  metrics: RelayMetrics,
): (this: FastifyInstance, err: Error, socket: WebSocket, request: FastifyRequest) => void {
  return function (err, socket, request) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('WS_ERR_')) {
      const reason =
        code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ||
        code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH'
          ? 'ws_frame_too_large'
          : 'ws_bad_frame';
      metrics.clientErrors.inc({ reason });
      request.log.debug({ reason, code }, 'websocket closed: client protocol error');
    } else {
      request.log.error(
        { code: isRelayError(err) ? err.code : 'INTERNAL', route: '/v1/mailbox/ws' },
        'websocket failed',
      );
    }
    socket.terminate();
  };
}

/**
 * Build the relay: every route, its context and its workers. Listening is
 * the caller's business (`startRelay` in server.ts, or `app.inject()` in tests).
 */
export async function buildRelayApp(
  options: RelayOptions,
  serve: { readonly tls?: RelayTlsMaterial } = {},
): Promise<FastifyInstance> {
  const clock = options.clock ?? Date.now;
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const retention = { ...DEFAULT_RETENTION, ...options.retention };
  const forwarding = { ...DEFAULT_FORWARDING, ...options.forwarding };
  const connections = { ...DEFAULT_CONNECTION_LIMITS, ...options.connections };
  const network = networkOf(options.relayId);
  const keyring = options.key instanceof RelayKeyring ? options.key : undefined;
  keyring?.settle(options.trust, options.relayId, clock());
  const kids = keyring ? keyring.kids() : [options.key.kid];
  if (
    !options.trust.relays(network).some((r) => r.id === options.relayId && kids.includes(r.key.kid))
  ) {
    throw new Error(
      `relay ${options.relayId} with key ${options.key.kid} is not listed in the ${network} manifest`,
    );
  }

  const metrics = new RelayMetrics(options.backend);
  const timeouts = serverTimeoutOptions(connections);
  const fastifyOptions = {
    logger:
      options.logger === false
        ? false
        : {
            level: typeof options.logger === 'object' ? options.logger.level : 'info',
            ...(typeof options.logger === 'object' && options.logger.stream
              ? { stream: options.logger.stream }
              : {}),
            // Never log bearer tokens or relay signatures; bodies are never logged.
            redact: ['req.headers.authorization', 'req.headers["rogatory-signature"]'],
          },
    bodyLimit: 1024 * 1024,
    // Tokens are query parameters only on the WebSocket route; keep them out of logs.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    clientErrorHandler: clientErrorHandler(metrics),
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: timeouts.keepAliveTimeout,
    // Undecodable URLs and over-long path parameters: Fastify answers these before any route or error handler.
    frameworkErrors: (err: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      const code: RelayErrorCode =
        err.code === 'FST_ERR_ASYNC_CONSTRAINT' ? 'INTERNAL' : 'MALFORMED';
      void reply
        .code(statusOf(code))
        .header('content-type', 'application/json; charset=utf-8')
        .send(errorBody(code));
    },
  };
  // Node would answer a missing Host with an empty 400; the onRequest hook below refuses it in the relay's error shape.
  const http = { requireHostHeader: false, ...timeouts.http };
  const tls = serve.tls;
  // relay.tls: HTTPS and WSS from the relay itself (the certificate is replaced by RunningRelay.reloadTls).
  const app = tls
    ? (Fastify({
        ...fastifyOptions,
        https: {
          ...http,
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca === undefined ? {} : { ca: tls.ca }),
        },
      }) as unknown as FastifyInstance)
    : Fastify({ ...fastifyOptions, http });
  if (tls)
    app.server.on('tlsClientError', () => {
      metrics.clientErrors.inc({ reason: 'tls_handshake' });
    });
  limitConnectionsPerAddress(app.server, connections.maxPerAddress, () =>
    metrics.clientErrors.inc({ reason: 'connections_per_address' }),
  );

  const peers = new PeerDirectory({
    relayId: options.relayId,
    key: options.key,
    trust: options.trust,
    peerUrls: options.peerUrls ?? {},
    timeoutMs: forwarding.requestTimeoutMs,
    metrics,
  });
  const rate = new RateWindow(clock);
  const presence = new ChunkPresence({
    blobs: options.blobs,
    backend: options.backend,
    clock,
    uploadGraceMs: retention.uploadGraceMs,
  });
  const core = new RelayCore({
    relayId: options.relayId,
    network,
    key: options.key,
    trust: options.trust,
    backend: options.backend,
    blobs: options.blobs,
    presence,
    clock,
    limits,
    retention,
    forwarding,
    peers,
    metrics,
    rate,
    log: app.log,
  });
  const keySwitch = watchKeySwitch(keyring, options.trust, options.relayId, clock, app.log);
  app.addHook('onClose', (_instance, done) => {
    keySwitch.stop();
    done();
  });
  const trustService = await TrustService.open({
    relayId: options.relayId,
    network,
    key: options.key,
    trust: options.trust,
    files: await TrustFiles.open(
      options.trustDir ?? (await mkdtemp(join(tmpdir(), 'rogatory-relay-trust-'))),
    ),
    peerUrls: options.peerUrls ?? {},
    clock,
    log: app.log,
    metrics,
    pollMs: options.trustPollMs ?? 60_000,
    requestTimeoutMs: forwarding.requestTimeoutMs,
    onEdition: (n) => {
      peers.forget(n);
      if (n === network) keySwitch.check({ refresh: true });
    },
  });
  const context: RelayContext = {
    relayId: options.relayId,
    network,
    core,
    sessions: new SessionAuthority({
      relayId: options.relayId,
      network,
      secret: options.sessionSecret,
      trust: options.trust,
      backend: options.backend,
      clock,
      ttlMs: options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS,
    }),
    backend: options.backend,
    blobs: options.blobs,
    presence,
    trust: options.trust,
    trustService,
    metrics,
    peers,
    limits,
    retention,
    forwarding,
    clock,
    rate,
    draining: false,
  };
  app.decorate('relay', context);
  app.decorateRequest('session', null);
  app.decorateRequest('peerRelay', null);

  // Bodies arrive as bytes: envelopes must be checked for canonical form, and relay calls are signed over the exact bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
    done(null, body);
  });
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => {
    done(null, payload);
  });

  app.setErrorHandler((err, request, reply) => {
    const relayError = toRelayError(err);
    context.metrics.rejectedRequests.inc({ code: relayError.code });
    if (relayError.status >= 500)
      request.log.error(
        { code: relayError.code, route: request.routeOptions.url },
        'request failed',
      );
    if (relayError.retryAfterMs !== undefined)
      void reply.header('retry-after', Math.ceil(relayError.retryAfterMs / 1000));
    return reply
      .code(relayError.status)
      .send(errorBodyOf(relayError, { singleEvidence: request.url.startsWith('/v1/envelopes') }));
  });
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no such route' } }),
  );

  await app.register(websocket, {
    options: { maxPayload: MAILBOX_LIMITS.maxFrameBytes },
    errorHandler: webSocketErrorHandler(metrics),
  });
  await app.register(async (scope) => {
    opsRoutes(scope);
    sessionRoutes(scope);
    chunkRoutes(scope);
    envelopeRoutes(scope);
    federationRoutes(scope);
    trustRoutes(scope);
    // Witness requests (tlog-witness) are text/plain: that parser exists in the witness route's scope only.
    await scope.register((witness, _opts, done) => {
      witness.addContentTypeParser('text/plain', { parseAs: 'buffer' }, (_req, body, done) => {
        done(null, body);
      });
      witnessRoutes(witness);
      done();
    });
    await mailboxRoutes(scope);
  });

  let gcTimer: NodeJS.Timeout | undefined;
  if (options.workers !== false) {
    await options.backend.startWorkers(
      {
        forward: (task) => core.forward(task),
        giveUp: (task) => core.giveUp(task),
        expired: (item) => core.expired(item),
      },
      { concurrency: forwarding.concurrency, backoff: forwarding.backoff },
    );
    gcTimer = setInterval(() => {
      core.collectGarbage().catch((err: unknown) => {
        app.log.warn(
          { code: isRelayError(err) ? err.code : 'INTERNAL' },
          'garbage collection failed',
        );
      });
    }, retention.gcIntervalMs);
    gcTimer.unref();
    trustService.start();
  }

  // Drain: refuse new work (readyz turns 503), finish in-flight workers, then close stores.
  app.addHook('preClose', async () => {
    context.draining = true;
    if (gcTimer) clearInterval(gcTimer);
    await trustService.stop();
    await options.backend.stopWorkers();
  });
  // The Date header on the relay's own clock (the one it checks creation times and logins
  // against): clients read the relay's time from it (packages/client, relayClockOffset).
  // Formatted once per second of the relay's clock, not per request (it showed in profiles).
  let dateSecond = Number.NaN;
  let dateText = '';
  app.addHook('onRequest', (_request, reply, done) => {
    const now = clock();
    const second = Math.floor(now / 1000);
    if (second !== dateSecond) {
      dateSecond = second;
      dateText = new Date(now).toUTCString();
    }
    void reply.header('date', dateText);
    done();
  });
  app.addHook('onRequest', (request, _reply, done) => {
    done(
      request.raw.httpVersion === '1.1' && request.headers.host === undefined
        ? new RelayError('MALFORMED', 'a Host header is required')
        : undefined,
    );
  });
  app.addHook('onRequest', (request, _reply, done) => {
    if (
      context.draining &&
      !request.url.startsWith('/healthz') &&
      !request.url.startsWith('/readyz')
    ) {
      done(new RelayError('UNAVAILABLE', 'relay is shutting down', { retryAfterMs: 5000 }));
      return;
    }
    done();
  });
  return app;
}

/**
 * Switch the relay key when a rotation is due (listed by an applied edition,
 * `effectiveAt` come): checked after each edition of the own network, and
 * by a timer once the edition is in and `effectiveAt` still ahead.
 */
function watchKeySwitch(
  keyring: RelayKeyring | undefined,
  trust: RelayOptions['trust'],
  relayId: string,
  clock: () => number,
  log: FastifyBaseLogger,
): { check(options?: { refresh?: boolean }): void; stop(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = (options: { refresh?: boolean } = {}): void => {
    if (!keyring) return;
    if (options.refresh === true) {
      // A rotation made since start (`keys rotate` beside the running relay) is read first.
      void keyring.refresh().then(() => check());
      return;
    }
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const before = keyring.kid;
    const outcome = keyring.settle(trust, relayId, clock());
    if (outcome === 'switched') log.info({ from: before, to: keyring.kid }, 'relay key switched');
    else if (typeof outcome === 'number') {
      // setTimeout holds at most 2^31-1 ms: a later time is reached in steps.
      timer = setTimeout(() => check(), Math.min(Math.max(outcome - clock(), 0), 2 ** 31 - 1));
      timer.unref();
    }
  };
  check();
  return {
    check,
    stop: () => {
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
