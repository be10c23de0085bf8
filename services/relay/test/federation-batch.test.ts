/**
 * POST /v1/relay/batch between real relays: each item is handled and
 * answered as its single route would handle it; a bad item refuses only
 * itself and stores nothing; good items in the same batch are accepted,
 * stored and delivered.
 */
import { RelayPeerClient } from '@rogatory/client';
import { encodeEnvelope, ready, verifyEvidence, withHop, type Envelope } from '@rogatory/protocol';
import { sealTestDossier } from '@rogatory/protocol/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../src/options.js';
import { startTestRelays, type TestNetworkOfRelays } from '../src/testing/harness.js';
import {
  nodeClient,
  smallAttachment,
  waitFor,
  type TestAttachment,
} from '../src/testing/relay-helpers.js';

let net: TestNetworkOfRelays;
let attachment: TestAttachment;

beforeAll(async () => {
  await ready();
  attachment = await smallAttachment();
  net = await startTestRelays({
    backend: { kind: 'embedded' },
    networks: ['wacap', 'global', 'casc'],
  });
});

afterAll(async () => {
  await net.stop();
});

/** A dossier from wacap to casc as relay@global holds it: both hops, and its sealed bytes to send inline. */
function handedOverByHub(to: string): {
  envelope: Envelope;
  inline: { id: string; bytes: Uint8Array }[];
} {
  const sealed = sealTestDossier(net.world, {
    from: 'sn-moj@wacap',
    to: [to],
    attachments: [attachment.manifest],
    createdAt: Date.now(),
  });
  const now = Date.now();
  const envelope = withHop(withHop(sealed.envelope, { relay: 'relay@wacap', receivedAt: now }), {
    relay: 'relay@global',
    receivedAt: now,
  });
  return {
    envelope,
    inline: [
      { id: sealed.envelope.body.dossier.id, bytes: sealed.sealed },
      ...attachment.chunks.map((c) => ({ id: c.id, bytes: c.bytes })),
    ],
  };
}

function hubClient(): RelayPeerClient {
  const global = net.world.networks['global']!;
  return new RelayPeerClient({
    baseUrl: net.relays['casc']!.url,
    from: global.relay.id,
    to: 'relay@casc',
    key: global.relay.key,
    trust: net.world.trustFor('global'),
  });
}

