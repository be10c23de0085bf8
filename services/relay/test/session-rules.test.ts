import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTEXTS, ENVELOPE_LIMITS, TrustStore, ready, signBytes } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { MemoryBlobStore } from '@rogatory/storage';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildRelayApp } from '../src/app.js';
import { openEmbeddedBackend } from '../src/backend/embedded.js';
import { loadRelayConfig } from '../src/config.js';
import { CHALLENGE_TTL_MS, DEFAULT_SESSION_TTL_MS } from '../src/sessions.js';

/** The session rules docs/relay-api.md states: challenge lifetime and single use, clock skew, session lifetime. */

let world: TestWorld;
const apps: FastifyInstance[] = [];
let now = 0;

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: Date.now() });
});

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function relayApp(sessionTtlMs?: number): Promise<FastifyInstance> {
  now = Date.now();
  const net = world.networks['wacap']!;
  const trust = new TrustStore({ pinned: [{ network: 'wacap', root: net.rootRef }] });
  trust.addManifest(net.manifest);
  const backend = await openEmbeddedBackend({ file: ':memory:' });
  const app = await buildRelayApp({
    relayId: net.relay.id,
    key: net.relay.key,
    trust,
    backend,
    blobs: new MemoryBlobStore(),
    sessionSecret: new Uint8Array(32).fill(9),
    logger: false,
    workers: false,
    clock: () => now,
    ...(sessionTtlMs === undefined ? {} : { sessionTtlMs }),
  });
  app.addHook('onClose', () => backend.close());
  apps.push(app);
  return app;
}

async function challenge(
  app: FastifyInstance,
  address: string,
): Promise<{ challenge: string; relay: string; expiresAt: number }> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/session/challenge',
    payload: { address },
  });
  expect(res.statusCode).toBe(200);
  return res.json();
}

function answer(
  app: FastifyInstance,
  c: { challenge: string; relay: string },
  address: string,
  options: { signer?: string; issuedAt?: number; corrupt?: boolean } = {},
) {
  const body = {
    type: 'session',
    relay: c.relay,
    address,
    challenge: c.challenge,
    issuedAt: options.issuedAt ?? now,
  };
  const signed = signBytes(
    CONTEXTS.sessionChallenge,
    body,
    world.authority(options.signer ?? address).identity,
  );
  // The right key id with a signature over other bytes.
  const signature =
    options.corrupt === true
      ? {
          ...signed,
          value: signBytes(
            CONTEXTS.sessionChallenge,
            { ...body, issuedAt: 1 },
            world.authority(address).identity,
          ).value,
        }
      : signed;
  return app.inject({ method: 'POST', url: '/v1/session', payload: { body, signature } });
}

const codeOf = (res: { json: () => unknown }) =>
  (res.json() as { error?: { code: string } }).error?.code;

