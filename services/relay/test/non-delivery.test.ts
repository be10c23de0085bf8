import { RelayClient } from '@rogatory/client';
import { utf8, verifyEvidence } from '@rogatory/protocol';
import { encryptTestAttachment, sealTestDossier } from '@rogatory/protocol/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRelays, type TestNetworkOfRelays } from '../src/testing/harness.js';

let net: TestNetworkOfRelays;

beforeAll(async () => {
  // Only wacap runs: its peers (the hub, casc) are unreachable.
  net = await startTestRelays({ backend: { kind: 'embedded' }, networks: ['wacap'] });
}, 60_000);

afterAll(async () => {
  await net.stop();
});

async function send(to: string, lifetimeMs: number) {
  const world = net.world;
  const sender = new RelayClient({
    baseUrl: net.relays['wacap']!.url,
    address: 'sn-moj@wacap',
    identity: world.authority('sn-moj@wacap').identity,
  });
  const attachments = [
    await encryptTestAttachment(utf8('a'), { name: 'a.pdf' }),
    await encryptTestAttachment(utf8('b'), { name: 'b.pdf' }),
  ];
  const now = Date.now();
  const sealed = sealTestDossier(world, {
    from: 'sn-moj@wacap',
    to: [to],
    attachments: attachments.map((a) => a.manifest),
    createdAt: now,
    expiresAt: now + lifetimeMs,
  });
  await sender.uploadChunks([
    { id: sealed.envelope.body.dossier.id, bytes: sealed.sealed },
    ...attachments.flatMap((a) => a.chunks),
  ]);
  await sender.submit(sealed.envelope);
  return { sender, envelope: sealed.envelope };
}

async function nonDeliveryFor(sender: RelayClient, envelopeId: string, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const items = await sender.readMailbox(0, 1000);
    const hit = items.find(
      (i) =>
        i.kind === 'evidence' &&
        i.evidence.body.envelopeId === envelopeId &&
        i.evidence.body.kind === 'non-delivery',
    );
    if (hit?.kind === 'evidence') return hit.evidence;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no non-delivery evidence');
}

describe('non-delivery', () => {
  it('is issued when a local recipient never acknowledges before expiry, and the item is dropped', async () => {
    const { sender, envelope } = await send('ng-agf@wacap', 1500);
    const evidence = await nonDeliveryFor(sender, envelope.body.id);
    expect(evidence.body.reason?.code).toBe('RETENTION_EXPIRED');
    expect(evidence.body.recipient).toBe('ng-agf@wacap');
    expect(verifyEvidence(envelope, evidence, net.world.trustFor('wacap')).body.issuer).toBe(
      'relay@wacap',
    );
    const recipient = new RelayClient({
      baseUrl: net.relays['wacap']!.url,
      address: 'ng-agf@wacap',
      identity: net.world.authority('ng-agf@wacap').identity,
    });
    expect(
      (await recipient.readMailbox(0, 100)).some(
        (i) => i.kind === 'envelope' && i.envelope.body.id === envelope.body.id,
      ),
    ).toBe(false);
  });

  it('is issued when the next relay stays unreachable until the deadline', async () => {
    const { sender, envelope } = await send('kz-gpo@casc', 2500);
    const evidence = await nonDeliveryFor(sender, envelope.body.id);
    expect(evidence.body.reason?.code).toBe('DEADLINE_EXPIRED');
    expect(evidence.body.recipient).toBe('kz-gpo@casc');
  });
});