describe('relay batch route', () => {
  it('accepts the good hand-overs of a batch and refuses the bad one alone, storing nothing of it', async () => {
    const peer = hubClient();
    const good = [handedOverByHub('kz-gpo@casc'), handedOverByHub('ge-pog@casc')];
    const bad = handedOverByHub('kz-gpo@casc');
    // Signed by sn-moj over other bytes: the envelope no longer verifies.
    const tampered: Envelope = {
      ...bad.envelope,
      body: { ...bad.envelope.body, expiresAt: bad.envelope.body.expiresAt - 1000 },
    };
    const prepared = [
      peer.prepareHandOver(good[0]!.envelope, { inline: good[0]!.inline }),
      peer.prepareHandOver(tampered, { inline: bad.inline }),
      peer.prepareHandOver(good[1]!.envelope, { inline: good[1]!.inline }),
    ];
    const result = await peer.forwardBatch(prepared, []);

    expect(result.envelopes.map((o) => o.ok)).toEqual([true, false, true]);
    const refusal = result.envelopes[1]!;
    if (refusal.ok) throw new Error('unreachable');
    expect(refusal.error.code).toBe('SIGNATURE_INVALID');
    expect(refusal.error.status).toBe(403);
    // The refusal carries the casc relay's signed RelayRejection, bound to the envelope sent.
    expect(refusal.error.evidences?.map((e) => [e.body.kind, e.body.reason?.code])).toEqual([
      ['relay-rejection', 'SIGNATURE_INVALID'],
    ]);

    const trust = net.world.trustFor('wacap');
    for (const [i, outcome] of [result.envelopes[0]!, result.envelopes[2]!].entries()) {
      if (!outcome.ok) throw new Error('unreachable');
      const [acceptance] = outcome.value;
      expect(verifyEvidence(good[i]!.envelope, acceptance, trust).body).toMatchObject({
        kind: 'relay-acceptance',
        issuer: 'relay@casc',
      });
    }

    const casc = net.relays['casc']!;
    expect(await casc.backend.getEnvelope(good[0]!.envelope.body.id)).toBeDefined();
    expect(await casc.backend.getEnvelope(good[1]!.envelope.body.id)).toBeDefined();
    expect(await casc.backend.getEnvelope(bad.envelope.body.id)).toBeUndefined();
    expect(await casc.blobs.missing([bad.inline[0]!.id])).toEqual([bad.inline[0]!.id]);

    // The good ones reach their recipients.
    const kz = nodeClient(net.world, casc.url, 'kz-gpo@casc');
    await kz.login();
    await waitFor('the envelope in the mailbox', async () => {
      const items = await kz.readMailbox(0, 100);
      return items.some(
        (i) => i.kind === 'envelope' && i.envelope.body.id === good[0]!.envelope.body.id,
      )
        ? true
        : undefined;
    });
  });

  it("counts what it queues for a peer's envelope as for a node's: one mailbox delivery per local recipient", async () => {
    // One admission pipeline for both sources: the peer path used to skip the envelopes_out "queued" counts.
    const casc = net.relays['casc']!;
    const queued = async (): Promise<number> =>
      (await casc.running.app.relay.metrics.envelopesOut.get()).values.find(
        (v) => v.labels.kind === 'mailbox' && v.labels.outcome === 'queued',
      )?.value ?? 0;
    const before = await queued();
    const item = handedOverByHub('kz-gpo@casc');
    await hubClient().forwardEnvelope(item.envelope, { inline: item.inline });
    expect((await queued()) - before).toBe(1);
  });

  it('answers a retried batch as before: the same acceptances, nothing stored twice', async () => {
    const peer = hubClient();
    const item = handedOverByHub('ge-pog@casc');
    const first = await peer.forwardBatch(
      [peer.prepareHandOver(item.envelope, { inline: item.inline })],
      [],
    );
    const again = await peer.forwardBatch(
      [peer.prepareHandOver(item.envelope, { inline: item.inline })],
      [],
    );
    if (!first.envelopes[0]!.ok || !again.envelopes[0]!.ok) throw new Error('expected acceptances');
    expect(again.envelopes[0]!.value).toEqual(first.envelopes[0]!.value);
    expect((await net.relays['casc']!.backend.stats()).envelopes).toBeGreaterThan(0);
  });

  it('refuses evidence items one by one', async () => {
    const peer = hubClient();
    const item = handedOverByHub('kz-gpo@casc');
    const accepted = await peer.forwardBatch(
      [peer.prepareHandOver(item.envelope, { inline: item.inline })],
      [],
    );
    if (!accepted.envelopes[0]!.ok) throw new Error('expected an acceptance');
    const [acceptance] = accepted.envelopes[0]!.value;
    // An evidence about another envelope than the one it travels with does not certify itself.
    const other = handedOverByHub('ge-pog@casc');
    const wacap = net.world.networks['wacap']!;
    const toWacap = new RelayPeerClient({
      baseUrl: net.relays['wacap']!.url,
      from: 'relay@global',
      to: wacap.relay.id,
      key: net.world.networks['global']!.relay.key,
    });
    const result = await toWacap.forwardBatch(
      [],
      [
        toWacap.prepareEvidence({ evidence: acceptance!, envelope: item.envelope }),
        toWacap.prepareEvidence({ evidence: acceptance!, envelope: other.envelope }),
      ],
    );
    expect(result.evidences[0]!.ok).toBe(true);
    const refused = result.evidences[1]!;
    if (refused.ok) throw new Error('the mismatched evidence was taken');
    expect(refused.error.status).toBeGreaterThanOrEqual(400);
    expect(refused.error.status).toBeLessThan(500);
    // The one that certified itself is in the sender's mailbox.
    const sn = nodeClient(net.world, net.relays['wacap']!.url, 'sn-moj@wacap');
    await sn.login();
    await waitFor('the relay acceptance at the sender', async () => {
      const items = await sn.readMailbox(0, 100);
      return items.some(
        (i) => i.kind === 'evidence' && i.evidence.body.envelopeId === item.envelope.body.id,
      )
        ? true
        : undefined;
    });
  });

  it("holds a peer's envelope to this relay's envelope size limit, on both routes", async () => {
    const item = handedOverByHub('kz-gpo@casc');
    // Just under what the hand-over's envelope takes once this relay appends its hop.
    const maxEnvelopeBytes = encodeEnvelope(item.envelope).length + 20;
    const small = await startTestRelays({
      backend: { kind: 'embedded' },
      networks: ['casc'],
      relayOptions: { limits: { ...DEFAULT_LIMITS, maxEnvelopeBytes } },
    });
    try {
      const global = net.world.networks['global']!;
      const peer = new RelayPeerClient({
        baseUrl: small.relays['casc']!.url,
        from: global.relay.id,
        to: 'relay@casc',
        key: global.relay.key,
      });
      const result = await peer.forwardBatch(
        [peer.prepareHandOver(item.envelope, { inline: item.inline })],
        [],
      );
      const outcome = result.envelopes[0]!;
      if (outcome.ok) throw new Error('an envelope over the limit was accepted');
      expect(outcome.error.code).toBe('LIMIT_EXCEEDED');
      await expect(
        peer.forwardEnvelope(item.envelope, { inline: item.inline }),
      ).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
      expect(
        await small.relays['casc']!.backend.getEnvelope(item.envelope.body.id),
      ).toBeUndefined();
    } finally {
      await small.stop();
    }
  });
});
