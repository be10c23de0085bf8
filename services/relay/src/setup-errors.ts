/**
 * Why a relay cannot start (or `check-config` fails): a stable code, the
 * configuration file, the field at fault and a reason. Messages name files,
 * fields and environment variable names, never a value read from a file or
 * the environment (a passphrase, a secret, a key).
 */

/** Exit codes of `rogatory-relay`. Every RelaySetupError code maps to one (RELAY_SETUP_ERRORS). */
export const RELAY_EXIT = {
  ok: 0,
  /** Unknown command or option, a missing or malformed argument. */
  usage: 1,
  /** migrate-backend: the target's counts differ from the source's after the copy. */
  verify: 2,
  /** The configuration file, or a file or folder it names, is missing, unreadable or invalid. */
  config: 3,
  /** The relay key (or a secret from the environment) is missing, does not open, or is not listed in the manifest. */
  key: 4,
  /** The backend (Redis, S3) cannot be reached. */
  backend: 5,
  /** The relay's stored data (SQLite file, Redis layout) was written by a newer relay or has no recognisable schema version. */
  data: 6,
  /** Anything else (a bug): the message says nothing about the data. */
  internal: 70,
} as const;

export const RELAY_SETUP_ERRORS = {
  /** A command line argument is missing or malformed. */
  USAGE: { exit: RELAY_EXIT.usage },
  /** The configuration file is missing, a folder, or not readable. */
  CONFIG_FILE_UNREADABLE: { exit: RELAY_EXIT.config },
  /** The configuration file does not parse (YAML/JSON) or breaks the schema. */
  CONFIG_INVALID: { exit: RELAY_EXIT.config },
  /** A file the configuration names (key, root, manifest) is missing or unreadable. */
  FILE_UNREADABLE: { exit: RELAY_EXIT.config },
  /** The pinned root or a manifest does not parse or does not verify. */
  TRUST_INVALID: { exit: RELAY_EXIT.config },
  /** A TLS certificate, key or CA file of `relay.tls` is missing, unreadable, not PEM, expired or mismatched. */
  TLS_FILE_REFUSED: { exit: RELAY_EXIT.config },
  /** A folder the relay writes to (data, trust state) cannot be created or written. */
  DIR_UNWRITABLE: { exit: RELAY_EXIT.config },
  /** The environment variable holding the key passphrase is not set. */
  KEY_PASSPHRASE_MISSING: { exit: RELAY_EXIT.key },
  /** The key file is not a sealed key, or does not open with the passphrase. */
  KEY_UNSEALABLE: { exit: RELAY_EXIT.key },
  /** The own network's manifest does not list this relay id with this key. */
  KEY_NOT_IN_MANIFEST: { exit: RELAY_EXIT.key },
  /** A secret the relay reads from the environment (session secret, S3 credentials) is not set or malformed. */
  SECRET_MISSING: { exit: RELAY_EXIT.key },
  /** Redis or the object store cannot be reached. */
  BACKEND_UNREACHABLE: { exit: RELAY_EXIT.backend },
  /** The stored data was written by a newer relay: it is left untouched, run that version or newer. */
  SCHEMA_VERSION_NEWER: { exit: RELAY_EXIT.data },
  /** The stored data carries a schema version that is not a number this relay knows. */
  SCHEMA_VERSION_INVALID: { exit: RELAY_EXIT.data },
} as const;

export type RelaySetupCode = keyof typeof RELAY_SETUP_ERRORS;

export interface SetupIssue {
  /** Dotted configuration path (`backend.redis.prefix`, `trust.manifestFiles[1]`), or '' for the whole file. */
  readonly field: string;
  readonly message: string;
}

export class RelaySetupError extends Error {
  override readonly name = 'RelaySetupError';
  readonly code: RelaySetupCode;
  /** The configuration file as the operator named it, when there is one. */
  readonly file: string | undefined;
  readonly issues: readonly SetupIssue[];

  /** The message is `<file>: <field>: <reason>` for each issue, one per line. */
  constructor(
    code: RelaySetupCode,
    issues: readonly SetupIssue[],
    options: { file?: string | undefined; cause?: unknown } = {},
  ) {
    super(
      issues.map((issue) => formatIssue(options.file, issue)).join('\n') || code,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.file = options.file;
    this.issues = issues;
  }

  get exit(): number {
    return RELAY_SETUP_ERRORS[this.code].exit;
  }

  toJSON(): { code: RelaySetupCode; file?: string; issues: readonly SetupIssue[] } {
    return {
      code: this.code,
      ...(this.file === undefined ? {} : { file: this.file }),
      issues: this.issues,
    };
  }
}

export function formatIssue(file: string | undefined, issue: SetupIssue): string {
  return [file, issue.field || undefined, issue.message]
    .filter((part) => part !== undefined)
    .join(': ');
}

export function setupFail(
  code: RelaySetupCode,
  field: string,
  message: string,
  options: { file?: string | undefined; cause?: unknown } = {},
): never {
  throw new RelaySetupError(code, [{ field, message }], options);
}

export function isRelaySetupError(err: unknown, code?: RelaySetupCode): err is RelaySetupError {
  return err instanceof RelaySetupError && (code === undefined || err.code === code);
}

/**
 * Why a file or folder could not be used, in words, from a Node system
 * error (its code only: the message may quote the path in another form).
 */
export function fsReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'not found';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a folder, not a file';
    case 'ENOTDIR':
      return 'a part of the path is not a folder';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'ELOOP':
      return 'too many symbolic links';
    case 'ENAMETOOLONG':
      return 'path too long';
    case 'EEXIST':
      return 'exists and is not a folder';
    default:
      return typeof code === 'string' ? `cannot be used (${code})` : 'cannot be used';
  }
}
