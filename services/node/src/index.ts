export { AuthorityNode, openNode, type NodeStatus } from './node.js';
export {
  initNode,
  type InitNodeOptions,
  type InitNodeResult,
  type OpenNodeOptions,
} from './init.js';
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
} from './users.js';
export { STATUSES, type Status, type RecipientProgress } from './workflow.js';
export {
  AUDIT_ACTIONS,
  type AuditAction,
  type AuditEntry,
  type AuditProblem,
  type AuditReport,
} from './audit.js';
export { verifyBundle } from './bundle.js';
export {
  NodeConfigSchema,
  type BlobStoreConfig,
  type KdfLimits,
  type NodeConfig,
} from './config.js';
export type { ImportedKeys } from './keyring.js';
export type { AttachmentInput, ComposeInput } from './outbound.js';
export type { OutboxReport } from './outbox.js';
export type { ItemOutcome } from './inbound.js';
export type { SyncEvent, SyncReport } from './sync.js';
export type { ProgressListener, TransferProgress } from './context.js';
export type {
  AttachmentInfo,
  CaseSummary,
  DossierDetails,
  DossierFilter,
  DossierSummary,
  EvidenceChainView,
  EvidenceSummary,
  OpenedView,
  QuarantineEntry,
  SavedAttachment,
} from './views.js';
export * from './api/index.js';
