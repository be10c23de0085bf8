import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { TrustStore, ready } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { MemoryBlobStore } from '@rogatory/storage';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildRelayApp } from '../src/app.js';
import { openEmbeddedBackend } from '../src/backend/embedded.js';
import { loadRelayConfig } from '../src/config.js';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from '../src/limits.js';
import { DEFAULT_LIMITS, type RelayLimits } from '../src/options.js';
import { HttpProbe } from './support/http-probe.js';
import { loginToken } from './support/relay-auth.js';
import { WsProbe } from './support/ws-probe.js';

/**
 * Client misbehaviour against a listening relay (issue 15, items 4 and 6):
 * it is counted, never logged at error level, and bounded per source address.
 */

let world: TestWorld;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: Date.now() });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Listening {
  readonly app: FastifyInstance;
  readonly port: number;
  readonly url: string;
  /** Every log line the relay wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  metric(reason: string): Promise<number>;
}

async function listeningRelay(
  options: {
    limits?: Partial<RelayLimits>;
    connections?: Partial<ConnectionLimits>;
    clock?: () => number;
  } = {},
): Promise<Listening> {
  const net = world.networks['wacap']!;
  const trust = new TrustStore({ pinned: [{ network: 'wacap', root: net.rootRef }] });
  trust.addManifest(net.manifest);
  const backend = await openEmbeddedBackend({ file: ':memory:' });
  const logs: Record<string, unknown>[] = [];
  const app = await buildRelayApp({
    relayId: net.relay.id,
    key: net.relay.key,
    trust,
    backend,
    blobs: new MemoryBlobStore(),
    sessionSecret: new Uint8Array(32).fill(9),
    workers: false,
    logger: {
      level: 'debug',
      stream: { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
    },
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.connections ? { connections: options.connections } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  app.addHook('onClose', () => backend.close());
  cleanups.push(() => app.close());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const metric = async (reason: string): Promise<number> => {
    const values = (await app.relay.metrics.clientErrors.get()).values;
    return values.find((v) => v.labels.reason === reason)?.value ?? 0;
  };
  return { app, port: Number(new URL(url).port), url, logs, metric };
}

/** A raw TCP connection to the relay, with its closing observed. */
function rawConnection(
  port: number,
): Promise<{ socket: Socket; closed: Promise<void>; isClosed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let isClosed = false;
    const closed = new Promise<void>((res) => {
      socket.on('close', () => {
        isClosed = true;
        res();
      });
    });
    socket.on('error', () => {
      // 'close' follows.
    });
    // Read (and drop) what the relay answers, so that its end is seen.
    socket.resume();
    socket.once('connect', () => resolve({ socket, closed, isClosed: () => isClosed }));
    socket.once('error', reject);
    cleanups.push(() => {
      socket.destroy();
    });
  });
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([
    promise,
    new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), ms)),
  ]);
}

