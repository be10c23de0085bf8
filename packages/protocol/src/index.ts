/**
 * `@rogatory/protocol`: the public surface of the protocol package
 * (docs/protocol.md). Every name here is used by another package, service,
 * test suite, the demo or the vectors scripts, or is a protocol operation the
 * spec defines; helpers used only inside the package stay unexported. Add a
 * name when another package needs it, under its topic.
 * Node-accelerated attachments and workers: `@rogatory/protocol/node`;
 * the test world and fixed-seed fixtures: `@rogatory/protocol/testing`.
 */

// Errors (§14): the catalogue (code -> vector outcome), the error class and its guard.
export {
  ERROR_CODES,
  ProtocolError,
  fail,
  isProtocolError,
  type ContentIssue,
  type ErrorCode,
} from './errors.js';

// Cryptographic primitives (§2): libsodium readiness, and the swappable sign/verify/hash set.
export { ready, sodium } from './sodium.js';
export { primitives, setPrimitives, wasmPrimitives, type Primitives } from './primitives.js';

// Bytes and canonical encoding (§3).
export {
  concatBytes,
  fromBase64url,
  fromHex,
  fromUtf8,
  randomBytes,
  sha256,
  toBase64url,
  toHex,
  utf8,
} from './bytes.js';
export { canonicalBytes, decodeCanonical } from './encoding.js';

// Shared schemas and the compiled-validator helper (§3.6).
export {
  AddressSchema,
  Base64url,
  Hex256,
  KeyIdSchema,
  NetworkIdSchema,
  Timestamp,
  validator,
  type Validator,
} from './schema.js';

// Addresses (`authority@network`, §3.5).
export { isAddress, networkOf } from './address.js';

// Keys, key references and signatures over canonical statements (§4-§5).
export {
  KeyRefSchema,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  keyRef,
  publicKeyOf,
  type EncryptionKeyPair,
  type KeyRef,
  type SigningKeyPair,
} from './keys.js';
export { CONTEXTS, hashOf, sign, signBytes, verifySignature } from './signed.js';

// Trust statements: encryption-key certificates, manifests, introductions, rotations, revocations (§6).
export {
  AuthorityEntrySchema,
  EncryptionKeyCertSchema,
  IntroductionSchema,
  KeyRotationSchema,
  ManifestBodySchema,
  ManifestSchema,
  PocEntrySchema,
  RelayEntrySchema,
  RevocationSchema,
  RevokedKeySchema,
  certifyEncryptionKey,
  checkManifestSuccession,
  manifestHash,
  signIntroduction,
  signKeyRotation,
  signManifest,
  signRevocation,
  verifyEncryptionKeyCert,
  verifyKeyRotation,
  verifyManifest,
  type AuthorityEntry,
  type EncryptionKeyCert,
  type Introduction,
  type KeyRotation,
  type Manifest,
  type ManifestBody,
  type PeerEntry,
  type PocEntry,
  type RelayEntry,
  type Revocation,
  type RevocationReason,
  type RevokedKey,
} from './statements.js';

// The trust store: pinned roots, manifests and the key resolution a verifier does (§7).
export {
  DOSSIER_PARTY_ROLES,
  ROTATION_OVERLAP_MAX_MS,
  TrustStore,
  verifyStandaloneCertificate,
  type ResolvedKey,
  type Role,
} from './trust.js';

// Envelopes: routing headers, hops, limits, sign/verify/encode (§8).
export {
  ENVELOPE_LIMITS,
  EnvelopeIdSchema,
  EnvelopeSchema,
  decodeEnvelope,
  encodeEnvelope,
  envelopeHash,
  newEnvelopeId,
  parseEnvelope,
  signEnvelope,
  verifyEnvelope,
  withHop,
  type ChunkRef,
  type Envelope,
  type EnvelopeBody,
} from './envelope.js';

// Evidences: acceptance, delivery, retrieval, non-delivery, rejection, and their chain (§12).
export {
  EvidenceSchema,
  checkEvidenceShape,
  issueEvidence,
  reasonFor,
  verifyEvidence,
  verifyEvidenceChain,
  type Evidence,
  type EvidenceKind,
  type Reason,
  type ReasonCode,
} from './evidence.js';

