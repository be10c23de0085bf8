import { Type, type Static } from 'typebox';
import {
  AttachmentManifestSchema,
  attachmentChunkLength,
  parseAttachmentManifest,
  type AttachmentManifest,
} from './attachment-manifest.js';
import {
  concatBytes,
  equalBytes,
  fromBase64url,
  randomBytes,
  sha256,
  toBase64url,
  toHex,
  utf8,
} from './bytes.js';
import {
  DossierContentSchema,
  validateDossierContent,
  type DossierContent,
} from './content/index.js';
import { canonicalBytes, decodeCanonical } from './encoding.js';
import { fail, ProtocolError, type ContentIssue } from './errors.js';
import {
  ENVELOPE_LIMITS,
  EnvelopeIdSchema,
  newEnvelopeId,
  parseEnvelope,
  signEnvelope,
  type ChunkRef,
  type Envelope,
} from './envelope.js';
import { publicKeyOf, type EncryptionKeyPair, type KeyRef, type SigningKeyPair } from './keys.js';
import { AddressSchema, Base64url, KeyIdSchema, Timestamp, validator } from './schema.js';
import { CONTEXTS, SignedSchema, sign, verifySignature, type Signed } from './signed.js';
import { sodium } from './sodium.js';
import { DOSSIER_PARTY_ROLES, type ResolvedKey, type TrustStore } from './trust.js';

/** The signed plaintext of a dossier: who, to whom, under which envelope, and what. */
export const DossierBodySchema = Type.Object(
  {
    type: Type.Literal('dossier'),
    version: Type.Literal(1),
    envelopeId: EnvelopeIdSchema,
    sender: AddressSchema,
    recipients: Type.Array(AddressSchema, {
      minItems: 1,
      maxItems: ENVELOPE_LIMITS.maxRecipients,
      uniqueItems: true,
    }),
    createdAt: Timestamp,
    content: DossierContentSchema,
    attachments: Type.Array(AttachmentManifestSchema, { maxItems: 1000 }),
  },
  { additionalProperties: false },
);
export type DossierBody = Static<typeof DossierBodySchema>;
export const SignedDossierSchema = SignedSchema(DossierBodySchema);
export type SignedDossier = Signed<DossierBody>;

/** crypto_secretstream_xchacha20poly1305_ABYTES: what each ciphertext chunk adds. */
const SECRETSTREAM_OVERHEAD = 17;

/** Size of a content key wrapped with crypto_box_seal: ephemeral pk (32) + MAC (16) + key (32). */
const WRAPPED_KEY_BYTES = 80;

export const KeyWrapSchema = Type.Object(
  { to: AddressSchema, kid: KeyIdSchema, key: Base64url(WRAPPED_KEY_BYTES) },
  { additionalProperties: false },
);
export type KeyWrap = Static<typeof KeyWrapSchema>;

/**
 * The object a relay stores under `envelope.dossier.id`: opaque to everyone without a wrapped key.
 * Version 2 adds `keyCommitment`: XChaCha20-Poly1305 is not key-committing, so without it a sender
 * could craft one ciphertext that opens to different dossiers under two content keys, wrap one
 * key for the recipient and later show the other in an export bundle.
 */
export const SealedDossierSchema = Type.Object(
  {
    type: Type.Literal('sealed-dossier'),
    version: Type.Literal(2),
    envelopeId: EnvelopeIdSchema,
    nonce: Base64url(24),
    keyCommitment: Base64url(32),
    wraps: Type.Array(KeyWrapSchema, { minItems: 1, maxItems: ENVELOPE_LIMITS.maxRecipients + 1 }),
    ciphertext: Base64url(),
  },
  { additionalProperties: false },
);
export type SealedDossier = Static<typeof SealedDossierSchema>;

const sealedShape = validator(SealedDossierSchema, 'sealed dossier');
const signedDossierShape = validator(SignedDossierSchema, 'dossier');
const dossierBodyShape = validator(DossierBodySchema, 'dossier');

