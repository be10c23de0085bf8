export {
  NETWORK_ERRORS,
  NetworkError,
  isNetworkError,
  type NetworkErrorCode,
  type NetworkErrorOptions,
} from './errors.js';
export { FILES, readEditions, type Draft, type SecretariatConfig } from './folder.js';
export {
  MIN_ROOT_PASSPHRASE,
  REVOCATION_REASONS,
  addAuthority,
  addPeer,
  addPoc,
  addRelay,
  anchorOf,
  exportAnchor,
  fingerprintOf,
  initSecretariat,
  loadSecretariat,
  publishEdition,
  readMemberKeys,
  removeMember,
  revoke,
  type Anchor,
  type MemberKeys,
  type PublishOptions,
  type PublishResult,
  type Secretariat,
} from './secretariat.js';
export {
  chainReport,
  diffEditions,
  renderDiff,
  sideOfDraft,
  sideOfEdition,
  verifyEditionValue,
  type ChainReport,
  type EditionDiff,
  type EditionReport,
} from './report.js';
export {
  MAX_PUBLICATION_ENTRIES,
  buildPublicationLocal,
  checkPublicationLocal,
  publicationFile,
  readPublications,
  readQueue,
  type CrashPoint,
  type Publication,
  type Queue,
} from './log.js';
export {
  addStatements,
  updateMember,
  type QueuedStatement,
  type UpdateResult,
} from './statements.js';
export { pushPublications, type PushResult } from './push.js';
export { logStatus, showLog, verifyLog, type LogStatus } from './log-report.js';
export { runCli } from './cli/program.js';
export { processIO, type CliIO } from './cli/io.js';
