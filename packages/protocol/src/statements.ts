import { Type, type Static } from 'typebox';
import { decodeCanonical } from './encoding.js';
import { fail } from './errors.js';
import {
  KeyRefSchema,
  keyRef,
  publicKeyOf,
  type EncryptionKeyPair,
  type KeyRef,
  type SigningKeyPair,
} from './keys.js';
import {
  AddressSchema,
  Base64url,
  CountrySchema,
  Hex256,
  KeyIdSchema,
  NetworkIdSchema,
  RequestTypeSchema,
  Timestamp,
  validator,
} from './schema.js';
import {
  CONTEXTS,
  SignedSchema,
  hashOf,
  sign,
  signBytes,
  verifySignature,
  type Signed,
} from './signed.js';

const LIMIT = {
  relays: 64,
  pocs: 256,
  authorities: 10_000,
  peers: 256,
  encKeys: 16,
  revocations: 100_000,
};
const Name = Type.String({ minLength: 1, maxLength: 200 });
const Language = Type.String({ pattern: '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$', maxLength: 35 });

// ---------------------------------------------------------------- encryption key certificate

export const EncryptionKeyBodySchema = Type.Object(
  {
    type: Type.Literal('encryption-key'),
    subject: AddressSchema,
    identityKid: KeyIdSchema,
    key: KeyRefSchema,
  },
  { additionalProperties: false },
);
export type EncryptionKeyBody = Static<typeof EncryptionKeyBodySchema>;
export const EncryptionKeyCertSchema = SignedSchema(EncryptionKeyBodySchema);
export type EncryptionKeyCert = Signed<EncryptionKeyBody>;

/** Certify an X25519 subkey with the subject's Ed25519 identity key. */
export function certifyEncryptionKey(options: {
  subject: string;
  identity: SigningKeyPair;
  encryptionKey: EncryptionKeyPair;
  notBefore: number;
  notAfter: number;
}): EncryptionKeyCert {
  const body: EncryptionKeyBody = {
    type: 'encryption-key',
    subject: options.subject,
    identityKid: options.identity.kid,
    key: keyRef(options.encryptionKey, options),
  };
  return sign(CONTEXTS.encryptionKey, body, options.identity);
}

const encryptionKeyCertValidator = validator(EncryptionKeyCertSchema, 'encryption key certificate');

/**
 * Verify an encryption-key certificate against the subject's identity key:
 * issued for that identity, an X25519 key whose id matches it, a sane
 * validity, and the identity key's signature.
 */
export function verifyEncryptionKeyCert(value: unknown, identity: KeyRef): EncryptionKeyCert {
  const cert = encryptionKeyCertValidator.parse(value);
  checkEncryptionKeyCert(cert, identity, publicKeyOf(identity));
  return cert;
}

/**
 * The checks of {@link verifyEncryptionKeyCert} after its schema, in its
 * order, with the identity's public key already decoded (a manifest decodes
 * it once per member, not once per certificate).
 */
function checkEncryptionKeyCert(
  cert: EncryptionKeyCert,
  identity: KeyRef,
  identityKey: Uint8Array,
): void {
  const { body } = cert;
  if (body.identityKid !== identity.kid || cert.signature.kid !== identity.kid)
    fail('KEY_WRONG_ROLE', 'certificate not issued by this identity key');
  if (body.key.alg !== 'x25519') fail('SCHEMA_INVALID', 'certified key must be x25519');
  if (body.key.notAfter <= body.key.notBefore)
    fail('SCHEMA_INVALID', 'certified key validity ends before it starts');
  publicKeyOf(body.key);
  verifySignature(CONTEXTS.encryptionKey, body, cert.signature, identityKey);
}

// ---------------------------------------------------------------- network manifest

