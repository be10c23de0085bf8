import { createHash } from 'node:crypto';
import {
  CONTEXTS,
  envelopeHash,
  issueEvidence,
  publicKeyOf,
  verifyEvidenceChain,
  verifySignature,
  withHop,
  type Envelope,
  type Evidence,
} from '@rogatory/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  RelayClient,
  RelayClientError,
  isRelayClientError,
  type RelayClientErrorCode,
  type UploadProgress,
} from '../src/index.js';
import { sendError, type FakeRelay } from './fake-relay.js';
import {
  NODE,
  PEER,
  clientFor,
  connectionReset,
  interceptingDispatcher,
  makeChunk,
  makeEnvelope,
  recordingRuntime,
  startRelay,
  streamOf,
  type Chunk,
} from './helpers.js';

let relay: FakeRelay;

beforeEach(async () => {
  relay = await startRelay();
});

afterEach(async () => {
  await relay.close();
});

async function codeOf(promise: Promise<unknown>): Promise<RelayClientErrorCode> {
  try {
    await promise;
  } catch (err) {
    if (isRelayClientError(err)) return err.code;
    throw err;
  }
  throw new Error('expected a RelayClientError, the call succeeded');
}

async function errorOf(promise: Promise<unknown>): Promise<RelayClientError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof RelayClientError) return err;
    throw err;
  }
  throw new Error('expected a RelayClientError, the call succeeded');
}

const MISSING = /^\/v1\/chunks\/missing$/;
const raw =
  (status: number, text: string, headers: Record<string, string> = {}) =>
  (res: import('node:http').ServerResponse) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(text);
  };

describe('login', () => {
  it('signs { type, relay, address, challenge, issuedAt } under the session-challenge context, and the relay verifies it', async () => {
    const client = clientFor(relay);
    const before = Date.now();
    const info = await client.login();
    expect(info).toMatchObject({ relay: 'relay@wacap', address: NODE });
    expect(relay.logins).toHaveLength(1);
    const { body, signature } = relay.logins[0]!;
    expect(Object.keys(body).sort()).toEqual(['address', 'challenge', 'issuedAt', 'relay', 'type']);
    expect(body).toMatchObject({ type: 'session', relay: 'relay@wacap', address: NODE });
    expect(body['issuedAt']).toBeGreaterThanOrEqual(before);
    const publicKey = publicKeyOf(relay.world.authority(NODE).identityRef);
    expect(() =>
      verifySignature(CONTEXTS.sessionChallenge, body, signature, publicKey),
    ).not.toThrow();
    // The same signature is worthless under another context or for another relay.
    expect(() => verifySignature(CONTEXTS.relayCall, body, signature, publicKey)).toThrow();
    expect(() =>
      verifySignature(
        CONTEXTS.sessionChallenge,
        { ...body, relay: 'relay@casc' },
        signature,
        publicKey,
      ),
    ).toThrow();
  });

  it('refuses to sign a challenge that names another relay than the one expected', async () => {
    const client = clientFor(relay, { relayId: 'relay@casc' });
    expect(await codeOf(client.login())).toBe('BAD_RESPONSE');
    expect(relay.count('POST', /^\/v1\/session$/)).toBe(0);
  });

  it('logs in by itself, and renews the session once on 401 UNAUTHENTICATED', async () => {
    const client = clientFor(relay);
    const ids = [makeChunk(10).id];
    expect(await client.missingChunks(ids)).toEqual(ids);
    expect(relay.logins).toHaveLength(1);
    relay.expireTokens();
    expect(await client.missingChunks(ids)).toEqual(ids);
    expect(relay.logins).toHaveLength(2);
    expect(relay.count('POST', MISSING, 401)).toBe(1);
    expect(relay.count('POST', MISSING, 200)).toBe(2);
  });

  it('renews only once: a relay that keeps answering 401 makes the call fail', async () => {
    const client = clientFor(relay);
    relay.intercept('POST', MISSING, (res) => sendError(res, 401, 'UNAUTHENTICATED'), 5);
    expect(await codeOf(client.missingChunks([makeChunk(5).id]))).toBe('UNAUTHENTICATED');
    expect(relay.logins).toHaveLength(2);
    expect(relay.count('POST', MISSING)).toBe(2);
  });

  it('renews the token before it expires, without waiting for a 401', async () => {
    let skew = 0;
    const short = await startRelay({ tokenTtlMs: 4 * 60_000 });
    try {
      const client = clientFor(short, { runtime: { now: () => Date.now() + skew } });
      await client.missingChunks([makeChunk(5).id]);
      skew = 3.5 * 60_000; // inside the renewal margin, still before expiry
      await client.missingChunks([makeChunk(5).id]);
      expect(short.logins).toHaveLength(2);
      expect(short.count('POST', MISSING, 401)).toBe(0);
    } finally {
      await short.close();
    }
  });

  it('starts over with a new challenge when the relay says the challenge was used', async () => {
    relay.intercept('POST', /^\/v1\/session$/, (res) => sendError(res, 401, 'CHALLENGE_INVALID'));
    await clientFor(relay).login();
    expect(relay.count('POST', /^\/v1\/session\/challenge$/)).toBe(2);
    expect(relay.logins).toHaveLength(1);
  });

  it('does not retry a refused signature', async () => {
    relay.intercept('POST', /^\/v1\/session$/, (res) => sendError(res, 403, 'SIGNATURE_INVALID'));
    expect(await codeOf(clientFor(relay).login())).toBe('SIGNATURE_INVALID');
    expect(relay.count('POST', /^\/v1\/session$/)).toBe(1);
  });
});

