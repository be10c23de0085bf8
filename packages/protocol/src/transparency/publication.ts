import { Type, type Static } from 'typebox';
import { fail } from '../errors.js';
import { publicKeyOf, type KeyRef, type SigningKeyPair } from '../keys.js';
import { validator } from '../schema.js';
import { hashOf } from '../signed.js';
import type { TrustStore } from '../trust.js';
import {
  logEntryFor,
  logEntryLeafHash,
  logOrigin,
  parseLogEntry,
  type LogEntry,
  type LogEntryKind,
} from './log-entry.js';
import {
  HASH_BYTES,
  MAX_PROOF_HASHES,
  emptyRoot,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
import {
  MAX_NOTE_BYTES,
  fromBase64,
  signCheckpoint,
  toBase64,
  verifyCheckpoint,
  verifyCosignedCheckpoint,
  type CosignedCheckpoint,
  type NoteVerifier,
  type VerifiedCheckpoint,
} from './note.js';

/** Limits of a publication (§18.10). */
export const PUBLICATION_LIMITS = {
  /** Entries one publication may add to the log. */
  entries: 1_000,
  /** Bytes of a publication's canonical JSON, statements included. */
  bytes: 16 * 1024 * 1024,
} as const;

const B64Hash = Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$' });
const Proof = Type.Array(B64Hash, { maxItems: MAX_PROOF_HASHES });

export const PublicationEntrySchema = Type.Object(
  {
    index: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    entry: Type.Unknown(),
    /** The signed statement: required for manifest, rotation and revocation, absent for introduction. */
    statement: Type.Optional(Type.Unknown()),
    /** Inclusion proof of the entry under the publication's checkpoint. */
    proof: Proof,
  },
  { additionalProperties: false },
);

/**
 * What a network publishes to relays after appending to its log (§18.10):
 * the new checkpoint, the consistency proof from the previous publication's
 * checkpoint, and every entry it added with its inclusion proof and (except
 * for introductions) the statement itself.
 */
export const PublicationSchema = Type.Object(
  {
    type: Type.Literal('publication'),
    network: Type.String({ minLength: 1, maxLength: 64 }),
    previous: Type.Union([
      Type.Null(),
      Type.Object(
        { size: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }), rootHash: B64Hash },
        { additionalProperties: false },
      ),
    ]),
    consistency: Proof,
    checkpoint: Type.String({ minLength: 1, maxLength: MAX_NOTE_BYTES }),
    entries: Type.Array(PublicationEntrySchema, {
      minItems: 1,
      maxItems: PUBLICATION_LIMITS.entries,
    }),
  },
  { additionalProperties: false },
);
export type Publication = Static<typeof PublicationSchema>;

const publicationShape = validator(PublicationSchema, 'publication');

/** The state of a log a verifier holds: the size and root hash of the last checkpoint it accepted. */
export interface LogState {
  readonly size: number;
  readonly rootHash: Uint8Array;
}

/** One entry of a verified publication. */
export interface PublishedStatement {
  readonly index: number;
  readonly kind: LogEntryKind;
  readonly entry: LogEntry;
  /** The signed statement (absent for introductions); its hash is the entry's. */
  readonly statement?: unknown;
}

export interface VerifiedPublication {
  readonly network: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly checkpoint: VerifiedCheckpoint;
  /** The checkpoint note as received, cosignature lines included. */
  readonly note: string;
  readonly statements: readonly PublishedStatement[];
}

const STATEMENT_TYPE: Record<LogEntryKind, string> = {
  manifest: 'manifest',
  rotation: 'key-rotation',
  revocation: 'revocation',
  introduction: 'introduction',
};

/** The log key of a network: name = its origin, key = its root (§18.3). */
export function logKeyOf(network: string, root: KeyRef): NoteVerifier {
  return { name: logOrigin(network), publicKey: publicKeyOf(root) };
}

function bodyType(statement: unknown): unknown {
  if (typeof statement !== 'object' || statement === null) return undefined;
  const body = (statement as { body?: unknown }).body;
  if (typeof body !== 'object' || body === null) return undefined;
  return (body as { type?: unknown }).type;
}

