import { Type, type Static } from 'typebox';
import { networkOf } from './address.js';
import { fail, isProtocolError } from './errors.js';
import { envelopeHash, type Envelope } from './envelope.js';
import type { SigningKeyPair } from './keys.js';
import { publicKeyOf } from './keys.js';
import { AddressSchema, Hex256, Timestamp, validator } from './schema.js';
import { CONTEXTS, SignedSchema, sign, verifySignature, type Signed } from './signed.js';
import { EnvelopeIdSchema, ENVELOPE_LIMITS } from './envelope.js';
import { DOSSIER_PARTY_ROLES, type TrustStore } from './trust.js';

export const EVIDENCE_KINDS = [
  'submission-acceptance',
  'submission-rejection',
  'relay-acceptance',
  'relay-rejection',
  'delivery',
  /** The recipient received the envelope but refused the dossier (it failed verification and is quarantined). */
  'recipient-rejection',
  'non-delivery',
  'retrieval',
] as const;
export type EvidenceKind = (typeof EVIDENCE_KINDS)[number];

/**
 * Stable reason codes carried by rejection and non-delivery evidences.
 * Peers branch on these; they never change meaning.
 */
export const REASON_CODES = [
  'MALFORMED',
  'SIGNATURE_INVALID',
  'SENDER_UNKNOWN',
  'SENDER_REVOKED',
  'SENDER_KEY_EXPIRED',
  'RECIPIENT_UNKNOWN',
  'RECIPIENT_UNREACHABLE',
  'LIMIT_EXCEEDED',
  'RATE_LIMITED',
  'EXPIRED',
  'REPLAY',
  'CHUNK_MISSING',
  'HOP_LIMIT',
  'RETENTION_EXPIRED',
  'DEADLINE_EXPIRED',
  'QUARANTINED',
  'INTERNAL',
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

export const ReasonSchema = Type.Object(
  {
    code: Type.Enum(REASON_CODES),
    /** A protocol error code (errors.ts) giving the precise cause, if any. */
    detail: Type.Union([Type.String({ pattern: '^[A-Z_]{1,40}$' }), Type.Null()]),
  },
  { additionalProperties: false },
);
export type Reason = Static<typeof ReasonSchema>;

export const EvidenceBodySchema = Type.Object(
  {
    type: Type.Literal('evidence'),
    version: Type.Literal(1),
    kind: Type.Enum(EVIDENCE_KINDS),
    envelopeId: EnvelopeIdSchema,
    envelopeHash: Hex256,
    /** Relay id or authority address that issues (and signs) the evidence. */
    issuer: AddressSchema,
    /** The recipient this evidence is about; null for submission evidences. */
    recipient: Type.Union([AddressSchema, Type.Null()]),
    issuedAt: Timestamp,
    /** Required for rejections and non-delivery; null otherwise. */
    reason: Type.Union([ReasonSchema, Type.Null()]),
  },
  { additionalProperties: false },
);
export type EvidenceBody = Static<typeof EvidenceBodySchema>;
export const EvidenceSchema = SignedSchema(EvidenceBodySchema);
export type Evidence = Signed<EvidenceBody>;

const evidenceShape = validator(EvidenceSchema, 'evidence');

const NEEDS_REASON: ReadonlySet<EvidenceKind> = new Set([
  'submission-rejection',
  'relay-rejection',
  'non-delivery',
  'recipient-rejection',
]);
const ABOUT_RECIPIENT: ReadonlySet<EvidenceKind> = new Set([
  'relay-acceptance',
  'relay-rejection',
  'delivery',
  'recipient-rejection',
  'non-delivery',
  'retrieval',
]);
const ISSUED_BY_RELAY: ReadonlySet<EvidenceKind> = new Set([
  'submission-acceptance',
  'submission-rejection',
  'relay-acceptance',
  'relay-rejection',
  'non-delivery',
]);

/** Kind-dependent rules a schema cannot express: reason and recipient present exactly when the kind needs them; who issues. */
export function checkEvidenceShape(body: EvidenceBody): void {
  if (NEEDS_REASON.has(body.kind) !== (body.reason !== null))
    fail(
      'SCHEMA_INVALID',
      `evidence ${body.kind}: reason ${body.reason ? 'not allowed' : 'required'}`,
    );
  if (ABOUT_RECIPIENT.has(body.kind) !== (body.recipient !== null))
    fail(
      'SCHEMA_INVALID',
      `evidence ${body.kind}: recipient ${body.recipient ? 'not allowed' : 'required'}`,
    );
  if (
    (body.kind === 'delivery' ||
      body.kind === 'retrieval' ||
      body.kind === 'recipient-rejection') &&
    body.issuer !== body.recipient
  ) {
    fail('SCHEMA_INVALID', `evidence ${body.kind} must be issued by the recipient`);
  }
}

/** Issue an evidence about an envelope. */
export function issueEvidence(options: {
  kind: EvidenceKind;
  envelope: Pick<Envelope, 'body' | 'signature'>;
  issuer: string;
  key: SigningKeyPair;
  issuedAt: number;
  recipient?: string;
  reason?: Reason;
}): Evidence {
  const body: EvidenceBody = {
    type: 'evidence',
    version: 1,
    kind: options.kind,
    envelopeId: options.envelope.body.id,
    envelopeHash: envelopeHash(options.envelope),
    issuer: options.issuer,
    recipient: options.recipient ?? null,
    issuedAt: options.issuedAt,
    reason: options.reason ?? null,
  };
  checkEvidenceShape(body);
  return sign(CONTEXTS.evidence, body, options.key);
}

/** Map a protocol error to the reason code a rejection evidence carries. */
export function reasonFor(err: unknown): Reason {
  if (!isProtocolError(err)) return { code: 'INTERNAL', detail: null };
  const code = ((): Reason['code'] => {
    switch (err.code) {
      case 'SIGNATURE_INVALID':
        return 'SIGNATURE_INVALID';
      case 'KEY_UNKNOWN':
      case 'KEY_WRONG_ROLE':
      case 'TRUST_CHAIN_BROKEN':
        return 'SENDER_UNKNOWN';
      case 'KEY_REVOKED':
        return 'SENDER_REVOKED';
      case 'KEY_EXPIRED':
      case 'KEY_NOT_YET_VALID':
        return 'SENDER_KEY_EXPIRED';
      case 'ENVELOPE_EXPIRED':
        return 'EXPIRED';
      case 'HOP_LIMIT_EXCEEDED':
        return 'HOP_LIMIT';
      case 'LIMIT_EXCEEDED':
        return 'LIMIT_EXCEEDED';
      case 'ENCODING_INVALID':
      case 'SCHEMA_INVALID':
      case 'ADDRESS_INVALID':
        return 'MALFORMED';
      default:
        return 'QUARANTINED';
    }
  })();
  return { code, detail: err.code };
}

/** Causal rank: submission, then relay hops, then delivery or non-delivery, then retrieval. */
const RANK: Record<EvidenceKind, number> = {
  'submission-acceptance': 0,
  'submission-rejection': 0,
  'relay-acceptance': 1,
  'relay-rejection': 1,
  delivery: 2,
  'recipient-rejection': 2,
  'non-delivery': 2,
  retrieval: 3,
};

export type RecipientState =
  'pending' | 'relayed' | 'delivered' | 'retrieved' | 'rejected' | 'refused' | 'not-delivered';

export interface EvidenceChain {
  /** Evidences in causal order. */
  readonly ordered: readonly Evidence[];
  readonly submission: 'accepted' | 'rejected';
  readonly recipients: ReadonlyMap<string, RecipientState>;
}

/**
 * Verify one evidence about an envelope: well-formed, bound to the
 * envelope's id and hash, about one of its recipients, issued by the right
 * kind of party (a relay, or the recipient itself for delivery and
 * retrieval; submission evidences by a relay of the sender's network), and
 * signed by a key its issuer held at `issuedAt`.
 */
export function verifyEvidence(
  envelope: Pick<Envelope, 'body' | 'signature'>,
  value: unknown,
  trust: TrustStore,
): Evidence {
  const ev = evidenceShape.parse(value);
  const b = ev.body;
  const env = envelope.body;
  checkEvidenceShape(b);
  if (b.envelopeId !== env.id || b.envelopeHash !== envelopeHash(envelope))
    fail('EVIDENCE_MISMATCH', `evidence ${b.kind} is about another envelope`);
  if (b.recipient !== null && !env.recipients.includes(b.recipient))
    fail('EVIDENCE_CHAIN_INVALID', `evidence ${b.kind} names a non-recipient`);
  const issuer = trust.resolveSigningKey(
    b.issuer,
    ev.signature.kid,
    b.issuedAt,
    ISSUED_BY_RELAY.has(b.kind) ? ['relay'] : DOSSIER_PARTY_ROLES,
  );
  verifySignature(CONTEXTS.evidence, b, ev.signature, publicKeyOf(issuer.key));
  if (
    (b.kind === 'submission-acceptance' || b.kind === 'submission-rejection') &&
    issuer.network !== networkOf(env.sender)
  ) {
    fail('EVIDENCE_CHAIN_INVALID', 'submission evidence not from a relay of the sender network');
  }
  return ev;
}

/**
 * Verify every evidence of one envelope and put them in causal order.
 * Each must be well-formed, bound to this envelope's hash, signed by a key
 * its issuer held at `issuedAt`, issued by the right party (relays for
 * submission, relay and non-delivery evidences; the recipient itself for
 * delivery and retrieval), and consistent with the others: exactly one
 * submission evidence; nothing after a submission rejection; at most one
 * delivery or non-delivery per recipient, never both; retrieval only after
 * delivery; times non-decreasing along the order (within clock skew).
 */
export function verifyEvidenceChain(
  envelope: Pick<Envelope, 'body' | 'signature'>,
  evidences: readonly unknown[],
  trust: TrustStore,
): EvidenceChain {
  const { body: env } = envelope;
  const parsed = evidences.map((value) => verifyEvidence(envelope, value, trust));

  const ordered = [...parsed].sort(
    (a, b) =>
      RANK[a.body.kind] - RANK[b.body.kind] ||
      a.body.issuedAt - b.body.issuedAt ||
      (a.body.issuer < b.body.issuer ? -1 : a.body.issuer > b.body.issuer ? 1 : 0),
  );
  const submissions = ordered.filter((e) => RANK[e.body.kind] === 0);
  if (submissions.length !== 1)
    fail('EVIDENCE_CHAIN_INVALID', `expected one submission evidence, found ${submissions.length}`);
  const submission = submissions[0]!;
  if (submission.body.kind === 'submission-rejection' && ordered.length > 1)
    fail('EVIDENCE_CHAIN_INVALID', 'evidence after a submission rejection');

  const states = new Map<string, RecipientState>(
    env.recipients.map((r) => [
      r,
      submission.body.kind === 'submission-rejection' ? 'rejected' : 'pending',
    ]),
  );
  const deliveredAt = new Map<string, number>();
  let last = submission.body.issuedAt;
  const seen = new Set<string>();
  for (const ev of ordered.slice(1)) {
    const b = ev.body;
    const r = b.recipient!;
    const key = `${b.kind}|${b.issuer}|${r}`;
    if (seen.has(key)) fail('EVIDENCE_CHAIN_INVALID', `duplicate ${b.kind} evidence`);
    seen.add(key);
    if (b.issuedAt + ENVELOPE_LIMITS.maxClockSkewMs < last)
      fail('EVIDENCE_CHAIN_INVALID', `${b.kind} evidence dated before its cause`);
    last = Math.max(last, b.issuedAt);
    const state = states.get(r)!;
    switch (b.kind) {
      case 'relay-acceptance':
        if (state === 'pending') states.set(r, 'relayed');
        break;
      case 'relay-rejection':
        if (state === 'delivered' || state === 'not-delivered')
          fail('EVIDENCE_CHAIN_INVALID', 'relay rejection after a final outcome');
        states.set(r, 'rejected');
        break;
      case 'delivery':
      case 'recipient-rejection':
      case 'non-delivery':
        if (
          state === 'delivered' ||
          state === 'not-delivered' ||
          state === 'rejected' ||
          state === 'refused'
        )
          fail('EVIDENCE_CHAIN_INVALID', `conflicting outcomes for ${r}`);
        states.set(
          r,
          b.kind === 'delivery'
            ? 'delivered'
            : b.kind === 'recipient-rejection'
              ? 'refused'
              : 'not-delivered',
        );
        if (b.kind === 'delivery') deliveredAt.set(r, b.issuedAt);
        break;
      case 'retrieval': {
        const at = deliveredAt.get(r);
        if (at === undefined) fail('EVIDENCE_CHAIN_INVALID', `retrieval without delivery for ${r}`);
        if (b.issuedAt < at) fail('EVIDENCE_CHAIN_INVALID', 'retrieval dated before delivery');
        states.set(r, 'retrieved');
        break;
      }
      default:
        fail('EVIDENCE_CHAIN_INVALID', 'second submission evidence');
    }
  }
  return {
    ordered,
    submission: submission.body.kind === 'submission-acceptance' ? 'accepted' : 'rejected',
    recipients: states,
  };
}