export const RelayEntrySchema = Type.Object(
  {
    id: AddressSchema,
    url: Type.String({ pattern: '^(https?|wss?)://', maxLength: 512 }),
    key: KeyRefSchema,
  },
  { additionalProperties: false },
);
export const PocEntrySchema = Type.Object(
  {
    address: AddressSchema,
    name: Name,
    country: CountrySchema,
    key: KeyRefSchema,
    /** A PoC runs the node software and is written to like an authority: same certificates, same rules. */
    encryptionKeys: Type.Array(EncryptionKeyCertSchema, { minItems: 1, maxItems: LIMIT.encKeys }),
  },
  { additionalProperties: false },
);
export const AuthorityEntrySchema = Type.Object(
  {
    address: AddressSchema,
    name: Name,
    country: CountrySchema,
    competences: Type.Array(RequestTypeSchema, { minItems: 1, maxItems: 4, uniqueItems: true }),
    languages: Type.Array(Language, { minItems: 1, maxItems: 16, uniqueItems: true }),
    key: KeyRefSchema,
    encryptionKeys: Type.Array(EncryptionKeyCertSchema, { minItems: 1, maxItems: LIMIT.encKeys }),
  },
  { additionalProperties: false },
);
export const PeerEntrySchema = Type.Object(
  {
    network: NetworkIdSchema,
    root: KeyRefSchema,
    /** A transit network (the hub) through which this peer is reached, or null for a direct link. */
    via: Type.Union([NetworkIdSchema, Type.Null()]),
  },
  { additionalProperties: false },
);
export const RevokedKeySchema = Type.Object(
  {
    kid: KeyIdSchema,
    revokedAt: Timestamp,
    reason: Type.Union([
      Type.Literal('key-compromise'),
      Type.Literal('superseded'),
      Type.Literal('cessation-of-operation'),
      Type.Literal('affiliation-changed'),
    ]),
  },
  { additionalProperties: false },
);
export type RevocationReason = Static<typeof RevokedKeySchema>['reason'];

export const ManifestBodySchema = Type.Object(
  {
    type: Type.Literal('manifest'),
    network: NetworkIdSchema,
    version: Type.Integer({ minimum: 1 }),
    /** Hex SHA-256 of the canonical previous signed manifest; null for version 1. */
    previous: Type.Union([Hex256, Type.Null()]),
    issuedAt: Timestamp,
    validUntil: Timestamp,
    root: KeyRefSchema,
    relays: Type.Array(RelayEntrySchema, { minItems: 1, maxItems: LIMIT.relays }),
    pocs: Type.Array(PocEntrySchema, { maxItems: LIMIT.pocs }),
    authorities: Type.Array(AuthorityEntrySchema, { maxItems: LIMIT.authorities }),
    peers: Type.Array(PeerEntrySchema, { maxItems: LIMIT.peers }),
    revoked: Type.Array(RevokedKeySchema, { maxItems: LIMIT.revocations }),
  },
  { additionalProperties: false },
);
export type ManifestBody = Static<typeof ManifestBodySchema>;
export type RelayEntry = Static<typeof RelayEntrySchema>;
export type PocEntry = Static<typeof PocEntrySchema>;
export type AuthorityEntry = Static<typeof AuthorityEntrySchema>;
export type PeerEntry = Static<typeof PeerEntrySchema>;
export type RevokedKey = Static<typeof RevokedKeySchema>;
export const ManifestSchema = SignedSchema(ManifestBodySchema);
export type Manifest = Signed<ManifestBody>;

const manifestValidator = validator(ManifestSchema, 'manifest');

/** Sign a manifest with the network root key; `previous` is computed from the prior version. */
export function signManifest(
  body: Omit<ManifestBody, 'type' | 'previous' | 'version'>,
  root: SigningKeyPair,
  previousManifest?: Manifest,
): Manifest {
  const full: ManifestBody = {
    type: 'manifest',
    ...body,
    version: previousManifest ? previousManifest.body.version + 1 : 1,
    previous: previousManifest ? manifestHash(previousManifest) : null,
  };
  if (full.root.kid !== root.kid)
    fail('KEY_WRONG_ROLE', 'manifest must be signed by the root it names');
  checkManifestConsistency(full);
  return sign(CONTEXTS.manifest, full, root);
}

/** Hex SHA-256 of the canonical signed manifest: what `previous` and anchors refer to. */
export function manifestHash(manifest: Manifest): string {
  return hashOf(manifest);
}