describe('client misbehaviour is counted, not logged as an error', () => {
  it('oversize frames on unauthenticated WebSockets from many sockets: no error-level entry, no stack, each counted', async () => {
    const relay = await listeningRelay();
    const sockets = 50;
    // The upgrade request and, in the same write, the header of a 300 KiB frame (over the 256 KiB limit):
    // the frame reaches the relay whatever it answers to the missing token.
    const frameHeader = Buffer.alloc(14);
    frameHeader[0] = 0x82; // FIN, binary
    frameHeader[1] = 0x80 | 127; // masked, 64-bit length follows
    frameHeader.writeBigUInt64BE(BigInt(300 * 1024), 2);
    const attack = Buffer.concat([
      Buffer.from(
        `GET /v1/mailbox/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.alloc(16, 1).toString('base64')}\r\n\r\n`,
      ),
      frameHeader,
      Buffer.alloc(1024, 0x61),
    ]);
    const closes = await Promise.all(
      Array.from({ length: sockets }, async () => {
        const c = await rawConnection(relay.port);
        c.socket.write(attack);
        return within(c.closed, 10_000);
      }),
    );
    expect(closes.every((c) => c !== 'timeout')).toBe(true);
    expect(relay.logs.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
    expect(relay.logs.filter((l) => JSON.stringify(l).includes('stack'))).toEqual([]);
    await expect.poll(() => relay.metric('ws_frame_too_large'), { timeout: 5000 }).toBe(sockets);
    const debug = relay.logs.filter((l) => l['msg'] === 'websocket closed: client protocol error');
    expect(debug).toHaveLength(sockets);
    expect(
      debug.every(
        (l) => l['level'] === 20 && l['reason'] === 'ws_frame_too_large' && l['err'] === undefined,
      ),
    ).toBe(true);
  });

  it('a request the HTTP parser refuses is answered, counted, and not logged', async () => {
    const relay = await listeningRelay();
    const probe = HttpProbe.fromUrl(relay.url);
    cleanups.push(() => probe.close());
    const out = await probe.sendRaw(
      'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    );
    expect(out.kind === 'response' ? out.response.status : out.kind).toBe(400);
    expect(await relay.metric('bad_request')).toBe(1);
    expect(relay.logs.filter((l) => (l['level'] as number) >= 40)).toEqual([]);
  });
});

describe('connections per client address', () => {
  it('the connection past the limit from one address is closed at once; the others stay; a closed one makes room', async () => {
    const max = 4;
    const relay = await listeningRelay({ connections: { maxPerAddress: max } });
    // Slow connections: a request line, never the end of the headers.
    const held = [];
    for (let i = 0; i < max; i++) {
      const c = await rawConnection(relay.port);
      c.socket.write('GET /healthz HTTP/1.1\r\n');
      held.push(c);
    }
    const extra = await rawConnection(relay.port);
    expect(await within(extra.closed, 5000)).not.toBe('timeout');
    expect(held.some((c) => c.isClosed())).toBe(false);
    expect(await relay.metric('connections_per_address')).toBe(1);

    held[0]!.socket.destroy();
    await held[0]!.closed;
    // The server sees the close a moment after the client: poll for room (bounded).
    const probe = HttpProbe.fromUrl(relay.url);
    cleanups.push(() => probe.close());
    await expect
      .poll(
        async () => {
          const out = await probe.sendRaw(
            'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
          );
          return out.kind === 'response' ? out.response.status : out.kind;
        },
        { timeout: 5000 },
      )
      .toBe(200);
    expect(held.slice(1).some((c) => c.isClosed())).toBe(false);
  });

  it('a slowloris (headers dribbled) is cut by the headers timeout', async () => {
    const relay = await listeningRelay({ connections: { headersTimeoutMs: 1000 } });
    const slow = await rawConnection(relay.port);
    const idle = await rawConnection(relay.port);
    const started = Date.now();
    slow.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    // One header line every 200 ms, for at most 10 s.
    const dribble = setInterval(() => {
      if (!slow.isClosed()) slow.socket.write(`X-Slow-${String(Date.now() - started)}: a\r\n`);
    }, 200);
    cleanups.push(() => clearInterval(dribble));
    expect(await within(slow.closed, 10_000)).not.toBe('timeout');
    clearInterval(dribble);
    // A connection that sends nothing at all is cut by the same timeout.
    expect(await within(idle.closed, 5000)).not.toBe('timeout');
    // Well before Node's 60 s default; the timeout is checked every 250 ms here.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await relay.metric('request_timeout')).toBeGreaterThanOrEqual(1);
    // A client that sends its request at once is answered as before.
    const probe = HttpProbe.fromUrl(relay.url);
    cleanups.push(() => probe.close());
    const out = await probe.send({ method: 'GET', path: '/healthz' });
    expect(out.kind === 'response' ? out.response.status : out.kind).toBe(200);
  });

  it('documents its defaults in the example configuration, which loads', async () => {
    const config = await loadRelayConfig(
      fileURLToPath(new URL('../../../infra/relay/relay.example.yaml', import.meta.url)),
      {},
    );
    expect(config.connections).toEqual(DEFAULT_CONNECTION_LIMITS);
    expect(config.limits?.badTokensPerMinute).toBe(DEFAULT_LIMITS.badTokensPerMinute);
  });

  it('applies the timeouts it is configured with to the server', async () => {
    const relay = await listeningRelay({
      connections: { headersTimeoutMs: 7000, requestTimeoutMs: 90_000, keepAliveTimeoutMs: 4000 },
    });
    expect(relay.app.server.headersTimeout).toBe(7000);
    expect(relay.app.server.requestTimeout).toBe(90_000);
    expect(relay.app.server.keepAliveTimeout).toBe(4000);
  });
});

describe('requests with bad bearer tokens', () => {
  it('a flood from one address gets 429 RATE_LIMITED with Retry-After, while a valid client on the same address keeps working', async () => {
    let now = Date.now();
    const perMinute = 20;
    const relay = await listeningRelay({
      limits: { badTokensPerMinute: perMinute },
      clock: () => now,
    });
    const probe = HttpProbe.fromUrl(relay.url);
    cleanups.push(() => probe.close());
    const token = await loginToken(probe, 'sn-moj@wacap', world.authority('sn-moj@wacap').identity);

    const statuses: number[] = [];
    let retryAfter: string | string[] | undefined;
    let code: unknown;
    for (let i = 0; i < perMinute + 10; i++) {
      const bad = await probe.send({
        method: 'GET',
        path: '/v1/mailbox',
        headers: { authorization: `Bearer ${token.slice(0, -2)}${String(i).padStart(2, '0')}` },
      });
      if (bad.kind !== 'response') throw new Error(`no answer: ${bad.kind}`);
      statuses.push(bad.response.status);
      if (bad.response.status === 429) {
        retryAfter = bad.response.headers['retry-after'];
        code = (JSON.parse(bad.response.body.toString('utf8')) as { error: { code: string } }).error
          .code;
      }
      // Interleaved: the valid token from the same address is never refused.
      if (i % 5 === 0) {
        const good = await probe.send({
          method: 'GET',
          path: '/v1/mailbox',
          headers: { authorization: `Bearer ${token}` },
        });
        expect(good.kind === 'response' ? good.response.status : good.kind).toBe(200);
      }
    }
    expect(statuses.slice(0, perMinute).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(perMinute).every((s) => s === 429)).toBe(true);
    expect(code).toBe('RATE_LIMITED');
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);

    // The mailbox WebSocket counts against the same budget.
    const ws = new WsProbe(`${relay.url.replace(/^http/, 'ws')}/v1/mailbox/ws?token=bad`);
    await ws.opened;
    await within(ws.closed, 5000);
    expect(ws.frames).toEqual([{ type: 'error', code: 'RATE_LIMITED' }]);
    const good = new WsProbe(
      `${relay.url.replace(/^http/, 'ws')}/v1/mailbox/ws?token=${encodeURIComponent(token)}`,
    );
    expect(await good.opened).toBe(true);
    good.send(JSON.stringify({ type: 'subscribe', after: 0 }));
    expect(await good.until(() => good.isClosed, 300)).toBe(false);
    await good.close();

    // The next minute starts a fresh budget.
    now += 60_000;
    const later = await probe.send({
      method: 'GET',
      path: '/v1/mailbox',
      headers: { authorization: 'Bearer nope' },
    });
    expect(later.kind === 'response' ? later.response.status : later.kind).toBe(401);
  });
});
