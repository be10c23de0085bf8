/**
 * Shared counting for the fault matrix: every scenario records what its
 * senders sent and got accepted, what recipients read from their mailboxes
 * and what evidences came back to the senders, and turns that into the
 * ScenarioResult counts of scenario.ts, the same way for every scenario.
 *
 * API (stable; other scenario authors use it):
 *
 *   const ledger = new Ledger();
 *   ledger.send(envelope);                  // a sender tries to submit (retries with the same id: call again, counted once)
 *   ledger.accept(envelopeId);              // its SubmissionAcceptance reached the sender (idempotent)
 *   ledger.cutOff(envelopeId);              // the submission failed without an answer (NETWORK/TIMEOUT): it may or may
 *                                           //   not have been committed; if never accepted later, delivering it to all
 *                                           //   recipients or to none is fine, anything in between is a loss
 *   ledger.deliver(recipient, envelope, seq);   // a recipient read it from its mailbox (a re-read of the same seq is
 *                                               //   not a duplicate; the same envelope under another seq is)
 *   ledger.evidence(sender, evidence);      // an evidence read from a sender's mailbox
 *   ledger.expectNonDelivery(envelopeId, recipient);  // the scenario makes this recipient unreachable on purpose
 *   ledger.owe(envelopeId, kinds, recipient?)  // an extra evidence owed once the envelope is accepted
 *                                           //   (e.g. ['relay-acceptance'] from the peer relay across networks)
 *   ledger.result({ measured, notes })     // ScenarioResult; ledger.problems() lists every discrepancy in words
 *   ledger.progress                         // { sent, accepted } so far, cheap (to trigger a fault at 40 %)
 *   ledger.unaccepted()                     // ids sent but not accepted: what senders retry
 *
 * What is owed: for every accepted envelope and each of its recipients, one
 * final-fate evidence about that recipient (Delivery, RecipientRejection or
 * NonDelivery) — the sender's SubmissionAcceptance is counted by `accepted`,
 * not here — plus whatever `owe` adds. An owed evidence counts as received
 * once, however many copies arrive (copies are reported as
 * `measured.evidenceCopies`).
 *
 * Counting rules (ScenarioResult):
 * - sent: distinct envelope ids passed to send();
 * - accepted: distinct ids passed to accept();
 * - delivered: (accepted envelope, recipient) pairs read at least once;
 * - duplicated: reads of the same (envelope, recipient) under another mailbox
 *   seq, plus deliveries nobody should have received (never sent, altered,
 *   to a non-recipient, or cut off and never accepted yet delivered to only
 *   some recipients — the last is counted in `lost` instead, see below);
 * - lost: accepted (envelope, recipient) pairs neither read nor covered by a
 *   NonDelivery evidence, plus cut-off envelopes delivered to some but not all
 *   recipients (one per missing recipient).
 *
 * `drainMailboxes` below is the usual way to fill the ledger after a fault:
 * every recipient reads, acks and posts its Delivery evidence; every sender
 * reads its evidences; until nothing more is owed or the time is up.
 */
import type { MailboxItem, RelayClient } from '@rogatory/client';
import { envelopeHash, issueEvidence, type Envelope, type Evidence } from '@rogatory/protocol';
import type { TestWorld } from '@rogatory/protocol/testing';
import { inPool } from '@rogatory/relay/testing/helpers';
import type { ScenarioResult } from './scenario.js';

const FINAL_FATES = new Set(['delivery', 'recipient-rejection', 'non-delivery']);

interface Sent {
  readonly envelope: Envelope;
  readonly hash: string;
}

const pair = (envelopeId: string, recipient: string): string => `${envelopeId} ${recipient}`;

export class Ledger {
  private readonly sent = new Map<string, Sent>();
  private readonly accepted = new Set<string>();
  private readonly cut = new Set<string>();
  /** `${id} ${recipient}` -> distinct mailbox seqs it was read under. */
  private readonly reads = new Map<string, Set<number>>();
  private readonly nonDeliveryExpected = new Set<string>();
  /** `${id} ${recipient}` -> kinds of evidences received about it (recipient '' for envelope-wide ones). */
  private readonly evidences = new Map<string, Set<string>>();
  private readonly extraOwed: { id: string; kinds: readonly string[]; recipient: string }[] = [];
  private readonly unexpected: string[] = [];
  private copies = 0;

  /** A sender tries to submit `envelope`; calling again for a retry with the same id counts once. */
  send(envelope: Envelope): void {
    const id = envelope.body.id;
    const hash = envelopeHash(envelope);
    const known = this.sent.get(id);
    if (known && known.hash !== hash)
      this.unexpected.push(`${id}: sent twice with different contents`);
    if (!known) this.sent.set(id, { envelope, hash });
  }

  /** The SubmissionAcceptance of `envelopeId` reached its sender. */
  accept(envelopeId: string): void {
    if (!this.sent.has(envelopeId)) this.unexpected.push(`${envelopeId}: accepted but never sent`);
    this.accepted.add(envelopeId);
  }