function decodeProof(proof: readonly string[]): Uint8Array[] {
  return proof.map((p) => {
    const bytes = fromBase64(p, 'proof hash');
    if (bytes.length !== HASH_BYTES) fail('PROOF_INVALID', 'a proof hash is not 32 bytes');
    return bytes;
  });
}

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Verify one publication of a network's log against the state the verifier
 * holds (§18.10), in this order: schema (SCHEMA_INVALID); the checkpoint note
 * under the network's root (CHECKPOINT_INVALID, KEY_UNKNOWN,
 * SIGNATURE_INVALID); a checkpoint smaller than the held size
 * (CHECKPOINT_ROLLBACK), of the held size with another root
 * (LOG_FORK_DETECTED); `previous` equal to the held state
 * (PUBLICATION_OUT_OF_ORDER); the consistency proof from `previous`
 * (PROOF_INVALID); the entries: indices `previous.size .. size-1` in order,
 * each a LogEntry of this network whose statement (required except for
 * introductions, forbidden for them) hashes to the entry's hash and has the
 * entry's kind, and whose inclusion proof verifies (SCHEMA_INVALID,
 * PROOF_INVALID). Cosignatures are checked separately
 * ({@link checkPublicationQuorum}); statement signatures by the trust store.
 */
export function verifyPublication(options: {
  publication: unknown;
  root: KeyRef;
  held: LogState | null;
}): VerifiedPublication {
  const pub = publicationShape.parse(options.publication);
  const checkpoint = verifyCheckpoint(pub.checkpoint, logKeyOf(pub.network, options.root));
  const { size, rootHash } = checkpoint.checkpoint;
  const held = options.held;
  if (held) {
    if (size < held.size)
      fail('CHECKPOINT_ROLLBACK', `checkpoint of size ${size} is below the held size ${held.size}`);
    if (size === held.size && !equalBytes(rootHash, held.rootHash))
      fail('LOG_FORK_DETECTED', `two roots for size ${size} of the ${pub.network} log`);
  }
  const previous: LogState = pub.previous
    ? { size: pub.previous.size, rootHash: fromBase64(pub.previous.rootHash, 'previous root hash') }
    : { size: 0, rootHash: emptyRoot() };
  const heldState = held ?? { size: 0, rootHash: emptyRoot() };
  if (previous.size !== heldState.size || !equalBytes(previous.rootHash, heldState.rootHash))
    fail(
      'PUBLICATION_OUT_OF_ORDER',
      `publication continues the ${pub.network} log from size ${previous.size}, the held size is ${heldState.size}`,
    );
  if (size <= previous.size) fail('SCHEMA_INVALID', 'a publication adds at least one entry');
  verifyConsistency({
    size1: previous.size,
    size2: size,
    root1: previous.rootHash,
    root2: rootHash,
    proof: decodeProof(pub.consistency),
  });
  if (pub.entries.length !== size - previous.size)
    fail('SCHEMA_INVALID', 'a publication lists every entry it adds, and only those');
  const statements: PublishedStatement[] = pub.entries.map((item, i) => {
    const index = previous.size + i;
    if (item.index !== index)
      fail('SCHEMA_INVALID', `publication entry ${i} is not at index ${index}`);
    const entry = parseLogEntry(item.entry);
    if (entry.network !== pub.network)
      fail('SCHEMA_INVALID', `entry ${index} belongs to the log of another network`);
    if (entry.kind === 'introduction') {
      if (item.statement !== undefined)
        fail('SCHEMA_INVALID', `entry ${index}: introductions are published by hash only`);
    } else {
      if (item.statement === undefined)
        fail('SCHEMA_INVALID', `entry ${index}: a ${entry.kind} is published with its statement`);
      if (bodyType(item.statement) !== STATEMENT_TYPE[entry.kind])
        fail('SCHEMA_INVALID', `entry ${index}: the statement is not a ${entry.kind}`);
      if (hashOf(item.statement) !== entry.hash)
        fail('SCHEMA_INVALID', `entry ${index}: the statement does not hash to the entry`);
    }
    verifyInclusion({
      index,
      size,
      leafHash: logEntryLeafHash(entry),
      proof: decodeProof(item.proof),
      root: rootHash,
    });
    return item.statement === undefined
      ? { index, kind: entry.kind, entry }
      : { index, kind: entry.kind, entry, statement: item.statement };
  });
  return { network: pub.network, size, rootHash, checkpoint, note: pub.checkpoint, statements };
}