describe('retries', () => {
  it('retries 503 with backoff and succeeds', async () => {
    const { runtime, delays } = recordingRuntime();
    relay.intercept('POST', MISSING, (res) => sendError(res, 503, 'UNAVAILABLE'), 2);
    const ids = [makeChunk(5).id];
    expect(await clientFor(relay, { runtime }).missingChunks(ids)).toEqual(ids);
    expect(delays).toHaveLength(2);
    expect(relay.count('POST', MISSING)).toBe(3);
  });

  it('waits at least Retry-After on 429', async () => {
    const { runtime, delays } = recordingRuntime();
    relay.intercept('POST', MISSING, (res) =>
      sendError(res, 429, 'RATE_LIMITED', {}, { 'retry-after': '2' }),
    );
    const client = clientFor(relay, {
      runtime,
      retry: { retries: 3, baseMs: 1, maxMs: 10_000, jitter: 0 },
    });
    await client.missingChunks([makeChunk(5).id]);
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThanOrEqual(2000);
  });

  it('does not wait out a Retry-After longer than its policy allows, and reports it', async () => {
    const { runtime, delays } = recordingRuntime();
    relay.intercept('POST', MISSING, (res) =>
      sendError(res, 429, 'RATE_LIMITED', {}, { 'retry-after': '120' }),
    );
    const err = await errorOf(clientFor(relay, { runtime }).missingChunks([makeChunk(5).id]));
    expect(err.code).toBe('RATE_LIMITED');
    expect(err.status).toBe(429);
    expect(err.retryAfterMs).toBe(120_000);
    expect(delays).toHaveLength(0);
  });

  it('retries a dropped connection (NETWORK) and a proxy error page', async () => {
    const { runtime } = recordingRuntime();
    relay.intercept('POST', MISSING, (_res, req) => req.socket.destroy());
    relay.intercept(
      'POST',
      MISSING,
      raw(502, '<html>bad gateway</html>', { 'content-type': 'text/html' }),
    );
    const ids = [makeChunk(5).id];
    expect(await clientFor(relay, { runtime }).missingChunks(ids)).toEqual(ids);
    expect(relay.count('POST', MISSING, 200)).toBe(1);
  });

  it('gives up after the configured retries with the last error', async () => {
    const { runtime, delays } = recordingRuntime();
    relay.intercept('POST', MISSING, (res) => sendError(res, 503, 'UNAVAILABLE'), 10);
    const err = await errorOf(clientFor(relay, { runtime }).missingChunks([makeChunk(5).id]));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.status).toBe(503);
    expect(relay.count('POST', MISSING)).toBe(4);
    expect(delays).toHaveLength(3);
  });

  it('does not retry a permanent error', async () => {
    const { runtime } = recordingRuntime();
    relay.intercept('POST', MISSING, (res) => sendError(res, 400, 'MALFORMED'), 3);
    expect(await codeOf(clientFor(relay, { runtime }).missingChunks([makeChunk(5).id]))).toBe(
      'MALFORMED',
    );
    expect(relay.count('POST', MISSING)).toBe(1);
  });

  it('times out a relay that does not answer', async () => {
    relay.intercept('POST', MISSING, () => undefined);
    const client = clientFor(relay, { timeoutMs: 500, retry: { retries: 0 } });
    await client.login();
    expect(await codeOf(client.missingChunks([makeChunk(5).id]))).toBe('TIMEOUT');
  });
});

