import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Connection limits of the relay's HTTP server (relay.example.yaml, `connections`). */
export interface ConnectionLimits {
  /** Concurrent TCP connections (HTTP keep-alive and WebSockets) from one remote address; 0 for no limit. */
  readonly maxPerAddress: number;
  /** Time a client has to send a request's headers (slow-header connections are cut after it). */
  readonly headersTimeoutMs: number;
  /** Time a client has to send a whole request, body included (a 16 MiB chunk on a slow link). */
  readonly requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. */
  readonly keepAliveTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxPerAddress: 128,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 10_000,
};

/**
 * Options for `Fastify()` (and Node's `http.createServer` under it) that
 * apply the timeouts. Node checks the headers and request timeouts on a
 * timer (30 s by default); a shorter period keeps the headers timeout close
 * to what is configured.
 */
export function serverTimeoutOptions(limits: ConnectionLimits): {
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
 * one past `maxPerAddress` as soon as it is accepted, before it is read.
 */
export function limitConnectionsPerAddress(
  server: Server,
  maxPerAddress: number,
  onRefused: () => void,
): void {
  if (maxPerAddress <= 0) return;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    if (address === undefined) return;
    const n = open.get(address) ?? 0;
    if (n >= maxPerAddress) {
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