/** Additional data of the payload AEAD: binds the ciphertext to its envelope id and every key wrap. */
export function payloadAssociatedData(envelopeId: string, wraps: readonly KeyWrap[]): Uint8Array {
  return concatBytes(
    utf8('rogatory/v1/sealed-dossier'),
    Uint8Array.of(0),
    canonicalBytes({ envelopeId, wraps }),
  );
}

/** Commitment to a content key: SHA-256 of a domain-separated copy (§9.4). The key is 32 random bytes, so this reveals nothing. */
export function contentKeyCommitment(contentKey: Uint8Array): Uint8Array {
  return sha256(
    concatBytes(utf8('rogatory/v1/content-key-commitment'), Uint8Array.of(0), contentKey),
  );
}

/**
 * Decrypt the payload of a sealed dossier with its content key: the key must match the sealed
 * object's commitment (constant-time compare), then the AEAD must open. Both failures are
 * DECRYPT_FAILED. Returns the canonical signed-dossier bytes, not yet decoded.
 */
export function decryptSealedPayload(sealed: SealedDossier, contentKey: Uint8Array): Uint8Array {
  const s = sodium();
  if (
    !equalBytes(
      fromBase64url(sealed.keyCommitment, 'keyCommitment'),
      contentKeyCommitment(contentKey),
    )
  )
    fail('DECRYPT_FAILED', "content key does not match the sealed dossier's key commitment");
  try {
    return s.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      fromBase64url(sealed.ciphertext, 'ciphertext'),
      payloadAssociatedData(sealed.envelopeId, sealed.wraps),
      fromBase64url(sealed.nonce, 'nonce'),
      contentKey,
    );
  } catch (cause) {
    return fail('DECRYPT_FAILED', 'dossier payload does not decrypt', { cause });
  }
}

/** Decode the canonical bytes of a sealed dossier object (limit 8 MiB) and check its schema. */
export function parseSealedDossier(bytes: Uint8Array): SealedDossier {
  return sealedShape.parse(decodeCanonical(bytes, ENVELOPE_LIMITS.maxDossierBytes));
}

/**
 * The parties named in the content must be the parties of the dossier: a
 * request's requesting authority (an answer's `from`) is the sender, its
 * requested authority (an answer's `to`) one of the recipients. The
 * introduction kinds name them as `from` and `to` addresses.
 */
export function checkContentParties(
  content: DossierContent,
  sender: string,
  recipients: readonly string[],
): ContentIssue[] {
  const issues: ContentIssue[] = [];
  const [fromPath, from, toPath, to] =
    content.kind === 'request'
      ? [
          '/header/requestingAuthority/address',
          content.header.requestingAuthority.address,
          '/header/requestedAuthority/address',
          content.header.requestedAuthority.address,
        ]
      : content.kind === 'answer'
        ? ['/from/address', content.from.address, '/to/address', content.to.address]
        : ['/from', content.from, '/to', content.to];
  if (from !== sender)
    issues.push({
      path: fromPath,
      message: "The sending authority must be this node's own authority address.",
    });
  if (!recipients.includes(to))
    issues.push({
      path: toPath,
      message: 'The addressed authority must be one of the recipients of the dossier.',
    });
  return issues;
}

/** Ciphertext chunk references of attachments, in order, as the envelope lists them. */
export function attachmentChunkRefs(attachments: readonly AttachmentManifest[]): ChunkRef[] {
  return attachments.flatMap((a) =>
    a.chunks.map((id, i) => ({ id, size: attachmentChunkLength(a, i) + SECRETSTREAM_OVERHEAD })),
  );
}

/**
 * Fixed randomness for test vectors: the content key (32 bytes), the payload
 * nonce (24 bytes) and optionally, per wrap in order, the ephemeral X25519
 * secret key of its sealed box (otherwise drawn by crypto_box_seal).
 */
