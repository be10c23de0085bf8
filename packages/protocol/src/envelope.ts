import { Type, type Static } from 'typebox';
import { fromBase64url, randomBytes, toBase64url } from './bytes.js';
import { canonicalBytes, decodeCanonicalFrozen } from './encoding.js';
import { fail } from './errors.js';
import { publicKeyOf, type SigningKeyPair } from './keys.js';
import { AddressSchema, Base64url, Hex256, Timestamp, validator } from './schema.js';
import { CONTEXTS, SignatureSchema, hashOf, signBytes, verifySignature } from './signed.js';
import { DOSSIER_PARTY_ROLES, type ResolvedKey, type TrustStore } from './trust.js';

/** Protocol limits a relay enforces before anything else. */
export const ENVELOPE_LIMITS = {
  maxRecipients: 64,
  maxChunks: 100_000,
  maxHops: 8,
  /** Largest ciphertext chunk: 16 MiB of plaintext plus the 17-byte secretstream overhead. */
  maxChunkBytes: 16 * 1024 * 1024 + 17,
  /** Largest sealed dossier object. */
  maxDossierBytes: 8 * 1024 * 1024,
  /** Largest encoded envelope. */
  maxEnvelopeBytes: 16 * 1024 * 1024,
  /** Tolerated clock difference between sender, relays and recipient. */
  maxClockSkewMs: 5 * 60 * 1000,
  /** Longest allowed lifetime of an envelope. */
  maxLifetimeMs: 90 * 24 * 3600 * 1000,
} as const;

export const EnvelopeIdSchema = Base64url(16);
export const ChunkRefSchema = Type.Object(
  { id: Hex256, size: Type.Integer({ minimum: 1, maximum: ENVELOPE_LIMITS.maxChunkBytes }) },
  { additionalProperties: false },
);
export type ChunkRef = Static<typeof ChunkRefSchema>;

/**
 * The routing header: exactly what a relay needs and may see. No request
 * type, subject, party or document name is in it.
 */
export const EnvelopeBodySchema = Type.Object(
  {
    type: Type.Literal('envelope'),
    version: Type.Literal(1),
    id: EnvelopeIdSchema,
    sender: AddressSchema,
    recipients: Type.Array(AddressSchema, {
      minItems: 1,
      maxItems: ENVELOPE_LIMITS.maxRecipients,
      uniqueItems: true,
    }),
    createdAt: Timestamp,
    expiresAt: Timestamp,
    maxHops: Type.Integer({ minimum: 1, maximum: ENVELOPE_LIMITS.maxHops }),
    /** The sealed dossier object. */
    dossier: Type.Object(
      { id: Hex256, size: Type.Integer({ minimum: 1, maximum: ENVELOPE_LIMITS.maxDossierBytes }) },
      { additionalProperties: false },
    ),
    /** Ciphertext chunks of all attachments, in attachment order. */
    chunks: Type.Array(ChunkRefSchema, { maxItems: ENVELOPE_LIMITS.maxChunks }),
    /** dossier.size + the sizes of all chunks. */
    totalSize: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);
export type EnvelopeBody = Static<typeof EnvelopeBodySchema>;

/** One relay's record of passing the envelope on; appended by relays, outside the sender's signature. */
export const HopSchema = Type.Object(
  { relay: AddressSchema, receivedAt: Timestamp },
  { additionalProperties: false },
);
export type Hop = Static<typeof HopSchema>;

export const EnvelopeSchema = Type.Object(
  {
    body: EnvelopeBodySchema,
    signature: SignatureSchema,
    hops: Type.Array(HopSchema, { maxItems: ENVELOPE_LIMITS.maxHops }),
  },
  { additionalProperties: false },
);
export type Envelope = Static<typeof EnvelopeSchema>;

const envelopeShape = validator(EnvelopeSchema, 'envelope');

/** A fresh envelope id: 16 random bytes, base64url. */
export function newEnvelopeId(): string {
  return toBase64url(randomBytes(16));
}

/** Build and sign an envelope. */
export function signEnvelope(
  body: Omit<EnvelopeBody, 'type' | 'version' | 'totalSize'>,
  sender: SigningKeyPair,
): Envelope {
  const full: EnvelopeBody = {
    type: 'envelope',
    version: 1,
    ...body,
    totalSize: body.dossier.size + body.chunks.reduce((n, c) => n + c.size, 0),
  };
  checkEnvelopeConsistency(full);
  return { body: full, signature: signBytes(CONTEXTS.envelope, full, sender), hops: [] };
}

function checkEnvelopeConsistency(body: EnvelopeBody): void {
  const total = body.dossier.size + body.chunks.reduce((n, c) => n + c.size, 0);
  if (total !== body.totalSize) fail('SCHEMA_INVALID', 'envelope: totalSize does not add up');
  if (body.expiresAt <= body.createdAt)
    fail('SCHEMA_INVALID', 'envelope: expires before it is created');
  if (body.expiresAt - body.createdAt > ENVELOPE_LIMITS.maxLifetimeMs)
    fail('LIMIT_EXCEEDED', 'envelope: lifetime too long');
  const ids = new Set<string>([body.dossier.id]);
  for (const c of body.chunks) {
    if (ids.has(c.id)) fail('SCHEMA_INVALID', 'envelope: chunk listed twice');
    ids.add(c.id);
  }
  if (body.recipients.includes(body.sender))
    fail('SCHEMA_INVALID', 'envelope: sender is also a recipient');
}

/** Hex SHA-256 of the canonical `{ body, signature }`: what evidences bind to. Hops are excluded. */
export function envelopeHash(envelope: Pick<Envelope, 'body' | 'signature'>): string {
  return hashOf({ body: envelope.body, signature: envelope.signature });
}

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return canonicalBytes(envelope);
}