  /** The submission of `envelopeId` failed without an answer (connection cut, timeout). */
  cutOff(envelopeId: string): void {
    this.cut.add(envelopeId);
  }

  /** `recipient` read `envelope` from its mailbox under `seq`. */
  deliver(recipient: string, envelope: Envelope, seq: number): void {
    const id = envelope.body.id;
    const original = this.sent.get(id);
    if (!original) {
      this.unexpected.push(`${recipient}: read ${id}, never sent`);
      return;
    }
    if (original.hash !== envelopeHash(envelope)) {
      this.unexpected.push(`${recipient}: read ${id} altered`);
      return;
    }
    if (!original.envelope.body.recipients.includes(recipient)) {
      this.unexpected.push(`${recipient}: read ${id}, not one of its recipients`);
      return;
    }
    const key = pair(id, recipient);
    let seqs = this.reads.get(key);
    if (!seqs) this.reads.set(key, (seqs = new Set()));
    seqs.add(seq);
  }

  /** `sender` read `evidence` from its mailbox. */
  evidence(sender: string, evidence: Evidence): void {
    const b = evidence.body;
    const original = this.sent.get(b.envelopeId);
    if (!original || original.envelope.body.sender !== sender) {
      this.unexpected.push(`${sender}: evidence ${b.kind} about ${b.envelopeId}, not its envelope`);
      return;
    }
    if (original.hash !== b.envelopeHash) {
      this.unexpected.push(
        `${sender}: evidence ${b.kind} about ${b.envelopeId} bound to another hash`,
      );
      return;
    }
    const key = pair(b.envelopeId, b.recipient ?? '');
    let kinds = this.evidences.get(key);
    if (!kinds) this.evidences.set(key, (kinds = new Set()));
    if (kinds.has(b.kind)) this.copies++;
    kinds.add(b.kind);
  }

  /** The scenario made `recipient` unreachable on purpose: a NonDelivery is owed instead of a delivery. */
  expectNonDelivery(envelopeId: string, recipient: string): void {
    this.nonDeliveryExpected.add(pair(envelopeId, recipient));
  }

  /** An extra evidence owed to the sender of `envelopeId`: one of `kinds`, about `recipient` if given. */
  owe(envelopeId: string, kinds: readonly string[], recipient?: string): void {
    this.extraOwed.push({ id: envelopeId, kinds, recipient: recipient ?? '' });
  }

  /** How many distinct envelopes were sent and accepted so far (cheap: for fault triggers). */
  get progress(): { sent: number; accepted: number } {
    return { sent: this.sent.size, accepted: this.accepted.size };
  }

  /** Whether `envelopeId` was accepted. */
  isAccepted(envelopeId: string): boolean {
    return this.accepted.has(envelopeId);
  }

  /** Ids sent but not (yet) accepted: what a sender retries. */
  unaccepted(): string[] {
    return [...this.sent.keys()].filter((id) => !this.accepted.has(id));
  }

  /** The envelope recorded for `envelopeId`. */
  envelopeOf(envelopeId: string): Envelope | undefined {
    return this.sent.get(envelopeId)?.envelope;
  }

  private has(envelopeId: string, recipient: string, kinds: ReadonlySet<string>): boolean {
    const got = this.evidences.get(pair(envelopeId, recipient));
    return got !== undefined && [...got].some((k) => kinds.has(k));
  }

  /** Owed evidences and how many of them arrived. */
  evidenceCounts(): { owed: number; received: number } {
    let owed = 0;
    let received = 0;
    for (const id of this.accepted) {
      const s = this.sent.get(id);
      if (!s) continue;
      for (const r of s.envelope.body.recipients) {
        owed++;
        if (this.has(id, r, FINAL_FATES)) received++;
      }
    }
    for (const o of this.extraOwed) {
      if (!this.accepted.has(o.id)) continue;
      owed++;
      if (this.has(o.id, o.recipient, new Set(o.kinds))) received++;
    }
    return { owed, received };
  }

  /** Every discrepancy, one sentence each (empty when the scenario passes on counts). */
  problems(): string[] {
    const out = [...this.unexpected];
    for (const id of this.accepted) {
      const s = this.sent.get(id);
      if (!s) continue;
      for (const r of s.envelope.body.recipients) {
        const n = this.reads.get(pair(id, r))?.size ?? 0;
        if (n === 0 && !this.has(id, r, new Set(['non-delivery'])))
          out.push(`${id}: accepted, never delivered to ${r}`);
        if (n > 1) out.push(`${id}: delivered ${String(n)} times to ${r}`);
        if (n > 0 && this.nonDeliveryExpected.has(pair(id, r)))
          out.push(`${id}: delivered to ${r}, which was meant to be unreachable`);
        if (!this.has(id, r, FINAL_FATES)) out.push(`${id}: no evidence about ${r} came back`);
      }
    }
    for (const id of this.cut) {
      if (this.accepted.has(id)) continue;
      const s = this.sent.get(id);
      if (!s) continue;
      const seen = s.envelope.body.recipients.map((r) => this.reads.get(pair(id, r))?.size ?? 0);
      if (seen.some((n) => n > 0) && seen.some((n) => n === 0))
        out.push(`${id}: cut off, delivered to some recipients only (${seen.join('/')})`);
      if (seen.some((n) => n > 1)) out.push(`${id}: cut off, delivered more than once`);
    }
    for (const [key] of this.reads) {
      const id = key.split(' ')[0]!;
      if (!this.accepted.has(id) && !this.cut.has(id))
        out.push(`${key}: delivered, never accepted nor cut off`);
    }
    for (const o of this.extraOwed)
      if (this.accepted.has(o.id) && !this.has(o.id, o.recipient, new Set(o.kinds)))
        out.push(`${o.id}: owed ${o.kinds.join('|')} ${o.recipient} never came back`);
    return out;
  }