/**
 * The witnesses a verifier trusts for a network's log (§18.6): the relays of
 * every other network whose manifest the trust store holds, each named by its
 * relay id with its relay key. A network never witnesses its own log.
 */
export function publicationWitnesses(trust: TrustStore, network: string): NoteVerifier[] {
  const out: NoteVerifier[] = [];
  for (const other of trust.networks()) {
    if (other === network) continue;
    for (const relay of trust.relays(other))
      out.push({ name: relay.id, publicKey: publicKeyOf(relay.key) });
  }
  return out;
}

/**
 * Check a checkpoint note carries the cosignatures of at least `quorum`
 * distinct witnesses of `witnesses` (§18.6): QUORUM_NOT_MET when fewer,
 * SIGNATURE_INVALID when a trusted witness's line fails.
 */
export function checkPublicationQuorum(options: {
  note: string;
  network: string;
  root: KeyRef;
  witnesses: readonly NoteVerifier[];
  quorum: number;
}): CosignedCheckpoint {
  return verifyCosignedCheckpoint({
    note: options.note,
    log: logKeyOf(options.network, options.root),
    witnesses: options.witnesses,
    quorum: options.quorum,
  });
}

/** What a publication is built from: a log (durable or in memory) able to give roots, entries and proofs. */
export interface PublicationSource {
  root(size: number): Uint8Array;
  entry(index: number): LogEntry;
  inclusionProof(index: number, size: number): Uint8Array[];
  consistencyProof(size1: number, size2: number): Uint8Array[];
}

/**
 * Build the publication of entries `from .. size-1` of a network's log,
 * signing the checkpoint of `size` with the network root (§18.10).
 * `statementOf(index)` gives the signed statement of each non-introduction
 * entry; it must hash to the entry.
 */
export function buildPublication(options: {
  network: string;
  log: PublicationSource;
  from: number;
  size: number;
  statementOf: (index: number, entry: LogEntry) => unknown;
  root: SigningKeyPair;
}): Publication {
  const { network, log, from, size } = options;
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(size) || from < 0 || size <= from)
    fail('SCHEMA_INVALID', 'a publication adds at least one entry');
  if (size - from > PUBLICATION_LIMITS.entries)
    fail('SCHEMA_INVALID', `a publication adds at most ${PUBLICATION_LIMITS.entries} entries`);
  const entries = [];
  for (let index = from; index < size; index++) {
    const entry = log.entry(index);
    const proof = log.inclusionProof(index, size).map(toBase64);
    if (entry.kind === 'introduction') {
      entries.push({ index, entry, proof });
      continue;
    }
    const statement = options.statementOf(index, entry);
    if (logEntryFor(network, entry.kind, statement).hash !== entry.hash)
      fail('SCHEMA_INVALID', `the statement given for entry ${index} does not hash to it`);
    entries.push({ index, entry, statement, proof });
  }
  const publication: Publication = {
    type: 'publication',
    network,
    previous: from === 0 ? null : { size: from, rootHash: toBase64(log.root(from)) },
    consistency: from === 0 ? [] : log.consistencyProof(from, size).map(toBase64),
    checkpoint: signCheckpoint(
      { origin: logOrigin(network), size, rootHash: log.root(size) },
      options.root,
    ),
    entries,
  };
  return publicationShape.parse(publication);
}

/**
 * Verify a chain of publications from an empty log or a held state, in
 * order, returning each verified step. The first failure throws with its
 * code; earlier steps are not returned (the caller applies all or nothing).
 */
export function verifyPublicationChain(options: {
  publications: readonly unknown[];
  root: KeyRef;
  held: LogState | null;
}): VerifiedPublication[] {
  const out: VerifiedPublication[] = [];
  let held = options.held;
  for (const publication of options.publications) {
    const v = verifyPublication({ publication, root: options.root, held });
    out.push(v);
    held = { size: v.size, rootHash: v.rootHash };
  }
  return out;
}