describe('relay sessions', () => {
  it('consumes a challenge with any login attempt: a refused answer cannot be corrected and sent again', async () => {
    const app = await relayApp();
    const address = 'sn-moj@wacap';
    const refusals: [
      string,
      (c: { challenge: string; relay: string }) => ReturnType<typeof answer>,
    ][] = [
      ['SIGNATURE_INVALID', (c) => answer(app, c, address, { corrupt: true })],
      ['SENDER_UNKNOWN', (c) => answer(app, c, address, { signer: 'ng-agf@wacap' })],
      [
        'CHALLENGE_INVALID',
        (c) => answer(app, c, address, { issuedAt: now - ENVELOPE_LIMITS.maxClockSkewMs - 1 }),
      ],
    ];
    for (const [code, refuse] of refusals) {
      const c = await challenge(app, address);
      expect(codeOf(await refuse(c))).toBe(code);
      // The same challenge, now answered correctly: already used.
      expect(codeOf(await answer(app, c, address))).toBe('CHALLENGE_INVALID');
    }
    // A stranger's refused attempt uses its challenge too.
    const stranger = await challenge(app, 'xx-nobody@wacap');
    expect(codeOf(await answer(app, stranger, 'xx-nobody@wacap', { signer: address }))).toBe(
      'SENDER_UNKNOWN',
    );
    expect(codeOf(await answer(app, stranger, 'xx-nobody@wacap', { signer: address }))).toBe(
      'CHALLENGE_INVALID',
    );
  });

  it('issues challenges to anyone, valid for two minutes, and bounds the clock skew of issuedAt', async () => {
    const app = await relayApp();
    const address = 'sn-moj@wacap';
    // Challenges carry no state and reveal nothing about membership.
    const strangers = await challenge(app, 'xx-nobody@wacap');
    expect(strangers.expiresAt).toBe(now + CHALLENGE_TTL_MS);
    expect(CHALLENGE_TTL_MS).toBe(2 * 60 * 1000);

    const late = await challenge(app, address);
    now += CHALLENGE_TTL_MS + 1;
    expect(codeOf(await answer(app, late, address))).toBe('CHALLENGE_INVALID');

    const skewed = await challenge(app, address);
    expect(
      (await answer(app, skewed, address, { issuedAt: now + ENVELOPE_LIMITS.maxClockSkewMs }))
        .statusCode,
    ).toBe(200);
    const tooFar = await challenge(app, address);
    expect(
      codeOf(
        await answer(app, tooFar, address, { issuedAt: now + ENVELOPE_LIMITS.maxClockSkewMs + 1 }),
      ),
    ).toBe('CHALLENGE_INVALID');
  });

  it('opens sessions for the points of contact of its network, who send and receive dossiers (design D5)', async () => {
    const app = await relayApp();
    const poc = world.networks['wacap']!.poc;
    const c = await challenge(app, poc.address);
    const body = {
      type: 'session',
      relay: c.relay,
      address: poc.address,
      challenge: c.challenge,
      issuedAt: now,
    };
    const signature = signBytes(CONTEXTS.sessionChallenge, body, poc.key);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/session',
      payload: { body, signature },
    });
    expect(res.statusCode).toBe(200);
    const { token } = res.json<{ token: string }>();
    const mailbox = await app.inject({
      url: '/v1/mailbox',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(mailbox.statusCode).toBe(200);
    // The PoC's key signs only as the PoC: the same key for an authority's address is refused.
    const other = await challenge(app, 'sn-moj@wacap');
    const forged = { ...body, address: 'sn-moj@wacap', challenge: other.challenge };
    const refused = await app.inject({
      method: 'POST',
      url: '/v1/session',
      payload: { body: forged, signature: signBytes(CONTEXTS.sessionChallenge, forged, poc.key) },
    });
    expect(refused.statusCode).toBe(403);
    expect(codeOf(refused)).toBe('SENDER_UNKNOWN');
  });

  it('gives sessions thirty minutes', async () => {
    const app = await relayApp();
    const address = 'sn-moj@wacap';
    const res = await answer(app, await challenge(app, address), address);
    const { token, expiresAt } = res.json<{ token: string; expiresAt: number }>();
    expect(DEFAULT_SESSION_TTL_MS).toBe(30 * 60 * 1000);
    expect(expiresAt).toBe(now + DEFAULT_SESSION_TTL_MS);
    const mailbox = () =>
      app.inject({ url: '/v1/mailbox', headers: { authorization: `Bearer ${token}` } });
    now = expiresAt - 1;
    expect((await mailbox()).statusCode).toBe(200);
    now = expiresAt;
    expect(codeOf(await mailbox())).toBe('UNAUTHENTICATED');
  });

  it('takes another session lifetime from the configuration (sessionTtlMs, 5 s to 24 h)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rogatory-session-config-'));
    try {
      const config = (ttl: number) =>
        [
          'relay: { id: relay@wacap, port: 0 }',
          'identity: { keyFile: ./key.json }',
          'trust: { rootFile: ./root.json, manifestFiles: [./m.json] }',
          `sessionTtlMs: ${ttl}`,
          'backend: { kind: embedded, dataDir: ./data }',
        ].join('\n');
      await writeFile(join(dir, 'ok.yaml'), config(20_000));
      expect((await loadRelayConfig(join(dir, 'ok.yaml'), {})).sessionTtlMs).toBe(20_000);
      await writeFile(join(dir, 'short.yaml'), config(4_999));
      await expect(loadRelayConfig(join(dir, 'short.yaml'), {})).rejects.toThrow();
      // Without a data directory (Redis + object store) the trust state needs its own folder.
      await writeFile(
        join(dir, 'redis.yaml'),
        config(20_000).replace(
          'backend: { kind: embedded, dataDir: ./data }',
          'backend: { kind: redis, redis: { url: "redis://127.0.0.1:1", prefix: p } }',
        ),
      );
      await expect(loadRelayConfig(join(dir, 'redis.yaml'), {})).rejects.toThrow(
        /redis\.yaml: trust\.dir: required when backend\.dataDir is not set/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const app = await relayApp(20_000);
    const address = 'sn-moj@wacap';
    const res = await answer(app, await challenge(app, address), address);
    expect(res.json<{ expiresAt: number }>().expiresAt).toBe(now + 20_000);
  });
});