/** Envelopes decoded by `decodeEnvelope` and found valid: deep-frozen, so they stay valid. */
const checkedEnvelopes = new WeakSet();

/**
 * Decode canonical envelope bytes and check schema and internal consistency
 * (no signature check). The result is deep-frozen: verifying, hashing and
 * re-encoding it reuse the canonical text of the bytes received.
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length > ENVELOPE_LIMITS.maxEnvelopeBytes) fail('LIMIT_EXCEEDED', 'envelope too large');
  const envelope = parseEnvelope(decodeCanonicalFrozen(bytes, ENVELOPE_LIMITS.maxEnvelopeBytes));
  checkedEnvelopes.add(envelope);
  return envelope;
}

/** Check a decoded JSON value as an envelope (schema and consistency; no signature check). */
export function parseEnvelope(value: unknown): Envelope {
  if (typeof value === 'object' && value !== null && checkedEnvelopes.has(value))
    return value as Envelope;
  const envelope = envelopeShape.parse(value);
  fromBase64url(envelope.body.id, 'envelope id');
  checkEnvelopeConsistency(envelope.body);
  return envelope;
}

export interface VerifyEnvelopeOptions {
  readonly trust: TrustStore;
  readonly now: number;
  /** Refuse an expired envelope (default). Evidences about an envelope travel after its expiry: they pass false. */
  readonly checkExpiry?: boolean;
}

/**
 * Verify an envelope as a relay or recipient does: schema, consistency, the
 * sender's key (member, valid and not revoked at createdAt), the signature,
 * creation time not in the future, not expired, hop path within the limit
 * and loop-free. Returns the resolved sender key.
 */
export function verifyEnvelope(value: unknown, options: VerifyEnvelopeOptions): ResolvedKey {
  const envelope = parseEnvelope(value);
  const { body, signature } = envelope;
  const sender = options.trust.resolveSigningKey(
    body.sender,
    signature.kid,
    body.createdAt,
    DOSSIER_PARTY_ROLES,
  );
  verifySignature(CONTEXTS.envelope, body, signature, publicKeyOf(sender.key));
  if (body.createdAt > options.now + ENVELOPE_LIMITS.maxClockSkewMs)
    fail('SCHEMA_INVALID', 'envelope created in the future');
  if (options.checkExpiry !== false && options.now >= body.expiresAt)
    fail('ENVELOPE_EXPIRED', `envelope ${body.id} expired`);
  checkHops(envelope);
  return sender;
}

/** Hop path checks: within the envelope's limit and no relay twice (a loop). */
export function checkHops(envelope: Envelope): void {
  if (envelope.hops.length > envelope.body.maxHops)
    fail('HOP_LIMIT_EXCEEDED', 'hop limit exceeded');
  const seen = new Set<string>();
  for (const hop of envelope.hops) {
    if (seen.has(hop.relay)) fail('HOP_LIMIT_EXCEEDED', 'routing loop');
    seen.add(hop.relay);
  }
}

const hopShape = validator(HopSchema, 'hop');

/**
 * The envelope with one more hop appended (relays call this when they
 * accept it). From a checked envelope (`decodeEnvelope`, or this function)
 * with a valid hop, the result is checked and deep-frozen too, sharing the
 * signed parts (and their canonical text): encoding or parsing it again is cheap.
 */
export function withHop(envelope: Envelope, hop: Hop): Envelope {
  if (!checkedEnvelopes.has(envelope)) {
    const next: Envelope = { ...envelope, hops: [...envelope.hops, hop] };
    checkHops(next);
    return next;
  }
  const { relay, receivedAt } = hopShape.parse(hop);
  const hops: Hop[] = [...envelope.hops, Object.freeze({ relay, receivedAt })];
  if (hops.length > ENVELOPE_LIMITS.maxHops) fail('HOP_LIMIT_EXCEEDED', 'hop limit exceeded');
  const next: Envelope = Object.freeze({
    body: envelope.body,
    signature: envelope.signature,
    hops: Object.freeze(hops) as Hop[],
  });
  checkHops(next);
  checkedEnvelopes.add(next);
  return next;
}
