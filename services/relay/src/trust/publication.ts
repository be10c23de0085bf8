/**
 * Publications (docs/protocol.md §18.10, design D1) as the relay checks them.
 *
 * TEMPORARY: a local verifier with the shape of the protocol's
 * `verifyPublication`, until that lands on main; then this file re-exports it.
 */
import {
  fail,
  fromBase64,
  hashOf,
  logEntryLeafHash,
  logOrigin,
  parseLogEntry,
  publicKeyOf,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
  type KeyRef,
  type LogEntry,
  type VerifiedCheckpoint,
} from '@rogatory/protocol';
import { RelayError } from '../errors.js';
import { equalBytes } from './files.js';

export interface Publication {
  readonly type: 'publication';
  readonly network: string;
  readonly previous: { readonly size: number; readonly rootHash: string } | null;
  readonly consistency: readonly string[];
  readonly checkpoint: string;
  readonly entries: readonly {
    readonly index: number;
    readonly entry: LogEntry;
    readonly statement?: unknown;
    readonly proof: readonly string[];
  }[];
}

export interface VerifiedPublication {
  readonly network: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly checkpoint: VerifiedCheckpoint;
  readonly note: string;
  readonly statements: readonly {
    index: number;
    kind: LogEntry['kind'];
    statement?: unknown;
    entry: LogEntry;
  }[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function shape(value: unknown): Publication {
  if (!isObject(value) || value['type'] !== 'publication')
    fail('SCHEMA_INVALID', 'not a publication');
  const { network, previous, consistency, checkpoint, entries } = value;
  if (typeof network !== 'string' || typeof checkpoint !== 'string')
    fail('SCHEMA_INVALID', 'publication network or checkpoint');
  if (
    previous !== null &&
    (!isObject(previous) ||
      !Number.isSafeInteger(previous['size']) ||
      typeof previous['rootHash'] !== 'string')
  )
    fail('SCHEMA_INVALID', 'publication previous');
  if (!Array.isArray(consistency) || !consistency.every((c) => typeof c === 'string'))
    fail('SCHEMA_INVALID', 'publication consistency');
  if (!Array.isArray(entries) || entries.length > 1000)
    fail('SCHEMA_INVALID', 'publication entries');
  for (const e of entries) {
    if (
      !isObject(e) ||
      !Number.isSafeInteger(e['index']) ||
      !Array.isArray(e['proof']) ||
      !(e['proof'] as unknown[]).every((p) => typeof p === 'string')
    )
      fail('SCHEMA_INVALID', 'publication entry');
    parseLogEntry(e['entry']);
  }
  return value as unknown as Publication;
}

/** Verify a publication against the log key and the checkpoint held (null: none). */
export function verifyPublication(options: {
  publication: unknown;
  logKey: KeyRef;
  held: { size: number; rootHash: Uint8Array } | null;
}): VerifiedPublication {
  const pub = shape(options.publication);
  const verified = verifyCheckpoint(pub.checkpoint, {
    name: logOrigin(pub.network),
    publicKey: publicKeyOf(options.logKey),
  });
  const { size, rootHash } = verified.checkpoint;
  const held = options.held;
  if (held && size < held.size) fail('CHECKPOINT_ROLLBACK', 'publication ends below the held size');
  if (held && size === held.size && !equalBytes(rootHash, held.rootHash))
    fail('LOG_FORK_DETECTED', 'same size as the held checkpoint, another root');
  const prevSize = pub.previous?.size ?? 0;
  const prevRoot = pub.previous ? fromBase64(pub.previous.rootHash, 'previous root') : null;
  const heldSize = held?.size ?? 0;
  if (
    prevSize !== heldSize ||
    (held !== null && held.size > 0 && (prevRoot === null || !equalBytes(prevRoot, held.rootHash)))
  )
    throw new RelayError('PUBLICATION_OUT_OF_ORDER', 'publication does not follow the held one');
  if (prevRoot !== null && prevSize > 0) {
    verifyConsistency({
      size1: prevSize,
      size2: size,
      root1: prevRoot,
      root2: rootHash,
      proof: pub.consistency.map((c) => fromBase64(c, 'consistency')),
    });
  } else if (pub.consistency.length !== 0) fail('PROOF_INVALID', 'proof from the empty tree');
  if (pub.entries.length !== size - prevSize) fail('SCHEMA_INVALID', 'entries do not cover the range');
  const statements = pub.entries.map((e, i) => {
    if (e.index !== prevSize + i) fail('SCHEMA_INVALID', 'entries out of order');
    if (e.entry.network !== pub.network) fail('SCHEMA_INVALID', 'entry of another network');
    const needs = e.entry.kind !== 'introduction';
    if (needs !== (e.statement !== undefined)) fail('SCHEMA_INVALID', 'statement presence');
    if (e.statement !== undefined && hashOf(e.statement) !== e.entry.hash)
      fail('PROOF_INVALID', 'statement does not hash to its entry');
    verifyInclusion({
      index: e.index,
      size,
      leafHash: logEntryLeafHash(e.entry),
      proof: e.proof.map((p) => fromBase64(p, 'proof')),
      root: rootHash,
    });
    return {
      index: e.index,
      kind: e.entry.kind,
      entry: e.entry,
      ...(e.statement === undefined ? {} : { statement: e.statement }),
    };
  });
  return {
    network: pub.network,
    size,
    rootHash,
    checkpoint: verified,
    note: pub.checkpoint,
    statements,
  };
}