describe('malformed answers are BAD_RESPONSE', () => {
  const cases: [string, (res: import('node:http').ServerResponse) => void][] = [
    ['not JSON', raw(200, 'missing: none')],
    ['wrong shape', raw(200, JSON.stringify({ absent: [] }))],
    ['an id that was not asked about', raw(200, JSON.stringify({ missing: ['f'.repeat(64)] }))],
    ['an error body without a relay code', raw(400, JSON.stringify({ message: 'nope' }))],
    [
      'an unknown error code',
      raw(400, JSON.stringify({ error: { code: 'SOMETHING_NEW', message: 'x' } })),
    ],
    ['a redirect (never followed)', raw(302, '', { location: 'http://example.invalid/' })],
  ];
  for (const [name, respond] of cases) {
    it(name, async () => {
      relay.intercept('POST', MISSING, respond);
      const { runtime } = recordingRuntime();
      const err = await errorOf(clientFor(relay, { runtime }).missingChunks([makeChunk(5).id]));
      expect(err.code).toBe('BAD_RESPONSE');
      expect(relay.count('POST', MISSING)).toBe(1);
    });
  }

  it('a challenge of the wrong shape', async () => {
    relay.intercept(
      'POST',
      /^\/v1\/session\/challenge$/,
      raw(200, JSON.stringify({ challenge: 'short', relay: 'relay@wacap', expiresAt: 1 })),
    );
    expect(await codeOf(clientFor(relay).login())).toBe('BAD_RESPONSE');
    expect(relay.logins).toHaveLength(0);
  });

  it('a session for another address', async () => {
    relay.intercept(
      'POST',
      /^\/v1\/session$/,
      raw(
        200,
        JSON.stringify({ token: 'a'.repeat(32), expiresAt: Date.now() + 60_000, address: PEER }),
      ),
    );
    expect(await codeOf(clientFor(relay).login())).toBe('BAD_RESPONSE');
  });

  it('a chunk confirmation for another chunk', async () => {
    const chunk = makeChunk(32);
    relay.intercept(
      'PUT',
      /^\/v1\/chunks\//,
      raw(201, JSON.stringify({ id: makeChunk(3).id, size: 32 })),
    );
    expect(await codeOf(clientFor(relay).putChunk(chunk.id, chunk.bytes, 32))).toBe('BAD_RESPONSE');
  });

  it('the message never carries the body the relay sent', async () => {
    relay.intercept('POST', MISSING, raw(200, 'secret-token-abc'));
    const err = await errorOf(clientFor(relay).missingChunks([makeChunk(5).id]));
    expect(err.message).not.toContain('secret-token-abc');
    expect(JSON.stringify(err)).not.toContain('secret-token-abc');
  });
});

