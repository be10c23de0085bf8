import type { Envelope, EvidenceKind } from '@rogatory/protocol';
import type { ScenarioResult } from '../scenario.js';

interface Entry {
  readonly envelope: Envelope;
  readonly recipients: readonly string[];
  accepted: boolean;
  /** Deliveries per recipient (more than one is a duplicate). */
  readonly deliveries: Map<string, number>;
  /** Recipients a signed NonDelivery reached the sender for. */
  readonly nonDelivered: Set<string>;
  /** Evidences the sender received, keyed `kind recipient`. */
  readonly evidences: Set<string>;
}

/**
 * The counts of one scenario, kept the same way everywhere: what a sender
 * tried, what the relay accepted (a SubmissionAcceptance came back), what
 * each recipient received (and how often), and which evidences came back to
 * the sender. An accepted envelope owes its sender the acceptance and, for
 * each recipient, a Delivery or a NonDelivery.
 */
export class Ledger {
  private readonly entries = new Map<string, Entry>();
  private sentCount = 0;
  /** Deliveries of ids no sender of this scenario sent (a recipient's mailbox holding a stranger). */
  unknownDeliveries = 0;

  /** A sender is about to submit `envelope`. */
  sent(envelope: Envelope): void {
    this.sentCount++;
    this.entries.set(envelope.body.id, {
      envelope,
      recipients: [...envelope.body.recipients],
      accepted: false,
      deliveries: new Map(),
      nonDelivered: new Set(),
      evidences: new Set(),
    });
  }

  /** The relay's SubmissionAcceptance reached the sender (verified by the client). */
  accepted(envelopeId: string): void {
    const e = this.entries.get(envelopeId);
    if (!e || e.accepted) return;
    e.accepted = true;
    e.evidences.add('submission-acceptance ');
  }

  isAccepted(envelopeId: string): boolean {
    return this.entries.get(envelopeId)?.accepted === true;
  }

  envelope(envelopeId: string): Envelope | undefined {
    return this.entries.get(envelopeId)?.envelope;
  }

  /** `recipient` stored the envelope (each call counts: the second is a duplicate). */
  delivered(envelopeId: string, recipient: string): void {
    const e = this.entries.get(envelopeId);
    if (!e) {
      this.unknownDeliveries++;
      return;
    }
    e.deliveries.set(recipient, (e.deliveries.get(recipient) ?? 0) + 1);
  }

  deliveryCount(envelopeId: string, recipient: string): number {
    return this.entries.get(envelopeId)?.deliveries.get(recipient) ?? 0;
  }

  /** A verified evidence about `envelopeId` reached its sender. */
  evidence(envelopeId: string, kind: EvidenceKind, recipient: string | null): void {
    const e = this.entries.get(envelopeId);
    if (!e) return;
    e.evidences.add(`${kind} ${recipient ?? ''}`);
    if (kind === 'non-delivery' && recipient !== null) e.nonDelivered.add(recipient);
  }

  hasEvidence(envelopeId: string, kind: EvidenceKind, recipient: string | null): boolean {
    return this.entries.get(envelopeId)?.evidences.has(`${kind} ${recipient ?? ''}`) === true;
  }

  /** Accepted envelopes whose every recipient has a Delivery or a NonDelivery at the sender. */
  settled(): boolean {
    for (const e of this.entries.values()) {
      if (!e.accepted) continue;
      for (const r of e.recipients)
        if (!e.evidences.has(`delivery ${r}`) && !e.evidences.has(`non-delivery ${r}`))
          return false;
    }
    return true;
  }

  /** Every accepted envelope reached every recipient. */
  allDelivered(except: (envelopeId: string) => boolean = () => false): boolean {
    for (const [id, e] of this.entries) {
      if (!e.accepted || except(id)) continue;
      for (const r of e.recipients) if ((e.deliveries.get(r) ?? 0) === 0) return false;
    }
    return true;
  }

  /** The deliveries that happened although the sender holds a NonDelivery for them. */
  deliveredAfterNonDelivery(): number {
    let n = 0;
    for (const e of this.entries.values())
      for (const r of e.nonDelivered) if ((e.deliveries.get(r) ?? 0) > 0) n++;
    return n;
  }

  result(extra: Pick<ScenarioResult, 'measured' | 'notes'> = {}): ScenarioResult {
    let accepted = 0;
    let delivered = 0;
    let duplicated = 0;
    let lost = 0;
    let owed = 0;
    let received = 0;
    for (const e of this.entries.values()) {
      if (!e.accepted) continue;
      accepted++;
      let missing = false;
      owed++; // the SubmissionAcceptance
      if (e.evidences.has('submission-acceptance ')) received++;
      for (const r of e.recipients) {
        const n = e.deliveries.get(r) ?? 0;
        if (n > 0) delivered++;
        duplicated += Math.max(0, n - 1);
        // A delivery after a NonDelivery contradicts the evidence the sender holds: counted as a duplicate outcome.
        if (n > 0 && e.nonDelivered.has(r)) duplicated++;
        if (n === 0 && !e.nonDelivered.has(r)) missing = true;
        owed++; // Delivery or NonDelivery
        if (e.evidences.has(`delivery ${r}`) || e.evidences.has(`non-delivery ${r}`)) received++;
      }
      if (missing) lost++;
    }
    return {
      sent: this.sentCount,
      accepted,
      delivered,
      duplicated: duplicated + this.unknownDeliveries,
      lost,
      evidencesOwed: owed,
      evidencesReceived: received,
      ...extra,
    };
  }
}
