import type { RelayClient } from '@rogatory/client';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';
import {
  actorClient,
  deadlineInversions,
  Recipients,
  sealSmall,
  SenderEvidence,
  submitSealed,
} from '../support/actors.js';
import { Tally } from '../support/tally.js';
import {
  faultWorld,
  FaultRelay,
  NET_A,
  NET_B,
  settle,
  sleep,
  stopAll,
  until,
} from '../support/relays.js';

const SENDERS = ['sn-moj@wacap', 'ng-agf@wacap', 'gh-ago@wacap'];
const RECIPIENTS = ['kz-gpo@casc', 'ge-pog@casc'];
/** The forwarding backoff of both relays: B stays down several times longer than its cap. */
const BACKOFF = { backoffBaseMs: 200, backoffMaxMs: 2_000, jitter: 0.5 };
/** Forwards in flight at once: fewer than the backlog, so the drain has an order to measure. */
const CONCURRENCY = 4;
/** Arrivals this close were handed over in the same round: their order is not counted. */
const SIMULTANEOUS_MS = 20;
const MIN = 60_000;

/**
 * Network B's relay is stopped while network A's senders keep submitting to
 * B's authorities; then it comes back. Second phase: B stays down past the
 * deadline of some envelopes.
 */
export const peerDown: Scenario = {
  name: 'peer-down',
  title: "a peer network's relay down past the backoff, then past some deadlines",
  budgetSeconds: { quick: 150, full: 600 },
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const backlog = ctx.quick ? 24 : 200;
    const downMs = ctx.quick ? 6_000 : 20_000;
    const shortCount = ctx.quick ? 4 : 20;
    const longCount = ctx.quick ? 6 : 40;
    const world = await faultWorld();
    const w = world.world;
    const patch = { forwarding: { ...BACKOFF, concurrency: CONCURRENCY } };
    const relayA = await FaultRelay.create({ world, network: NET_A, dir: ctx.dir, patch });
    const relayB = await FaultRelay.create({ world, network: NET_B, dir: ctx.dir, patch });
    const ledger = new Tally();
    let recipients: Recipients | undefined;
    let evidence: SenderEvidence | undefined;
    try {
      await Promise.all([relayA.start(), relayB.start()]);
      ctx.log('peer-down: relays of wacap and casc up');
      const senders = new Map<string, RelayClient>(
        SENDERS.map((a) => [a, actorClient(w, relayA.url, a)]),
      );
      const readers = new Map<string, RelayClient>(
        RECIPIENTS.map((a) => [a, actorClient(w, relayB.url, a, { retries: 0, timeoutMs: 5_000 })]),
      );
      recipients = new Recipients(w, ledger, readers);
      evidence = new SenderEvidence(w, ledger, senders);
      const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!;
      const submit = async (i: number, expiresAt: number, expires = false) => {
        const from = pick(SENDERS, i);
        // Every fifth envelope goes to both of B's authorities.
        const to = i % 5 === 4 ? RECIPIENTS : [pick(RECIPIENTS, i)];
        const sealed = await sealSmall(w, { from, to, expiresAt });
        const outcome = await submitSealed(senders.get(from)!, ledger, sealed, {
          signal: ctx.signal,
        });
        if (!outcome.accepted) ctx.log(`peer-down: submission refused ${outcome.code}`);
        // Across networks casc's relay signs a RelayAcceptance that travels back to the sender
        // (none for an envelope that expires before casc's relay sees it).
        if (!expires)
          for (const r of to) ledger.ledger.owe(sealed.envelope.body.id, ['relay-acceptance'], r);
        return sealed.envelope.body.id;
      };

      // Sanity: the path works before the fault.
      for (let i = 0; i < 2; i++) await submit(i, Date.now() + 30 * MIN);
      await until('the warm-up deliveries', () => (ledger.settled() ? true : undefined), {
        ms: 30_000,
        signal: ctx.signal,
      }).catch((err: unknown) => {
        ctx.log(
          `peer-down: ${JSON.stringify(ledger.result())} recipient errors ${String(recipients?.errors)} ${recipients?.lastError ?? ''} sender errors ${String(evidence?.errors)} ${evidence?.lastError ?? ''}\n${relayA.log}\n${relayB.log}`,
        );
        throw err;
      });

      // Phase 1: B down longer than the backoff cap; the backlog piles up at A.
      await relayB.stop();
      const downAt = Date.now();
      ctx.log(`peer-down: casc's relay stopped; submitting ${String(backlog)} envelopes`);
      const phase1: string[] = [];
      for (let i = 0; i < backlog; i++) {
        // Deadlines spread over 2..40 minutes, in an order unrelated to submission order.
        const spread = ((i * 7919) % backlog) / backlog;
        phase1.push(await submit(i, Date.now() + 2 * MIN + Math.round(spread * 38 * MIN)));
      }
      const submitMs = Date.now() - downAt;
      await sleep(Math.max(0, downMs - submitMs), ctx.signal);
      const upAt = Date.now();
      await relayB.start();
      ctx.log('peer-down: casc relay back; draining');
      const drained = await settle(() => ledger.allDelivered() && ledger.settled(), {
        ms: ctx.quick ? 60_000 : 240_000,
        signal: ctx.signal,
      });
      const drainMs = Date.now() - upAt;
      const inPhase1 = new Set(phase1);
      const order = recipients.arrivals
        .filter((a) => inPhase1.has(a.envelopeId))
        .sort((a, b) => a.receivedAt - b.receivedAt || a.index - b.index);
      const { inversions, pairs } = deadlineInversions(order, SIMULTANEOUS_MS);

      // Phase 2: B down past the deadline of the short-lived envelopes.
      await relayB.stop();
      ctx.log('peer-down: casc relay stopped again; short and long deadlines');
      const shortIds: string[] = [];
      const longIds: string[] = [];
      const shortLifeMs = 4_000;
      for (let i = 0; i < shortCount + longCount; i++) {
        const short = i % 2 === 0 && shortIds.length < shortCount;
        const id = await submit(i, Date.now() + (short ? shortLifeMs : 30 * MIN), short);
        (short ? shortIds : longIds).push(id);
        // B stays down past this deadline on purpose: a NonDelivery is owed, never a delivery.
        if (short)
          for (const r of ledger.envelope(id)?.body.recipients ?? [])
            ledger.ledger.expectNonDelivery(id, r);
      }
      const shortSet = new Set(shortIds);
      const expired = await settle(() => allNonDelivered(ledger, shortIds), {
        ms: 60_000,
        signal: ctx.signal,
      });
      await relayB.start();
      ctx.log('peer-down: casc relay back; the long-lived envelopes drain');
      const drainedAgain = await settle(
        () => ledger.allDelivered((id) => shortSet.has(id)) && ledger.settled(),
        { ms: ctx.quick ? 60_000 : 240_000, signal: ctx.signal },
      );
      // Room for a late (wrong) delivery of an expired envelope to show up.
      await sleep(3_000, ctx.signal);
      const shortDelivered = shortIds.filter((id) =>
        RECIPIENTS.some((r) => ledger.deliveryCount(id, r) > 0),
      ).length;
      const reasons = [...new Set(evidence.nonDeliveries.map((n) => n.reason))].sort();
      const expectedNonDeliveries = shortIds.reduce(
        (n, id) => n + (ledger.envelope(id)?.body.recipients.length ?? 0),
        0,
      );
      const result = ledger.result({
        measured: {
          backlog,
          downSeconds: Math.round((upAt - downAt) / 100) / 10,
          backoffMaxMs: BACKOFF.backoffMaxMs,
          drainSeconds: Math.round(drainMs / 100) / 10,
          deadlineOrderPairs: pairs,
          deadlineOrderInversions: inversions,
          shortLived: shortIds.length,
          nonDeliveries: evidence.nonDeliveries.length,
          nonDeliveriesExpected: expectedNonDeliveries,
          nonDeliveryReasons: reasons.join(','),
          invalidEvidences: evidence.invalid,
          deliveryEvidenceRefused: recipients.evidenceRefused,
          expiredDeliveredAfterwards: shortDelivered,
        },
        notes: [
          ...(drained && expired && drainedAgain
            ? []
            : [
                `A wait timed out (backlog drained: ${String(drained)}, NonDelivery for every expired envelope: ${String(expired)}, second drain: ${String(drainedAgain)}); the counts show what was missing.`,
              ]),
          `casc's relay was down ${String(Math.round((upAt - downAt) / 1000))} s (backoff cap ${String(BACKOFF.backoffMaxMs)} ms) while ${String(backlog)} envelopes queued at wacap's relay; after it came back the backlog drained in ${String(Math.round(drainMs / 100) / 10)} s.`,
          `Arrival order vs deadline (forwarding concurrency ${String(CONCURRENCY)}; arrivals within ${String(SIMULTANEOUS_MS)} ms of each other not compared): ${String(inversions)} of ${String(pairs)} pairs arrived in the opposite order of their deadlines (${pairs === 0 ? 0 : Math.round((inversions / pairs) * 100)} %). ` +
            'When a forward to the peer succeeds again, the relay makes its whole backlog towards that network due at once and claims it closest deadline first; forwards already under way when the peer came back, and rounds of concurrent hand-overs, account for the remaining inversions.',
          `Down past the deadline: ${String(shortIds.length)} envelopes with a ${String(shortLifeMs / 1000)} s lifetime got ${String(evidence.nonDeliveries.length)} signed NonDelivery evidences (reasons: ${reasons.join(', ') || 'none'}), each verified against the relay's key; ${String(shortDelivered)} of them were delivered after the relay came back.`,
        ],
      });
      if (evidence.invalid > 0)
        throw new Error(`${String(evidence.invalid)} evidences failed signature verification`);
      return result;
    } finally {
      await recipients?.stop();
      await evidence?.stop();
      await stopAll([relayA, relayB]);
    }
  },
};

function allNonDelivered(ledger: Tally, ids: readonly string[]): boolean {
  for (const id of ids) {
    const env = ledger.envelope(id);
    if (!env || !ledger.isAccepted(id)) continue;
    for (const r of env.body.recipients)
      if (!ledger.hasEvidence(id, 'non-delivery', r)) return false;
  }
  return true;
}
