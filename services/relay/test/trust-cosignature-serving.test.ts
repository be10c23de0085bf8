/**
 * A relay's own new publication is served only once the witnesses'
 * cosignatures are in its note. Before, a peer relay polling while the
 * relay collected them took the bare note, kept it (a publication already
 * held is never fetched again), and served it on without cosignatures: the
 * peers of that peer (and their nodes) then refused it for want of quorum.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import {
  isProtocolError,
  logOrigin,
  publicKeyOf,
  verifyCosignedCheckpoint,
} from '@rogatory/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRelays, type TestNetworkOfRelays } from '../src/testing/harness.js';
import { TestLog } from '../src/testing/publications.js';

/** A loopback HTTP proxy to a relay set later; add-checkpoint requests wait for `release()`. */
class GatedProxy {
  target = '';
  /** Answer add-checkpoint with 503 (the witness is down). */
  refuseWitness = false;
  readonly seen: string[] = [];
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;
  private constructor(
    readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<GatedProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const proxy = new GatedProxy(server, `http://127.0.0.1:${String(port)}`);
    server.on('request', (req, res) => {
      void proxy.forward(req, res);
    });
    return proxy;
  }

  hold(): void {
    this.gate = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  release(): void {
    this.open();
  }

  private async forward(
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    this.seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
    if (req.url === '/v1/witness/add-checkpoint') await this.gate;
    if (this.target === '' || (this.refuseWitness && req.url === '/v1/witness/add-checkpoint')) {
      res.writeHead(503).end();
      return;
    }
    const target = new URL(req.url ?? '/', this.target);
    const out = httpRequest(
      target,
      { method: req.method, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => {
      res.writeHead(502).end();
    });
    out.end(Buffer.concat(chunks));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The witnesses of wacap's log (relay@global) whose cosignature verifies on a note. */
function cosignedBy(net: TestNetworkOfRelays, note: string): string[] {
  const w = net.world.networks;
  try {
    return verifyCosignedCheckpoint({
      note,
      log: { name: logOrigin('wacap'), publicKey: publicKeyOf(w['wacap']!.rootRef) },
      witnesses: [{ name: 'relay@global', publicKey: w['global']!.relay.key.publicKey }],
      quorum: 1,
    }).cosigners.map((c) => c.name);
  } catch (err) {
    if (isProtocolError(err, 'QUORUM_NOT_MET')) return [];
    throw err;
  }
}

async function served(url: string, network: string): Promise<{ checkpoint: string }[]> {
  const res = await fetch(`${url}/v1/trust/publications/${network}?after=0`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { publications: { checkpoint: string }[] }).publications;
}

describe('relay trust: an own publication is served with its cosignatures', () => {
  let net: TestNetworkOfRelays;
  let wlog: TestLog;
  // relay@wacap reaches relay@global (its witness) through `toGlobal`; relay@global and
  // relay@casc poll wacap's chain through `toWacap`.
  let toGlobal: GatedProxy;
  let toWacap: GatedProxy;

  beforeAll(async () => {
    toGlobal = await GatedProxy.start();
    toWacap = await GatedProxy.start();
    net = await startTestRelays({
      backend: { kind: 'embedded' },
      relayOptions: {
        trustPollMs: 100,
        peerUrls: { global: toGlobal.url, wacap: toWacap.url },
      },
    });
    toGlobal.target = net.relays['global']!.url;
    toWacap.target = net.relays['wacap']!.url;
  }, 60_000);

  afterAll(async () => {
    toGlobal.release();
    await net.stop();
    await toGlobal.close();
    await toWacap.close();
  });

  it('leaves it out while the witness answers, then serves the cosigned note, which the peers keep', async () => {
    const w = net.world.networks;
    const wacap = net.relays['wacap']!.url;
    wlog = new TestLog('wacap', w['wacap']!.root).append('manifest', w['wacap']!.manifest);
    const publication = wlog.publish();
    toGlobal.hold();
    const posted = fetch(`${wacap}/v1/trust/publications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(publication),
    });
    await waitFor('the cosignature request at the witness', () =>
      toGlobal.seen.includes('POST /v1/witness/add-checkpoint') ? true : undefined,
    );
    // Accepted and stored, its cosignature awaited: a poll by a peer gets nothing yet.
    const polls = toWacap.seen.length;
    await waitFor('relay@global to poll wacap meanwhile', () =>
      toWacap.seen.slice(polls).some((s) => s.startsWith('GET /v1/trust/publications/wacap'))
        ? true
        : undefined,
    );
    expect(await served(wacap, 'wacap')).toEqual([]);
    expect(await served(net.relays['global']!.url, 'wacap')).toEqual([]);
    toGlobal.release();
    const answer = (await (await posted).json()) as { size: number; cosigners: string[] };
    expect(answer).toMatchObject({ size: 1, cosigners: ['relay@global'] });

    const own = await served(wacap, 'wacap');
    expect(own).toHaveLength(1);
    expect(cosignedBy(net, own[0]!.checkpoint)).toEqual(['relay@global']);
    // The hub fetched it from relay@wacap, casc from the hub: both with the cosignature line.
    for (const n of ['global', 'casc']) {
      const chain = await waitFor(`wacap's chain at relay@${n}`, async () => {
        const c = await served(net.relays[n]!.url, 'wacap');
        return c.length === 1 ? c : undefined;
      });
      expect(cosignedBy(net, chain[0]!.checkpoint)).toEqual(['relay@global']);
    }
  });
  it('a peer that took a note before its witness cosigned picks the cosignature up later (fetched again)', async () => {
    const wacap = net.relays['wacap']!.url;
    wlog.append('introduction', { note: 'stand-in introduction' });
    const publication = wlog.publish();
    const post = async () => {
      const res = await fetch(`${wacap}/v1/trust/publications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(publication),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { size: number; cosigners: string[] };
    };
    // The witness is down: the publication is served without its cosignature, and the hub and
    // casc (through the hub) take it as it is.
    toGlobal.refuseWitness = true;
    expect(await post()).toMatchObject({ size: 2, cosigners: [] });
    for (const n of ['global', 'casc'])
      await waitFor(`the bare note of size 2 at relay@${n}`, async () => {
        const c = await served(net.relays[n]!.url, 'wacap');
        return c.length === 2 ? true : undefined;
      });
    expect(
      cosignedBy(net, (await served(net.relays['global']!.url, 'wacap'))[1]!.checkpoint),
    ).toEqual([]);
    // The witness is back; the secretariat pushes again: the cosignature is collected, and the
    // peers holding the bare note fetch it again and keep the line.
    toGlobal.refuseWitness = false;
    expect(await post()).toMatchObject({ size: 2, cosigners: ['relay@global'] });
    for (const n of ['wacap', 'global', 'casc'])
      await waitFor(`the cosigned note of size 2 at relay@${n}`, async () => {
        const c = await served(net.relays[n]!.url, 'wacap');
        return c.length === 2 && cosignedBy(net, c[1]!.checkpoint).includes('relay@global')
          ? true
          : undefined;
      });
  });
});