describe('chunks', () => {
  it('asks about missing chunks 10,000 ids at a time', async () => {
    const ids = Array.from({ length: 10_001 }, (_, i) =>
      createHash('sha256').update(String(i)).digest('hex'),
    );
    const present = makeChunk(8);
    relay.chunks.set(ids[10_000]!, present.bytes);
    const missing = await clientFor(relay).missingChunks([...ids, ids[0]!]);
    expect(relay.count('POST', MISSING)).toBe(2);
    expect(missing).toEqual(ids.slice(0, 10_000));
  });

  it('refuses an invalid chunk id before sending anything', async () => {
    const client = clientFor(relay);
    expect(await codeOf(client.missingChunks(['ABC']))).toBe('CHUNK_ID_INVALID');
    expect(await codeOf(client.putChunk('x'.repeat(64), new Uint8Array(1), 1))).toBe(
      'CHUNK_ID_INVALID',
    );
    expect(relay.log).toHaveLength(0);
  });

  it('puts bytes (201, then 200 when already present) and a stream', async () => {
    const client = clientFor(relay);
    const a = makeChunk(1000);
    expect(await client.putChunk(a.id, a.bytes, a.bytes.length)).toEqual({
      id: a.id,
      size: 1000,
      created: true,
    });
    expect(await client.putChunk(a.id, a.bytes, a.bytes.length)).toEqual({
      id: a.id,
      size: 1000,
      created: false,
    });
    const b = makeChunk(100_000);
    expect(await client.putChunk(b.id, streamOf(b.bytes, 7_000), b.bytes.length)).toMatchObject({
      created: true,
    });
    expect(Buffer.from(relay.chunks.get(b.id)!).equals(b.bytes)).toBe(true);
  });

  it('aborts a stream that does not hash to the id, or runs past its size; the relay stores nothing', async () => {
    const client = clientFor(relay);
    await client.login();
    const a = makeChunk(50_000);
    const other = makeChunk(50_000);
    expect(await codeOf(client.putChunk(a.id, streamOf(other.bytes, 8_000), 50_000))).toBe(
      'CHUNK_HASH_MISMATCH',
    );
    expect(await codeOf(client.putChunk(a.id, streamOf(a.bytes, 8_000), 40_000))).toBe(
      'LIMIT_EXCEEDED',
    );
    expect(await codeOf(client.putChunk(a.id, other.bytes, 50_000))).toBe('CHUNK_HASH_MISMATCH');
    expect(relay.chunks.has(a.id)).toBe(false);
  });

  it('streams a chunk and checks it against its id', async () => {
    const client = clientFor(relay);
    const a = makeChunk(300_000);
    relay.chunks.set(a.id, a.bytes);
    const parts: Uint8Array[] = [];
    for await (const part of client.getChunk(a.id)) parts.push(part);
    expect(Buffer.concat(parts).equals(a.bytes)).toBe(true);
    expect(Buffer.from(await client.getChunkBytes(a.id)).equals(a.bytes)).toBe(true);
  });

  it('refuses bytes that do not hash to the id', async () => {
    const client = clientFor(relay);
    const a = makeChunk(1000);
    const tampered = new Uint8Array(a.bytes);
    tampered[500] = tampered[500]! ^ 1;
    relay.chunks.set(a.id, tampered);
    expect(await codeOf(client.getChunkBytes(a.id))).toBe('CHUNK_HASH_MISMATCH');
    const streamed = (async () => {
      for await (const _part of client.getChunk(a.id)) {
        // consume
      }
    })();
    expect(await codeOf(streamed)).toBe('CHUNK_HASH_MISMATCH');
    expect(await codeOf(client.getChunkBytes(makeChunk(3).id))).toBe('NOT_FOUND');
  });
});

