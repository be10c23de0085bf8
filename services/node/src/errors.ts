import { isProtocolError, type ContentIssue } from '@rogatory/protocol';
import { isRelayClientError, isTransientError } from '@rogatory/client';
import { isStorageError } from '@rogatory/storage';

/**
 * The node's one error catalogue. Every failure an operator, the CLI or the
 * REST API layer can see has a stable code here, with the CLI exit code it
 * maps to. Messages are fixed per call site: codes and identifiers (local
 * ids, envelope ids, chunk ids, usernames of officers), never dossier
 * content, keys, passwords or personal data of the persons in a request.
 * `detail` carries the precise lower-level code (protocol, storage or relay).
 */
export const NODE_ERRORS = {
  /** Arguments or input are malformed (bad option, invalid JSON, unreadable file). */
  INPUT_INVALID: { exit: 1, meaning: 'Arguments or input are malformed.' },
  /** A host path leaves the file root, goes through a symbolic link, or is not the kind of file expected. */
  PATH_REFUSED: {
    exit: 1,
    meaning:
      'The path leaves the allowed directory, goes through a symbolic link or is not a regular file or directory.',
  },
  /** node.json, key files or trust material are missing or invalid. */
  CONFIG_INVALID: {
    exit: 1,
    meaning: 'The node configuration, key files or trust material are missing or invalid.',
  },
  /** `init` was pointed at a directory that already holds a node. */
  NODE_EXISTS: { exit: 1, meaning: 'The directory already holds a node.' },
  /** There is no node in the directory. */
  NODE_NOT_FOUND: { exit: 1, meaning: 'There is no node in the directory.' },
  /** A user with this username exists already. */
  USER_EXISTS: { exit: 1, meaning: 'A user with this username exists already.' },
  /** A received dossier, a bundle, a stored object or an evidence failed verification. */
  VERIFICATION_FAILED: {
    exit: 2,
    meaning: 'Verification failed: tampered, corrupted or not signed by a trusted key.',
  },
  /** The local audit log's hash chain or head does not verify: entries were altered, removed or truncated. */
  AUDIT_TAMPERED: {
    exit: 2,
    meaning: 'The audit log was altered, truncated or its head does not match.',
  },
  /** A locally stored encrypted record does not decrypt under the storage key: the database was altered. */
  LOCAL_DATA_TAMPERED: {
    exit: 2,
    meaning: 'A locally stored record does not decrypt: the database was altered.',
  },
  /** A chunk or sealed dossier could not be fetched intact (missing at the relay, or corrupted). */
  DOWNLOAD_FAILED: {
    exit: 2,
    meaning:
      'A chunk or sealed dossier could not be fetched intact; the mailbox item was not acknowledged.',
  },
  /** Unknown user, wrong password, or a disabled account. */
  AUTHENTICATION_FAILED: { exit: 3, meaning: 'Unknown user, wrong password or disabled account.' },
  /** The acting user's role does not allow the action. */
  NOT_AUTHORISED: { exit: 3, meaning: "The acting user's role does not allow this action." },
  /** Four-eyes rule: a dossier's drafter (or a co-drafter) may not approve it. */
  FOUR_EYES_VIOLATION: {
    exit: 3,
    meaning: 'The approver drafted or edited the dossier: a second person must approve.',
  },
  /** The dossier's handling code needs a clearance the user does not hold. */
  CLEARANCE_REQUIRED: {
    exit: 3,
    meaning: "The dossier's handling code requires a clearance the user does not hold.",
  },
  /** The relay could not be reached; the action is queued and will be retried. */
  RELAY_UNREACHABLE: {
    exit: 4,
    meaning: 'The relay could not be reached; outgoing items stay queued.',
  },
  /** A key file did not open: wrong passphrase (or a damaged key file). Nothing was changed. */
  PASSPHRASE_INVALID: {
    exit: 5,
    meaning: 'Wrong passphrase or damaged key file; nothing was changed.',
  },
  /** No dossier, case or user with this id. */
  NOT_FOUND: { exit: 6, meaning: 'No dossier, case or user with this id.' },
  /** The action does not apply to the dossier in its current status. */
  INVALID_STATE: { exit: 7, meaning: 'The action does not apply in the current status.' },
  /** The dossier content does not validate; `issues` says what to fix. */
  CONTENT_INVALID: {
    exit: 8,
    meaning: 'The dossier content is invalid or incomplete; the issues say what to fix.',
  },
  /** A recipient has no usable encryption key in the trusted manifests. */
  RECIPIENT_UNKNOWN: {
    exit: 8,
    meaning: 'A recipient is not a member of a trusted network or has no usable encryption key.',
  },
  /** A recipient's identity key was revoked by its network: nothing is sealed to it. */
  RECIPIENT_REVOKED: {
    exit: 8,
    meaning: "The recipient's identity key is revoked by its network; nothing is sealed to it.",
  },
  /** Local storage is out of space; nothing was half-written. */
  STORAGE_FULL: {
    exit: 9,
    meaning: 'Local storage is out of space; nothing was half-written, nothing acknowledged.',
  },
  /** Local storage (database or blob store) failed. */
  STORAGE_FAILED: { exit: 9, meaning: 'Local storage failed.' },
  /** The relay refused a submission or an evidence permanently. */
  RELAY_REJECTED: { exit: 10, meaning: 'The relay refused permanently (see detail).' },
  /** A bug or an unexpected condition. */
  INTERNAL: { exit: 70, meaning: 'Unexpected internal error.' },
} as const;