export interface TestRandomness {
  readonly contentKey: Uint8Array;
  readonly nonce: Uint8Array;
  readonly ephemeralSecretKeys?: readonly Uint8Array[];
}

/**
 * crypto_box_seal with a given ephemeral secret key (test vectors only):
 * epk ‖ crypto_box_easy(m, BLAKE2b-192(epk ‖ pk), pk, esk), which is exactly
 * what crypto_box_seal computes with a random esk (docs/protocol.md §2).
 */
function boxSealWith(
  message: Uint8Array,
  publicKey: Uint8Array,
  ephemeralSecretKey: Uint8Array,
): Uint8Array {
  const s = sodium();
  const epk = s.crypto_scalarmult_base(ephemeralSecretKey);
  const nonce = s.crypto_generichash(24, concatBytes(epk, publicKey), null);
  return concatBytes(epk, s.crypto_box_easy(message, nonce, publicKey, ephemeralSecretKey));
}

/**
 * Encrypt a signed dossier: fresh content key, XChaCha20-Poly1305 over the
 * canonical signed dossier, the key wrapped for every target. Returns the
 * canonical bytes of the sealed dossier object. `sealDossier` is the normal
 * entry point; this step alone exists for tools that re-seal (and for test
 * vectors that build hostile objects).
 */
