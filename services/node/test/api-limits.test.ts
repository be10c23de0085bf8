import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serveNodeApi, type ApiLimits, type RunningApi } from '../src/index.js';
import { PASSWORD, makeNode, offlineWorld, tempDir, type NodeFixture } from './support/fixtures.js';

/**
 * The API over real sockets on 127.0.0.1 against clients that hold
 * connections, dribble headers or guess tokens (issue 15, items 4 and 6).
 */

let tmp: { path: string; remove: () => Promise<void> };
let n: NodeFixture;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  const world = await offlineWorld();
  tmp = await tempDir();
  n = await makeNode({ world, address: 'sn-moj@wacap', dir: join(tmp.path, 'sn') });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await n.node.close();
  await tmp.remove();
});

interface Served {
  readonly api: RunningApi;
  readonly port: number;
  readonly logs: Record<string, unknown>[];
}

async function serve(limits: Partial<ApiLimits>, clock?: () => number): Promise<Served> {
  const logs: Record<string, unknown>[] = [];
  const api = await serveNodeApi({
    node: n.node,
    port: 0,
    sync: false,
    limits,
    logger: {
      level: 'debug',
      stream: { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
    },
    ...(clock ? { clock } : {}),
  });
  cleanups.push(() => api.close());
  return { api, port: Number(new URL(api.url).port), logs };
}

/** One request on a fresh connection (no keep-alive pool that would hold connections). */
function call(
  port: number,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers,
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(options.body);
  });
}

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
    // Read (and drop) any answer, so that the server's end is seen.
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

async function loginToken(port: number): Promise<string> {
  const res = await call(port, {
    method: 'POST',
    path: '/api/v1/login',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: PASSWORD }),
  });
  expect(res.status).toBe(200);
  return (JSON.parse(res.body) as { token: string }).token;
}

describe('connections per client address', () => {
  it('the connection past the limit is closed at once, the others stay, and a closed one makes room', async () => {
    const max = 3;
    const { port, logs } = await serve({ maxConnectionsPerAddress: max });
    const held = [];
    for (let i = 0; i < max; i++) {
      const c = await rawConnection(port);
      c.socket.write('GET /api/v1/login HTTP/1.1\r\n');
      held.push(c);
    }
    const extra = await rawConnection(port);
    expect(await within(extra.closed, 5000)).not.toBe('timeout');
    expect(held.some((c) => c.isClosed())).toBe(false);
    const summary = logs.filter(
      (l) => l['msg'] === 'connections refused: too many from one address',
    );
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatchObject({ level: 40, refused: 1, maxPerAddress: max });

    held[0]!.socket.destroy();
    await held[0]!.closed;
    await expect
      .poll(
        async () => (await call(port, { path: '/openapi.json' }).catch(() => undefined))?.status,
        {
          timeout: 5000,
        },
      )
      .toBe(200);
    expect(held.slice(1).some((c) => c.isClosed())).toBe(false);
  });

  it('a slowloris (headers dribbled) and an idle connection are cut by the headers timeout', async () => {
    const { api, port } = await serve({ headersTimeoutMs: 1000 });
    expect(api.app.server.headersTimeout).toBe(1000);
    const slow = await rawConnection(port);
    const idle = await rawConnection(port);
    const started = Date.now();
    slow.socket.write('GET /openapi.json HTTP/1.1\r\nHost: x\r\n');
    const dribble = setInterval(() => {
      if (!slow.isClosed()) slow.socket.write(`X-Slow-${String(Date.now() - started)}: a\r\n`);
    }, 200);
    cleanups.push(() => clearInterval(dribble));
    expect(await within(slow.closed, 10_000)).not.toBe('timeout');
    clearInterval(dribble);
    expect(await within(idle.closed, 5000)).not.toBe('timeout');
    // Far below Node's 60 s default.
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await call(port, { path: '/openapi.json' })).status).toBe(200);
  });

  it('applies explicit request and keep-alive timeouts, with documented defaults', async () => {
    const custom = await serve({ requestTimeoutMs: 20_000, keepAliveTimeoutMs: 3000 });
    expect(custom.api.app.server.requestTimeout).toBe(20_000);
    expect(custom.api.app.server.keepAliveTimeout).toBe(3000);
    const defaults = await serve({});
    expect(defaults.api.app.server.headersTimeout).toBe(10_000);
    expect(defaults.api.app.server.requestTimeout).toBe(60_000);
    expect(defaults.api.app.server.keepAliveTimeout).toBe(10_000);
  });
});

