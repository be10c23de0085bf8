import { join } from 'node:path';
import { RelayClient } from '@rogatory/client';
import { verifyEvidenceChain } from '@rogatory/protocol';
import { terminateHashWorker } from '@rogatory/protocol/node';
import { exampleContentFor, sealTestDossier, type TestWorld } from '@rogatory/protocol/testing';
import { startTestRelays, type TestNetworkOfRelays } from '@rogatory/relay/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorityNode } from '../src/index.js';
import {
  PASSPHRASE,
  makeNode,
  mlaRequest,
  randomFile,
  stripAttachmentRefs,
  tempDir,
} from './support/fixtures.js';
import { runCliCaptured } from './support/run-cli.js';

const SN = 'sn-moj@wacap';
const GH = 'gh-ago@wacap';
const SKEW = 10 * 60_000;

// One relay for every test here, on its own clock: the machine's, moved by relayShift.
let relayShift = 0;
let net: TestNetworkOfRelays;
let world: TestWorld;
let tmp: { path: string; remove: () => Promise<void> };

beforeAll(async () => {
  net = await startTestRelays({
    backend: { kind: 'embedded' },
    networks: ['wacap'],
    relayOptions: { clock: () => Date.now() + relayShift },
  });
  world = net.world;
  tmp = await tempDir();
}, 120_000);

afterAll(async () => {
  await net.stop();
  await terminateHashWorker();
  await tmp.remove();
});

// Found by the clock-skew fault scenario (tests/faults): a node whose clock ran 10 minutes
// behind its relay acked and dropped every envelope from an on-time sender as "created in the
// future" (SCHEMA_INVALID), with no evidence back: accepted by the relay, then lost.
describe('a recipient node whose clock runs behind its relay', () => {
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

// A machine whose clock runs ahead of its relay's by more than the protocol's 5 minutes: the
// relay refuses what it signs as created in the future. Before, the node logged in on its own
// clock (refused: CHALLENGE_INVALID) and, given a session, took the refusal as final: an
// approved dossier rejected for good by a wrong clock.
describe('a sender node whose clock runs ahead of its relay', () => {
  let nodeShift = SKEW;

  it('logs in, keeps the refused submission and sends it once the relay clock reaches it; status names the cause', async () => {
    const sn = await makeNode({
      world: net.world,
      address: SN,
      dir: join(tmp.path, 'sn-ahead'),
      relayUrl: net.relays['wacap']!.url,
      clock: () => Date.now() + nodeShift,
    });
    let reopened: AuthorityNode | undefined;
    try {
      const check = await sn.node.checkRelay();
      expect(check).toMatchObject({ ok: true, code: null, clockAhead: true });
      expect(Math.abs(check.clockOffsetMs! + SKEW)).toBeLessThan(2_000);

      const officer = sn.user('officer', 'officer', ['restricted']);
      const approver = sn.user('approver', 'approver', ['restricted']);
      const file = await randomFile(tmp.path, 'warrant.pdf', 2000);
      const id = await sn.node.compose(officer, {
        content: mlaRequest(net.world, SN, GH),
        attachments: [{ path: file.path }],
      });
      sn.node.submitForApproval(officer, id);
      await sn.node.approve(approver, id);
      const approvedAt = Date.now() + nodeShift;

      const first = await sn.node.flushOutbox();
      expect(first.rejected).toEqual([]);
      expect(first.sent).toEqual([]);
      expect(first.deferred).toBe(1);
      expect(first.errors).toEqual([{ dossierId: id, code: 'CLOCK_AHEAD' }]);
      // Waiting is not a verification failure: no evidence yet, no chain error.
      const view = sn.node.evidences(officer, id);
      expect(view.evidences).toEqual([]);
      expect(view.error).toBeUndefined();
      const status = sn.node.status();
      expect(status.waitingForRelayClock).toBe(1);
      expect(status.outbox.pending).toBe(1);
      // Offered again when, by the relay's clock, it is no longer from the future: about
      // 5 minutes on this machine's clock after its creation (10 ahead, 5 tolerated).
      const next = status.outbox.nextAttemptAt!;
      expect(next).toBeGreaterThan(approvedAt + 5 * 60_000 - 5_000);
      expect(next).toBeLessThan(approvedAt + 5 * 60_000 + 15_000);

      // The CLI, on this machine's (real) clock: the relay set 10 minutes behind it.
      await sn.node.close();
      relayShift = -SKEW;
      const cli = (args: string[]) => runCliCaptured(['--dir', sn.dir, ...args]);
      const offline = await cli(['status']);
      expect(offline.code).toBe(0);
      expect(offline.out).toContain('CLOCK AHEAD      1 submission(s) refused by the relay');
      const checked = await cli(['status', '--check-relay']);
      expect(checked.out).toMatch(
        /relay check +session opened; relay clock -(9\.9|10\.0|10\.1) min \(behind this machine\): this machine's clock is AHEAD/,
      );
      const json = JSON.parse((await cli(['--json', 'status', '--check-relay'])).out) as {
        relayCheck: { ok: boolean; clockAhead: boolean };
        waitingForRelayClock: number;
      };
      expect(json).toMatchObject({
        waitingForRelayClock: 1,
        relayCheck: { ok: true, clockAhead: true },
      });
      relayShift = 0;
      const onTime = await cli(['status', '--check-relay']);
      expect(onTime.out).toMatch(/relay check +session opened; relay clock [-+]\d\.\d s/);
      expect(onTime.out).not.toContain('AHEAD beyond');

      // Six minutes later on both clocks: the relay's clock has passed the envelope's
      // creation minus the tolerance; the same signed envelope is accepted.
      relayShift += 6 * 60_000;
      nodeShift += 6 * 60_000;
      reopened = await AuthorityNode.open({
        dir: sn.dir,
        passphrase: PASSPHRASE,
        relay: { retry: { retries: 1, baseMs: 20, maxMs: 100 }, timeoutMs: 10_000 },
        clock: () => Date.now() + nodeShift,
      });
      const second = await reopened.flushOutbox();
      expect(second.sent).toEqual([id]);
      expect(reopened.status().waitingForRelayClock).toBe(0);
    } finally {
      await (reopened ?? sn.node).close();
    }
  });
});
