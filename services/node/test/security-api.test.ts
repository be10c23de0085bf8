import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveNodeApi, type RunningApi } from '../src/index.js';
import { makeNode, offlineWorld, tempDir, type NodeFixture } from './support/fixtures.js';

/**
 * Requests Node's HTTP parser refuses never reach a route; the node answers
 * them in its API error shape (found by the security fuzz,
 * tests/security/endpoint-fuzz.test.ts: Fastify's default body had no code).
 */

let tmp: { path: string; remove: () => Promise<void> };
let n: NodeFixture;
let api: RunningApi;

beforeAll(async () => {
  tmp = await tempDir();
  const world = await offlineWorld();
  n = await makeNode({ world, address: 'sn-moj@wacap', dir: join(tmp.path, 'sn') });
  api = await serveNodeApi({
    node: n.node,
    host: '127.0.0.1',
    port: 0,
    logger: false,
    sync: false,
  });
}, 60_000);

afterAll(async () => {
  await api.close();
  await n.node.close();
  await tmp.remove();
});

/** Write `text` on a fresh connection and read until the server closes it. */
function exchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error('no answer'));
    });
    socket.on('data', (d: Buffer) => (answer += d.toString('utf8')));
    socket.on('close', () => {
      resolve(answer);
    });
    socket.on('error', () => undefined);
    socket.write(text);
  });
}

describe('requests refused by the HTTP parser', () => {
  it.each([
    [
      'an oversized request line',
      `GET /api/v1/status?x=${'a'.repeat(40_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ],
    [
      'an oversized header',
      `GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(40_000)}\r\n\r\n`,
    ],
    ['a broken request line', 'GARBAGE\r\n\r\n'],
    [
      'a broken chunked body',
      'POST /api/v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    ],
  ])('%s: 400 INPUT_INVALID in the error shape, connection closed', async (_label, request) => {
    const answer = await exchange(Number(new URL(api.url).port), request);
    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/content-type: application\/json/i);
    expect(JSON.parse(body!)).toMatchObject({ error: { code: 'INPUT_INVALID' } });
  });
});
