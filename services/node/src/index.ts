export {
  AuthorityNode,
  openNode,
  type NodeStatus,
  type RelayCheck,
  type SyncEvent,
  type SyncReport,
} from './authority-node.js';
export {
  initNode,
  type InitNodeOptions,
  type InitNodeResult,
  type OpenNodeOptions,
} from './administration/node-directory.js';
export {
  NODE_ERRORS,
  NodeError,
  isNodeError,
  type NodeErrorCode,
  type NodeErrorOptions,
} from './errors.js';
export {
  Actor,
  CLEARANCES,
  PERMISSIONS,
  ROLES,
  type Clearance,
  type NewUser,
  type Permission,
  type Role,
  type UserInfo,
} from './administration/users.js';
export { STATUSES, type Status, type RecipientProgress } from './dossier-status.js';
export {
  AUDIT_ACTIONS,
  type AuditAction,
  type AuditEntry,
  type AuditProblem,
  type AuditReport,
} from './administration/audit-log.js';
export { verifyBundle } from './export/bundle.js';
export {
  NodeConfigSchema,
  type BlobStoreConfig,
  type KdfLimits,
  type NodeConfig,
} from './administration/config.js';
export type { ImportedKeys } from './administration/keyring.js';
export type { AttachmentInput } from './drafting/attachment-encryption.js';
export type { ComposeInput } from './drafting/draft.js';
export type { OutboxReport } from './sending/outbox.js';
export type { ItemOutcome } from './receiving/receive-item.js';
export type { ProgressListener, TransferProgress } from './context.js';
export type { EvidenceChainView, DossierDetails, EvidenceSummary } from './reading/details.js';
export type { CaseSummary, DossierFilter, QuarantineEntry } from './reading/lists.js';
export type { AttachmentInfo, OpenedView, SavedAttachment } from './reading/opening.js';
export type { DossierSummary } from './reading/summaries.js';
export * from './api/index.js';
export {
  DRAFT_WARNINGS,
  type DraftWarning,
  type DraftWarningCode,
} from './drafting/recipient-warnings.js';
export type {
  DirectoryEntry,
  DirectoryFilter,
  IntroductionSource,
  VouchedBy,
} from './directory/directory.js';
export { INTRODUCTION_REFUSALS, type IntroductionRefusal } from './introductions/verify.js';
export type {
  IntroductionInboxEntry,
  IntroductionOfSelf,
  IntroductionRequestInput,
  IntroductionRequestView,
  IssueInput,
} from './introductions/workflow.js';
export type { IntroducedRecord } from './store/introduction-table.js';
export {
  DEFAULT_ROTATION_LEAD_MS,
  type EncryptionRotation,
  type IdentityRotation,
  type NodeKeyInfo,
  type NodeKeyState,
} from './administration/key-rotation.js';
export type { SignerRevocation } from './reading/summaries.js';