// Attachments: streaming encryption in fixed-size chunks, and their manifest (§11).
export { decryptAttachment, encryptAttachment } from './attachment.js';
export {
  ATTACHMENT_LIMITS,
  AttachmentManifestSchema,
  type AttachmentManifest,
} from './attachment-manifest.js';
export type { ByteSource } from './attachment-stream.js';

// Structured dossier content: request, answer and introduction types, schema and validator (§10).
export {
  ANSWER_TYPES,
  DossierContentSchema,
  HANDLING_CODES,
  INTRODUCTION_DECLINE_REASONS,
  INTRODUCTION_KINDS,
  REQUEST_TYPES,
  contentTemplate,
  exampleAnswer,
  exampleRequest,
  isIntroductionKind,
  renderContent,
  validateDossierContent,
  type AnswerType,
  type RequestType,
  type DossierContent,
  type IntroductionAnswerContent,
  type IntroductionInquiry,
  type IntroductionReferralContent,
  type IntroductionRequestContent,
} from './content/index.js';

// Signed and sealed dossiers (§9).
export {
  SealedDossierSchema,
  SignedDossierSchema,
  checkContentParties,
  encryptSignedDossier,
  openDossier,
  parseSealedDossier,
  sealDossier,
  type OpenedDossier,
  type SealedResult,
  type SignedDossier,
} from './dossier.js';

// Key files: secrets sealed with a passphrase (§13).
export {
  KDF_LIMITS,
  SealedSecretSchema,
  openEncryptionKeyAsync,
  openSecretAsync,
  openSigningKeyAsync,
  sealEncryptionKeyAsync,
  sealSecretAsync,
  sealSigningKey,
  sealSigningKeyAsync,
} from './keyfile.js';

// Export bundles verified offline (§17).
export {
  BUNDLE_ATTACHMENT_DIR,
  BUNDLE_FILE,
  BUNDLE_LIMITS,
  FullBundleSchema,
  bundleAttachmentFile,
  decodeBundle,
  encodeBundle,
  safeFileName,
  verifyBundle,
  type Bundle,
  type BundleFiles,
  type BundleKind,
  type BundleReport,
  type FullBundle,
  type VerifyBundleOptions,
} from './bundle.js';

// Key transparency (docs/protocol.md §18).
export {
  HASH_BYTES,
  MAX_NOTE_BYTES,
  MAX_NOTE_SIGNATURES,
  MAX_PROOF_HASHES,
  MemoryTree,
  NOTE_COSIGNATURE_V1,
  NOTE_ED25519,
  LogEntryKindSchema,
  LogEntrySchema,
  checkCheckpointsConsistent,
  checkpointText,
  consistencyPath,
  cosign,
  cosignedMessage,
  emptyRoot,
  encodeAddCheckpointRequest,
  encodeNote,
  fromBase64,
  inclusionPath,
  leafHash,
  logEntryBytes,
  logEntryFor,
  logEntryLeafHash,
  logOrigin,
  nodeHash,
  noteKeyId,
  parseAddCheckpointRequest,
  parseCheckpointText,
  parseLogEntry,
  parseNote,
  rangeHash,
  rootFromInclusionProof,
  rootFromLeafHashes,
  signCheckpoint,
  signatureLine,
  splitPoint,
  toBase64,
  verifyCheckpoint,
  verifyConsistency,
  verifyCosignature,
  verifyCosignedCheckpoint,
  verifyInclusion,
  witnessAddCheckpoint,
  // Publications: how a log's new entries and checkpoint reach relays and nodes (§18.10).
  PUBLICATION_LIMITS,
  PublicationSchema,
  buildPublication,
  checkPublicationQuorum,
  logKeyOf,
  publicationWitnesses,
  verifyPublication,
  verifyPublicationChain,
} from './transparency/index.js';
export type {
  AddCheckpointRequest,
  Checkpoint,
  CosignedCheckpoint,
  Cosigner,
  LogEntry,
  LogEntryKind,
  Note,
  NoteSignature,
  NoteSigner,
  NoteVerifier,
  SubtreeHashes,
  VerifiedCheckpoint,
  WitnessLogState,
  WitnessOutcome,
  LogState,
  Publication,
  PublicationSource,
  PublishedStatement,
  VerifiedPublication,
} from './transparency/index.js';
