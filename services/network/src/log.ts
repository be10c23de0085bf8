/**
 * The secretariat's transparency log (design D1): `log.db` in the folder,
 * the queue of statements for the next publish, the publish journal that
 * makes a publish crash-safe, and the Publication files relays are given.
 */
import { mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Type, type Static } from 'typebox';
import {
  AddressSchema,
  IntroductionSchema,
  KeyIdSchema,
  KeyRotationSchema,
  LogEntrySchema,
  ManifestSchema,
  MemoryTree,
  RevocationSchema,
  RevokedKeySchema,
  Timestamp,
  fromBase64,
  hashOf,
  isProtocolError,
  logEntryFor,
  logEntryLeafHash,
  logOrigin,
  publicKeyOf,
  toBase64,
  validator,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
  verifyManifest,
  type KeyRef,
  type LogEntry,
  type LogEntryKind,
  type Manifest,
} from '@rogatory/protocol';
import { TransparencyLog, isTransparencyLogError } from '@rogatory/transparency-log';
import { networkFail } from './errors.js';
import {
  FILES,
  baseOf,
  createFileAtomic,
  editionFile,
  isErrno,
  readDraft,
  readJsonFile,
  writeDraft,
  writeFileAtomic,
  type SecretariatConfig,
} from './folder.js';

/** Most entries in one publication (D1). */
export const MAX_PUBLICATION_ENTRIES = 1_000;

// ---------------------------------------------------------------- queue

const RevocationRequestSchema = Type.Object(
  {
    subject: AddressSchema,
    kid: KeyIdSchema,
    reason: RevokedKeySchema.properties.reason,
    revokedAt: Timestamp,
  },
  { additionalProperties: false },
);
export type RevocationRequest = Static<typeof RevocationRequestSchema>;

/**
 * Statements for the next publish, in the order they are logged (D1):
 * rotations, revocations (signed ones, then `revoke`'s requests, which
 * publish signs with the root), introductions.
 */
export const QueueSchema = Type.Object(
  {
    rotations: Type.Array(KeyRotationSchema, { maxItems: MAX_PUBLICATION_ENTRIES }),
    revocations: Type.Array(RevocationSchema, { maxItems: MAX_PUBLICATION_ENTRIES }),
    revocationRequests: Type.Array(RevocationRequestSchema, {
      maxItems: MAX_PUBLICATION_ENTRIES,
    }),
    introductions: Type.Array(IntroductionSchema, { maxItems: MAX_PUBLICATION_ENTRIES }),
  },
  { additionalProperties: false },
);
export type Queue = Static<typeof QueueSchema>;
const queueShape = validator(QueueSchema, 'queue.json');

export const EMPTY_QUEUE: Queue = {
  rotations: [],
  revocations: [],
  revocationRequests: [],
  introductions: [],
};

export async function readQueue(dir: string): Promise<Queue> {
  let text: string;
  try {
    text = await readFile(join(dir, FILES.queue), 'utf8');
  } catch (cause) {
    if (isErrno(cause, 'ENOENT')) return structuredClone(EMPTY_QUEUE);
    throw cause;
  }
  try {
    return queueShape.parse(JSON.parse(text));
  } catch (cause) {
    return networkFail('INPUT_INVALID', `${FILES.queue} is damaged`, { cause });
  }
}

export async function writeQueue(dir: string, queue: Queue): Promise<void> {
  await writeFileAtomic(join(dir, FILES.queue), `${JSON.stringify(queue, null, 2)}\n`);
}

export function queueLength(q: Queue): number {
  return (
    q.rotations.length + q.revocations.length + q.revocationRequests.length + q.introductions.length
  );
}

/** The key a queued item is known by: the statement hash, or `request:<kid>` for a revoke request. */
const requestKey = (r: RevocationRequest) => `request:${r.kid}`;

// ---------------------------------------------------------------- publication (D1)

export interface PublicationEntry {
  readonly index: number;
  readonly entry: LogEntry;
  readonly statement?: unknown;
  readonly proof: string[];
}

export interface Publication {
  readonly type: 'publication';
  readonly network: string;
  readonly previous: { readonly size: number; readonly rootHash: string } | null;
  readonly consistency: string[];
  readonly checkpoint: string;
  readonly entries: PublicationEntry[];
}

/** The statement body type each log entry kind carries. */
const BODY_TYPE: Record<LogEntryKind, string> = {
  manifest: 'manifest',
  rotation: 'key-rotation',
  revocation: 'revocation',
  introduction: 'introduction',
};