describe('connections', () => {
  it('sends consecutive calls over kept-alive connections, also after an error answer', async () => {
    const client = clientFor(relay, { retry: { retries: 0 } });
    const ids = [makeChunk(5).id];
    await client.login();
    expect(await client.missingChunks(ids)).toEqual(ids);
    const opened = relay.tcpConnections;
    for (let i = 0; i < 3; i++) expect(await client.missingChunks(ids)).toEqual(ids);
    relay.intercept(
      'POST',
      MISSING,
      raw(400, JSON.stringify({ error: { code: 'MALFORMED', message: 'x'.repeat(20_000) } })),
    );
    expect(await codeOf(client.missingChunks(ids))).toBe('MALFORMED');
    expect(await client.missingChunks(ids)).toEqual(ids);
    expect(relay.tcpConnections).toBe(opened);
  });

  it('yields downloaded chunk bytes as plain Uint8Arrays', async () => {
    const client = clientFor(relay);
    const a = makeChunk(70_000);
    relay.chunks.set(a.id, a.bytes);
    const parts: Uint8Array[] = [];
    for await (const part of client.getChunk(a.id)) parts.push(part);
    expect(parts.length).toBeGreaterThan(0);
    for (const part of parts) expect(Object.getPrototypeOf(part)).toBe(Uint8Array.prototype);
  });
});

describe('a Dispatcher of the caller’s own (the production HTTP path, with faults injected)', () => {
  it('carries every request of the client', async () => {
    const seen: string[] = [];
    const own = interceptingDispatcher({
      before: (request) => {
        seen.push(`${request.method} ${request.path}`);
        return undefined;
      },
    });
    try {
      const client = clientFor(relay, { dispatcher: own.dispatcher, retry: { retries: 0 } });
      const ids = [makeChunk(5).id];
      expect(await client.missingChunks(ids)).toEqual(ids);
      expect(seen.filter((r) => r === 'POST /v1/chunks/missing')).toHaveLength(1);
      expect(seen.length).toBeGreaterThanOrEqual(2); // the login exchange too
    } finally {
      await own.close();
    }
  });

  it('retries connections reset before they reach the relay, and gives up with NETWORK', async () => {
    const { runtime, delays } = recordingRuntime();
    let resets = 2;
    const flaky = interceptingDispatcher({
      before: (request) =>
        request.method === 'POST' && MISSING.test(request.path) && resets-- > 0
          ? connectionReset()
          : undefined,
    });
    try {
      const ids = [makeChunk(5).id];
      const client = clientFor(relay, { dispatcher: flaky.dispatcher, runtime });
      expect(await client.missingChunks(ids)).toEqual(ids);
      expect(relay.count('POST', MISSING)).toBe(1);
      expect(delays).toHaveLength(2);
      resets = Number.POSITIVE_INFINITY;
      const err = await errorOf(client.missingChunks(ids));
      expect(err.code).toBe('NETWORK');
      expect(relay.count('POST', MISSING)).toBe(1);
    } finally {
      await flaky.close();
    }
  });

  it('times out a request held back longer than the idle timeout', async () => {
    const slow = interceptingDispatcher({
      before: (request) =>
        request.method === 'POST' && MISSING.test(request.path) ? 1_000 : undefined,
    });
    try {
      const client = clientFor(relay, {
        dispatcher: slow.dispatcher,
        timeoutMs: 300,
        retry: { retries: 0 },
      });
      await client.login();
      expect(await codeOf(client.missingChunks([makeChunk(5).id]))).toBe('TIMEOUT');
    } finally {
      await slow.close();
    }
  });
});

