import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Limits of the API's HTTP server against clients that hold connections or guess tokens. */
export interface ApiLimits {
  /** Concurrent TCP connections from one remote address (behind a proxy: the proxy's); 0 for no limit. */
  readonly maxConnectionsPerAddress: number;
  /** Time a client has to send a request's headers: slow-header connections are cut after it. */
  readonly headersTimeoutMs: number;
  /** Time a client has to send a whole request, body included (at most 4 MiB by default). */
  readonly requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. */
  readonly keepAliveTimeoutMs: number;
  /** Requests with a missing or invalid bearer token per client address and minute; past it RATE_LIMITED. */
  readonly badTokensPerMinute: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  maxConnectionsPerAddress: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 10_000,
  badTokensPerMinute: 60,
};

/**
 * Options for `Fastify()` (and Node's `http.createServer` under it) that
 * apply the timeouts. Node checks the headers and request timeouts on a
 * timer (every 30 s by default); a shorter period keeps the headers
 * timeout close to what is configured.
 */
export function serverTimeoutOptions(limits: ApiLimits): {
  requestTimeout: number;
  keepAliveTimeout: number;
  http: { headersTimeout: number; connectionsCheckingInterval: number };
} {
  return {
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: {
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      connectionsCheckingInterval: Math.max(
        50,
        Math.min(1000, Math.floor(limits.headersTimeoutMs / 4)),
      ),
    },
  };
}

/**
 * Count open connections by remote address on `server` and destroy each
 * one past `max` as soon as it is accepted, before it is read.
 */
export function limitConnectionsPerAddress(
  server: Server,
  max: number,
  onRefused: () => void,
): void {
  if (max <= 0) return;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    if (address === undefined) return;
    const n = open.get(address) ?? 0;
    if (n >= max) {
      onRefused();
      socket.destroy();
      return;
    }
    open.set(address, n + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

/** Most addresses tracked at once; a flood of distinct ones drops the full buckets first. */
const MAX_TRACKED = 100_000;

/**
 * A token bucket per client address, in memory: `perMinute` tokens, refilled
 * continuously. Only failures take from it, so a valid client behind the
 * same address is never refused by it.
 */
export class AddressBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly clock: () => number,
  ) {}

  /** Take one token for `address`: 0 when there was one, else the seconds until there is. */
  take(address: string): number {
    const now = this.clock();
    const rate = this.perMinute / 60_000;
    const b = this.buckets.get(address);
    const tokens = b ? Math.min(this.perMinute, b.tokens + (now - b.at) * rate) : this.perMinute;
    if (tokens >= 1) {
      if (!b && this.buckets.size >= MAX_TRACKED) this.prune(now);
      this.buckets.set(address, { tokens: tokens - 1, at: now });
      return 0;
    }
    this.buckets.set(address, { tokens, at: now });
    return Math.max(1, Math.ceil((1 - tokens) / rate / 1000));
  }

  private prune(now: number): void {
    const rate = this.perMinute / 60_000;
    for (const [address, b] of this.buckets)
      if (b.tokens + (now - b.at) * rate >= this.perMinute) this.buckets.delete(address);
    // Every bucket still draining: forget them all rather than grow without bound.
    if (this.buckets.size >= MAX_TRACKED) this.buckets.clear();
  }
}
