import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FlakyProxy, type LinkFaults } from '../src/index.js';

/** A TCP server that answers every connection with the SHA-256 of what it received, once the client ends. */
let server: Server;
let serverPort: number;
const proxies: FlakyProxy[] = [];

beforeEach(async () => {
  server = createServer((socket) => {
    const hash = createHash('sha256');
    socket.on('data', (d: Buffer) => hash.update(d));
    socket.on('error', () => undefined);
    socket.on('end', () => socket.end(hash.digest('hex')));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  serverPort = (server.address() as { port: number }).port;
});

afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
  await new Promise<void>((r) => server.close(() => r()));
});

async function proxy(faults: LinkFaults = {}): Promise<FlakyProxy> {
  const p = await FlakyProxy.start({ target: { host: '127.0.0.1', port: serverPort }, faults });
  proxies.push(p);
  return p;
}

/** Send `data` through the proxy and end; resolve with the answer, or the socket error code. */
function roundTrip(
  port: number,
  data: Buffer,
): Promise<{ answer?: string; error?: string; ms: number }> {
  const start = Date.now();
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('utf8')));
    socket.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ error: e.code ?? 'ERROR', ms: Date.now() - start }),
    );
    socket.on('close', () => resolve({ answer, ms: Date.now() - start }));
    socket.end(data);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('FlakyProxy', () => {
  it('forwards bytes unchanged, both ways, and counts them', async () => {
    const p = await proxy();
    const data = randomBytes(3 * 1024 * 1024);
    const r = await roundTrip(p.port, data);
    expect(r.answer).toBe(sha(data));
    expect(p.stats()).toMatchObject({ connections: 1, bytesUp: data.length, bytesDown: 64 });
  });

  it('adds latency per chunk', async () => {
    const p = await proxy({ latencyMs: 150 });
    const r = await roundTrip(p.port, Buffer.from('hello'));
    expect(r.answer).toBe(sha(Buffer.from('hello')));
    // One chunk up, one down: at least two latencies.
    expect(r.ms).toBeGreaterThanOrEqual(290);
  });

  it('resets a connection at an exact byte count', async () => {
    const p = await proxy({ resetAfterBytes: 100_000 });
    const r = await roundTrip(p.port, randomBytes(1_000_000));
    expect(r.error).toBe('ECONNRESET');
    expect(p.stats().resets).toBe(1);
    expect(p.stats().bytesUp).toBe(100_000);
  });

  it('stalls mid-transfer until released, then completes', async () => {
    const p = await proxy({ stallAfterBytes: 200_000 });
    const data = randomBytes(1_000_000);
    const pending = roundTrip(p.port, data);
    await new Promise((r) => setTimeout(r, 300));
    expect(p.stats()).toMatchObject({ stalls: 1, bytesUp: 200_000 });
    p.release();
    expect((await pending).answer).toBe(sha(data));
  });

  it('a timed stall resumes on its own', async () => {
    const p = await proxy({ stallAfterBytes: 10, stallMs: 200 });
    const r = await roundTrip(p.port, randomBytes(50_000));
    expect(r.answer).toHaveLength(64);
    expect(r.ms).toBeGreaterThanOrEqual(190);
  });

  it('refuses connections at the configured rate, deterministically from its seed', async () => {
    const p = await proxy({ refuseRate: 0.5 });
    const results = [];
    for (let i = 0; i < 20; i++) results.push(await roundTrip(p.port, Buffer.from('x')));
    const refused = results.filter((r) => r.error !== undefined || r.answer === '').length;
    expect(p.stats().refused).toBe(refused);
    expect(refused).toBeGreaterThan(2);
    expect(refused).toBeLessThan(18);
  });

  it('caps bandwidth and applies new faults to open links', async () => {
    const p = await proxy({ bytesPerSecond: 1_000_000 });
    const data = randomBytes(400_000);
    const r = await roundTrip(p.port, data);
    expect(r.answer).toBe(sha(data));
    expect(r.ms).toBeGreaterThanOrEqual(350);
    p.set({});
    const fast = await roundTrip(p.port, data);
    expect(fast.ms).toBeLessThan(r.ms);
  });

  it('keeps back-pressure while stalled: the sender is not drained into memory', async () => {
    const p = await proxy({ stallAfterBytes: 1 });
    const socket = connect(p.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const block = Buffer.alloc(1024 * 1024);
    let written = 0;
    // Write until the kernel buffers and the proxy stop accepting: bounded, never 64 MiB.
    for (let i = 0; i < 64; i++) {
      written += block.length;
      if (!socket.write(block)) break;
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(p.stats().bytesUp).toBe(1);
    expect(written).toBeLessThan(64 * 1024 * 1024);
    expect(socket.writableLength).toBeGreaterThan(0);
    socket.destroy();
  });
});
