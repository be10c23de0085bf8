/**
 * A peer network may list several relays. When the first listed one is down,
 * a relay fetching that network's publication chain takes it from the next
 * listed relay instead of falling behind for as long as the first is down.
 */
import { generateSigningKeyPair, keyRef, signManifest, type Manifest } from '@rogatory/protocol';
import type { TestWorld } from '@rogatory/protocol/testing';
import { freePort } from '@rogatory/test-services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRelays, type TestNetworkOfRelays } from '../src/testing/harness.js';
import { TestLog } from '../src/testing/publications.js';

let net: TestNetworkOfRelays;
let glog: TestLog;

async function post(url: string, path: string, body: unknown) {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function editionAt(relayUrl: string, network: string): Promise<number> {
  const res = await fetch(`${relayUrl}/v1/trust/networks`);
  const body = (await res.json()) as { networks: { network: string; edition: number }[] };
  return body.networks.find((n) => n.network === network)?.edition ?? 0;
}

async function waitForEdition(relayUrl: string, network: string, edition: number, ms: number) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await editionAt(relayUrl, network)) >= edition) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** The next edition of `network`'s manifest, with its relay list replaced. */
function nextEdition(
  n: TestWorld['networks'][string],
  previous: Manifest,
  relays: Manifest['body']['relays'],
): Manifest {
  const { type: _t, version: _v, previous: _p, ...body } = previous.body;
  return signManifest({ ...body, issuedAt: Date.now(), relays }, n.root, previous);
}

describe('peer chain fetch falls back to the next listed relay', () => {
  beforeAll(async () => {
    net = await startTestRelays({
      backend: { kind: 'embedded' },
      relayOptions: { trustPollMs: 200 },
    });
    const g = net.world.networks['global']!;
    glog = new TestLog('global', g.root).append('manifest', g.manifest);
  }, 60_000);

  afterAll(async () => {
    await net.stop();
  });

  it('keeps following the hub while its first listed relay is down', async () => {
    const g = net.world.networks['global']!;
    const hub = net.relays['global']!.url;
    const wacap = net.relays['wacap']!.url;
    expect((await post(hub, '/v1/trust/publications', glog.publish())).status).toBe(200);
    expect(await waitForEdition(wacap, 'global', 1, 15_000)).toBe(true);

    // Edition 2 lists a second hub relay FIRST, at an address where nothing listens.
    const dead = `http://127.0.0.1:${await freePort()}`;
    const spare = generateSigningKeyPair();
    const now = Date.now();
    const v2 = nextEdition(g, g.manifest, [
      {
        id: 'relay0@global',
        url: dead,
        key: keyRef(spare, { notBefore: now - 1000, notAfter: now + 86_400_000 }),
      },
      ...g.manifest.body.relays,
    ]);
    glog.append('manifest', v2);
    expect((await post(hub, '/v1/trust/publications', glog.publish())).status).toBe(200);
    // wacap still fetched this one from the relay edition 1 listed.
    expect(await waitForEdition(wacap, 'global', 2, 15_000)).toBe(true);

    // From now on wacap's first choice is the dead relay: edition 3 arrives only through the fallback.
    const v3 = nextEdition(g, v2, v2.body.relays);
    glog.append('manifest', v3);
    expect((await post(hub, '/v1/trust/publications', glog.publish())).status).toBe(200);
    expect(await waitForEdition(wacap, 'global', 3, 20_000)).toBe(true);
  }, 90_000);
});