describe('uploadChunks', () => {
  const chunksOf = (n: number): Chunk[] => Array.from({ length: n }, (_, i) => makeChunk(1000 + i));

  it('uploads only what the relay lacks and reports progress', async () => {
    const chunks = chunksOf(5);
    relay.chunks.set(chunks[1]!.id, chunks[1]!.bytes);
    relay.chunks.set(chunks[3]!.id, chunks[3]!.bytes);
    const events: UploadProgress[] = [];
    const result = await clientFor(relay).uploadChunks(chunks, {
      concurrency: 2,
      onProgress: (p) => events.push(p),
    });
    const total = chunks.reduce((n, c) => n + c.bytes.length, 0);
    expect(result).toMatchObject({
      chunksTotal: 5,
      chunksUploaded: 3,
      chunksSkipped: 2,
      bytesTotal: total,
      bytesDone: total,
      sourceDone: true,
    });
    expect(result.bytesSkipped).toBe(chunks[1]!.bytes.length + chunks[3]!.bytes.length);
    expect(new Set(relay.chunkPuts)).toEqual(
      new Set([chunks[0]!.id, chunks[2]!.id, chunks[4]!.id]),
    );
    expect(relay.chunkPuts).toHaveLength(3);
    const done = events.map((e) => e.bytesDone);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(events.at(-1)?.bytesDone).toBe(total);
  });

  it('resumes after a failure midway: the second run uploads only the rest', async () => {
    const { runtime } = recordingRuntime();
    const chunks = chunksOf(6);
    const client = clientFor(relay, { runtime });
    // The 4th chunk's connection drops on every attempt of the first run.
    relay.intercept('PUT', new RegExp(chunks[3]!.id), (_res, req) => req.socket.destroy(), 4);
    const err = await errorOf(client.uploadChunks(chunks, { concurrency: 1 }));
    expect(err.code).toBe('NETWORK');
    expect(relay.chunkPuts).toEqual(chunks.slice(0, 3).map((c) => c.id));

    const resumed = await client.uploadChunks(chunks, { concurrency: 1 });
    expect(resumed).toMatchObject({ chunksSkipped: 3, chunksUploaded: 3 });
    expect(relay.chunkPuts).toEqual(chunks.map((c) => c.id));
    for (const c of chunks) expect(relay.chunks.get(c.id)).toEqual(c.bytes);
  });

  it('retries a transient failure of one chunk within the run', async () => {
    const { runtime, delays } = recordingRuntime();
    const chunks = chunksOf(3);
    relay.intercept('PUT', new RegExp(chunks[1]!.id), (res) => sendError(res, 503, 'UNAVAILABLE'));
    const result = await clientFor(relay, { runtime }).uploadChunks(chunks);
    expect(result.chunksUploaded).toBe(3);
    expect(delays).toHaveLength(1);
  });

  it('loads lazily given chunks only when the relay lacks them, from an async source', async () => {
    const chunks = chunksOf(4);
    relay.chunks.set(chunks[0]!.id, chunks[0]!.bytes);
    const loaded: string[] = [];
    async function* source() {
      for (const c of chunks) {
        await Promise.resolve();
        yield {
          id: c.id,
          size: c.bytes.length,
          load: () => {
            loaded.push(c.id);
            return streamOf(c.bytes, 300);
          },
        };
      }
    }
    const result = await clientFor(relay).uploadChunks(source(), { concurrency: 2 });
    expect(result).toMatchObject({ chunksSkipped: 1, chunksUploaded: 3 });
    expect(new Set(loaded)).toEqual(new Set(chunks.slice(1).map((c) => c.id)));
  });

  it('keeps at most `concurrency` uploads in flight, and reads the source in windows', async () => {
    const chunks = chunksOf(9);
    let inFlight = 0;
    let most = 0;
    const counting = interceptingDispatcher({
      before: (request) => {
        if (request.method === 'PUT') most = Math.max(most, ++inFlight);
        return undefined;
      },
      after: (request) => {
        if (request.method === 'PUT') inFlight--;
      },
    });
    try {
      await clientFor(relay, { dispatcher: counting.dispatcher }).uploadChunks(chunks, {
        concurrency: 3,
        windowBytes: 3000,
      });
    } finally {
      await counting.close();
    }
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBeGreaterThanOrEqual(2);
    expect(relay.count('POST', MISSING)).toBe(3);
    expect(relay.chunkPuts).toHaveLength(9);
  });
});

