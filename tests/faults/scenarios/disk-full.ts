import { join } from 'node:path';
import type { RelayClient } from '@rogatory/client';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';
import {
  actorClient,
  codeOf,
  Recipients,
  sealSmall,
  SenderEvidence,
  submitSealed,
  type Sealed,
} from '../support/actors.js';
import { Tally } from '../support/tally.js';
import { faultWorld, FaultRelay, NET_A, settle, stopAll } from '../support/relays.js';
import { Tmpfs, tmpfsRefusal } from '../support/tmpfs.js';

const SENDERS = ['sn-moj@wacap', 'gh-ago@wacap'];
const RECIPIENT = 'ng-agf@wacap';
const MiB = 1024 * 1024;

/**
 * A relay whose data folder (SQLite database and chunk files) sits on a small
 * tmpfs: submissions fill it until the relay refuses them; reads go on; the
 * file system grows (space returns) and the refused envelopes, resubmitted as
 * a node's outbox does, are accepted and delivered with everything before.
 */
export const diskFull: Scenario = {
  name: 'disk-full',
  title: "a relay's disk fills up (tmpfs), then space returns",
  budgetSeconds: { quick: 150, full: 400 },
  skip: () => tmpfsRefusal(),
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const sizeBytes = (ctx.quick ? 16 : 48) * MiB;
    const attachmentBytes = (ctx.quick ? 256 : 512) * 1024;
    const maxEnvelopes = ctx.quick ? 150 : 400;
    const after = ctx.quick ? 10 : 30;
    const world = await faultWorld();
    const w = world.world;
    const fs = await Tmpfs.mount(join(ctx.dir, 'relay-disk'), sizeBytes);
    const relay = await FaultRelay.create({
      world,
      network: NET_A,
      dir: ctx.dir,
      patch: { dataDir: join(fs.dir, 'data') },
    });
    const ledger = new Tally();
    let recipients: Recipients | undefined;
    let evidence: SenderEvidence | undefined;
    try {
      await relay.start();
      const senders = new Map<string, RelayClient>(
        SENDERS.map((a) => [a, actorClient(w, relay.url, a, { retries: 0 })]),
      );
      evidence = new SenderEvidence(w, ledger, senders);
      // Uploaded now, submitted once the disk is completely full: the acceptance itself (a
      // database write) then meets ENOSPC.
      const late = await sealSmall(w, { from: SENDERS[0]!, to: [RECIPIENT] });
      await senders.get(SENDERS[0]!)!.uploadChunks(late.objects);
      const refusalCodes = new Map<string, number>();
      const refused: { from: string; sealed: Sealed }[] = [];
      let consecutive = 0;
      let submitted = 0;
      // Fill: submit until five in a row are refused (a node would keep them in its outbox).
      while (submitted < maxEnvelopes && consecutive < 5) {
        const from = SENDERS[submitted % SENDERS.length]!;
        const sealed = await sealSmall(w, { from, to: [RECIPIENT], attachmentBytes });
        submitted++;
        const outcome = await submitSealed(senders.get(from)!, ledger, sealed, {
          attempts: 1,
          signal: ctx.signal,
        });
        if (outcome.accepted) {
          consecutive = 0;
          continue;
        }
        consecutive++;
        const key = `${outcome.stage} ${outcome.code}`;
        refusalCodes.set(key, (refusalCodes.get(key) ?? 0) + 1);
        refused.push({ from, sealed });
      }
      // Take the last free bytes too, then submit the envelope whose chunks are already there.
      await fs.fill('filler');
      const lateOutcome = await submitSealed(senders.get(SENDERS[0]!)!, ledger, late, {
        attempts: 1,
        signal: ctx.signal,
      });
      const lateResult = lateOutcome.accepted
        ? 'accepted'
        : `${lateOutcome.stage} ${lateOutcome.code}`;
      if (!lateOutcome.accepted) refused.push({ from: SENDERS[0]!, sealed: late });
      const relayAliveWhenFull = relay.alive;
      const full = await fs.usage();
      const acceptedWhileFilling = ledger.acceptedCount;
      ctx.log(
        `disk-full: ${String(acceptedWhileFilling)} accepted, ${String(refused.length)} refused (${[...refusalCodes].map(([c, n]) => `${c}×${String(n)}`).join(', ')}), ${String(full.free)} bytes free`,
      );

      // What the full relay kept of the refused uploads: complete chunks only (the
      // resubmission skips them, and the recipient checks every chunk against its hash).
      let keptChunks = 0;
      const probe = senders.get(SENDERS[0]!)!;
      for (const { from, sealed } of refused) {
        const ids = sealed.objects.map((o) => o.id);
        keptChunks += ids.length - (await senders.get(from)!.missingChunks(ids)).length;
      }
      const readyWhileFull = (await fetch(`${relay.url}/readyz`)).status;
      await probe.readMailbox(0, 1);

      // Reads while full: the recipient downloads and acks everything accepted so far.
      recipients = new Recipients(
        w,
        ledger,
        new Map([[RECIPIENT, actorClient(w, relay.url, RECIPIENT, { retries: 0 })]]),
        { fetchChunks: true },
      );
      const readWhileFull = await settle(() => ledger.allDelivered(), {
        ms: 30_000,
        signal: ctx.signal,
      });
      const recipientErrorsWhileFull = recipients.errors;

      // Space returns: the file system grows; refused envelopes are resubmitted, then new ones.
      await fs.remove('filler');
      await fs.resize(sizeBytes * 4);
      ctx.log('disk-full: the relay disk grew; resubmitting');
      const retried = await resubmit(refused, senders, ledger, ctx.signal);
      for (let i = 0; i < after; i++) {
        const from = SENDERS[i % SENDERS.length]!;
        const sealed = await sealSmall(w, { from, to: [RECIPIENT], attachmentBytes });
        await submitSealed(senders.get(from)!, ledger, sealed, {
          attempts: 10,
          signal: ctx.signal,
        });
      }
      const halfStored =
        (recipients.errorCodes.get('CHUNK_HASH_MISMATCH') ?? 0) +
        (recipients.errorCodes.get('CHUNK_SIZE_MISMATCH') ?? 0);
      const settled = await settle(() => ledger.allDelivered() && ledger.settled(), {
        ms: ctx.quick ? 60_000 : 180_000,
        signal: ctx.signal,
      });
      const codes = [...refusalCodes].map(([c, n]) => `${c}:${String(n)}`).join(',');
      return ledger.result({
        measured: {
          tmpfsMB: sizeBytes / MiB,
          acceptedBeforeFull: acceptedWhileFilling,
          refusedWhileFull: refused.length,
          refusalCodes: codes,
          submitWithNoByteFree: lateResult,
          relayAliveWhenFull,
          freeBytesWhenFull: full.free,
          keptChunksOfRefused: keptChunks,
          halfStoredChunks: halfStored,
          readyzWhileFull: readyWhileFull,
          readsServedWhileFull: readWhileFull,
          recipientErrorsWhileFull,
          resubmittedAccepted: retried,
          invalidEvidences: evidence.invalid,
          deliveryEvidenceRefused: recipients.evidenceRefused,
        },
        notes: [
          `With not one byte free, submitting an envelope whose chunks were already uploaded: ${lateResult} (the relay process ${relayAliveWhenFull ? 'kept running' : 'DIED'}).`,
          `A ${String(sizeBytes / MiB)} MiB tmpfs held the relay's database and chunks; it took ${String(acceptedWhileFilling)} envelopes of ${String(attachmentBytes / 1024)} KiB before refusing (${codes || 'no refusal'}).`,
          `While full: /readyz answered ${String(readyWhileFull)}, the recipient ${readWhileFull ? 'downloaded and acked every accepted envelope' : 'could NOT read every accepted envelope'} (${String(recipientErrorsWhileFull)} failed polls); the full relay kept ${String(keptChunks)} complete chunks of the refused uploads (reused on resubmission).`,
          `After the file system grew, ${String(retried)} of ${String(refused.length)} refused envelopes were accepted on resubmission and ${String(after)} new ones were sent; ${settled ? 'every accepted envelope was delivered with its evidences' : 'NOT every accepted envelope settled in time'}; the recipient found ${String(halfStored)} chunks that failed their hash or size (half-stored).`,
        ],
      });
    } finally {
      await recipients?.stop();
      await evidence?.stop();
      await stopAll([relay]);
      await fs.unmount();
    }
  },
};

/** Resubmit refused envelopes as a node's outbox does after the failure clears; how many were accepted. */
async function resubmit(
  refused: readonly { from: string; sealed: Sealed }[],
  senders: ReadonlyMap<string, RelayClient>,
  ledger: Tally,
  signal: AbortSignal,
): Promise<number> {
  let n = 0;
  for (const { from, sealed } of refused) {
    const client = senders.get(from)!;
    for (let attempt = 0; attempt < 10 && !ledger.isAccepted(sealed.envelope.body.id); attempt++) {
      try {
        await client.uploadChunks(sealed.objects);
        await client.submit(sealed.envelope);
        ledger.accepted(sealed.envelope.body.id);
      } catch (err) {
        if (codeOf(err) === 'ENVELOPE_EXPIRED') break;
        await new Promise((r) => setTimeout(r, 200));
        if (signal.aborted) break;
      }
    }
    if (ledger.isAccepted(sealed.envelope.body.id)) n++;
  }
  return n;
}
