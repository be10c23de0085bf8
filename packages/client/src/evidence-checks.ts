import {
  CONTEXTS,
  isProtocolError,
  networkOf,
  publicKeyOf,
  verifySignature,
  type Envelope,
  type Evidence,
  type EvidenceKind,
  type ResolvedKey,
  type Role,
} from '@rogatory/protocol';
import { RelayClientError } from './errors.js';
import { parseEvidence } from './wire.js';

/**
 * What the client needs to verify a relay's evidence signature: a
 * `TrustStore` from @rogatory/protocol fits. Without one, evidences are
 * checked for form and for being about the right envelope, and the node
 * verifies signatures later (verifyEvidenceChain).
 */
export interface EvidenceTrust {
  resolveSigningKey(address: string, kid: string, at: number, roles?: readonly Role[]): ResolvedKey;
}

export interface EvidenceExpectation {
  readonly envelope: Envelope;
  /** envelopeHash(envelope). */
  readonly hash: string;
  readonly kinds: readonly EvidenceKind[];
  readonly what: string;
  readonly status: number;
  readonly trust?: EvidenceTrust | undefined;
}

/**
 * Parse an evidence the relay returned about `envelope` and refuse it
 * (BAD_RESPONSE) unless it is of an expected kind, bound to this exact
 * envelope (id and hash), names only its recipients and, given a trust
 * store, is signed by a relay key valid at its issue time (for submission
 * evidences, a relay of the sender's network).
 */
export function expectEvidence(value: unknown, expect: EvidenceExpectation): Evidence {
  const { what, status } = expect;
  const evidence = parseEvidence(value, what, status);
  const body = evidence.body;
  const env = expect.envelope.body;
  const bad = (message: string, cause?: unknown): RelayClientError =>
    new RelayClientError(
      'BAD_RESPONSE',
      `${what}: ${message}`,
      cause === undefined ? { status } : { status, cause },
    );
  if (!expect.kinds.includes(body.kind)) throw bad(`unexpected ${body.kind} evidence`);
  if (body.envelopeId !== env.id || body.envelopeHash !== expect.hash)
    throw bad('evidence about another envelope');
  if (body.recipient !== null && !env.recipients.includes(body.recipient))
    throw bad('evidence names a non-recipient');
  if (expect.trust) {
    try {
      const issuer = expect.trust.resolveSigningKey(
        body.issuer,
        evidence.signature.kid,
        body.issuedAt,
        ['relay'],
      );
      verifySignature(CONTEXTS.evidence, body, evidence.signature, publicKeyOf(issuer.key));
      if (
        (body.kind === 'submission-acceptance' || body.kind === 'submission-rejection') &&
        issuer.network !== networkOf(env.sender)
      ) {
        throw bad('submission evidence not from a relay of the sender network');
      }
    } catch (err) {
      if (err instanceof RelayClientError) throw err;
      if (!isProtocolError(err)) throw err;
      throw bad(`evidence does not verify (${err.code})`, err);
    }
  }
  return evidence;
}
