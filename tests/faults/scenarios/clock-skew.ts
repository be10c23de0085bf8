import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';
import { codeOf } from '../support/actors.js';
import { draftAndApprove, openFaultNode, type FaultNode } from '../support/nodes.js';
import { faultWorld, FaultRelay, NET_A, sleep, stopAll } from '../support/relays.js';
import { Tally } from '../support/tally.js';

const SKEW_MS = 10 * 60_000;
/** Three nodes of one network against one relay: ahead, behind, and on time. */
const NODES = [
  { address: 'sn-moj@wacap', skewMs: SKEW_MS, label: '+10 min' },
  { address: 'gh-ago@wacap', skewMs: -SKEW_MS, label: '-10 min' },
  { address: 'ng-agf@wacap', skewMs: 0, label: 'on time' },
] as const;

interface Sent {
  readonly from: FaultNode;
  readonly to: string;
  readonly dossierId: string;
}

/**
 * Clock skew of ±10 minutes between nodes and their relay (the node's clock
 * option, as a mis-set machine clock would be): every node sends to every
 * other; sessions, submissions, deliveries and evidence chains are observed
 * and reported by skew. The protocol's tolerance is 5 minutes
 * (docs/protocol.md §16.5): an envelope created 10 minutes in the relay's
 * future is refused; nothing accepted may be lost.
 */