export interface LoggedStatement {
  readonly kind: LogEntryKind;
  readonly statement: unknown;
}

/**
 * TEMPORARY local builder of the D1 Publication, from the log: replaced by
 * the lead's `buildPublication` (@rogatory/protocol) once it lands.
 * `statements` are the entries previousSize .. size-1 of the log, in order;
 * introductions are logged but not broadcast (no `statement`).
 */
export function buildPublicationLocal(options: {
  readonly log: TransparencyLog;
  readonly previousSize: number;
  readonly checkpoint: string;
  readonly statements: readonly LoggedStatement[];
}): Publication {
  const { log, previousSize, statements } = options;
  const size = previousSize + statements.length;
  return {
    type: 'publication',
    network: log.network,
    previous:
      previousSize === 0
        ? null
        : { size: previousSize, rootHash: toBase64(log.root(previousSize)) },
    consistency: previousSize === 0 ? [] : log.consistencyProof(previousSize, size).map(toBase64),
    checkpoint: options.checkpoint,
    entries: statements.map((s, i) => ({
      index: previousSize + i,
      entry: log.entry(previousSize + i),
      ...(s.kind === 'introduction' ? {} : { statement: s.statement }),
      proof: log.inclusionProof(previousSize + i, size).map(toBase64),
    })),
  };
}

export interface CheckedPublication {
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly entries: { index: number; kind: LogEntryKind; entry: LogEntry; statement?: unknown }[];
}

const LooseEntrySchema = Type.Object(
  {
    index: Type.Integer({ minimum: 0 }),
    entry: LogEntrySchema,
    statement: Type.Optional(Type.Unknown()),
    proof: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 63 }),
  },
  { additionalProperties: false },
);
const LoosePublicationSchema = Type.Object(
  {
    type: Type.Literal('publication'),
    network: Type.String({ maxLength: 64 }),
    previous: Type.Union([
      Type.Null(),
      Type.Object(
        { size: Type.Integer({ minimum: 1 }), rootHash: Type.String({ maxLength: 64 }) },
        { additionalProperties: false },
      ),
    ]),
    consistency: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 63 }),
    checkpoint: Type.String({ maxLength: 65_536 }),
    entries: Type.Array(LooseEntrySchema, { minItems: 1, maxItems: MAX_PUBLICATION_ENTRIES }),
  },
  { additionalProperties: false },
);
const publicationShape = validator(LoosePublicationSchema, 'publication');

/**
 * TEMPORARY local check of one D1 Publication against the network root and
 * the `(size, rootHash)` held before it (replaced by the lead's
 * `verifyPublication` once it lands). Throws a protocol error (SCHEMA_INVALID,
 * CHECKPOINT_INVALID, SIGNATURE_INVALID, KEY_UNKNOWN, PROOF_INVALID) or a
 * plain Error for an out-of-order publication.
 */
export function checkPublicationLocal(
  value: unknown,
  root: KeyRef,
  held: { size: number; rootHash: Uint8Array } | null,
): CheckedPublication {
  const p = publicationShape.parse(value);
  const origin = logOrigin(p.network);
  const { checkpoint } = verifyCheckpoint(p.checkpoint, {
    name: origin,
    publicKey: publicKeyOf(root),
  });
  const prevSize = p.previous?.size ?? 0;
  if ((held?.size ?? 0) !== prevSize)
    throw new OutOfOrder(`previous size ${prevSize}, held ${held?.size ?? 0}`);
  if (p.previous && held && !equalBytes(fromBase64(p.previous.rootHash, 'previous'), held.rootHash))
    throw new OutOfOrder(`previous root differs from the one held at size ${prevSize}`);
  if (checkpoint.size !== prevSize + p.entries.length)
    throw new OutOfOrder(`the entries do not cover ${prevSize}..${checkpoint.size - 1}`);
  const entries = p.entries.map((e, i) => {
    if (e.index !== prevSize + i) throw new OutOfOrder(`entry ${i} has index ${e.index}`);
    if (e.entry.network !== p.network)
      throw new OutOfOrder(`entry ${e.index} is of network ${e.entry.network}`);
    if (e.entry.kind === 'introduction') {
      if (e.statement !== undefined)
        throw new OutOfOrder(`entry ${e.index}: an introduction is not broadcast`);
    } else {
      if (e.statement === undefined)
        throw new OutOfOrder(`entry ${e.index}: the ${e.entry.kind} statement is missing`);
      const type = bodyType(e.statement);
      if (type !== BODY_TYPE[e.entry.kind])
        throw new OutOfOrder(`entry ${e.index}: the statement is not a ${e.entry.kind}`);
      if (hashOf(e.statement) !== e.entry.hash)
        throw new OutOfOrder(`entry ${e.index}: the statement does not hash to the entry`);
    }
    verifyInclusion({
      index: e.index,
      size: checkpoint.size,
      leafHash: logEntryLeafHash(e.entry),
      proof: e.proof.map((h) => fromBase64(h, 'proof')),
      root: checkpoint.rootHash,
    });
    return {
      index: e.index,
      kind: e.entry.kind,
      entry: e.entry,
      ...(e.statement === undefined ? {} : { statement: e.statement }),
    };
  });
  if (held)
    verifyConsistency({
      size1: held.size,
      size2: checkpoint.size,
      root1: held.rootHash,
      root2: checkpoint.rootHash,
      proof: p.consistency.map((h) => fromBase64(h, 'consistency')),
    });
  else if (p.consistency.length !== 0) throw new OutOfOrder('a first publication has no proof');
  return { size: checkpoint.size, rootHash: checkpoint.rootHash, entries };
}