describe('requests with bad bearer tokens', () => {
  it('a flood from one address gets 429 RATE_LIMITED with Retry-After while a valid client keeps working', async () => {
    let now = Date.now();
    const perMinute = 10;
    const { port, logs } = await serve({ badTokensPerMinute: perMinute }, () => now);
    const token = await loginToken(port);
    const statuses: number[] = [];
    let last: { headers: Record<string, unknown>; body: string } | undefined;
    for (let i = 0; i < perMinute + 8; i++) {
      const bad = await call(port, {
        path: '/api/v1/users',
        headers: i % 3 === 0 ? {} : { authorization: `Bearer ${'A'.repeat(42)}${String(i % 10)}` },
      });
      statuses.push(bad.status);
      last = bad;
      if (i % 4 === 0)
        expect(
          (
            await call(port, {
              path: '/api/v1/users',
              headers: { authorization: `Bearer ${token}` },
            })
          ).status,
        ).toBe(200);
    }
    expect(statuses.slice(0, perMinute)).toEqual(Array.from({ length: perMinute }, () => 401));
    expect(statuses.slice(perMinute)).toEqual(Array.from({ length: 8 }, () => 429));
    expect((JSON.parse(last!.body) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    const retryAfter = Number(last!.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Logins are not bad tokens: the admin still logs in from the flooding address.
    await loginToken(port);
    // The bucket refills: after Retry-After, one more bad token is answered 401 again.
    now += retryAfter * 1000;
    expect((await call(port, { path: '/api/v1/users' })).status).toBe(401);
    expect(logs.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
  });
});

describe('client misbehaviour is not logged as an error', () => {
  it('malformed, oversize, unparsable and aborted requests write no error-level entry and no stack', async () => {
    const { port, logs } = await serve({});
    const token = await loginToken(port);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    for (let i = 0; i < 5; i++) {
      expect(
        (
          await call(port, {
            method: 'POST',
            path: '/api/v1/dossiers',
            headers: auth,
            body: '{"content":',
          })
        ).status,
      ).toBe(400);
      expect(
        (
          await call(port, {
            method: 'POST',
            path: '/api/v1/dossiers',
            headers: auth,
            body: `"${'x'.repeat(5 * 1024 * 1024)}"`,
          })
        ).status,
      ).toBe(413);
      expect((await call(port, { path: '/api/v1/nowhere' })).status).toBe(404);
      // Broken framing: two different Content-Length headers.
      const broken = await rawConnection(port);
      broken.socket.write(
        'POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
      );
      expect(await within(broken.closed, 5000)).not.toBe('timeout');
      // A body announced and never finished: the client goes away mid-request.
      const early = await rawConnection(port);
      early.socket.write(
        `POST /api/v1/dossiers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"content":`,
      );
      await new Promise((res) => setTimeout(res, 50));
      early.socket.destroy();
    }
    // The server has seen every close once a fresh request is answered after them.
    await new Promise((res) => setTimeout(res, 200));
    expect((await call(port, { path: '/openapi.json' })).status).toBe(200);
    expect(logs.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
    expect(logs.filter((l) => JSON.stringify(l).includes('stack'))).toEqual([]);
    expect(
      logs.some((l) => l['msg'] === 'request refused' && l['code'] === 'PAYLOAD_TOO_LARGE'),
    ).toBe(true);
  });
});
