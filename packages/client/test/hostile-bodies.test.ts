import type { ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent, isRelayClientError } from '../src/index.js';
import type { FakeRelay } from './fake-relay.js';
import { clientFor, makeChunk, startRelay } from './helpers.js';

/** Writes one byte every `everyMs` until the client goes away: never idle, never done. */
function trickle(everyMs: number) {
  return (res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const timer = setInterval(() => {
      if (!res.destroyed) res.write(Buffer.from([0x2a]));
    }, everyMs);
    res.on('close', () => clearInterval(timer));
  };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a failure'),
    (err: unknown) => err,
  );
}

describe('a relay that trickles a body', () => {
  let relay: FakeRelay;
  beforeEach(async () => {
    relay = await startRelay();
  });
  afterEach(async () => {
    await relay.close();
  });

  it('is cut with TIMEOUT once it has been slower than the floor for longer than the idle timeout (it never trips the idle timer itself)', async () => {
    const chunk = makeChunk(4096);
    relay.intercept('GET', /^\/v1\/chunks\//, trickle(20));
    const client = clientFor(relay, { timeoutMs: 300, retry: { retries: 0 } });
    await client.login();
    const err = await failure(client.getChunkBytes(chunk.id));
    expect(isRelayClientError(err, 'TIMEOUT')).toBe(true);
  });

  it('the same body through a streamed download, and through a Dispatcher of the caller’s own', async () => {
    const chunk = makeChunk(4096);
    relay.intercept('GET', /^\/v1\/chunks\//, trickle(20), 2);
    const viaUndici = clientFor(relay, { timeoutMs: 300, retry: { retries: 0 } });
    const streamed = (async () => {
      let received = 0;
      for await (const piece of viaUndici.getChunk(chunk.id)) received += piece.length;
      return received;
    })();
    expect(isRelayClientError(await failure(streamed), 'TIMEOUT')).toBe(true);
    const own = new Agent();
    try {
      const viaOwnAgent = clientFor(relay, {
        timeoutMs: 300,
        retry: { retries: 0 },
        dispatcher: own,
      });
      expect(
        isRelayClientError(await failure(viaOwnAgent.getChunkBytes(chunk.id)), 'TIMEOUT'),
      ).toBe(true);
    } finally {
      await own.close();
    }
  });

  it('a slow but steady body above the floor is read to the end', async () => {
    const chunk = makeChunk(64 * 1024);
    relay.chunks.set(chunk.id, chunk.bytes);
    relay.intercept('GET', /^\/v1\/chunks\//, (res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let offset = 0;
      const timer = setInterval(() => {
        res.write(chunk.bytes.subarray(offset, offset + 8 * 1024));
        offset += 8 * 1024;
        if (offset >= chunk.bytes.length) {
          clearInterval(timer);
          res.end();
        }
      }, 60);
    });
    // 8 KiB every 60 ms is about 130 KiB/s (16 times the floor), for about half a second: longer than the idle timeout.
    const client = clientFor(relay, {
      timeoutMs: 300,
      retry: { retries: 0 },
      minBytesPerSecond: 8 * 1024,
    });
    expect(await client.getChunkBytes(chunk.id)).toEqual(chunk.bytes);
  });
});
