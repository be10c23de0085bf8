import { isProtocolError } from '@rogatory/protocol';

/**
 * The secretariat's one error catalogue. Every refusal of `rogatory-network`
 * has a stable code here with the CLI exit code it maps to (same numbering
 * as the node CLI: 1 input, 2 verification, 4 relay unreachable,
 * 5 passphrase, 6 not found, 7 state, 8 content, 10 relay refused). Messages name files, fields, addresses and key ids,
 * never a passphrase or a private key. `detail` carries the lower-level
 * protocol code.
 */
export const NETWORK_ERRORS = {
  /** Arguments or an input file are malformed; the message names the file or field. */
  INPUT_INVALID: {
    exit: 1,
    meaning: 'Arguments or an input file are malformed (the file or field is named).',
  },
  /** `init` was pointed at a folder that already holds a secretariat. */
  SECRETARIAT_EXISTS: { exit: 1, meaning: 'The folder already holds a secretariat.' },
  /** There is no secretariat in the folder. */
  SECRETARIAT_NOT_FOUND: { exit: 1, meaning: 'There is no secretariat in the folder (run init).' },
  /** The address, key id or peer network is listed already in the draft. */
  MEMBER_EXISTS: { exit: 1, meaning: 'The address, key or peer network is listed already.' },
  /** The key is revoked already. */
  ALREADY_REVOKED: { exit: 1, meaning: 'The key is revoked already; nothing was changed.' },
  /** The fingerprint read out of band does not match the anchor. */
  FINGERPRINT_MISMATCH: {
    exit: 2,
    meaning:
      'The fingerprint compared out of band does not match the anchor; nothing was imported.',
  },
  /** An edition or file does not verify (signature, root, anchor, or not in this chain). */
  VERIFICATION_FAILED: { exit: 2, meaning: 'The edition does not verify (see detail).' },
  /** The folder's editions are not one valid chain from version 1: a skipped, forked or foreign edition. */
  EDITION_CHAIN_BROKEN: {
    exit: 2,
    meaning:
      "The folder's editions are not one chain from version 1 (skipped, forked or foreign edition); nothing is published.",
  },
  /** The root key did not open: wrong passphrase or a damaged key file. */
  PASSPHRASE_INVALID: {
    exit: 5,
    meaning: 'Wrong passphrase or damaged root key file; nothing was changed.',
  },
  /** No member, key or edition with this name. */
  MEMBER_NOT_FOUND: {
    exit: 6,
    meaning: 'No member, key or edition with this address, key id or version.',
  },
  /** The draft was based on another edition than the folder's last one. */
  DRAFT_STALE: {
    exit: 7,
    meaning:
      'The draft was based on an older edition than the last one published; nothing is published.',
  },
  /** The draft does not make a valid manifest (e.g. no relay); `detail` has the protocol code. */
  DRAFT_INVALID: { exit: 8, meaning: 'The draft does not make a valid manifest (see detail).' },
  /** A statement given to `log add` or an update does not verify (schema, signature, network); `detail` has the protocol code. */
  STATEMENT_INVALID: {
    exit: 2,
    meaning:
      'The statement does not verify (schema, signature or network; see detail); nothing was queued.',
  },
  /** The statement is signed by, or rotates, a key the member does not hold in the current edition (or draft). */
  KEY_NOT_LISTED: {
    exit: 2,
    meaning:
      'The statement is signed by, or rotates, a key that is not the member’s listed key; nothing was queued.',
  },
  /** log.db, the publications/ files or an interrupted publish do not agree; the message names the file or size. */
  LOG_INVALID: {
    exit: 2,
    meaning:
      'The log, its publications or an interrupted publish do not agree (file or size named); nothing is published.',
  },
  /** `publish --statements-only` with no statement queued. */
  NOTHING_TO_PUBLISH: {
    exit: 7,
    meaning: 'No statement is queued: nothing to publish without a new edition.',
  },
  /** The queue for the next publication is full (a publication holds at most 1,000 entries). */
  QUEUE_FULL: {
    exit: 7,
    meaning: 'The next publication is full (1,000 entries): publish before queueing more.',
  },
  /** The relay could not be reached (network error, timeout, or an answer that is not the relay API). */
  RELAY_UNREACHABLE: {
    exit: 4,
    meaning: 'The relay could not be reached; what was pushed before stays recorded.',
  },
  /** The relay refused a publication; `detail` has the relay's error code. */
  RELAY_REJECTED: {
    exit: 10,
    meaning: 'The relay refused the publication (see detail for its code).',
  },
  /** A bug or an unexpected condition. */
  INTERNAL: { exit: 70, meaning: 'Unexpected internal error.' },
} as const;

export type NetworkErrorCode = keyof typeof NETWORK_ERRORS;

export interface NetworkErrorOptions {
  readonly cause?: unknown;
  /** The lower-level (protocol) code that caused this error. */
  readonly detail?: string;
}

/** The one error class of the secretariat tooling. */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
  readonly code: NetworkErrorCode;
  readonly detail: string | undefined;

  constructor(code: NetworkErrorCode, message: string, options: NetworkErrorOptions = {}) {
    super(
      `${code}: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.detail = options.detail;
  }

  get exitCode(): number {
    return NETWORK_ERRORS[this.code].exit;
  }

  /** Safe to print: code, message and detail; never the cause. */
  toJSON(): { code: NetworkErrorCode; message: string; detail?: string } {
    return {
      code: this.code,
      message: this.message,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
    };
  }
}

/** Type guard: `isNetworkError(err, 'DRAFT_STALE')`. */
export function isNetworkError(err: unknown, code?: NetworkErrorCode): err is NetworkError {
  return err instanceof NetworkError && (code === undefined || err.code === code);
}

export function networkFail(
  code: NetworkErrorCode,
  message: string,
  options?: NetworkErrorOptions,
): never {
  throw new NetworkError(code, message, options);
}

/**
 * Run `fn`; a protocol error becomes `code` with `what` in front of the
 * protocol's message (which names a field path or key id, never a value).
 */
export function mapProtocol<T>(code: NetworkErrorCode, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (cause) {
    if (isProtocolError(cause))
      return networkFail(code, `${what}: ${cause.message}`, { cause, detail: cause.code });
    throw cause;
  }
}