export const clockSkew: Scenario = {
  name: 'clock-skew',
  title: 'nodes whose clocks are 10 minutes ahead of and behind their relay',
  budgetSeconds: { quick: 150, full: 300 },
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const perPair = ctx.quick ? 1 : 3;
    const world = await faultWorld();
    const w = world.world;
    const relay = await FaultRelay.create({ world, network: NET_A, dir: ctx.dir });
    const tally = new Tally();
    const nodes: FaultNode[] = [];
    try {
      await relay.start();
      for (const spec of NODES) {
        const dir = join(ctx.dir, `node-${spec.address.split('@')[0]!}`);
        await mkdir(join(dir, '..'), { recursive: true });
        nodes.push(
          await openFaultNode({
            world: w,
            address: spec.address,
            dir,
            relayUrl: relay.url,
            clock: () => Date.now() + spec.skewMs,
          }),
        );
      }
      const attachments = join(ctx.dir, 'attachments');
      await mkdir(attachments, { recursive: true });
      const sent: Sent[] = [];
      for (const from of nodes)
        for (const to of nodes) {
          if (to === from) continue;
          for (let i = 0; i < perPair; i++)
            sent.push({
              from,
              to: to.address,
              dossierId: await draftAndApprove(w, from, to.address, attachments),
            });
        }
      ctx.log(`clock-skew: ${String(sent.length)} dossiers approved; syncing`);

      const refusals = new Map<string, string>();
      const syncErrors = new Map<string, Set<string>>();
      const quarantined = new Map<string, Set<string>>();
      const recorded = new Set<string>();
      const noteError = (map: Map<string, Set<string>>, who: string, code: string): void => {
        const set = map.get(who) ?? new Set<string>();
        set.add(code);
        map.set(who, set);
      };
      const seenEvidence = new Set<string>();
      const recordSenders = (): void => {
        // What each sender's node knows of its dossiers: the envelope once sealed, acceptance and evidences.
        for (const s of sent) {
          const view = s.from.node.evidences(s.from.officer, s.dossierId);
          const env = view.envelope;
          if (!env) continue;
          if (!recorded.has(s.dossierId)) {
            recorded.add(s.dossierId);
            tally.sent(env);
          }
          for (const ev of view.evidences) {
            const key = `${env.body.id} ${ev.body.kind} ${ev.body.recipient ?? ''}`;
            if (seenEvidence.has(key)) continue;
            seenEvidence.add(key);
            if (ev.body.kind === 'submission-acceptance') tally.accepted(env.body.id);
            else if (ev.body.kind === 'submission-rejection')
              refusals.set(
                s.dossierId,
                `${ev.body.reason?.code ?? '?'}/${ev.body.reason?.detail ?? ''} (signed rejection)`,
              );
            else tally.evidence(s.from.address, ev);
          }
        }
      };
      const round = async (): Promise<void> => {
        const received: { n: FaultNode; seq: number; envelopeId: string }[] = [];
        for (const n of nodes) {
          try {
            const report = await n.node.syncOnce();
            for (const e of report.outbox.errors) refusals.set(e.dossierId, e.code);
            for (const item of report.items) {
              const o = item.outcome;
              // A quarantined envelope reached the node too (kept, acked, a signed rejection goes back).
              if (o.kind === 'received' || o.kind === 'quarantined')
                received.push({ n, seq: item.seq, envelopeId: o.envelopeId });
              if (o.kind === 'quarantined' || o.kind === 'refused')
                noteError(quarantined, n.address, o.code);
            }
          } catch (err) {
            noteError(syncErrors, n.address, codeOf(err));
          }
        }
        recordSenders();
        for (const r of received) {
          const env = tally.envelope(r.envelopeId);
          if (env) tally.delivered(r.n.address, env, r.seq);
        }
      };
      const rounds = ctx.quick ? 12 : 20;
      for (let i = 0; i < rounds; i++) {
        await round();
        if (recorded.size === sent.length && tally.allDelivered() && tally.settled()) break;
        await sleep(500, ctx.signal);
      }
      // Never sealed or recorded (refused before sealing): still a dossier a sender tried to send.
      const unsealed = sent.filter((s) => !recorded.has(s.dossierId)).length;

      const bySkew = NODES.map((spec) => {
        const mine = sent.filter((s) => s.from.address === spec.address);
        const node = nodes.find((n) => n.address === spec.address)!;
        const accepted = mine.filter((s) => {
          const env = s.from.node.evidences(s.from.officer, s.dossierId).envelope;
          return env !== undefined && tally.isAccepted(env.body.id);
        }).length;
        const refusedCodes = [
          ...new Set(mine.map((s) => refusals.get(s.dossierId)).filter((c) => c !== undefined)),
        ];
        const chainErrors = [
          ...new Set(
            mine
              .map((s) => node.node.evidences(node.officer, s.dossierId).error)
              .filter((c) => c !== undefined),
          ),
        ];
        return {
          spec,
          sent: mine.length,
          accepted,
          refusedCodes,
          chainErrors,
          syncErrors: [...(syncErrors.get(spec.address) ?? [])],
          quarantined: [...(quarantined.get(spec.address) ?? [])],
        };
      });
      const measured: Record<string, number | string | boolean> = {
        skewMinutes: SKEW_MS / 60_000,
        toleranceMinutes: 5,
        unsealed,
      };
      const notes: string[] = [];
      for (const b of bySkew) {
        const key = b.spec.skewMs > 0 ? 'ahead' : b.spec.skewMs < 0 ? 'behind' : 'onTime';
        measured[`${key}Accepted`] = b.accepted;
        measured[`${key}Sent`] = b.sent;
        measured[`${key}Refusals`] = b.refusedCodes.join(',');
        measured[`${key}SyncErrors`] = b.syncErrors.join(',');
        measured[`${key}ChainErrors`] = b.chainErrors.join(',');
        measured[`${key}Quarantined`] = b.quarantined.join(',');
        notes.push(
          `Node ${b.spec.label} (${b.spec.address}): ${String(b.accepted)} of ${String(b.sent)} submissions accepted` +
            (b.refusedCodes.length > 0
              ? `, refused or kept waiting with ${b.refusedCodes.join(', ')}`
              : '') +
            (b.syncErrors.length > 0
              ? `; sync failed with ${b.syncErrors.join(', ')}`
              : '; sessions and sync worked') +
            (b.chainErrors.length > 0
              ? `; its evidence chains do not verify (${b.chainErrors.join(', ')})`
              : '; every evidence chain it holds verifies') +
            (b.quarantined.length > 0
              ? `; it quarantined incoming items (${b.quarantined.join(', ')})`
              : '') +
            '.',
        );
      }
      notes.push(
        "The node's clock is the whole machine's here: dossiers, evidences and its relay sessions are dated on it. Sessions work either way: a node dates its login on the relay's clock read from the relay's Date header (before, a node more than 5 minutes off was refused CHALLENGE_INVALID and could neither send nor receive). As docs/protocol.md says (§8.6 step 4, §12.6, tolerance 5 minutes), the relay refuses an envelope created more than 5 minutes in its future: the node ahead sees that the refusal is its clock's doing (the relay's Date against the envelope's creation time), keeps each submission (CLOCK_AHEAD, shown by rogatory status and approve) and offers the same signed envelope again once the relay's clock reaches it (about 5 minutes later here), instead of taking the refusal as final. A node 10 minutes behind sends and receives normally, and dates the evidences it signs no earlier than the envelope's signed creation time, so its correspondents' evidence chains pass the causal-order check (§12.6; before that fix they failed with EVIDENCE_CHAIN_INVALID). Operators: run NTP on nodes and relays; rogatory status --check-relay shows the offset.",
      );
      return tally.result({ measured, notes });
    } finally {
      await Promise.allSettled(nodes.map((n) => n.node.close()));
      await stopAll([relay]);
    }
  },
};
