import { join } from 'node:path';
import {
  encodeAddCheckpointRequest,
  logOrigin,
  publicKeyOf,
  signCheckpoint,
  signManifest,
  verifyCosignedCheckpoint,
  type Manifest,
} from '@rogatory/protocol';
import { isRelayClientError } from '@rogatory/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRelays, type TestNetworkOfRelays } from '../src/testing/harness.js';
import { TestLog } from '../src/testing/publications.js';
import { nodeClient, sealAndUpload } from '../src/testing/relay-helpers.js';

let net: TestNetworkOfRelays;
let wlog: TestLog;
let glog: TestLog;

async function post(url: string, path: string, body: unknown) {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function witness(url: string, body: string) {
  const res = await fetch(`${url}/v1/witness/add-checkpoint`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body,
  });
  return { status: res.status, text: await res.text() };
}

async function getJson(url: string, path: string) {
  const res = await fetch(`${url}${path}`);
  return (await res.json()) as Record<string, unknown>;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const errorCode = (body: Record<string, unknown>) => (body['error'] as { code: string }).code;
const url = (n: string) => net.relays[n]!.url;

describe('relay trust distribution (D2, D3)', () => {
  beforeAll(async () => {
    net = await startTestRelays({
      backend: { kind: 'embedded' },
      relayOptions: { trustPollMs: 200 },
    });
    const w = net.world.networks;
    wlog = new TestLog('wacap', w['wacap']!.root).append('manifest', w['wacap']!.manifest);
    glog = new TestLog('global', w['global']!.root).append('manifest', w['global']!.manifest);
  }, 60_000);

  afterAll(async () => {
    await net.stop();
  });

  it('accepts a publication, has it cosigned by both peers, and takes a re-push idempotently', async () => {
    const pub = glog.publish();
    const first = await post(url('global'), '/v1/trust/publications', pub);
    expect(first).toEqual({
      status: 200,
      body: { network: 'global', size: 1, edition: 1, cosigners: ['relay@casc', 'relay@wacap'] },
    });
    const again = await post(url('global'), '/v1/trust/publications', pub);
    expect(again.body).toEqual(first.body);
    const served = await getJson(url('global'), '/v1/trust/publications/global?after=0');
    const stored = served['publications'] as { checkpoint: string }[];
    expect(stored).toHaveLength(1);
    const w = net.world.networks;
    const cosigned = verifyCosignedCheckpoint({
      note: stored[0]!.checkpoint,
      log: { name: logOrigin('global'), publicKey: publicKeyOf(w['global']!.rootRef) },
      witnesses: ['wacap', 'casc'].map((n) => ({
        name: `relay@${n}`,
        publicKey: w[n]!.relay.key.publicKey,
      })),
      quorum: 2,
    });
    expect(cosigned.cosigners.map((c) => c.name).sort()).toEqual(['relay@casc', 'relay@wacap']);
  });

  it("serves its own chain and fetches its peers' (through the hub for a peer reached via it)", async () => {
    const res = await post(url('wacap'), '/v1/trust/publications', wlog.publish());
    expect(res.body).toMatchObject({ network: 'wacap', size: 1, cosigners: ['relay@global'] });
    for (const n of ['global', 'casc'])
      await waitFor(`wacap's chain at ${n}`, async () => {
        const body = await getJson(url(n), '/v1/trust/publications/wacap?after=0');
        return (body['publications'] as unknown[]).length === 1 ? true : undefined;
      });
    const networks = (await getJson(url('casc'), '/v1/trust/networks'))['networks'] as {
      network: string;
      size: number;
    }[];
    expect(networks.find((n) => n.network === 'wacap')?.size).toBe(1);
    expect(networks.find((n) => n.network === 'global')?.size).toBe(1);
  });

  it('refuses bad signatures, other networks, out-of-order, rollback and forks', async () => {
    const w = net.world.networks;
    const intro = (i: number) => ({ note: `stand-in introduction ${i}` });
    // Out of order: the second of two new publications first.
    wlog.append('introduction', intro(1));
    const a = wlog.publish();
    wlog.append('introduction', intro(2)).append('introduction', intro(3));
    const b = wlog.publish();
    let res = await post(url('wacap'), '/v1/trust/publications', b);
    expect([res.status, errorCode(res.body)]).toEqual([409, 'PUBLICATION_OUT_OF_ORDER']);
    expect((await post(url('wacap'), '/v1/trust/publications', a)).status).toBe(200);
    expect((await post(url('wacap'), '/v1/trust/publications', b)).status).toBe(200);
    // Bad signature: the checkpoint signed by another key.
    const forged = {
      ...b,
      checkpoint: signCheckpoint(
        { origin: logOrigin('wacap'), size: 9, rootHash: new Uint8Array(32) },
        w['casc']!.root,
      ),
    };
    res = await post(url('wacap'), '/v1/trust/publications', forged);
    expect([res.status, errorCode(res.body)]).toEqual([403, 'SIGNATURE_INVALID']);
    // Another network's publication.
    res = await post(url('wacap'), '/v1/trust/publications', glog.publish({ from: 0 }));
    expect([res.status, errorCode(res.body)]).toEqual([404, 'LOG_UNKNOWN']);
    // Rollback: a checkpoint below the held size that was never a publication boundary.
    res = await post(url('wacap'), '/v1/trust/publications', wlog.publish({ from: 2, to: 3 }));
    expect([res.status, errorCode(res.body)]).toEqual([400, 'CHECKPOINT_ROLLBACK']);
    // Fork: same size as held, another root.
    const forkLog = new TestLog('wacap', w['wacap']!.root);
    forkLog.append('manifest', w['wacap']!.manifest);
    for (let i = 1; i <= 2; i++) forkLog.append('introduction', intro(i));
    forkLog.append('introduction', { note: 'another history' });
    res = await post(url('wacap'), '/v1/trust/publications', forkLog.publish({ from: 2, to: 4 }));
    expect([res.status, errorCode(res.body)]).toEqual([422, 'LOG_FORK_DETECTED']);
    // An older manifest edition logged again.
    const rollback = wlog.clone().append('manifest', w['wacap']!.manifest);
    res = await post(url('wacap'), '/v1/trust/publications', rollback.publish());
    expect([res.status, errorCode(res.body)]).toEqual([409, 'MANIFEST_ROLLBACK']);
  });

  it('witnesses by the §18.5 rules: unknown log, bad signature, rollback, 409, fork, and cosigns', async () => {
    const w = net.world.networks;
    const origin = logOrigin('wacap');
    const tree = wlog.tree;
    const cp = (size: number) =>
      signCheckpoint({ origin, size, rootHash: tree.root(size) }, w['wacap']!.root);
    // casc witnesses wacap's log but was never asked: no state.
    expect(await witness(url('casc'), 'garbage')).toMatchObject({ status: 400 });
    const own = signCheckpoint(
      { origin: logOrigin('casc'), size: 1, rootHash: tree.root(1) },
      w['casc']!.root,
    );
    expect(
      (
        await witness(
          url('casc'),
          encodeAddCheckpointRequest({ oldSize: 0, proof: [], checkpoint: own }),
        )
      ).status,
    ).toBe(404);
    const badSig = signCheckpoint({ origin, size: 2, rootHash: tree.root(2) }, w['casc']!.root);
    expect(
      (
        await witness(
          url('casc'),
          encodeAddCheckpointRequest({ oldSize: 0, proof: [], checkpoint: badSig }),
        )
      ).status,
    ).toBe(403);
    expect(
      (
        await witness(
          url('casc'),
          encodeAddCheckpointRequest({ oldSize: 3, proof: [], checkpoint: cp(2) }),
        )
      ).status,
    ).toBe(400);
    expect(
      await witness(
        url('casc'),
        encodeAddCheckpointRequest({ oldSize: 1, proof: [], checkpoint: cp(2) }),
      ),
    ).toEqual({ status: 409, text: '0\n' });
    const first = await witness(
      url('casc'),
      encodeAddCheckpointRequest({ oldSize: 0, proof: [], checkpoint: cp(2) }),
    );
    expect(first.status).toBe(200);
    expect(first.text).toMatch(/^— relay@casc /);
    const extend = await witness(
      url('casc'),
      encodeAddCheckpointRequest({
        oldSize: 2,
        proof: tree.consistencyProof(2, 4),
        checkpoint: cp(4),
      }),
    );
    expect(extend.status).toBe(200);
    const forked = new TestLog('wacap', w['wacap']!.root).append('introduction', { x: 1 });
    for (let i = 0; i < 3; i++) forked.append('introduction', { y: i });
    const forkCp = signCheckpoint(
      { origin, size: 4, rootHash: forked.tree.root(4) },
      w['wacap']!.root,
    );
    expect(
      (
        await witness(
          url('casc'),
          encodeAddCheckpointRequest({ oldSize: 4, proof: [], checkpoint: forkCp }),
        )
      ).status,
    ).toBe(422);
    // Same checkpoint again: cosigned again.
    expect(
      (
        await witness(
          url('casc'),
          encodeAddCheckpointRequest({ oldSize: 4, proof: [], checkpoint: cp(4) }),
        )
      ).status,
    ).toBe(200);
    const metrics = await (await fetch(`${url('casc')}/metrics`)).text();
    expect(metrics).toMatch(
      /rogatory_relay_witness_cosignatures_total\{outcome="given",code="OK"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /rogatory_relay_witness_cosignatures_total\{outcome="refused",code="WITNESS_CONFLICT"\} [1-9]/,
    );
  });

  it('applies a revocation live: a submission by the revoked key is refused from then on, also after a restart with the older manifest file', async () => {
    const w = net.world.networks;
    const client = nodeClient(net.world, url('wacap'), 'sn-moj@wacap');
    await client.login();
    const ok = await sealAndUpload(net.world, client, {
      from: 'sn-moj@wacap',
      to: ['ng-agf@wacap'],
    });
    await client.submit(ok.envelope);
    const old = w['wacap']!.manifest;
    const { type: _t, version: _v, previous: _p, ...body } = old.body;
    const v2: Manifest = signManifest(
      {
        ...body,
        issuedAt: Date.now(),
        revoked: [
          {
            kid: net.world.authority('sn-moj@wacap').identityRef.kid,
            revokedAt: Date.now() - 1000,
            reason: 'key-compromise',
          },
        ],
      },
      w['wacap']!.root,
      old,
    );
    wlog.append('manifest', v2);
    const res = await post(url('wacap'), '/v1/trust/publications', wlog.publish());
    expect(res).toMatchObject({ status: 200, body: { edition: 2 } });
    const next = await sealAndUpload(net.world, client, {
      from: 'sn-moj@wacap',
      to: ['ng-agf@wacap'],
    }).catch((e: unknown) => e);
    const err = isRelayClientError(next)
      ? next
      : await client.submit((next as { envelope: never }).envelope).catch((e: unknown) => e);
    expect(isRelayClientError(err)).toBe(true);
    expect((err as { code: string }).code).toBe('SENDER_REVOKED');

    // Restart wacap with the manifest files of edition 1: the stored edition 2 is used.
    const lines: string[] = [];
    await net.relays['wacap']!.stop();
    const again = await net.startInstance(
      'wacap',
      {
        trustDir: join(net.dir, 'wacap-0-trust'),
        logger: { level: 'warn', stream: { write: (l: string) => lines.push(l) } },
      },
      Number(new URL(url('wacap')).port),
    );
    const networks = (await getJson(again.url, '/v1/trust/networks'))['networks'] as {
      network: string;
      edition: number;
    }[];
    expect(networks.find((n) => n.network === 'wacap')?.edition).toBe(2);
    expect(lines.some((l) => l.includes('MANIFEST_ROLLBACK'))).toBe(true);
    const fresh = nodeClient(net.world, again.url, 'ng-agf@wacap');
    const prepared = await sealAndUpload(net.world, fresh, {
      from: 'ng-agf@wacap',
      to: ['gh-ago@wacap'],
    });
    await expect(fresh.submit(prepared.envelope)).resolves.toBeDefined();
  }, 30_000);
});
