import { ENVELOPE_LIMITS, type Envelope } from '@rogatory/protocol';

/** How far ahead of the node's clock an envelope's creation time may date its evidences (3 × the protocol's skew tolerance). */
const EVIDENCE_CLAMP_MS = 3 * ENVELOPE_LIMITS.maxClockSkewMs;

/**
 * The time this node puts on an evidence about `envelope`: its clock, but
 * never before the envelope's signed creation time (bounded: at most
 * EVIDENCE_CLAMP_MS ahead of this clock). A node whose clock runs behind
 * would otherwise date its Delivery before the relays' acceptances and
 * break its correspondents' evidence chains (protocol §12.6); "not before
 * the dossier was created" is true whatever this clock says. Hop times are
 * not used: they are unsigned (§16.5).
 */
export function evidenceTime(now: number, envelope: Envelope): number {
  const createdAt = envelope.body.createdAt;
  return createdAt > now && createdAt - now <= EVIDENCE_CLAMP_MS ? createdAt : now;
}
