/**
 * The protocol's one error catalogue. Every failure a verifier, decryptor or
 * decoder can report has a stable string code listed here; callers branch on
 * `code`, never on messages. Messages never contain plaintext, keys or
 * personal data: at most identifiers (key ids, envelope ids, chunk ids,
 * field paths) that are already visible to a relay.
 */
export const ERROR_CODES = {
  /** Bytes are not valid UTF-8 JSON, or not in canonical form. */
  ENCODING_INVALID: 'decode failure',
  /** Well-formed encoding, but the object does not match its schema. */
  SCHEMA_INVALID: 'decode failure',
  /** A value exceeds a protocol limit (size, count, length). */
  LIMIT_EXCEEDED: 'decode failure',
  /** An address is not of the form `authority@network`. */
  ADDRESS_INVALID: 'decode failure',
  /** The signature does not verify under the claimed key and context. */
  SIGNATURE_INVALID: 'signature failure',
  /** The signing or encryption key is not known to the verifier's trust store. */
  KEY_UNKNOWN: 'untrusted key',
  /** The key was used outside its validity period (expired). */
  KEY_EXPIRED: 'expired key',
  /** The key was used before the start of its validity period. */
  KEY_NOT_YET_VALID: 'expired key',
  /** The key was revoked at or before the time of use. */
  KEY_REVOKED: 'revoked key',
  /** A passphrase-sealed secret did not open: wrong passphrase or a damaged key file. */
  PASSPHRASE_INVALID: 'decrypt failure',
  /** The key is valid but not authorised for this role or subject. */
  KEY_WRONG_ROLE: 'untrusted key',
  /** No wrapped content key for this recipient: the dossier is not addressed to us. */
  NOT_ADDRESSED: 'not addressed',
  /** An AEAD open or sealed-box open failed: the ciphertext was tampered with or the wrong key was used. */
  DECRYPT_FAILED: 'decrypt failure',
  /** The signed inner dossier names other recipients than the envelope: it was re-addressed. */
  DOSSIER_READDRESSED: 're-addressed',
  /** The signed inner dossier names another envelope or sender than the one carrying it: replayed. */
  ENVELOPE_MISMATCH: 're-addressed',
  /** The envelope's expiry has passed. */
  ENVELOPE_EXPIRED: 'expired',
  /** The hop path is longer than the envelope's hop limit or contains a loop. */
  HOP_LIMIT_EXCEEDED: 'routing failure',
  /** A ciphertext chunk's hash differs from the id the manifest lists at that position. */
  CHUNK_HASH_MISMATCH: 'decrypt failure',
  /** The chunk stream ended before the final chunk. */
  CHUNK_TRUNCATED: 'decrypt failure',
  /** A chunk that belongs at another position was supplied. */
  CHUNK_REORDERED: 'decrypt failure',
  /** A chunk was supplied a second time. */
  CHUNK_DUPLICATED: 'decrypt failure',
  /** More chunks were supplied than the manifest lists. */
  CHUNK_EXTRA: 'decrypt failure',
  /** Decrypted size or plaintext hash differ from the attachment manifest. */
  ATTACHMENT_MISMATCH: 'decrypt failure',
  /** A manifest's version chain is broken (wrong previous hash or version). */
  MANIFEST_CHAIN_BROKEN: 'trust failure',
  /** A manifest edition is not newer than the one held (an older edition, or another one of the same version): a rollback or a fork, refused (§6.2, §7.3). */
  MANIFEST_ROLLBACK: 'trust failure',
  /** A manifest's validUntil has passed: the network secretariat must publish a new version. */
  MANIFEST_EXPIRED: 'trust failure',
  /** No chain of trust leads from a pinned root to this key. */
  TRUST_CHAIN_BROKEN: 'trust failure',
  /** A dossier's structured content fails validation; `issues` lists what a drafter must fix. */
  CONTENT_INVALID: 'content invalid',
  /** An evidence chain is inconsistent (missing, duplicated or out of order evidences). */
  EVIDENCE_CHAIN_INVALID: 'evidence failure',
  /** An evidence refers to another envelope. */
  EVIDENCE_MISMATCH: 'evidence failure',
  /** An export bundle's members break its layout: a member missing or not listed, a misnamed or misordered attachment or manifest. */
  BUNDLE_LAYOUT_INVALID: 'decode failure',
  /** A signed note, checkpoint, cosignature line or witness request is malformed (§18). */
  CHECKPOINT_INVALID: 'decode failure',
  /** An inclusion or consistency proof does not verify, or has the wrong shape for its sizes (§18.2). */
  PROOF_INVALID: 'trust failure',
  /** A checkpoint carries fewer valid cosignatures from trusted witnesses than the quorum (§18.6). */
  QUORUM_NOT_MET: 'trust failure',
  /** A checkpoint is smaller than one already cosigned or accepted for its log (§18.5, §18.6). */
  CHECKPOINT_ROLLBACK: 'trust failure',
  /** Two validly signed checkpoints of one log cannot both be true: the log forked (§18.7). */
  LOG_FORK_DETECTED: 'trust failure',
  /** A witness request's old size is not the size the witness last cosigned (§18.5). */
  WITNESS_CONFLICT: 'trust failure',
  /** A publication does not start where the verifier's held checkpoint of that log ends: earlier ones are missing (§18.10). */
  PUBLICATION_OUT_OF_ORDER: 'trust failure',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The `expect` outcome class a test vector uses for this code. */
export function outcomeOf(code: ErrorCode): (typeof ERROR_CODES)[ErrorCode] {
  return ERROR_CODES[code];
}

/** A problem in structured content, addressed to the person who can fix it. */
export interface ContentIssue {
  /** JSON pointer to the field, e.g. `/header/caseReference`. */
  readonly path: string;
  /** What is wrong and what to do, in plain language. */
  readonly message: string;
}

export interface ProtocolErrorOptions {
  readonly cause?: unknown;
  readonly issues?: readonly ContentIssue[];
}

/** Base class of every error this package throws. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ErrorCode;
  readonly issues: readonly ContentIssue[];

  constructor(code: ErrorCode, message: string, options: ProtocolErrorOptions = {}) {
    super(
      `${code}: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.issues = options.issues ?? [];
  }

  /** A representation safe to log or return to a peer: code and message only. */
  toJSON(): { code: ErrorCode; message: string; issues?: readonly ContentIssue[] } {
    return this.issues.length > 0
      ? { code: this.code, message: this.message, issues: this.issues }
      : { code: this.code, message: this.message };
  }
}

/** Type guard: `isProtocolError(err, 'NOT_ADDRESSED')`. */
export function isProtocolError(err: unknown, code?: ErrorCode): err is ProtocolError {
  return err instanceof ProtocolError && (code === undefined || err.code === code);
}

/** Shorthand used throughout the package. */
export function fail(code: ErrorCode, message: string, options?: ProtocolErrorOptions): never {
  throw new ProtocolError(code, message, options);
}
