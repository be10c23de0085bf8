/**
 * Shared pieces of the security tests: the relay backends each test runs
 * on, raw HTTP and WebSocket probes (the tests act as hostile clients, not
 * through @rogatory/client's checks), and a tiny Redis command line.
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { CONTEXTS, canonicalBytes, signBytes, type SigningKeyPair } from '@rogatory/protocol';
import type { BackendKind } from '@rogatory/relay/testing';
import { startRedis, startS3, type RedisServer, type S3Server } from '@rogatory/test-services';
import WebSocket from 'ws';

export const redisInstalled =
  spawnSync(process.env['REDIS_SERVER'] ?? 'redis-server', ['--version']).status === 0;

export interface StartedBackend {
  readonly kind: BackendKind;
  readonly redis?: RedisServer;
  readonly s3?: S3Server;
  stop(): Promise<void>;
}

export interface BackendChoice {
  readonly name: string;
  readonly available: boolean;
  start(): Promise<StartedBackend>;
}

/**
 * The two relay storage layouts: embedded (SQLite + chunk directory) and
 * production (redis-server with AOF, chunks in s3rver). Redis without
 * RDB compression, so that a dump holds values as written.
 */
export const BACKENDS: readonly BackendChoice[] = [
  {
    name: 'embedded backend',
    available: true,
    start: () => Promise.resolve({ kind: { kind: 'embedded' }, stop: () => Promise.resolve() }),
  },
  {
    name: 'Redis + S3 backend',
    available: redisInstalled,
    async start() {
      const redis = await startRedis({ args: ['--rdbcompression', 'no'] });
      let s3: S3Server;
      try {
        s3 = await startS3();
      } catch (err) {
        await redis.stop();
        throw err;
      }
      return {
        kind: {
          kind: 'redis',
          url: redis.url,
          s3: {
            endPoint: s3.endPoint,
            port: s3.port,
            accessKey: s3.accessKey,
            secretKey: s3.secretKey,
          },
        },
        redis,
        s3,
        async stop() {
          await Promise.allSettled([redis.stop(), s3.stop()]);
        },
      };
    },
  },
];

export interface RawResponse {
  readonly status: number;
  readonly text: string;
  /** The error code of a refusal (`{ error: { code } }`), if the body has one. */
  readonly code: string | undefined;
}

/** One HTTP request as a hostile client sends it: no retries, no checks of the answer. */
export async function raw(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Uint8Array | string } = {},
): Promise<RawResponse> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    ...(init.headers ? { headers: init.headers } : {}),
    ...(init.body === undefined
      ? {}
      : { body: typeof init.body === 'string' ? init.body : Buffer.from(init.body) }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let code: string | undefined;
  try {
    const v = JSON.parse(text) as { error?: { code?: unknown } };
    code = typeof v.error?.code === 'string' ? v.error.code : undefined;
  } catch {
    code = undefined;
  }
  return { status: res.status, text, code };
}

export const bearer = (token: string): Record<string, string> => ({
  authorization: `Bearer ${token}`,
});

/** A WebSocket that records every text frame it receives and how it closed. */
export class FrameRecorder {
  readonly frames: string[] = [];
  closed: { code: number; reason: string } | undefined;
  readonly opened: Promise<boolean>;
  private readonly ws: WebSocket;

  constructor(url: string) {
    this.ws = new WebSocket(url, { maxPayload: 8 * 1024 * 1024 });
    this.opened = new Promise((resolve) => {
      this.ws.once('open', () => {
        resolve(true);
      });
      this.ws.once('error', () => {
        resolve(false);
      });
      this.ws.once('unexpected-response', () => {
        resolve(false);
      });
    });
    this.ws.on('message', (data: Buffer) => {
      this.frames.push(data.toString('utf8'));
    });
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString('utf8') };
    });
    this.ws.on('error', () => undefined);
  }

  send(text: string): void {
    this.ws.send(text);
  }

  /** Wait (bounded) until `cond` holds; false if it never did. */
  async until(cond: () => boolean, ms = 10_000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      this.ws.once('close', () => {
        resolve();
      });
      this.ws.close();
      setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 2000).unref();
    });
  }
}

/** One command to a Redis server over RESP; answers the reply's first line (bulk replies: their data). */
export function redisCommand(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = Buffer.alloc(0);
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error('redis command timed out'));
    });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(
        `*${String(args.length)}\r\n${args.map((a) => `$${String(Buffer.byteLength(a))}\r\n${a}\r\n`).join('')}`,
      );
    });
    socket.on('data', (d: Buffer) => {
      reply = Buffer.concat([reply, d]);
      const text = reply.toString('utf8');
      const first = text.indexOf('\r\n');
      if (first < 0) return;
      if (text.startsWith('$')) {
        const len = Number(text.slice(1, first));
        if (len < 0) {
          socket.destroy();
          resolve('');
          return;
        }
        if (reply.length < first + 2 + len) return;
        socket.destroy();
        resolve(reply.subarray(first + 2, first + 2 + len).toString('utf8'));
        return;
      }
      socket.destroy();
      if (text.startsWith('-')) reject(new Error(text.slice(1, first)));
      else resolve(text.slice(1, first));
    });
  });
}

/** Log in as `address` by hand (challenge, signed answer) and return the bearer token. */
export async function loginToken(
  relayUrl: string,
  address: string,
  key: SigningKeyPair,
): Promise<string> {
  const c = await raw(`${relayUrl}/v1/session/challenge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: canonicalBytes({ address }),
  });
  if (c.status !== 200) throw new Error(`no challenge for ${address}: ${String(c.status)}`);
  const challenge = JSON.parse(c.text) as { challenge: string; relay: string };
  const body = {
    type: 'session',
    relay: challenge.relay,
    address,
    challenge: challenge.challenge,
    issuedAt: Date.now(),
  };
  const r = await raw(`${relayUrl}/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: canonicalBytes({ body, signature: signBytes(CONTEXTS.sessionChallenge, body, key) }),
  });
  if (r.status !== 200) throw new Error(`login of ${address} failed: ${String(r.status)}`);
  return (JSON.parse(r.text) as { token: string }).token;
}