describe('submit', () => {
  async function prepared(
    client: RelayClient,
    options: { upload?: boolean } = {},
  ): Promise<{ envelope: Envelope; chunks: Chunk[] }> {
    const dossier = makeChunk(700);
    const chunks = [makeChunk(2000), makeChunk(3000)];
    const envelope = makeEnvelope(relay.world, { dossier, chunks });
    if (options.upload !== false) await client.uploadChunks([dossier, ...chunks]);
    return { envelope, chunks: [dossier, ...chunks] };
  }

  it('returns the SubmissionAcceptance, bound to the envelope and verifiable; a repeat returns it again', async () => {
    const client = clientFor(relay, { trust: relay.world.trustFor('wacap') });
    const { envelope } = await prepared(client);
    const acceptance = await client.submit(envelope);
    expect(acceptance.body).toMatchObject({
      kind: 'submission-acceptance',
      envelopeId: envelope.body.id,
      envelopeHash: envelopeHash(envelope),
      issuer: 'relay@wacap',
    });
    expect(
      verifyEvidenceChain(envelope, [acceptance], relay.world.trustFor('wacap')).submission,
    ).toBe('accepted');
    expect(await client.submit(envelope)).toEqual(acceptance);
    expect(relay.mailbox(PEER).map((i) => i.kind)).toEqual(['envelope']);
  });

  it('throws CHUNK_MISSING with the parsed SubmissionRejection and the missing ids', async () => {
    const client = clientFor(relay);
    const { envelope, chunks } = await prepared(client, { upload: false });
    await client.putChunk(chunks[0]!.id, chunks[0]!.bytes, chunks[0]!.bytes.length);
    const err = await errorOf(client.submit(envelope));
    expect(err.code).toBe('CHUNK_MISSING');
    expect(err.status).toBe(422);
    expect(err.missing).toEqual(chunks.slice(1).map((c) => c.id));
    expect(err.evidence?.body).toMatchObject({
      kind: 'submission-rejection',
      envelopeId: envelope.body.id,
      reason: { code: 'CHUNK_MISSING' },
    });
  });

  it('refuses a rejection evidence about another envelope', async () => {
    const client = clientFor(relay);
    const { envelope } = await prepared(client);
    const other = makeEnvelope(relay.world, { dossier: makeChunk(10) });
    const forged = issueEvidence({
      kind: 'submission-rejection',
      envelope: other,
      issuer: 'relay@wacap',
      key: relay.world.networks['wacap']!.relay.key,
      issuedAt: Date.now(),
      reason: { code: 'REPLAY', detail: null },
    });
    relay.intercept('POST', /^\/v1\/envelopes$/, (res) =>
      sendError(res, 409, 'REPLAY', { evidence: forged }),
    );
    expect(await codeOf(client.submit(envelope))).toBe('BAD_RESPONSE');
  });

  it('refuses an acceptance that is not about this envelope, or not signed by a relay of the sender network', async () => {
    const client = clientFor(relay, { trust: relay.world.trustFor('wacap') });
    const { envelope } = await prepared(client);
    const issue = (
      about: Envelope,
      key = relay.world.networks['wacap']!.relay.key,
      issuer = 'relay@wacap',
    ): Evidence =>
      issueEvidence({
        kind: 'submission-acceptance',
        envelope: about,
        issuer,
        key,
        issuedAt: Date.now(),
      });
    relay.intercept(
      'POST',
      /^\/v1\/envelopes$/,
      raw(
        200,
        JSON.stringify({ evidence: issue(makeEnvelope(relay.world, { dossier: makeChunk(10) })) }),
      ),
    );
    expect(await codeOf(client.submit(envelope))).toBe('BAD_RESPONSE');
    relay.intercept(
      'POST',
      /^\/v1\/envelopes$/,
      raw(
        200,
        JSON.stringify({ evidence: issue(envelope, relay.world.networks['casc']!.relay.key) }),
      ),
    );
    expect(await codeOf(client.submit(envelope))).toBe('BAD_RESPONSE');
    relay.intercept(
      'POST',
      /^\/v1\/envelopes$/,
      raw(
        200,
        JSON.stringify({
          evidence: issue(envelope, relay.world.networks['casc']!.relay.key, 'relay@casc'),
        }),
      ),
    );
    expect(await codeOf(client.submit(envelope))).toBe('BAD_RESPONSE');
    expect((await client.submit(envelope)).body.kind).toBe('submission-acceptance');
  });

  it('refuses to send an invalid envelope', async () => {
    const client = clientFor(relay);
    const { envelope } = await prepared(client, { upload: false });
    const hopped = withHop(envelope, { relay: 'relay@wacap', receivedAt: Date.now() });
    expect(await codeOf(client.submit(hopped))).toBe('MALFORMED');
    expect(
      await codeOf(client.submit({ ...envelope, body: { ...envelope.body, totalSize: 1 } })),
    ).toBe('MALFORMED');
    expect(relay.count('POST', /^\/v1\/envelopes$/)).toBe(0);
  });
});

