import { Type, type Static } from 'typebox';
import { canonicalBytes } from '../encoding.js';
import { Hex256, NetworkIdSchema, validator } from '../schema.js';
import { hashOf } from '../signed.js';
import { leafHash } from './merkle.js';

/** What a log entry records (docs/protocol.md §18.1). */
export const LogEntryKindSchema = Type.Union([
  Type.Literal('manifest'),
  Type.Literal('rotation'),
  Type.Literal('revocation'),
  Type.Literal('introduction'),
]);
export type LogEntryKind = Static<typeof LogEntryKindSchema>;

/**
 * One leaf of a network's key-transparency log: which network published
 * which statement. The statement itself is not in the log; its hash
 * (`hashOf`, §3.7) is, so a verifier holding the statement rebuilds the
 * entry and checks its inclusion.
 */
export const LogEntrySchema = Type.Object(
  {
    type: Type.Literal('log-entry'),
    network: NetworkIdSchema,
    kind: LogEntryKindSchema,
    hash: Hex256,
  },
  { additionalProperties: false },
);
export type LogEntry = Static<typeof LogEntrySchema>;

const logEntryShape = validator(LogEntrySchema, 'log entry');
const networkIdShape = validator(NetworkIdSchema, 'network id');

/** Check a value is a LogEntry; SCHEMA_INVALID otherwise. */
export function parseLogEntry(value: unknown): LogEntry {
  return logEntryShape.parse(value);
}

/** The entry that records `statement` (a signed manifest, rotation, revocation or introduction). */
export function logEntryFor(network: string, kind: LogEntryKind, statement: unknown): LogEntry {
  return parseLogEntry({ type: 'log-entry', network, kind, hash: hashOf(statement) });
}

/** The leaf data of an entry: its canonical JSON (§3.1). */
export function logEntryBytes(entry: LogEntry): Uint8Array {
  return canonicalBytes(parseLogEntry(entry));
}

/** The Merkle leaf hash of an entry: SHA-256(0x00 || canonical(entry)). */
export function logEntryLeafHash(entry: LogEntry): Uint8Array {
  return leafHash(logEntryBytes(entry));
}

/**
 * The origin line of a network's log (§18.3): a schema-less URL under the
 * reserved `.invalid` name (RFC 6761), so it never names a reachable host,
 * and unique per network because network ids are.
 */
export function logOrigin(network: string): string {
  const id = networkIdShape.parse(network);
  return `rogatory.invalid/key-log/${id}`;
}