/** Structural rules a schema cannot express: unique addresses and kids, networks match. */
function checkManifestConsistency(body: ManifestBody): void {
  const seen = new Set<string>();
  const addresses = [
    ...body.relays.map((r) => r.id),
    ...body.pocs.map((p) => p.address),
    ...body.authorities.map((a) => a.address),
  ];
  for (const address of addresses) {
    if (!address.endsWith(`@${body.network}`))
      fail('SCHEMA_INVALID', `manifest: member ${address} is not in network ${body.network}`);
    if (seen.has(address)) fail('SCHEMA_INVALID', `manifest: ${address} listed twice`);
    seen.add(address);
  }
  const peers = new Set<string>();
  for (const peer of body.peers) {
    if (peer.network === body.network || peers.has(peer.network))
      fail('SCHEMA_INVALID', `manifest: bad peer ${peer.network}`);
    peers.add(peer.network);
  }
  if (body.validUntil <= body.issuedAt)
    fail('SCHEMA_INVALID', 'manifest: validUntil before issuedAt');
  // MC5: PoCs, then authorities, each in list order (the order of docs/protocol.md §6.2).
  for (const member of [...body.pocs, ...body.authorities]) {
    for (const cert of member.encryptionKeys) {
      if (
        cert.body.subject !== member.address ||
        cert.body.identityKid !== member.key.kid ||
        cert.body.key.alg !== 'x25519'
      ) {
        fail(
          'SCHEMA_INVALID',
          `manifest: encryption key ${cert.body.key.kid} not certified for ${member.address}`,
        );
      }
    }
  }
  const kids = new Set<string>();
  for (const key of [
    body.root,
    ...body.relays.map((r) => r.key),
    ...body.pocs.map((p) => p.key),
    ...body.authorities.map((a) => a.key),
    ...body.peers.map((p) => p.root),
  ]) {
    if (key.alg !== 'ed25519')
      fail('SCHEMA_INVALID', `manifest: signing key ${key.kid} must be ed25519`);
    if (key.notAfter <= key.notBefore)
      fail('SCHEMA_INVALID', `manifest: key ${key.kid} validity ends before it starts`);
    if (kids.has(key.kid)) fail('SCHEMA_INVALID', `manifest: key ${key.kid} listed twice`);
    kids.add(key.kid);
    publicKeyOf(key);
  }
  for (const peer of body.peers) {
    if (peer.via !== null && !body.peers.some((p) => p.network === peer.via && p.via === null)) {
      fail(
        'SCHEMA_INVALID',
        `manifest: peer ${peer.network} is reached via ${peer.via}, which is not a direct peer`,
      );
    }
  }
}

/**
 * Verify a manifest against a root key the caller trusts (pinned, or an
 * anchor from a verified peer manifest). Checks schema, consistency, the root
 * signature and every embedded encryption-key certificate (PoCs', then
 * authorities').
 */
export function verifyManifest(value: unknown, trustedRoot: KeyRef): Manifest {
  const manifest = manifestValidator.parse(value);
  checkManifestConsistency(manifest.body);
  if (
    manifest.body.root.kid !== trustedRoot.kid ||
    manifest.body.root.publicKey !== trustedRoot.publicKey
  ) {
    fail(
      'TRUST_CHAIN_BROKEN',
      `manifest of ${manifest.body.network} is not signed by the trusted root`,
    );
  }
  if (manifest.signature.kid !== trustedRoot.kid)
    fail('SIGNATURE_INVALID', 'manifest signature names another key');
  verifySignature(CONTEXTS.manifest, manifest.body, manifest.signature, publicKeyOf(trustedRoot));
  // The manifest's schema covered every certificate: no second validation of each.
  for (const member of [...manifest.body.pocs, ...manifest.body.authorities]) {
    const identityKey = publicKeyOf(member.key);
    for (const cert of member.encryptionKeys) checkEncryptionKeyCert(cert, member.key, identityKey);
  }
  return manifest;
}

/** Check that `next` follows `prev`: MANIFEST_ROLLBACK when it is not newer, MANIFEST_CHAIN_BROKEN when it skips or forks (version + 1, previous hash). */
export function checkManifestSuccession(prev: Manifest, next: Manifest): void {
  if (next.body.network !== prev.body.network)
    fail('MANIFEST_CHAIN_BROKEN', 'manifest of another network');
  if (next.body.version <= prev.body.version)
    fail(
      'MANIFEST_ROLLBACK',
      `manifest version ${next.body.version} is not newer than the held version ${prev.body.version}`,
    );
  if (next.body.version !== prev.body.version + 1)
    fail(
      'MANIFEST_CHAIN_BROKEN',
      `manifest version ${next.body.version} does not follow ${prev.body.version}`,
    );
  if (next.body.previous !== manifestHash(prev))
    fail('MANIFEST_CHAIN_BROKEN', 'manifest previous hash does not match');
}

// ---------------------------------------------------------------- introduction

export const IntroductionBodySchema = Type.Object(
  {
    type: Type.Literal('introduction'),
    /** The point of contact issuing the introduction. */
    issuer: AddressSchema,
    /** The authority being introduced (may be in another network). */
    subject: AddressSchema,
    subjectKey: KeyRefSchema,
    /** Who the introduction is for: an authority address or a whole network. */
    audience: Type.Union([AddressSchema, NetworkIdSchema]),
    competences: Type.Array(RequestTypeSchema, { minItems: 1, maxItems: 4, uniqueItems: true }),
    note: Type.String({ maxLength: 2000 }),
    issuedAt: Timestamp,
    validUntil: Timestamp,
  },
  { additionalProperties: false },
);
export type IntroductionBody = Static<typeof IntroductionBodySchema>;
export const IntroductionSchema = SignedSchema(IntroductionBodySchema);
export type Introduction = Signed<IntroductionBody>;

