/**
 * GET /api/v1/status carries the trust overview of `AuthorityNode.status()`
 * (edition and log size per followed network, fork alarms): the response
 * schema must not drop it (Fastify serialises by the schema).
 */
import { join } from 'node:path';
import { ready, signManifest, type Manifest } from '@rogatory/protocol';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildNodeApi } from '../src/index.js';
import { PASSWORD, makeNode, tempDir, type NodeFixture } from './support/fixtures.js';
import { TestLog, startFakeTrustRelay, type FakeTrustRelay } from './support/trust-log.js';

describe('GET /api/v1/status: the trust overview', () => {
  let relay: FakeTrustRelay;
  let second: FakeTrustRelay;
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let fx: NodeFixture;
  let app: FastifyInstance;
  let token = '';

  const witness = (network: string) => ({
    name: world.networks[network]!.relay.id,
    key: world.networks[network]!.relay.key,
  });

  async function status() {
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/status',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.statusCode).toBe(200);
    return res.json<{ address: string; trust?: unknown }>();
  }

  beforeAll(async () => {
    await ready();
    relay = await startFakeTrustRelay();
    second = await startFakeTrustRelay();
    // wacap's relay is the node's; casc's listed relay is another: the second source for casc.
    world = buildTestWorld({
      now: Date.now(),
      relayUrl: (network) => (network === 'wacap' ? relay.url : second.url),
    });
    tmp = await tempDir();
    const wacap = world.networks['wacap']!;
    const log = new TestLog('wacap', wacap.root);
    log.append('manifest', wacap.manifest);
    relay.chains.set('wacap', [log.publish([witness('global')])]);
    fx = await makeNode({
      world,
      address: 'sn-moj@wacap',
      dir: join(tmp.path, 'sn'),
      relayUrl: relay.url,
    });
    app = await buildNodeApi({ node: fx.node, sessionTtlMs: 60_000, logger: false });
    const login = await app.inject({
      method: 'POST',
      url: '/api/v1/login',
      payload: { username: 'admin', password: PASSWORD },
    });
    token = login.json<{ token: string }>().token;
  });

  afterAll(async () => {
    await app.close();
    await fx.node.close();
    await relay.close();
    await second.close();
    await tmp.remove();
  });

  it('shows edition and log size per network, as the node reports them', async () => {
    await fx.node.syncTrust();
    const body = await status();
    expect(body.trust).toEqual(fx.node.status().trust);
    expect(body.trust).toMatchObject({
      openAlarms: 0,
      forksTotal: 0,
      networks: expect.arrayContaining([
        { network: 'wacap', edition: 1, logSize: 1, forkAlarm: false },
      ]),
    });
  });

  it('shows a fork alarm: two trees of one size of casc from the relay and the second source', async () => {
    const casc = world.networks['casc']!;
    const a = new TestLog('casc', casc.root);
    a.append('manifest', casc.manifest);
    const b = new TestLog('casc', casc.root);
    b.append('manifest', resigned(casc.manifest));
    relay.chains.set('casc', [a.publish([witness('wacap')])]);
    second.chains.set('casc', [b.publish([witness('wacap')])]);
    const report = await fx.node.syncTrust();
    expect(report.networks.find((x) => x.network === 'casc')?.outcome).toBe('fork');
    const body = await status();
    expect(body.trust).toEqual(fx.node.status().trust);
    expect(body.trust).toMatchObject({
      openAlarms: 1,
      forksTotal: 1,
      networks: expect.arrayContaining([
        expect.objectContaining({ network: 'casc', forkAlarm: true }),
        expect.objectContaining({ network: 'wacap', forkAlarm: false }),
      ]),
    });

    function resigned(m: Manifest): Manifest {
      const { type: _t, version: _v, previous: _p, ...rest } = m.body;
      return signManifest({ ...rest, issuedAt: Date.now() - 1000 }, casc.root);
    }
  });
});