export function encryptSignedDossier(options: {
  readonly dossier: SignedDossier;
  readonly targets: readonly { readonly to: string; readonly key: KeyRef }[];
  readonly envelopeId?: string;
  readonly testRandomness?: TestRandomness;
}): Uint8Array {
  const s = sodium();
  const envelopeId = options.envelopeId ?? options.dossier.body.envelopeId;
  const contentKey = options.testRandomness
    ? Uint8Array.from(options.testRandomness.contentKey)
    : s.crypto_aead_xchacha20poly1305_ietf_keygen();
  const nonce =
    options.testRandomness?.nonce ?? randomBytes(s.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  const wraps: KeyWrap[] = options.targets.map(({ to, key }, i) => {
    if (key.alg !== 'x25519') fail('KEY_WRONG_ROLE', `key ${key.kid} is not an encryption key`);
    const ephemeral = options.testRandomness?.ephemeralSecretKeys?.[i];
    return {
      to,
      kid: key.kid,
      key: toBase64url(
        ephemeral
          ? boxSealWith(contentKey, publicKeyOf(key), ephemeral)
          : s.crypto_box_seal(contentKey, publicKeyOf(key)),
      ),
    };
  });
  const ciphertext = s.crypto_aead_xchacha20poly1305_ietf_encrypt(
    canonicalBytes(options.dossier),
    payloadAssociatedData(envelopeId, wraps),
    null,
    nonce,
    contentKey,
  );
  const keyCommitment = toBase64url(contentKeyCommitment(contentKey));
  s.memzero(contentKey);
  const sealed = canonicalBytes({
    type: 'sealed-dossier',
    version: 2,
    envelopeId,
    nonce: toBase64url(nonce),
    keyCommitment,
    wraps,
    ciphertext: toBase64url(ciphertext),
  } satisfies SealedDossier);
  if (sealed.length > ENVELOPE_LIMITS.maxDossierBytes)
    fail('LIMIT_EXCEEDED', 'sealed dossier too large: move documents into attachments');
  return sealed;
}

export interface SealOptions {
  readonly sender: {
    readonly address: string;
    readonly identity: SigningKeyPair;
    /** The sender's own encryption key: a wrap for it keeps the dossier readable in the sender's archive. */
    readonly archiveKey: KeyRef;
  };
  /** Every recipient with the encryption key to wrap for (from the trust store, `encryptionKeysFor`). */
  readonly recipients: readonly { readonly address: string; readonly encryptionKey: KeyRef }[];
  readonly content: DossierContent;
  readonly attachments?: readonly AttachmentManifest[];
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly maxHops?: number;
  /** Fixed envelope id (test vectors); random otherwise. */
  readonly envelopeId?: string;
  /** Fixed randomness (test vectors only). */
  readonly testRandomness?: TestRandomness;
}

export interface SealedResult {
  readonly envelope: Envelope;
  /** Canonical bytes of the sealed dossier object; its SHA-256 is `envelope.body.dossier.id`. */
  readonly sealed: Uint8Array;
  readonly dossier: SignedDossier;
}

/**
 * Sign-then-encrypt a dossier and build its envelope.
 *
 * 1. The dossier body (envelope id, sender, recipients, content, attachment
 *    manifests) is signed with the sender's identity key.
 * 2. The canonical signed dossier is encrypted with a fresh 32-byte content
 *    key (crypto_aead_xchacha20poly1305_ietf_encrypt, random 24-byte nonce,
 *    additional data binding the envelope id and the wraps).
 * 3. The content key is wrapped (crypto_box_seal) for each recipient's
 *    encryption key and for the sender's archive key.
 * 4. The envelope lists the sealed object and every attachment chunk and is
 *    signed by the sender.
 */
export function sealDossier(options: SealOptions): SealedResult {
  const attachments = options.attachments ?? [];
  const recipients = options.recipients.map((r) => r.address);
  const envelopeId = options.envelopeId ?? newEnvelopeId();
  const issues = validateDossierContent(options.content, { attachmentCount: attachments.length });
  if (issues.length === 0)
    issues.push(...checkContentParties(options.content, options.sender.address, recipients));
  if (issues.length > 0)
    fail('CONTENT_INVALID', `dossier content has ${issues.length} problem(s)`, { issues });

  const body: DossierBody = {
    type: 'dossier',
    version: 1,
    envelopeId,
    sender: options.sender.address,
    recipients,
    createdAt: options.createdAt,
    content: options.content,
    attachments: [...attachments],
  };
  for (const a of attachments) parseAttachmentManifest(a);
  const dossier = sign(CONTEXTS.dossier, dossierBodyShape.parse(body), options.sender.identity);

  const sealed = encryptSignedDossier({
    dossier,
    targets: [
      ...options.recipients.map((r) => ({ to: r.address, key: r.encryptionKey })),
      { to: options.sender.address, key: options.sender.archiveKey },
    ],
    ...(options.testRandomness ? { testRandomness: options.testRandomness } : {}),
  });
  const envelope = signEnvelope(
    {
      id: envelopeId,
      sender: options.sender.address,
      recipients,
      createdAt: options.createdAt,
      expiresAt: options.expiresAt,
      maxHops: options.maxHops ?? 4,
      dossier: { id: toHex(sha256(sealed)), size: sealed.length },
      chunks: attachmentChunkRefs(attachments),
    },
    options.sender.identity,
  );
  return { envelope, sealed, dossier };
}

export interface OpenOptions {
  readonly envelope: unknown;
  readonly sealed: Uint8Array;
  /** Who is opening: a recipient, or the sender reading its own archive. */
  readonly reader: {
    readonly address: string;
    readonly encryptionKeys: readonly EncryptionKeyPair[];
  };
  readonly trust: TrustStore;
}

export interface OpenedDossier {
  readonly envelope: Envelope;
  readonly dossier: SignedDossier;
  readonly sender: ResolvedKey;
}

/**
 * Open a sealed dossier. In order, a failure at each step gives:
 * malformed envelope or sealed object (ENCODING_INVALID / SCHEMA_INVALID);
 * envelope signature or sender key (SIGNATURE_INVALID, KEY_*);
 * sealed object not the one the envelope names (CHUNK_HASH_MISMATCH, ENVELOPE_MISMATCH);
 * reader not among the envelope's recipients or no wrap for one of its keys (NOT_ADDRESSED);
 * unwrap or payload decryption (DECRYPT_FAILED);
 * inner dossier signature or key (SIGNATURE_INVALID, KEY_*);
 * inner envelope id or sender differ (ENVELOPE_MISMATCH);
 * inner recipients differ from the envelope's (DOSSIER_READDRESSED);
 * attachment chunks differ from the envelope's (ENVELOPE_MISMATCH).
 * Expiry is not checked: archives stay readable; relays enforce expiry.
 */
export function openDossier(options: OpenOptions): OpenedDossier {
  const s = sodium();
  const envelope = parseEnvelope(options.envelope);
  const env = envelope.body;
  const envSender = options.trust.resolveSigningKey(
    env.sender,
    envelope.signature.kid,
    env.createdAt,
    DOSSIER_PARTY_ROLES,
  );
  verifySignature(CONTEXTS.envelope, env, envelope.signature, publicKeyOf(envSender.key));

  if (
    options.sealed.length !== env.dossier.size ||
    toHex(sha256(options.sealed)) !== env.dossier.id
  ) {
    fail('CHUNK_HASH_MISMATCH', 'sealed dossier is not the object the envelope names');
  }
  const sealed = parseSealedDossier(options.sealed);
  if (sealed.envelopeId !== env.id)
    fail('ENVELOPE_MISMATCH', 'sealed dossier belongs to another envelope');

  const reader = options.reader.address;
  if (reader !== env.sender && !env.recipients.includes(reader))
    fail('NOT_ADDRESSED', `envelope ${env.id} is not addressed to ${reader}`);
  let contentKey: Uint8Array | undefined;
  for (const wrap of sealed.wraps) {
    if (wrap.to !== reader) continue;
    const pair = options.reader.encryptionKeys.find((k) => k.kid === wrap.kid);
    if (!pair) continue;
    try {
      contentKey = s.crypto_box_seal_open(
        fromBase64url(wrap.key, 'wrap'),
        pair.publicKey,
        pair.secretKey,
      );
    } catch (cause) {
      fail('DECRYPT_FAILED', 'content key unwrap failed', { cause });
    }
    break;
  }
  if (!contentKey) return fail('NOT_ADDRESSED', `no content key wrapped for a key of ${reader}`);

  let plaintext: Uint8Array;
  try {
    plaintext = decryptSealedPayload(sealed, contentKey);
  } finally {
    s.memzero(contentKey);
  }

  const dossier = signedDossierShape.parse(
    decodeCanonical(plaintext, ENVELOPE_LIMITS.maxDossierBytes),
  );
  const body = dossier.body;
  if (body.sender !== env.sender)
    fail('ENVELOPE_MISMATCH', 'dossier signed by another sender than the envelope');
  const sender = options.trust.resolveSigningKey(
    body.sender,
    dossier.signature.kid,
    body.createdAt,
    DOSSIER_PARTY_ROLES,
  );
  verifySignature(CONTEXTS.dossier, body, dossier.signature, publicKeyOf(sender.key));
  if (body.envelopeId !== env.id)
    fail('ENVELOPE_MISMATCH', 'dossier was signed for another envelope');
  const signedFor = [...body.recipients].sort();
  const envelopeFor = [...env.recipients].sort();
  if (signedFor.length !== envelopeFor.length || signedFor.some((r, i) => r !== envelopeFor[i])) {
    fail('DOSSIER_READDRESSED', 'dossier was signed for other recipients than the envelope names');
  }
  for (const a of body.attachments) parseAttachmentManifest(a);
  const refs = attachmentChunkRefs(body.attachments);
  if (
    refs.length !== env.chunks.length ||
    refs.some((r, i) => r.id !== env.chunks[i]!.id || r.size !== env.chunks[i]!.size)
  ) {
    fail('ENVELOPE_MISMATCH', 'attachment chunks differ from the envelope');
  }
  const issues = validateDossierContent(body.content, { attachmentCount: body.attachments.length });
  if (issues.length === 0)
    issues.push(...checkContentParties(body.content, body.sender, body.recipients));
  if (issues.length > 0)
    throw new ProtocolError('CONTENT_INVALID', `dossier content has ${issues.length} problem(s)`, {
      issues,
    });
  return { envelope, dossier, sender };
}
