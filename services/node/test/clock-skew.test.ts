import { join } from 'node:path';
import { RelayClient } from '@rogatory/client';
import { verifyEvidenceChain } from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import { exampleContentFor, sealTestDossier, type TestWorld } from '@rogatory/protocol/testing';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNode, stripAttachmentRefs, tempDir } from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const GH = 'gh-ago@wacap';
const SKEW = 10 * 60_000;

// Found by the clock-skew fault scenario (tests/faults): a node whose clock ran 10 minutes
// behind its relay acked and dropped every envelope from an on-time sender as "created in the
// future" (SCHEMA_INVALID), with no evidence back: accepted by the relay, then lost.
describe('a recipient node whose clock runs behind its relay', () => {
  let net: TestNetworkOfRelays;
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };

  beforeAll(async () => {
    net = await startTestRelays({ backend: { kind: 'embedded' }, networks: ['wacap'] });
    world = net.world;
    tmp = await tempDir();
  }, 120_000);

  afterAll(async () => {
    await net.stop();
    await terminateHashWorker();
    await tmp.remove();
  });

  async function submitFromOnTimeSender(): Promise<string> {
    return (await submitAndKeep()).envelope.body.id;
  }

  async function submitAndKeep() {
    const sender = new RelayClient({
      baseUrl: net.relays['wacap']!.url,
      address: SN,
      identity: world.authority(SN).identity,
      relayId: 'relay@wacap',
    });
    const sealed = sealTestDossier(world, {
      from: SN,
      to: [GH],
      content: stripAttachmentRefs(exampleContentFor('mla', SN, GH, world)),
      createdAt: Date.now(),
    });
    await sender.uploadChunks([{ id: sealed.envelope.body.dossier.id, bytes: sealed.sealed }]);
    const acceptance = await sender.submit(sealed.envelope);
    return { envelope: sealed.envelope, acceptance, sender };
  }

  it('stores an envelope created "in its future" by an on-time sender, as the protocol says', async () => {
    const envelopeId = await submitFromOnTimeSender();
    const gh = await makeNode({
      world,
      address: GH,
      dir: join(tmp.path, 'gh-behind'),
      relayUrl: net.relays['wacap']!.url,
      clock: () => Date.now() - SKEW,
    });
    try {
      const report = await gh.node.syncOnce();
      const outcome = report.items.find(
        (i) => 'envelopeId' in i.outcome && i.outcome.envelopeId === envelopeId,
      )?.outcome;
      expect(outcome?.kind).toBe('received');
      const officer = gh.user('reader', 'officer', ['restricted']);
      expect(gh.node.inbox(officer).length).toBe(1);
    } finally {
      await gh.node.close();
    }
  });

  it("dates its Delivery no earlier than the envelope's creation, so the sender's evidence chain verifies", async () => {
    const { envelope, acceptance, sender } = await submitAndKeep();
    const gh = await makeNode({
      world,
      address: GH,
      dir: join(tmp.path, 'gh-behind-evidence'),
      relayUrl: net.relays['wacap']!.url,
      clock: () => Date.now() - SKEW,
    });
    try {
      await gh.node.syncOnce();
      // The node's outbox posts the Delivery on the next flush.
      await gh.node.syncOnce();
    } finally {
      await gh.node.close();
    }
    await sender.login();
    const evidences = (await sender.readMailbox(0, 1000)).flatMap((item) =>
      item.kind === 'evidence' && item.evidence.body.envelopeId === envelope.body.id
        ? [item.evidence]
        : [],
    );
    const delivery = evidences.find((e) => e.body.kind === 'delivery');
    expect(delivery?.body.issuer).toBe(GH);
    expect(delivery!.body.issuedAt).toBeGreaterThanOrEqual(envelope.body.createdAt);
    const chain = verifyEvidenceChain(
      envelope,
      [acceptance, ...evidences],
      world.trustFor('wacap'),
    );
    expect(chain.ordered.map((e) => e.body.kind)).toEqual(['submission-acceptance', 'delivery']);
  });
});
