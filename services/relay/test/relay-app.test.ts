import { CONTEXTS, TrustStore, ready, signBytes, signRevocation } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import { MemoryBlobStore } from '@rogatory/storage';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildRelayApp } from '../src/app.js';
import { openEmbeddedBackend } from '../src/backend/embedded.js';
import { applyEnvOverrides } from '../src/config.js';
import { RELAY_ERRORS } from '@rogatory/relay-api';

let world: TestWorld;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: Date.now() });
});

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function relayApp(
  options: { clock?: () => number; trustSetup?: (t: TrustStore) => void } = {},
): Promise<FastifyInstance> {
  const net = world.networks['wacap']!;
  const trust = new TrustStore({ pinned: [{ network: 'wacap', root: net.rootRef }] });
  trust.addManifest(net.manifest);
  for (const p of net.manifest.body.peers) trust.addManifest(world.networks[p.network]!.manifest);
  options.trustSetup?.(trust);
  const backend = await openEmbeddedBackend({ file: ':memory:' });
  const app = await buildRelayApp({
    relayId: net.relay.id,
    key: net.relay.key,
    trust,
    backend,
    blobs: new MemoryBlobStore(),
    sessionSecret: new Uint8Array(32).fill(7),
    logger: false,
    workers: false,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  app.addHook('onClose', () => backend.close());
  apps.push(app);
  return app;
}

async function login(
  app: FastifyInstance,
  address: string,
  mutate: (body: Record<string, unknown>) => void = () => undefined,
) {
  const ch = await app.inject({
    method: 'POST',
    url: '/v1/session/challenge',
    payload: { address },
  });
  const { challenge, relay } = ch.json<{ challenge: string; relay: string }>();
  const body: Record<string, unknown> = {
    type: 'session',
    relay,
    address,
    challenge,
    issuedAt: Date.now(),
  };
  mutate(body);
  const signature = signBytes(CONTEXTS.sessionChallenge, body, world.authority(address).identity);
  return app.inject({ method: 'POST', url: '/v1/session', payload: { body, signature } });
}

describe('relay app', () => {
  it('reports health, readiness and Prometheus metrics', async () => {
    const app = await relayApp();
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json<{ checks: Record<string, string> }>().checks).toMatchObject({
      backend: 'ok',
      storage: 'ok',
    });
    const metrics = await app.inject('/metrics');
    expect(metrics.body).toContain('rogatory_relay_queue_depth');
    expect(metrics.body).toContain('rogatory_relay_envelopes_in_total');
    expect(metrics.body).toContain('rogatory_relay_delivery_latency_seconds');
  });

  it('opens a session for a member, once per challenge, and refuses strangers, other relays and stale tokens', async () => {
    let now = Date.now();
    const app = await relayApp({ clock: () => now });
    const ok = await login(app, 'sn-moj@wacap');
    expect(ok.statusCode).toBe(200);
    const { token } = ok.json<{ token: string }>();
    const mailbox = () =>
      app.inject({ url: '/v1/mailbox', headers: { authorization: `Bearer ${token}` } });
    expect((await mailbox()).statusCode).toBe(200);

    const other = await login(app, 'sn-moj@wacap', (b) => {
      b['relay'] = 'relay@casc';
    });
    expect(other.json<{ error: { code: string } }>().error.code).toBe('CHALLENGE_INVALID');
    const foreign = await login(app, 'kz-gpo@casc');
    expect(foreign.json<{ error: { code: string } }>().error.code).toBe('FORBIDDEN');

    // A used challenge cannot open a second session.
    const ch = await app.inject({
      method: 'POST',
      url: '/v1/session/challenge',
      payload: { address: 'sn-moj@wacap' },
    });
    const body = {
      type: 'session',
      relay: 'relay@wacap',
      address: 'sn-moj@wacap',
      challenge: ch.json<{ challenge: string }>().challenge,
      issuedAt: now,
    };
    const signature = signBytes(
      CONTEXTS.sessionChallenge,
      body,
      world.authority('sn-moj@wacap').identity,
    );
    expect(
      (await app.inject({ method: 'POST', url: '/v1/session', payload: { body, signature } }))
        .statusCode,
    ).toBe(200);
    const reuse = await app.inject({
      method: 'POST',
      url: '/v1/session',
      payload: { body, signature },
    });
    expect(reuse.json<{ error: { code: string } }>().error.code).toBe('CHALLENGE_INVALID');

    now += 31 * 60 * 1000;
    expect((await mailbox()).json<{ error: { code: string } }>().error.code).toBe(
      'UNAUTHENTICATED',
    );
  });

  it('ends sessions of a revoked key at once', async () => {
    const app = await relayApp({
      trustSetup: (trust) => {
        trust.addRevocation(
          signRevocation(
            {
              network: 'wacap',
              subject: 'gh-ago@wacap',
              kid: world.authority('gh-ago@wacap').identity.kid,
              reason: 'key-compromise',
              revokedAt: Date.now() - 1000,
              issuedAt: Date.now(),
            },
            world.networks['wacap']!.root,
          ),
        );
      },
    });
    const refused = await login(app, 'gh-ago@wacap');
    expect(refused.json<{ error: { code: string } }>().error.code).toBe('SENDER_REVOKED');
  });

  it('checks expiry and revocation on every use of a token it verified before, and refuses altered tokens', async () => {
    let now = Date.now();
    let trustStore: TrustStore | undefined;
    const app = await relayApp({
      clock: () => now,
      trustSetup: (trust) => {
        trustStore = trust;
      },
    });
    const mailboxWith = (token: string) =>
      app.inject({
        method: 'GET',
        url: '/v1/mailbox',
        headers: { authorization: `Bearer ${token}` },
      });
    const codeOf = (res: { json: () => unknown }) =>
      (res.json() as { error?: { code: string } }).error?.code;
    const { token } = (await login(app, 'sn-moj@wacap')).json<{ token: string }>();
    const { token: other } = (await login(app, 'gh-ago@wacap')).json<{ token: string }>();
    expect((await mailboxWith(token)).statusCode).toBe(200);
    expect((await mailboxWith(token)).statusCode).toBe(200);
    expect((await mailboxWith(other)).statusCode).toBe(200);
    // Same payload, another MAC: refused although the genuine token was verified.
    const altered = token.slice(0, -2) + (token.endsWith('AA') ? 'AB' : 'AA');
    expect(codeOf(await mailboxWith(altered))).toBe('UNAUTHENTICATED');
    trustStore!.addRevocation(
      signRevocation(
        {
          network: 'wacap',
          subject: 'gh-ago@wacap',
          kid: world.authority('gh-ago@wacap').identity.kid,
          reason: 'key-compromise',
          revokedAt: now - 1000,
          issuedAt: now,
        },
        world.networks['wacap']!.root,
      ),
    );
    expect(codeOf(await mailboxWith(other))).toBe('UNAUTHENTICATED');
    now += 31 * 60 * 1000;
    expect(codeOf(await mailboxWith(token))).toBe('UNAUTHENTICATED');
  });

  it('answers malformed and unauthenticated requests with typed 4xx codes', async () => {
    const app = await relayApp();
    const cases = [
      await app.inject({
        method: 'POST',
        url: '/v1/session/challenge',
        payload: '{"address":',
        headers: { 'content-type': 'application/json' },
      }),
      await app.inject({
        method: 'POST',
        url: '/v1/session/challenge',
        payload: { address: 'Not An Address' },
      }),
      await app.inject({
        method: 'POST',
        url: '/v1/session/challenge',
        payload: 'x',
        headers: { 'content-type': 'text/plain' },
      }),
      await app.inject({ method: 'POST', url: '/v1/envelopes', payload: {} }),
      await app.inject({ method: 'GET', url: '/v1/chunks/../../etc/passwd' }),
      await app.inject({ method: 'GET', url: '/nothing-here' }),
      await app.inject({ method: 'POST', url: '/v1/relay/envelopes', payload: {} }),
    ];
    for (const res of cases) {
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
      expect(Object.keys(RELAY_ERRORS)).toContain(
        res.json<{ error: { code: string } }>().error.code,
      );
    }
  });
});

describe('configuration', () => {
  it('takes overrides from ROGATORY_RELAY__ environment variables', () => {
    const config = applyEnvOverrides(
      {
        relay: { id: 'relay@wacap', port: 1 },
        backend: { kind: 'embedded' },
        limits: { maxEnvelopeBytes: 1 },
      },
      {
        ROGATORY_RELAY__RELAY__PORT: '8443',
        ROGATORY_RELAY__BACKEND__KIND: 'redis',
        ROGATORY_RELAY__LIMITS__MAX_ENVELOPE_BYTES: '2048',
        OTHER: 'x',
      },
    );
    expect(config).toEqual({
      relay: { id: 'relay@wacap', port: 8443 },
      backend: { kind: 'redis' },
      limits: { maxEnvelopeBytes: 2048 },
    });
  });
});