describe('mailbox over HTTP and evidences', () => {
  it('reads, acks, and routes a Delivery evidence back to the sender', async () => {
    const sender = clientFor(relay);
    const recipient = clientFor(relay, { address: PEER });
    const dossier = makeChunk(500);
    const envelope = makeEnvelope(relay.world, { dossier });
    await sender.uploadChunks([dossier]);
    await sender.submit(envelope);

    const items = await recipient.readMailbox(0, 10);
    expect(items).toHaveLength(1);
    const item = items[0]!;
    expect(item.kind === 'envelope' && item.envelope.body.id).toBe(envelope.body.id);
    expect(await recipient.ack([item.seq])).toBe(1);
    expect(await recipient.readMailbox(0, 10)).toEqual([]);

    const delivery = issueEvidence({
      kind: 'delivery',
      envelope,
      issuer: PEER,
      recipient: PEER,
      key: relay.world.authority(PEER).identity,
      issuedAt: Date.now(),
    });
    await recipient.postEvidence(delivery, envelope);
    const back = await sender.readMailbox(0, 10);
    expect(back).toHaveLength(1);
    expect(back[0]!.kind === 'evidence' && back[0]!.evidence).toEqual(delivery);
  });

  it('refuses a mailbox answer with a malformed item, naming its seq', async () => {
    const client = clientFor(relay, { address: PEER });
    relay.intercept(
      'GET',
      /^\/v1\/mailbox$/,
      raw(200, JSON.stringify({ items: [{ seq: 4, kind: 'envelope', envelope: { body: {} } }] })),
    );
    const err = await errorOf(client.readMailbox(0, 10));
    expect(err.code).toBe('BAD_RESPONSE');
    expect(err.seq).toBe(4);
  });

  it('refuses items out of order or not after the cursor', async () => {
    const client = clientFor(relay, { address: PEER });
    const dossier = makeChunk(100);
    const envelope = makeEnvelope(relay.world, { dossier });
    const items = [
      { seq: 5, kind: 'envelope', envelope },
      { seq: 3, kind: 'envelope', envelope },
    ];
    relay.intercept('GET', /^\/v1\/mailbox$/, raw(200, JSON.stringify({ items })));
    expect(await codeOf(client.readMailbox(0, 10))).toBe('BAD_RESPONSE');
    relay.intercept('GET', /^\/v1\/mailbox$/, raw(200, JSON.stringify({ items: [items[1]] })));
    expect(await codeOf(client.readMailbox(3, 10))).toBe('BAD_RESPONSE');
  });
});
