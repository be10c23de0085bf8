import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RelayBackend } from './backend/types.js';
import type { ChunkPresence } from './chunk-presence.js';
import type { MessageCheck } from '@rogatory/relay-api';
import { RelayError } from './errors.js';
import type { RelayMetrics } from './metrics.js';
import type { RelayForwarding, RelayLimits, RelayRetention } from './options.js';
import type { PeerDirectory } from './peers.js';
import type { RateWindow } from './rate-window.js';
import type { RelayCore } from './relay-core.js';
import type { Session, SessionAuthority } from './sessions.js';
import type { TrustService } from './trust/service.js';
import type { BlobStore } from '@rogatory/storage';
import type { TrustStore } from '@rogatory/protocol';

/** What every plugin of the relay shares, decorated on the Fastify instance as `relay`. */
export interface RelayContext {
  readonly relayId: string;
  readonly network: string;
  readonly core: RelayCore;
  readonly sessions: SessionAuthority;
  readonly backend: RelayBackend;
  readonly blobs: BlobStore;
  /** Chunks known to be stored, so that submissions need not ask the blob store each time. */
  readonly presence: ChunkPresence;
  readonly trust: TrustStore;
  /** Key transparency: publication chains, witness, peer polling. */
  readonly trustService: TrustService;
  readonly metrics: RelayMetrics;
  readonly peers: PeerDirectory;
  readonly limits: RelayLimits;
  readonly retention: RelayRetention;
  readonly forwarding: RelayForwarding;
  readonly clock: () => number;
  /** Per-instance fixed-window counters for request rate limits. */
  readonly rate: RateWindow;
  draining: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    relay: RelayContext;
  }
  interface FastifyRequest {
    session: Session | null;
    /** Set by relay-call authentication on /v1/relay routes. */
    peerRelay: string | null;
  }
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string' && header.startsWith('Bearer ')) return header.slice(7);
  return undefined;
}

/**
 * A bearer token's session. A source address that keeps presenting bad
 * tokens gets RATE_LIMITED past `badTokensPerMinute` (counted on failures
 * only: a valid token from the same address keeps working).
 */
export function verifyToken(
  relay: RelayContext,
  token: string | undefined,
  sourceAddress: string,
): Session {
  try {
    return relay.sessions.verify(token);
  } catch (err) {
    if (!relay.rate.hit(`bad-token:${sourceAddress}`, relay.limits.badTokensPerMinute)) {
      throw new RelayError('RATE_LIMITED', 'too many requests with invalid tokens', {
        retryAfterMs: 60_000 - (relay.clock() % 60_000),
      });
    }
    throw err;
  }
}

/** preHandler: a valid node session, within its request rate. */
export function requireSession(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: (err?: Error) => void,
): void {
  const { relay } = request.server;
  try {
    const session = verifyToken(relay, bearer(request), request.ip);
    if (!relay.rate.hit(`node:${session.address}`, relay.limits.requestsPerMinute)) {
      throw new RelayError('RATE_LIMITED', 'too many requests', {
        retryAfterMs: 60_000 - (relay.clock() % 60_000),
      });
    }
    request.session = session;
    done();
  } catch (err) {
    done(err as Error);
  }
}

/** Parse a small JSON request body that arrived as bytes. */
export function jsonOf(body: unknown): unknown {
  if (!(body instanceof Uint8Array)) throw new RelayError('MALFORMED', 'a JSON body is required');
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as unknown;
  } catch (cause) {
    throw new RelayError('MALFORMED', 'body is not valid JSON', { cause });
  }
}

/**
 * A message checked against its schema of @rogatory/relay-api: MALFORMED
 * naming where it breaks, never the value (it may hold personal data).
 */
export function checkMessage<T>(value: unknown, message: MessageCheck<T>, what: string): T {
  if (!message.check(value))
    throw new RelayError('MALFORMED', `${what}: invalid at ${message.where(value)}`, {
      detail: 'SCHEMA_INVALID',
    });
  return value;
}

/** A JSON request body checked against its message schema (checkMessage). */
export function messageOf<T>(body: unknown, message: MessageCheck<T>, what: string): T {
  return checkMessage(jsonOf(body), message, what);
}