export function signIntroduction(
  body: Omit<IntroductionBody, 'type'>,
  poc: SigningKeyPair,
): Introduction {
  if (body.validUntil <= body.issuedAt)
    fail('SCHEMA_INVALID', 'introduction: validUntil before issuedAt');
  return sign(CONTEXTS.introduction, { type: 'introduction', ...body }, poc);
}

// ---------------------------------------------------------------- key rotation

export const KeyRotationBodySchema = Type.Object(
  {
    type: Type.Literal('key-rotation'),
    subject: AddressSchema,
    oldKid: KeyIdSchema,
    newKey: KeyRefSchema,
    effectiveAt: Timestamp,
    /** Signature by the new key over the rotation proof input: proves possession. */
    proof: Base64url(64),
  },
  { additionalProperties: false },
);
export type KeyRotationBody = Static<typeof KeyRotationBodySchema>;
export const KeyRotationSchema = SignedSchema(KeyRotationBodySchema);
export type KeyRotation = Signed<KeyRotationBody>;

function rotationProofBody(subject: string, oldKid: string, newKid: string, effectiveAt: number) {
  return { type: 'key-rotation-proof', subject, oldKid, newKid, effectiveAt };
}

/** Rotate an identity key: signed by the old key, with a possession proof by the new one. */
export function signKeyRotation(options: {
  subject: string;
  oldKey: SigningKeyPair;
  newKey: SigningKeyPair;
  effectiveAt: number;
  notAfter: number;
}): KeyRotation {
  const { subject, oldKey, newKey, effectiveAt } = options;
  const proof = signBytes(
    CONTEXTS.keyRotationProof,
    rotationProofBody(subject, oldKey.kid, newKey.kid, effectiveAt),
    newKey,
  );
  const body: KeyRotationBody = {
    type: 'key-rotation',
    subject,
    oldKid: oldKey.kid,
    newKey: keyRef(newKey, { notBefore: effectiveAt, notAfter: options.notAfter }),
    effectiveAt,
    proof: proof.value,
  };
  return sign(CONTEXTS.keyRotation, body, oldKey);
}

/** Verify a rotation against the old key; also checks the new key's possession proof. */
export function verifyKeyRotation(value: unknown, oldKey: KeyRef): KeyRotation {
  const rotation = validator(KeyRotationSchema, 'key rotation').parse(value);
  const { body } = rotation;
  if (body.oldKid !== oldKey.kid || rotation.signature.kid !== oldKey.kid)
    fail('KEY_WRONG_ROLE', 'rotation not signed by the key it rotates');
  if (body.newKey.alg !== 'ed25519' || body.newKey.notBefore !== body.effectiveAt)
    fail('SCHEMA_INVALID', 'rotation: new key must be ed25519 valid from effectiveAt');
  verifySignature(CONTEXTS.keyRotation, body, rotation.signature, publicKeyOf(oldKey));
  verifySignature(
    CONTEXTS.keyRotationProof,
    rotationProofBody(body.subject, body.oldKid, body.newKey.kid, body.effectiveAt),
    { kid: body.newKey.kid, value: body.proof },
    publicKeyOf(body.newKey),
  );
  return rotation;
}

// ---------------------------------------------------------------- revocation

export const RevocationBodySchema = Type.Object(
  {
    type: Type.Literal('revocation'),
    network: NetworkIdSchema,
    subject: AddressSchema,
    kid: KeyIdSchema,
    reason: RevokedKeySchema.properties.reason,
    /** Objects made with the key at or after this time are invalid. For key-compromise, set it to the earliest suspected compromise. */
    revokedAt: Timestamp,
    issuedAt: Timestamp,
  },
  { additionalProperties: false },
);
export type RevocationBody = Static<typeof RevocationBodySchema>;
export const RevocationSchema = SignedSchema(RevocationBodySchema);
export type Revocation = Signed<RevocationBody>;

/** Revoke a key; signed by the network root or by the revoked key itself. */
export function signRevocation(
  body: Omit<RevocationBody, 'type'>,
  signer: SigningKeyPair,
): Revocation {
  return sign(CONTEXTS.revocation, { type: 'revocation', ...body }, signer);
}

// ---------------------------------------------------------------- helpers

/** Parse canonical bytes of a signed statement with its schema. */
export function decodeManifest(bytes: Uint8Array): Manifest {
  return manifestValidator.parse(decodeCanonical(bytes));
}

/** Raw verification of any statement with a known key (used by the trust store). */
export function verifyStatementSignature(
  context: (typeof CONTEXTS)[keyof typeof CONTEXTS],
  statement: Signed<unknown>,
  key: KeyRef,
): void {
  if (statement.signature.kid !== key.kid) fail('SIGNATURE_INVALID', 'signature names another key');
  verifySignature(context, statement.body, statement.signature, publicKeyOf(key));
}