  /** The counts of scenario.ts, with the scenario's own figures and notes. */
  result(
    extra: { measured?: Record<string, number | string | boolean>; notes?: string[] } = {},
  ): ScenarioResult {
    let delivered = 0;
    let duplicated = this.unexpected.filter((u) => u.includes(': read ')).length;
    let lost = 0;
    for (const id of this.accepted) {
      const s = this.sent.get(id);
      if (!s) continue;
      for (const r of s.envelope.body.recipients) {
        const n = this.reads.get(pair(id, r))?.size ?? 0;
        if (n > 0) delivered++;
        if (n > 1) duplicated += n - 1;
        if (n === 0 && !this.has(id, r, new Set(['non-delivery']))) lost++;
      }
    }
    let committedWithoutAnswer = 0;
    for (const id of this.cut) {
      if (this.accepted.has(id)) continue;
      const s = this.sent.get(id);
      if (!s) continue;
      const seen = s.envelope.body.recipients.map((r) => this.reads.get(pair(id, r))?.size ?? 0);
      if (seen.some((n) => n > 0)) {
        lost += seen.filter((n) => n === 0).length;
        duplicated += seen.reduce((a, n) => a + Math.max(0, n - 1), 0);
        if (seen.every((n) => n > 0)) committedWithoutAnswer++;
      }
    }
    for (const [key, seqs] of this.reads) {
      const id = key.split(' ')[0]!;
      if (!this.accepted.has(id) && !this.cut.has(id)) duplicated += seqs.size;
    }
    const { owed, received } = this.evidenceCounts();
    const problems = this.problems();
    const notes = [...(extra.notes ?? [])];
    if (problems.length > 0)
      notes.push(
        `${String(problems.length)} discrepancies, first: ${problems.slice(0, 3).join('; ')}`,
      );
    return {
      sent: this.sent.size,
      accepted: this.accepted.size,
      delivered,
      duplicated,
      lost,
      evidencesOwed: owed,
      evidencesReceived: received,
      measured: {
        ...(committedWithoutAnswer > 0 ? { committedWithoutAnswer } : {}),
        ...(this.copies > 0 ? { evidenceCopies: this.copies } : {}),
        ...(extra.measured ?? {}),
      },
      ...(notes.length > 0 ? { notes } : {}),
    };
  }
}

/**
 * Read every mailbox until nothing more is owed or `timeoutMs` is spent:
 * recipients record each envelope, post their Delivery evidence (signed with
 * their identity from `world`) and ack; senders record each evidence and ack.
 * Client errors (a relay still restarting) are retried after a pause; the
 * last one is returned in `errors` (counted), never thrown.
 */
export async function drainMailboxes(options: {
  world: TestWorld;
  clients: ReadonlyMap<string, RelayClient>;
  ledger: Ledger;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Post Delivery evidences for what recipients read (default true). */
  postDeliveries?: boolean;
}): Promise<{ rounds: number; errors: number }> {
  const { world, clients, ledger } = options;
  const end = Date.now() + options.timeoutMs;
  let rounds = 0;
  let errors = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    rounds++;
    let read = 0;
    for (const [address, client] of clients) {
      let items: MailboxItem[];
      try {
        items = await client.readMailbox(0, 500);
        const envelopes: Envelope[] = [];
        for (const item of items) {
          if (item.kind === 'envelope') {
            ledger.deliver(address, item.envelope, item.seq);
            envelopes.push(item.envelope);
          } else ledger.evidence(address, item.evidence);
        }
        if (options.postDeliveries !== false)
          await inPool(envelopes, 8, async (envelope) => {
            await client.postEvidence(
              issueEvidence({
                kind: 'delivery',
                envelope,
                issuer: address,
                key: world.authority(address).identity,
                issuedAt: Date.now(),
                recipient: address,
              }),
              envelope,
            );
          });
        if (items.length > 0) await client.ack(items.map((i) => i.seq));
      } catch {
        errors++;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      read += items.length;
    }
    const { owed, received } = ledger.evidenceCounts();
    if (read === 0 && received >= owed) return { rounds, errors };
    if (Date.now() > end) return { rounds, errors };
    if (read === 0) await new Promise((r) => setTimeout(r, 100));
  }
}
