export * from './errors.js';
export * from './sodium.js';
export * from './bytes.js';
export * from './encoding.js';
export * from './schema.js';
export * from './address.js';
export * from './keys.js';
export * from './signed.js';
export { primitives, setPrimitives, wasmPrimitives, type Primitives } from './primitives.js';
export * from './statements.js';
export * from './trust.js';
export * from './envelope.js';
export * from './evidence.js';
export * from './attachment.js';
export * from './content/index.js';
export * from './dossier.js';
export * from './keyfile.js';
export * from './bundle.js';

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
} from './transparency/index.js';