export type NodeErrorCode = keyof typeof NODE_ERRORS;

export interface NodeErrorOptions {
  readonly cause?: unknown;
  /** The lower-level code (protocol, storage or relay error code) that caused this error. */
  readonly detail?: string;
  /** Content issues (CONTENT_INVALID). */
  readonly issues?: readonly ContentIssue[];
}

/** The one error class of the node. */
export class NodeError extends Error {
  override readonly name = 'NodeError';
  readonly code: NodeErrorCode;
  readonly detail: string | undefined;
  readonly issues: readonly ContentIssue[];

  constructor(code: NodeErrorCode, message: string, options: NodeErrorOptions = {}) {
    super(
      `${code}: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.detail = options.detail;
    this.issues = options.issues ?? [];
  }

  /** CLI exit code of this error. */
  get exitCode(): number {
    return NODE_ERRORS[this.code].exit;
  }

  /** Safe to log or return: code, message, detail and issues (which name fields, never values); never the cause. */
  toJSON(): {
    code: NodeErrorCode;
    message: string;
    detail?: string;
    issues?: readonly ContentIssue[];
  } {
    return {
      code: this.code,
      message: this.message,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
      ...(this.issues.length === 0 ? {} : { issues: this.issues }),
    };
  }
}

/** Type guard: `isNodeError(err, 'FOUR_EYES_VIOLATION')`. */
export function isNodeError(err: unknown, code?: NodeErrorCode): err is NodeError {
  return err instanceof NodeError && (code === undefined || err.code === code);
}

export function nodeFail(code: NodeErrorCode, message: string, options?: NodeErrorOptions): never {
  throw new NodeError(code, message, options);
}

/**
 * Map any failure to the catalogue, keeping the lower-level code as
 * `detail`. NodeErrors pass through. `what` names the operation (fixed text).
 */
export function toNodeError(err: unknown, what: string): NodeError {
  if (err instanceof NodeError) return err;
  if (isStorageError(err)) {
    return new NodeError(
      err.code === 'STORAGE_FULL' ? 'STORAGE_FULL' : 'STORAGE_FAILED',
      `${what}: storage failed`,
      { cause: err, detail: err.code },
    );
  }
  if (isRelayClientError(err)) {
    if (isTransientError(err))
      return new NodeError('RELAY_UNREACHABLE', `${what}: relay unreachable`, {
        cause: err,
        detail: err.code,
      });
    return new NodeError('RELAY_REJECTED', `${what}: relay refused`, {
      cause: err,
      detail: err.code,
    });
  }
  if (isProtocolError(err)) {
    if (err.code === 'CONTENT_INVALID')
      return new NodeError('CONTENT_INVALID', `${what}: content invalid`, {
        cause: err,
        detail: err.code,
        issues: err.issues,
      });
    if (err.code === 'PASSPHRASE_INVALID')
      return new NodeError('PASSPHRASE_INVALID', `${what}: wrong passphrase`, {
        cause: err,
        detail: err.code,
      });
    return new NodeError('VERIFICATION_FAILED', `${what}: ${err.code}`, {
      cause: err,
      detail: err.code,
    });
  }
  if (isSqliteFull(err))
    return new NodeError('STORAGE_FULL', `${what}: database out of space`, {
      cause: err,
      detail: 'SQLITE_FULL',
    });
  if (isErrno(err, 'ENOSPC') || isErrno(err, 'EDQUOT'))
    return new NodeError('STORAGE_FULL', `${what}: out of space`, { cause: err, detail: 'ENOSPC' });
  return new NodeError('INTERNAL', `${what} failed`, { cause: err });
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === code;
}

function isSqliteFull(err: unknown): boolean {
  return isErrno(err, 'SQLITE_FULL');
}

/** The first error of a given predicate in a cause chain (fetch and stores wrap what a stream threw). */
export function findCause<T>(err: unknown, guard: (e: unknown) => e is T): T | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    if (guard(current)) return current;
    current = current instanceof Error ? current.cause : undefined;
  }
  return undefined;
}

/** A stable code for any failure (never a message). */
export function codeOf(err: unknown): string {
  const relay = findCause(err, isRelayClientError);
  if (relay) return relay.code;
  const storage = findCause(err, isStorageError);
  if (storage) return storage.code;
  const protocol = findCause(err, (e): e is { code: string } => isProtocolError(e));
  if (protocol) return protocol.code;
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return (err as { code: string }).code;
  return 'INTERNAL';
}