class OutOfOrder extends Error {}

function bodyType(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return undefined;
  const body = (value as Record<string, unknown>)['body'];
  return typeof body === 'object' && body !== null
    ? (body as Record<string, unknown>)['type']
    : undefined;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

// ---------------------------------------------------------------- the log file

export function publicationFile(size: number): string {
  return `${String(size).padStart(12, '0')}.json`;
}

function openLogFile(dir: string, network: string): TransparencyLog {
  try {
    return TransparencyLog.open({ path: join(dir, FILES.log), network });
  } catch (cause) {
    if (isTransparencyLogError(cause))
      return networkFail('LOG_INVALID', `${FILES.log}: ${cause.message}`, {
        cause,
        detail: cause.code,
      });
    throw cause;
  }
}

/**
 * Run `fn` with the folder's log open (created when missing), after
 * finishing a publish that was interrupted (publishing.json present).
 */
export async function withLog<T>(
  dir: string,
  config: SecretariatConfig,
  fn: (log: TransparencyLog) => Promise<T> | T,
): Promise<T> {
  const log = openLogFile(dir, config.network);
  try {
    const journal = await readJournal(dir);
    if (journal) await completePublication(dir, config, log, journal);
    return await fn(log);
  } finally {
    log.close();
  }
}

/** Every entry of the log, in order. */
export function allEntries(log: TransparencyLog): LogEntry[] {
  const out: LogEntry[] = [];
  const size = log.size;
  for (let start = 0; start < size; start += 1000) out.push(...log.entries(start, 1000));
  return out;
}

// ---------------------------------------------------------------- publish journal

const JournalSchema = Type.Object(
  {
    type: Type.Literal('rogatory-publish-journal'),
    previous: Type.Union([
      Type.Null(),
      Type.Object(
        { size: Type.Integer({ minimum: 1 }), rootHash: Type.String({ maxLength: 64 }) },
        { additionalProperties: false },
      ),
    ]),
    statements: Type.Array(
      Type.Object(
        {
          kind: LogEntrySchema.properties.kind,
          statement: Type.Unknown(),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_PUBLICATION_ENTRIES },
    ),
    /** The signed checkpoint note of the tree after the append. */
    checkpoint: Type.String({ maxLength: 65_536 }),
    /** The new edition, or null (statements only). */
    edition: Type.Union([Type.Null(), ManifestSchema]),
    /** The queue items this publish takes: statement hashes, `request:<kid>`. */
    consumed: Type.Array(Type.String({ maxLength: 80 })),
  },
  { additionalProperties: false },
);
export type Journal = Static<typeof JournalSchema>;
const journalShape = validator(JournalSchema, 'publishing.json');

async function readJournal(dir: string): Promise<Journal | null> {
  let text: string;
  try {
    text = await readFile(join(dir, FILES.publishing), 'utf8');
  } catch (cause) {
    if (isErrno(cause, 'ENOENT')) return null;
    throw cause;
  }
  try {
    return journalShape.parse(JSON.parse(text));
  } catch (cause) {
    return networkFail('LOG_INVALID', `${FILES.publishing} is damaged`, { cause });
  }
}

/** Where an injected failure stops a publish (tests of crash safety). */
export type CrashPoint = 'journal' | 'append' | 'edition' | 'publication';

export function crashAt(point: CrashPoint, wanted: CrashPoint | undefined): void {
  if (point === wanted) throw new Error(`injected crash after ${point}`);
}

export interface PreparedPublish {
  readonly journal: Journal;
}

/** Write the journal: from here on, the publish completes (now or at the next command). */
export async function beginPublication(dir: string, journal: Journal): Promise<void> {
  const text = `${JSON.stringify(journalShape.parse(journal), null, 2)}\n`;
  if (!(await createFileAtomic(join(dir, FILES.publishing), text)))
    networkFail('LOG_INVALID', `${FILES.publishing} exists: another publish is under way`);
}

/**
 * Finish a publish from its journal, idempotently: append the entries
 * unless the log has them already, write the edition file (if any) and the
 * publication file, move the draft on, take the published items out of the
 * queue, and remove the journal. Entries are appended before any file is
 * written, and the checkpoint was signed before the journal was, so at no
 * point is an entry in the log without its edition file and publication
 * once the next command has run, nor an edition file without its entry.
 */
export async function completePublication(
  dir: string,
  config: SecretariatConfig,
  log: TransparencyLog,
  journal: Journal,
  crash?: CrashPoint,
): Promise<Publication> {
  const prevSize = journal.previous?.size ?? 0;
  const expected = prevSize + journal.statements.length;
  const entries = journal.statements.map((s) => logEntryFor(config.network, s.kind, s.statement));
  const { checkpoint } = (() => {
    try {
      return verifyCheckpoint(journal.checkpoint, {
        name: log.origin,
        publicKey: publicKeyOf(config.root),
      });
    } catch (cause) {
      return networkFail('LOG_INVALID', `${FILES.publishing}: the checkpoint does not verify`, {
        cause,
      });
    }
  })();
  if (checkpoint.size !== expected)
    networkFail('LOG_INVALID', `${FILES.publishing}: the checkpoint is not of size ${expected}`);
  if (log.size === prevSize) {
    if (journal.previous && toBase64(log.root()) !== journal.previous.rootHash)
      networkFail(
        'LOG_INVALID',
        `${FILES.log} at size ${prevSize} is not the tree publish began from`,
      );
    try {
      log.append(entries, { at: prevSize });
    } catch (err) {
      if (!isTransparencyLogError(err, 'LOG_SIZE_CHANGED')) throw err;
    }
  }
  crashAt('append', crash);
  if (log.size !== expected)
    networkFail(
      'LOG_INVALID',
      `${FILES.log} holds ${log.size} entries; the interrupted publish expected ${expected}`,
    );
  if (!equalBytes(log.root(), checkpoint.rootHash))
    networkFail('LOG_INVALID', `${FILES.log} does not have the root the publish signed`);
  const edition = journal.edition;
  if (edition) {
    const file = join(dir, FILES.editions, editionFile(edition.body.version));
    if (!(await createFileAtomic(file, `${JSON.stringify(edition, null, 2)}\n`))) {
      const present = await readJsonFile(file, 'the edition file');
      if (hashOf(present) !== hashOf(edition))
        networkFail(
          'EDITION_CHAIN_BROKEN',
          `editions/${editionFile(edition.body.version)} is another edition than the one logged`,
        );
    }
  }
  crashAt('edition', crash);
  const publication = buildPublicationLocal({
    log,
    previousSize: prevSize,
    checkpoint: journal.checkpoint,
    statements: journal.statements,
  });
  await mkdir(join(dir, FILES.publications), { recursive: true });
  await writeFileAtomic(
    join(dir, FILES.publications, publicationFile(expected)),
    `${JSON.stringify(publication, null, 2)}\n`,
  );
  crashAt('publication', crash);
  if (edition) {
    const draft = await readDraft(dir);
    if ((draft.basedOn?.version ?? 0) < edition.body.version)
      await writeDraft(dir, { ...draft, basedOn: baseOf(edition) });
  }
  const consumed = new Set(journal.consumed);
  const queue = await readQueue(dir);
  await writeQueue(dir, {
    rotations: queue.rotations.filter((s) => !consumed.has(hashOf(s))),
    revocations: queue.revocations.filter((s) => !consumed.has(hashOf(s))),
    revocationRequests: queue.revocationRequests.filter((r) => !consumed.has(requestKey(r))),
    introductions: queue.introductions.filter((s) => !consumed.has(hashOf(s))),
  });
  await unlink(join(dir, FILES.publishing));
  return publication;
}

export { requestKey };

// ---------------------------------------------------------------- reading and verifying

export interface StoredPublication {
  readonly file: string;
  readonly size: number;
  readonly value: unknown;
}

/** The publications/ files, in order of size (not checked). */
export async function readPublications(dir: string): Promise<StoredPublication[]> {
  let names: string[];
  try {
    names = await readdir(join(dir, FILES.publications));
  } catch (cause) {
    if (isErrno(cause, 'ENOENT')) return [];
    throw cause;
  }
  const out: StoredPublication[] = [];
  for (const name of names.filter((n) => !n.startsWith('.')).sort()) {
    const m = /^(\d{12})\.json$/.exec(name);
    if (!m) networkFail('LOG_INVALID', `publications/${name} is not a publication file name`);
    let value: unknown;
    try {
      value = JSON.parse(await readFile(join(dir, FILES.publications, name), 'utf8'));
    } catch (cause) {
      return networkFail('LOG_INVALID', `publications/${name} is not JSON`, { cause });
    }
    out.push({ file: `publications/${name}`, size: Number(m[1]), value });
  }
  return out;
}

export interface LogVerifyReport {
  readonly network: string;
  readonly size: number;
  readonly rootHash: string;
  readonly publications: number;
  readonly kinds: Record<LogEntryKind, number>;
  /** Editions found as manifest entries, in order (= the editions/ files). */
  readonly editions: number;
}

/**
 * Recompute the tree from the publications alone: each one verifies under
 * the root, follows the one before (previous, consistency proof), its
 * entries are the next indices with their statements and inclusion proofs,
 * and its checkpoint's root is the root of the leaves so far. Then the
 * chain's end must be log.db's size and root, and the manifest entries the
 * editions/ files, in order. LOG_INVALID naming the first file that fails.
 */
export function verifyLogChain(options: {
  readonly config: SecretariatConfig;
  readonly log: TransparencyLog;
  readonly publications: readonly StoredPublication[];
  readonly editions: readonly Manifest[];
}): LogVerifyReport {
  const { config, log, publications, editions } = options;
  const tree = new MemoryTree();
  let held: { size: number; rootHash: Uint8Array } | null = null;
  const kinds: Record<LogEntryKind, number> = {
    manifest: 0,
    rotation: 0,
    revocation: 0,
    introduction: 0,
  };
  let manifests = 0;
  for (const p of publications) {
    let checked: CheckedPublication;
    try {
      checked = checkPublicationLocal(p.value, config.root, held);
    } catch (cause) {
      if (cause instanceof OutOfOrder || isProtocolError(cause))
        return networkFail('LOG_INVALID', `${p.file}: ${cause.message}`, {
          cause,
          ...(isProtocolError(cause) ? { detail: cause.code } : {}),
        });
      throw cause;
    }
    if (checked.size !== p.size)
      networkFail('LOG_INVALID', `${p.file} holds the checkpoint of size ${checked.size}`);
    if ((p.value as { network?: unknown }).network !== config.network)
      networkFail('LOG_INVALID', `${p.file} is a publication of another network`);
    for (const e of checked.entries) {
      tree.appendLeafHash(logEntryLeafHash(e.entry));
      kinds[e.kind]++;
      if (e.kind === 'manifest') {
        const edition = editions[manifests];
        if (!edition || hashOf(edition) !== e.entry.hash)
          networkFail(
            'LOG_INVALID',
            `${p.file}: entry ${e.index} is not editions/${editionFile(manifests + 1)}`,
          );
        try {
          verifyManifest(e.statement, config.root);
        } catch (cause) {
          return networkFail('LOG_INVALID', `${p.file}: entry ${e.index} does not verify`, {
            cause,
          });
        }
        manifests++;
      }
    }
    if (!equalBytes(tree.root(), checked.rootHash))
      networkFail('LOG_INVALID', `${p.file}: the checkpoint root is not the root of its entries`);
    held = { size: checked.size, rootHash: checked.rootHash };
  }
  const size = held?.size ?? 0;
  if (log.size !== size)
    networkFail(
      'LOG_INVALID',
      `${FILES.log} holds ${log.size} entries, the publications end at ${size}`,
    );
  if (held && !equalBytes(log.root(), held.rootHash))
    networkFail('LOG_INVALID', `${FILES.log} has another root than the last publication`);
  if (manifests !== editions.length && publications.length > 0)
    networkFail(
      'LOG_INVALID',
      `the publications log ${manifests} editions, the folder has ${editions.length}`,
    );
  return {
    network: config.network,
    size,
    rootHash: toBase64(log.root()),
    publications: publications.length,
    kinds,
    editions: manifests,
  };
}
