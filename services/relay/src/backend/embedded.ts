/**
 * The embedded relay backend: all relay state in one SQLite file, no
 * external service. What the demo and the quick start run.
 *
 * Durability: WAL with `synchronous=FULL`, so a committed transaction
 * survives a power cut; every state change that spans rows is one
 * transaction, so a crash leaves either all of it or none. Workers never
 * hold a transaction across an `await`: a task is claimed in one
 * transaction (with a lease), the handler runs outside it, and the outcome
 * is written in another. A process that dies mid-task leaves a lease that
 * runs out, after which any process sharing the file takes the task over.
 * So handlers run once per task while processes live, and at least once
 * across a crash (dying after a handler succeeded, before its outcome was
 * written, means another run); peers deduplicate by envelope id.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { resolve as resolvePath } from 'node:path';
import Database from 'better-sqlite3';
import { checkedBackend } from './checked.js';
import { migrate } from './embedded-schema.js';
import { exportEmbedded, importEmbedded, readEpoch, writeEpoch } from './embedded-snapshot.js';
import {
  asBuffer,
  assertNonEmpty,
  assertPositiveInteger,
  retryDelay,
  ignoreError,
  mailboxDedupKey,
  normalizeAccept,
  runForwardAttempt,
  safeNotify,
  toBytes,
} from './shared.js';
import type {
  AcceptInput,
  AcceptResult,
  BackendSnapshot,
  BackendStats,
  BackoffPolicy,
  ChunkUsage,
  ForwardTask,
  ForwardTaskInput,
  MailboxItem,
  MailboxItemKind,
  MailboxBacklog,
  ForwardBacklog,
  QueueReport,
  RelayBackend,
  StoredEnvelope,
  WorkerHandlers,
} from './types.js';
import { NON_DELIVERY_LIST_MAX } from './types.js';

export interface EmbeddedBackendOptions {
  /** Path of the SQLite file (created if missing); `':memory:'` for a private store that dies with the backend. */
  readonly file: string;
  /** Milliseconds since the epoch; injectable so tests drive deadlines, expiry and windows. */
  readonly clock?: () => number;
  /** How often idle workers look for due work (default 500 ms); local writes wake them at once. */
  readonly pollIntervalMs?: number;
  /**
   * How long a claimed task stays with this process without renewal
   * (default 60 s). In-flight tasks are renewed every third of it; a
   * process that dies loses its tasks to another one after at most this.
   */
  readonly leaseMs?: number;
  /** Receives errors of the background workers. Never given payloads by the backend itself. */
  readonly onError?: (error: unknown) => void;
  /**
   * Writes queued in one turn of the event loop share one transaction and one
   * fsync (default true). `false` commits each on its own: only for
   * `bench:relay --only embedded,embeddedSingleCommit`, which measures what
   * the group commit is worth (docs/performance.md).
   */
  readonly groupCommit?: boolean;
}

const DEFAULT_POLL_INTERVAL_MS = 500;
const DEFAULT_LEASE_MS = 60_000;
/** Rows touched per garbage-collection transaction, so GC never holds the write lock for long. */
const GC_BATCH = 256;
const BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens (creating or migrating) the relay database in `file`.
 *
 * Several relay processes may share one file: claims are atomic and leased,
 * so no forward or expiry runs twice while its process lives. `subscribe`
 * reaches every backend of this process on the same file, not other
 * processes: one process is expected to serve a file's WebSockets.
 */
export function openEmbeddedBackend(options: EmbeddedBackendOptions): Promise<RelayBackend> {
  return settle(() => checkedBackend(new EmbeddedBackend(options)));
}

/** Runs synchronous SQLite work as a promise that rejects (instead of throwing) on failure. */
function settle<T>(fn: () => T): Promise<T> {
  return new Promise<T>((resolve) => {
    resolve(fn());
  });
}

// ---------------------------------------------------------------------------
// Notification bus: in-process, shared by every backend on the same file.

interface Bus {
  readonly emitter: EventEmitter;
  refs: number;
}

const buses = new Map<string, Bus>();
const MAILBOX_EVENT = 'mailbox';

function acquireBus(file: string): { readonly emitter: EventEmitter; release(): void } {
  if (file === ':memory:' || file === '') {
    const emitter = new EventEmitter();
    emitter.setMaxListeners(0);
    return { emitter, release: () => undefined };
  }
  const key = resolvePath(file);
  let bus = buses.get(key);
  if (bus === undefined) {
    const emitter = new EventEmitter();
    emitter.setMaxListeners(0);
    bus = { emitter, refs: 0 };
    buses.set(key, bus);
  }
  bus.refs += 1;
  const held = bus;
  let released = false;
  return {
    emitter: held.emitter,
    release: () => {
      if (released) return;
      released = true;
      held.refs -= 1;
      if (held.refs === 0 && buses.get(key) === held) buses.delete(key);
    },
  };
}

// ---------------------------------------------------------------------------
// Rows.

interface EnvelopeRow {
  id: string;
  hash: string;
  bytes: Buffer;
  sender: string;
  recipients: string;
  chunk_ids: string;
  expires_at: number;
  accepted_at: number;
  acceptance: Buffer;
}

interface ItemRow {
  seq: number;
  kind: MailboxItemKind;
  envelope_id: string;
  payload: Buffer | null;
  accepted_at: number | null;
}

interface TaskRow {
  id: string;
  kind: 'envelope' | 'evidence';
  envelope_id: string;
  network: string;
  recipients: string | null;
  payload: Buffer | null;
  deadline: number;
  attempt: number;
}

interface ExpiryRow {
  address: string;
  seq: number;
  envelope_id: string;
  attempt: number;
}

function parseStrings(json: string): string[] {
  const value: unknown = JSON.parse(json);
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) {
    throw new Error('relay database: corrupt string list');
  }
  return value;
}

function taskFromRow(row: TaskRow): ForwardTask {
  if (row.kind === 'envelope') {
    return {
      kind: 'envelope',
      id: row.id,
      envelopeId: row.envelope_id,
      network: row.network,
      recipients: parseStrings(row.recipients ?? '[]'),
      deadline: row.deadline,
    };
  }
  return {
    kind: 'evidence',
    id: row.id,
    envelopeId: row.envelope_id,
    network: row.network,
    payload: toBytes(row.payload ?? new Uint8Array(0)),
    deadline: row.deadline,
  };
}

// ---------------------------------------------------------------------------
// Statements and transactions.

/** Every statement the backend runs, prepared once per connection. */
function prepareStatements(db: Database.Database) {
  return {
    ping: db.prepare('SELECT 1'),
    envelopeHead: db.prepare<[string], { hash: string; acceptance: Buffer }>(
      'SELECT hash, acceptance FROM envelopes WHERE id = ?',
    ),
    insertEnvelope: db.prepare(
      `INSERT INTO envelopes (id, hash, bytes, sender, recipients, chunk_ids, expires_at, accepted_at, retain_until, acceptance, uploader, held_bytes)
       VALUES (@id, @hash, @bytes, @sender, @recipients, @chunkIds, @expiresAt, @acceptedAt, @retainUntil, @acceptance, @uploader, @heldBytes)`,
    ),
    insertChunkRef: db.prepare(
      'INSERT OR IGNORE INTO chunk_refs (chunk_id, envelope_id) VALUES (?, ?)',
    ),
    getEnvelope: db.prepare<[string], EnvelopeRow>(
      `SELECT id, hash, bytes, sender, recipients, chunk_ids, expires_at, accepted_at, acceptance
       FROM envelopes WHERE id = ?`,
    ),
    nextSeq: db.prepare<[string], { last_seq: number }>(
      `INSERT INTO mailbox_seqs (address, last_seq) VALUES (?, 1)
       ON CONFLICT (address) DO UPDATE SET last_seq = last_seq + 1
       RETURNING last_seq`,
    ),
    dedupTaken: db.prepare<[string, string], { one: number }>(
      'SELECT 1 AS one FROM mailbox_items WHERE address = ? AND dedup_key = ?',
    ),
    insertItem: db.prepare(
      `INSERT INTO mailbox_items (address, seq, kind, envelope_id, payload, dedup_key, deliver_by, state, due_at)
       VALUES (@address, @seq, @kind, @envelopeId, @payload, @dedupKey, @deliverBy, 'pending', @deliverBy)`,
    ),
    readMailbox: db.prepare<[string, number, number], ItemRow>(
      `SELECT m.seq, m.kind, m.envelope_id,
              CASE WHEN m.kind = 'envelope' THEN e.bytes ELSE m.payload END AS payload,
              e.accepted_at
       FROM mailbox_items m
       LEFT JOIN envelopes e ON m.kind = 'envelope' AND e.id = m.envelope_id
       WHERE m.address = ? AND m.seq > ? AND m.state = 'pending'
       ORDER BY m.seq LIMIT ?`,
    ),
    ackItem: db.prepare<[string, number], { kind: MailboxItemKind; envelope_id: string }>(
      `UPDATE mailbox_items SET state = 'acked', payload = NULL, due_at = NULL, lease_owner = NULL
       WHERE address = ? AND seq = ? AND state = 'pending'
       RETURNING kind, envelope_id`,
    ),
    // A tombstone only keeps a dedup key, and only while the envelope record refuses replays.
    dropTombstoneUnlessRetained: db.prepare(
      `DELETE FROM mailbox_items WHERE address = @address AND seq = @seq AND state = 'acked'
       AND (kind = 'envelope' OR NOT EXISTS (SELECT 1 FROM envelopes WHERE id = @envelopeId))`,
    ),
    markDone: db.prepare(
      `UPDATE envelopes SET done_at = @now
       WHERE id = @id AND done_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM mailbox_items
                         WHERE envelope_id = @id AND kind = 'envelope' AND state IN ('pending', 'expiring'))
         AND NOT EXISTS (SELECT 1 FROM forward_tasks
                         WHERE envelope_id = @id AND kind = 'envelope' AND state IN ('pending', 'running'))`,
    ),
    insertTask: db.prepare(
      `INSERT INTO forward_tasks (id, kind, envelope_id, network, recipients, payload, deadline, next_at, state)
       VALUES (@id, @kind, @envelopeId, @network, @recipients, @payload, @deadline, @nextAt, 'pending')
       ON CONFLICT (id) DO NOTHING`,
    ),
    dueTasks: db.prepare<[number, number], { id: string }>(
      `SELECT id FROM forward_tasks
       WHERE next_at <= ? AND state IN ('pending', 'running')
       ORDER BY deadline, next_at LIMIT ?`,
    ),
    wakeNetwork: db.prepare<{ network: string; now: number }>(
      `UPDATE forward_tasks SET next_at = @now
       WHERE network = @network AND state = 'pending' AND next_at > @now`,
    ),
    claimTask: db.prepare<{ id: string; owner: string; leaseEnd: number; now: number }, TaskRow>(
      `UPDATE forward_tasks SET state = 'running', lease_owner = @owner, next_at = @leaseEnd, attempt = attempt + 1
       WHERE id = @id AND next_at <= @now AND state IN ('pending', 'running')
       RETURNING id, kind, envelope_id, network, recipients, payload, deadline, attempt`,
    ),
    finishTask: db.prepare<
      { id: string; owner: string; state: 'done' | 'gave_up'; now: number },
      { kind: 'envelope' | 'evidence'; envelope_id: string }
    >(
      `UPDATE forward_tasks SET state = @state, next_at = NULL, lease_owner = NULL, payload = NULL, finished_at = @now
       WHERE id = @id AND lease_owner = @owner AND state = 'running'
       RETURNING kind, envelope_id`,
    ),
    dropTaskUnlessRetained: db.prepare(
      `DELETE FROM forward_tasks WHERE id = @id AND state IN ('done', 'gave_up')
       AND NOT EXISTS (SELECT 1 FROM envelopes WHERE id = @envelopeId)`,
    ),
    retryTask: db.prepare(
      `UPDATE forward_tasks SET state = 'pending', next_at = @nextAt, lease_owner = NULL
       WHERE id = @id AND lease_owner = @owner AND state = 'running'`,
    ),
    dueExpiries: db.prepare<[number, number], { address: string; seq: number }>(
      `SELECT address, seq FROM mailbox_items
       WHERE due_at <= ? AND state IN ('pending', 'expiring')
       ORDER BY due_at LIMIT ?`,
    ),
    claimExpiry: db.prepare<
      { address: string; seq: number; owner: string; leaseEnd: number; now: number },
      ExpiryRow
    >(
      `UPDATE mailbox_items SET state = 'expiring', due_at = @leaseEnd, lease_owner = @owner, attempt = attempt + 1
       WHERE address = @address AND seq = @seq AND due_at <= @now AND state IN ('pending', 'expiring')
       RETURNING address, seq, envelope_id, attempt`,
    ),
    finishExpiry: db.prepare<
      { address: string; seq: number; owner: string },
      { envelope_id: string }
    >(
      `DELETE FROM mailbox_items
       WHERE address = @address AND seq = @seq AND state = 'expiring' AND lease_owner = @owner
       RETURNING envelope_id`,
    ),
    retryExpiry: db.prepare(
      `UPDATE mailbox_items SET due_at = @dueAt, lease_owner = NULL
       WHERE address = @address AND seq = @seq AND state = 'expiring' AND lease_owner = @owner`,
    ),
    renewTasks: db.prepare(
      `UPDATE forward_tasks SET next_at = @leaseEnd WHERE lease_owner = @owner AND state = 'running'`,
    ),
    renewExpiries: db.prepare(
      `UPDATE mailbox_items SET due_at = @leaseEnd WHERE lease_owner = @owner AND state = 'expiring'`,
    ),
    chunkVisible: db.prepare<{ chunkId: string; address: string }, { one: number }>(
      `SELECT 1 AS one FROM chunk_refs r JOIN envelopes e ON e.id = r.envelope_id
       WHERE r.chunk_id = @chunkId AND e.done_at IS NULL
         AND (e.sender = @address OR EXISTS (SELECT 1 FROM json_each(e.recipients) WHERE value = @address))
       LIMIT 1`,
    ),
    // A repeated upload renews the record, pending again if an envelope had referenced it
    // (the triggers charge its size once while it is pending).
    noteUpload: db.prepare(
      `INSERT INTO chunk_uploads (chunk_id, owner, size, at) VALUES (@chunkId, @owner, @size, @at)
       ON CONFLICT (chunk_id, owner) DO UPDATE SET at = max(at, excluded.at), referenced = 0`,
    ),
    renewOwned: db.prepare<{ chunkId: string; owner: string; at: number }, { chunk_id: string }>(
      `UPDATE chunk_uploads SET at = max(at, @at), referenced = 0 WHERE chunk_id = @chunkId AND owner = @owner
       RETURNING chunk_id`,
    ),
    uploadSize: db.prepare<[string, string], { size: number }>(
      'SELECT size FROM chunk_uploads WHERE chunk_id = ? AND owner = ?',
    ),
    markReferenced: db.prepare(
      'UPDATE chunk_uploads SET referenced = 1 WHERE chunk_id = ? AND owner = ? AND referenced = 0',
    ),
    uploadUsage: db.prepare<
      { identity: string; chunkId: string },
      { pending: number; referenced: number; owned: number }
    >(
      `SELECT coalesce((SELECT pending FROM chunk_usage WHERE identity = @identity), 0) AS pending,
              coalesce((SELECT referenced FROM chunk_usage WHERE identity = @identity), 0) AS referenced,
              EXISTS (SELECT 1 FROM chunk_uploads WHERE chunk_id = @chunkId AND owner = @identity) AS owned`,
    ),
    usage: db.prepare<[], { identity: string; pending: number; referenced: number }>(
      `SELECT identity, pending, referenced FROM chunk_usage WHERE identity <> ''`,
    ),
    chunkReferenced: db.prepare<{ chunkId: string; since: number }, { referenced: number }>(
      `SELECT EXISTS (SELECT 1 FROM chunk_refs WHERE chunk_id = @chunkId)
           OR EXISTS (SELECT 1 FROM chunk_uploads WHERE chunk_id = @chunkId AND at > @since) AS referenced`,
    ),
    claimOnce: db.prepare(
      `INSERT INTO claims (key, expires_at) VALUES (@key, @expiresAt)
       ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE claims.expires_at <= @now`,
    ),
    releasable: db.prepare<[number, number], { id: string }>(
      `SELECT id FROM envelopes WHERE done_at IS NOT NULL AND released_at IS NULL AND done_at <= ? LIMIT ?`,
    ),
    releaseRefs: db.prepare<[string], { chunk_id: string }>(
      'DELETE FROM chunk_refs WHERE envelope_id = ? RETURNING chunk_id',
    ),
    markReleased: db.prepare('UPDATE envelopes SET released_at = ? WHERE id = ?'),
    expiredUploads: db.prepare<[number, number], { chunk_id: string }>(
      `DELETE FROM chunk_uploads WHERE (chunk_id, owner) IN
         (SELECT chunk_id, owner FROM chunk_uploads WHERE at <= ? LIMIT ?)
       RETURNING chunk_id`,
    ),
    chunkHeld: db.prepare<{ chunkId: string }, { held: number }>(
      `SELECT EXISTS (SELECT 1 FROM chunk_refs WHERE chunk_id = @chunkId)
           OR EXISTS (SELECT 1 FROM chunk_uploads WHERE chunk_id = @chunkId) AS held`,
    ),
    deletable: db.prepare<[number, number], { id: string }>(
      `SELECT id FROM envelopes WHERE released_at IS NOT NULL AND retain_until <= ? LIMIT ?`,
    ),
    deleteItemTombstones: db.prepare(
      `DELETE FROM mailbox_items WHERE envelope_id = ? AND state = 'acked'`,
    ),
    deleteTaskTombstones: db.prepare(
      `DELETE FROM forward_tasks WHERE envelope_id = ? AND state IN ('done', 'gave_up')`,
    ),
    deleteEnvelope: db.prepare('DELETE FROM envelopes WHERE id = ?'),
    deleteClaims: db.prepare('DELETE FROM claims WHERE expires_at <= ?'),
    stats: db.prepare<[], BackendStats>(
      `SELECT (SELECT count(*) FROM mailbox_items WHERE state = 'pending') AS mailboxItems,
              (SELECT count(*) FROM forward_tasks WHERE state IN ('pending', 'running')) AS forwardPending,
              (SELECT count(*) FROM envelopes) AS envelopes`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/**
 * Every multi-statement write, each one transaction. Callers run them with
 * `.immediate()`: taking the write lock up front means a concurrent process
 * waits (busy_timeout) instead of failing on a lock upgrade mid-transaction.
 */
function createTransactions(
  db: Database.Database,
  sql: Statements,
  { owner, leaseMs }: { readonly owner: string; readonly leaseMs: number },
) {
  const nextSeq = (address: string): number => {
    const row = sql.nextSeq.get(address);
    if (row === undefined) throw new Error('relay database: no mailbox sequence returned');
    return row.last_seq;
  };

  const acceptTx = db.transaction(
    (input: AcceptInput, plan: ReturnType<typeof normalizeAccept>, now: number): AcceptResult => {
      const { envelope } = input;
      const head = sql.envelopeHead.get(envelope.id);
      if (head !== undefined) {
        if (head.hash !== envelope.hash) return { status: 'conflict' };
        // A retry after a renewal (missing query) made the records pending again: the accepted
        // envelope still charges them, so they count as referenced again, not twice.
        if (input.uploader !== undefined)
          for (const chunkId of new Set(envelope.chunkIds))
            sql.markReferenced.run(chunkId, input.uploader);
        return { status: 'duplicate', acceptance: toBytes(head.acceptance) };
      }
      let heldBytes = 0;
      const { uploader } = input;
      if (uploader !== undefined) {
        // One primary-key lookup per chunk; all are checked before anything is written.
        const distinct = [...new Set(envelope.chunkIds)];
        const sizes = distinct.map((chunkId) => sql.uploadSize.get(chunkId, uploader)?.size);
        const unowned = distinct.filter((_chunkId, index) => sizes[index] === undefined);
        if (unowned.length > 0) return { status: 'unowned', chunkIds: unowned };
        for (const [index, chunkId] of distinct.entries()) {
          sql.markReferenced.run(chunkId, uploader);
          heldBytes += sizes[index]!;
        }
      }
      sql.insertEnvelope.run({
        id: envelope.id,
        hash: envelope.hash,
        bytes: asBuffer(envelope.bytes),
        sender: envelope.sender,
        recipients: JSON.stringify(envelope.recipients),
        chunkIds: JSON.stringify(envelope.chunkIds),
        expiresAt: envelope.expiresAt,
        acceptedAt: envelope.acceptedAt,
        retainUntil: input.retainUntil,
        acceptance: asBuffer(envelope.acceptance),
        uploader: uploader ?? null,
        heldBytes,
      });
      for (const chunkId of envelope.chunkIds) sql.insertChunkRef.run(chunkId, envelope.id);
      for (const delivery of plan.deliveries) {
        sql.insertItem.run({
          address: delivery.address,
          seq: nextSeq(delivery.address),
          kind: 'envelope',
          envelopeId: envelope.id,
          payload: null,
          dedupKey: mailboxDedupKey('envelope', envelope.id),
          deliverBy: delivery.deliverBy,
        });
      }
      for (const forward of plan.forwards) {
        sql.insertTask.run({
          id: forward.taskId,
          kind: 'envelope',
          envelopeId: envelope.id,
          network: forward.network,
          recipients: JSON.stringify(forward.recipients),
          payload: null,
          // Forwarding an expired envelope is pointless: the peer must refuse it.
          deadline: envelope.expiresAt,
          nextAt: now,
        });
      }
      // Nothing to deliver or forward: done from the start.
      sql.markDone.run({ id: envelope.id, now });
      return { status: 'accepted' };
    },
  );

  const pushEvidenceTx = db.transaction(
    (address: string, envelopeId: string, key: string, payload: Uint8Array): boolean => {
      const dedupKey = mailboxDedupKey('evidence', key);
      if (sql.dedupTaken.get(address, dedupKey) !== undefined) return false;
      sql.insertItem.run({
        address,
        seq: nextSeq(address),
        kind: 'evidence',
        envelopeId,
        payload: asBuffer(payload),
        dedupKey,
        deliverBy: null,
      });
      return true;
    },
  );

  const ackTx = db.transaction((address: string, seqs: readonly number[], now: number): number => {
    let removed = 0;
    for (const seq of new Set(seqs)) {
      if (!Number.isSafeInteger(seq)) continue;
      const row = sql.ackItem.get(address, seq);
      if (row === undefined) continue;
      removed += 1;
      sql.dropTombstoneUnlessRetained.run({ address, seq, envelopeId: row.envelope_id });
      if (row.kind === 'envelope') sql.markDone.run({ id: row.envelope_id, now });
    }
    return removed;
  });

  const claimForwardsTx = db.transaction((limit: number, now: number): TaskRow[] => {
    const claimed: TaskRow[] = [];
    for (const { id } of sql.dueTasks.all(now, limit)) {
      const row = sql.claimTask.get({ id, owner, leaseEnd: now + leaseMs, now });
      if (row !== undefined) claimed.push(row);
    }
    return claimed;
  });

  const finishForwardTx = db.transaction(
    (id: string, state: 'done' | 'gave_up', now: number): void => {
      const row = sql.finishTask.get({ id, owner, state, now });
      if (row === undefined) return; // the lease was lost: whoever holds it now decides
      if (row.kind === 'envelope') sql.markDone.run({ id: row.envelope_id, now });
      else sql.dropTaskUnlessRetained.run({ id, envelopeId: row.envelope_id });
    },
  );

  const claimExpiriesTx = db.transaction((limit: number, now: number): ExpiryRow[] => {
    const claimed: ExpiryRow[] = [];
    for (const { address, seq } of sql.dueExpiries.all(now, limit)) {
      const row = sql.claimExpiry.get({ address, seq, owner, leaseEnd: now + leaseMs, now });
      if (row !== undefined) claimed.push(row);
    }
    return claimed;
  });

  const finishExpiryTx = db.transaction((address: string, seq: number, now: number): void => {
    const row = sql.finishExpiry.get({ address, seq, owner });
    if (row !== undefined) sql.markDone.run({ id: row.envelope_id, now });
  });

  const renewTx = db.transaction((now: number): void => {
    const params = { owner, leaseEnd: now + leaseMs };
    sql.renewTasks.run(params);
    sql.renewExpiries.run(params);
  });

  const releaseBatchTx = db.transaction(
    (cutoff: number, now: number, into: Set<string>): number => {
      const rows = sql.releasable.all(cutoff, GC_BATCH);
      for (const { id } of rows) {
        for (const { chunk_id } of sql.releaseRefs.all(id)) into.add(chunk_id);
        sql.markReleased.run(now, id);
      }
      return rows.length;
    },
  );

  const uploadBatchTx = db.transaction((cutoff: number, into: Set<string>): number => {
    const rows = sql.expiredUploads.all(cutoff, GC_BATCH);
    for (const { chunk_id } of rows) into.add(chunk_id);
    return rows.length;
  });

  const filterOrphansTx = db.transaction((candidates: ReadonlySet<string>): string[] =>
    [...candidates].filter((chunkId) => sql.chunkHeld.get({ chunkId })?.held === 0),
  );

  const deleteBatchTx = db.transaction((now: number): number => {
    const rows = sql.deletable.all(now, GC_BATCH);
    for (const { id } of rows) {
      sql.deleteItemTombstones.run(id);
      sql.deleteTaskTombstones.run(id);
      sql.deleteEnvelope.run(id);
    }
    return rows.length;
  });

  return {
    acceptTx,
    pushEvidenceTx,
    ackTx,
    claimForwardsTx,
    finishForwardTx,
    claimExpiriesTx,
    finishExpiryTx,
    renewTx,
    releaseBatchTx,
    uploadBatchTx,
    filterOrphansTx,
    deleteBatchTx,
  };
}

type Transactions = ReturnType<typeof createTransactions>;

// ---------------------------------------------------------------------------
// Group commit: the hot writes of concurrent requests share one transaction,
// hence one fsync. Each operation runs as a savepoint of the shared
// transaction (a nested better-sqlite3 transaction), so one failing operation
// rolls back alone; every promise settles only after the commit.

interface PendingWrite {
  readonly run: () => unknown;
  readonly after: ((result: unknown) => void) | undefined;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

class GroupCommit {
  private queue: PendingWrite[] = [];
  private scheduled = false;
  private readonly commit: Database.Transaction<
    (batch: PendingWrite[]) => { ok: boolean; value: unknown }[]
  >;

  /** `grouped: false` commits each queued write in a transaction of its own (benchmark comparison only). */
  constructor(
    db: Database.Database,
    private readonly grouped: boolean,
  ) {
    this.commit = db.transaction((batch: PendingWrite[]) =>
      batch.map((write) => {
        try {
          return { ok: true, value: write.run() };
        } catch (error) {
          return { ok: false, value: error };
        }
      }),
    );
  }

  /** Run `run` (a transaction function: it becomes a savepoint) in the next shared commit; `after` runs once committed. */
  submit<T>(run: () => T, after?: (result: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        run,
        after: after as ((result: unknown) => void) | undefined,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.flush();
        });
      }
    });
  }

  /** Commit what is queued now (before closing the database). */
  drain(): void {
    if (this.queue.length > 0) this.flush();
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (this.grouped) this.commitBatch(batch);
    else for (const write of batch) this.commitBatch([write]);
  }

  private commitBatch(batch: PendingWrite[]): void {
    if (batch.length === 0) return;
    let outcomes: { ok: boolean; value: unknown }[];
    try {
      outcomes = this.commit.immediate(batch);
    } catch (error) {
      for (const write of batch) write.reject(error);
      return;
    }
    batch.forEach((write, i) => {
      const outcome = outcomes[i]!;
      if (!outcome.ok) {
        write.reject(outcome.value);
        return;
      }
      write.after?.(outcome.value);
      write.resolve(outcome.value);
    });
  }
}

class EmbeddedBackend implements RelayBackend {
  readonly kind = 'embedded' as const;

  private readonly db: Database.Database;
  private readonly clock: () => number;
  private readonly owner = randomUUID();
  private readonly pollIntervalMs: number;
  private readonly leaseMs: number;
  private readonly onError: (error: unknown) => void;
  private readonly bus: { readonly emitter: EventEmitter; release(): void };
  private readonly listeners = new Set<(address: string) => void>();
  private workers: EmbeddedWorkers | undefined;
  private closing: Promise<void> | undefined;

  private readonly sql: Statements;
  private readonly tx: Transactions;
  private readonly group: GroupCommit;

  constructor(options: EmbeddedBackendOptions) {
    assertNonEmpty(options.file, 'file');
    this.clock = options.clock ?? Date.now;
    this.pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    assertPositiveInteger(this.pollIntervalMs, 'pollIntervalMs');
    assertPositiveInteger(this.leaseMs, 'leaseMs');
    this.onError = options.onError ?? ignoreError;

    const db = new Database(options.file);
    this.db = db;
    try {
      // WAL lets readers proceed during a write and other processes share the file;
      // FULL fsyncs each commit, which is what "accepted" promises.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      migrate(db);
    } catch (error) {
      db.close();
      throw error;
    }

    this.sql = prepareStatements(db);
    this.tx = createTransactions(db, this.sql, { owner: this.owner, leaseMs: this.leaseMs });
    this.group = new GroupCommit(db, options.groupCommit ?? true);

    this.bus = acquireBus(options.file);
  }

  private notify(addresses: readonly string[]): void {
    for (const address of addresses) this.bus.emitter.emit(MAILBOX_EVENT, address);
  }

  ping(): Promise<void> {
    return settle(() => {
      this.sql.ping.get();
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.stopWorkers();
      for (const listener of this.listeners) this.bus.emitter.off(MAILBOX_EVENT, listener);
      this.listeners.clear();
      this.bus.release();
      this.group.drain();
      this.db.close();
    })();
    return this.closing;
  }

  accept(input: AcceptInput): Promise<AcceptResult> {
    const plan = normalizeAccept(input);
    return this.group.submit(
      () => this.tx.acceptTx(input, plan, this.clock()),
      (result) => {
        if (result.status === 'accepted') {
          this.notify(plan.deliveries.map((delivery) => delivery.address));
          this.workers?.wake();
        }
      },
    );
  }

  getEnvelope(id: string): Promise<StoredEnvelope | undefined> {
    return settle(() => {
      const row = this.sql.getEnvelope.get(id);
      if (row === undefined) return undefined;
      return {
        id: row.id,
        hash: row.hash,
        bytes: toBytes(row.bytes),
        sender: row.sender,
        recipients: parseStrings(row.recipients),
        expiresAt: row.expires_at,
        acceptedAt: row.accepted_at,
        chunkIds: parseStrings(row.chunk_ids),
        acceptance: toBytes(row.acceptance),
      };
    });
  }

  chunkVisibleTo(chunkId: string, address: string): Promise<boolean> {
    return settle(() => this.sql.chunkVisible.get({ chunkId, address }) !== undefined);
  }

  pushEvidence(
    address: string,
    envelopeId: string,
    key: string,
    payload: Uint8Array,
  ): Promise<boolean> {
    return this.group.submit(
      () => this.tx.pushEvidenceTx(address, envelopeId, key, payload),
      (added) => {
        if (added) this.notify([address]);
      },
    );
  }

  readMailbox(address: string, after: number, limit: number): Promise<MailboxItem[]> {
    return settle(() => {
      return this.sql.readMailbox.all(address, after, limit).map((row) => ({
        seq: row.seq,
        kind: row.kind,
        envelopeId: row.envelope_id,
        payload: toBytes(row.payload ?? new Uint8Array(0)),
        ...(row.accepted_at === null ? {} : { acceptedAt: row.accepted_at }),
      }));
    });
  }

  ack(address: string, seqs: readonly number[]): Promise<number> {
    return this.group.submit(() => this.tx.ackTx(address, seqs, this.clock()));
  }

  enqueueForward(task: ForwardTaskInput): Promise<void> {
    return settle(() => {
      const id = task.id ?? randomUUID();
      this.sql.insertTask.run({
        id,
        kind: 'evidence',
        envelopeId: task.envelopeId,
        network: task.network,
        recipients: null,
        payload: asBuffer(task.payload),
        deadline: task.deadline,
        nextAt: this.clock(),
      });
      this.workers?.wake();
    });
  }

  startWorkers(
    handlers: WorkerHandlers,
    options: { concurrency: number; backoff: BackoffPolicy },
  ): Promise<void> {
    const workers = new EmbeddedWorkers({
      handlers,
      concurrency: options.concurrency,
      backoff: options.backoff,
      pollIntervalMs: this.pollIntervalMs,
      renewIntervalMs: Math.max(1, Math.floor(this.leaseMs / 3)),
      clock: this.clock,
      onError: this.onError,
      store: {
        claimForwards: (limit, now) => this.tx.claimForwardsTx.immediate(limit, now),
        finishForward: (id, state, now) => {
          this.tx.finishForwardTx.immediate(id, state, now);
        },
        retryForward: (id, nextAt) => {
          this.sql.retryTask.run({ id, nextAt, owner: this.owner });
        },
        wakeNetwork: (network, now) => {
          this.sql.wakeNetwork.run({ network, now });
        },
        claimExpiries: (limit, now) => this.tx.claimExpiriesTx.immediate(limit, now),
        finishExpiry: (address, seq, now) => {
          this.tx.finishExpiryTx.immediate(address, seq, now);
        },
        retryExpiry: (address, seq, dueAt) => {
          this.sql.retryExpiry.run({ address, seq, dueAt, owner: this.owner });
        },
        renew: (now) => {
          this.tx.renewTx.immediate(now);
        },
      },
    });
    this.workers = workers;
    workers.start();
    return Promise.resolve();
  }

  async stopWorkers(): Promise<void> {
    const workers = this.workers;
    if (workers === undefined) return;
    this.workers = undefined;
    await workers.stop();
  }

  subscribe(listener: (address: string) => void): Promise<() => Promise<void>> {
    return settle(() => {
      const wrapped = (address: string): void => {
        safeNotify(listener, address, this.onError);
      };
      this.listeners.add(wrapped);
      this.bus.emitter.on(MAILBOX_EVENT, wrapped);
      return () =>
        settle(() => {
          this.listeners.delete(wrapped);
          this.bus.emitter.off(MAILBOX_EVENT, wrapped);
        });
    });
  }

  claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return settle(() => {
      const now = this.clock();
      return this.sql.claimOnce.run({ key, expiresAt: now + ttlMs, now }).changes === 1;
    });
  }

  noteUpload(
    chunkId: string,
    at: number,
    owner: { readonly identity: string; readonly size: number },
  ): Promise<void> {
    return this.group.submit(() => {
      this.sql.noteUpload.run({ chunkId, owner: owner.identity, size: owner.size, at });
    });
  }

  ownedChunks(identity: string, chunkIds: readonly string[], at: number): Promise<string[]> {
    return this.group.submit(() =>
      chunkIds.filter(
        (chunkId) => this.sql.renewOwned.get({ chunkId, owner: identity, at }) !== undefined,
      ),
    );
  }

  uploadUsage(
    identity: string,
    chunkId: string,
  ): Promise<ChunkUsage & { readonly owned: boolean }> {
    return settle(() => {
      const row = this.sql.uploadUsage.get({ identity, chunkId });
      if (row === undefined) throw new Error('relay database: no usage row');
      return { pendingBytes: row.pending, referencedBytes: row.referenced, owned: row.owned === 1 };
    });
  }

  usage(): Promise<ReadonlyMap<string, ChunkUsage>> {
    return settle(
      () =>
        new Map(
          this.sql.usage
            .all()
            .map((row) => [
              row.identity,
              { pendingBytes: row.pending, referencedBytes: row.referenced },
            ]),
        ),
    );
  }

  chunkReferenced(chunkId: string, now: number, graceMs: number): Promise<boolean> {
    return settle(
      () => this.sql.chunkReferenced.get({ chunkId, since: now - graceMs })?.referenced === 1,
    );
  }

  collectGarbage(
    now: number,
    options: { readonly chunkRetentionMs: number; readonly uploadGraceMs: number },
  ): Promise<{ readonly envelopes: number; readonly orphanChunks: readonly string[] }> {
    return settle(() => {
      const candidates = new Set<string>();
      while (
        this.tx.releaseBatchTx.immediate(now - options.chunkRetentionMs, now, candidates) ===
        GC_BATCH
      );
      while (this.tx.uploadBatchTx.immediate(now - options.uploadGraceMs, candidates) === GC_BATCH);
      // Checked after every release: a chunk another envelope (live or not yet released) lists stays.
      const orphanChunks = this.tx.filterOrphansTx.immediate(candidates);
      let envelopes = 0;
      for (;;) {
        const deleted = this.tx.deleteBatchTx.immediate(now);
        envelopes += deleted;
        if (deleted < GC_BATCH) break;
      }
      this.sql.deleteClaims.run(now);
      return { envelopes, orphanChunks };
    });
  }

  stats(): Promise<BackendStats> {
    return settle(() => {
      const row = this.sql.stats.get();
      if (row === undefined) throw new Error('relay database: no stats row');
      return {
        mailboxItems: row.mailboxItems,
        forwardPending: row.forwardPending,
        envelopes: row.envelopes,
      };
    });
  }

  queueReport(): Promise<QueueReport> {
    return settle(() => {
      const now = this.clock();
      // One read transaction: the three parts describe the same moment.
      return this.db.transaction(() => {
        const mailboxes = this.db
          .prepare<[], MailboxBacklog>(
            `SELECT m.address AS address, count(*) AS items,
                    sum(m.kind = 'envelope') AS envelopes, sum(m.kind = 'evidence') AS evidences,
                    min(e.accepted_at) AS oldestAcceptedAt
             FROM mailbox_items m LEFT JOIN envelopes e ON e.id = m.envelope_id
             WHERE m.state = 'pending' GROUP BY m.address ORDER BY m.address`,
          )
          .all();
        const forwards = this.db
          .prepare<[number], ForwardBacklog>(
            `SELECT t.network AS network, count(*) AS tasks,
                    sum(t.kind = 'envelope') AS envelopes, sum(t.kind = 'evidence') AS evidences,
                    min(e.accepted_at) AS oldestAcceptedAt,
                    min(CASE WHEN t.state = 'pending' THEN coalesce(t.next_at, ?) END) AS nextAttemptAt,
                    max(t.attempt) AS maxAttempts
             FROM forward_tasks t LEFT JOIN envelopes e ON e.id = t.envelope_id
             WHERE t.state IN ('pending', 'running') GROUP BY t.network ORDER BY t.network`,
          )
          .all(now);
        const due = `kind = 'envelope' AND ((state = 'pending' AND deliver_by <= ?) OR state = 'expiring')`;
        const summary = this.db
          .prepare<[number], { count: number; oldest: number | null }>(
            `SELECT count(*) AS count, min(deliver_by) AS oldest FROM mailbox_items WHERE ${due}`,
          )
          .get(now);
        const items = this.db
          .prepare<[number, number], { address: string; envelopeId: string; deliverBy: number }>(
            `SELECT address, envelope_id AS envelopeId, deliver_by AS deliverBy FROM mailbox_items
             WHERE ${due} ORDER BY deliver_by, address, seq LIMIT ?`,
          )
          .all(now, NON_DELIVERY_LIST_MAX);
        return {
          at: now,
          mailboxes: mailboxes.map((m) => ({ ...m })),
          forwards: forwards.map((f) => ({ ...f })),
          nonDeliveries: {
            count: summary?.count ?? 0,
            oldestDeliverBy: summary?.oldest ?? null,
            items,
          },
        };
      })();
    });
  }

  mailboxEpoch(): Promise<string> {
    return settle(() => readEpoch(this.db));
  }

  renewMailboxEpoch(): Promise<string> {
    return settle(() => {
      const epoch = randomUUID().replaceAll('-', '');
      writeEpoch(this.db, epoch);
      return epoch;
    });
  }

  exportState(): Promise<BackendSnapshot> {
    return settle(() => exportEmbedded(this.db));
  }

  importState(snapshot: BackendSnapshot): Promise<void> {
    return settle(() => {
      importEmbedded(this.db, snapshot);
    });
  }
}

// ---------------------------------------------------------------------------
// Workers.

interface WorkerStore {
  claimForwards(limit: number, now: number): TaskRow[];
  finishForward(id: string, state: 'done' | 'gave_up', now: number): void;
  retryForward(id: string, nextAt: number): void;
  /** Make every pending forward of `network` due now (its relay answers again). */
  wakeNetwork(network: string, now: number): void;
  claimExpiries(limit: number, now: number): ExpiryRow[];
  finishExpiry(address: string, seq: number, now: number): void;
  retryExpiry(address: string, seq: number, dueAt: number): void;
  renew(now: number): void;
}

/**
 * Poll loop of one backend: claims due work up to `concurrency` forwards
 * and `concurrency` expiries in flight (like the Redis backend's two
 * BullMQ workers), runs the handlers, records outcomes, renews leases.
 */
class EmbeddedWorkers {
  private readonly forwards = new Set<Promise<void>>();
  private readonly expiries = new Set<Promise<void>>();
  /** Networks whose forwards this instance put back on backoff since they last succeeded. */
  private readonly backlogged = new Set<string>();
  private pollTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private wakeQueued = false;
  private stopped = false;

  constructor(
    private readonly options: {
      readonly handlers: WorkerHandlers;
      readonly concurrency: number;
      readonly backoff: BackoffPolicy;
      readonly pollIntervalMs: number;
      readonly renewIntervalMs: number;
      readonly clock: () => number;
      readonly onError: (error: unknown) => void;
      readonly store: WorkerStore;
    },
  ) {}

  start(): void {
    this.renewTimer = setInterval(() => {
      this.guard(() => {
        this.options.store.renew(this.options.clock());
      });
    }, this.options.renewIntervalMs);
    this.renewTimer.unref();
    this.wake();
  }

  /** Look for work now rather than at the next poll. */
  wake(): void {
    if (this.stopped || this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.tick();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    await Promise.allSettled([...this.forwards, ...this.expiries]);
    clearInterval(this.renewTimer);
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.options.onError(error);
    }
  }

  private tick(): void {
    if (this.stopped) return;
    clearTimeout(this.pollTimer);
    const { store, concurrency, clock } = this.options;
    this.guard(() => {
      const freeForwards = concurrency - this.forwards.size;
      if (freeForwards > 0) {
        for (const row of store.claimForwards(freeForwards, clock()))
          this.track(this.forwards, this.runForward(row));
      }
      const freeExpiries = concurrency - this.expiries.size;
      if (freeExpiries > 0) {
        for (const row of store.claimExpiries(freeExpiries, clock()))
          this.track(this.expiries, this.runExpiry(row));
      }
    });
    this.pollTimer = setTimeout(() => {
      this.tick();
    }, this.options.pollIntervalMs);
    this.pollTimer.unref();
  }

  private track(set: Set<Promise<void>>, run: Promise<void>): void {
    set.add(run);
    void run.finally(() => {
      set.delete(run);
      this.wake();
    });
  }

  private async runForward(row: TaskRow): Promise<void> {
    const { handlers, clock, store, backoff } = this.options;
    try {
      const { result } = await runForwardAttempt({
        handlers,
        task: taskFromRow(row),
        attempt: row.attempt,
        clock,
      });
      if (result === 'retry') {
        store.retryForward(row.id, clock() + retryDelay(backoff, row.attempt));
        this.backlogged.add(row.network);
      } else {
        store.finishForward(row.id, result === 'done' ? 'done' : 'gave_up', clock());
        // The peer answers again: its backlog is due now rather than at each task's
        // own backoff, and is claimed closest deadline first.
        if (result === 'done' && this.backlogged.delete(row.network))
          store.wakeNetwork(row.network, clock());
      }
    } catch (error) {
      // giveUp threw, or the outcome could not be written: try again later (the lease covers a failed write).
      this.options.onError(error);
      this.guard(() => {
        store.retryForward(row.id, clock() + retryDelay(backoff, row.attempt));
      });
    }
  }

  private async runExpiry(row: ExpiryRow): Promise<void> {
    const { handlers, clock, store, backoff } = this.options;
    try {
      await handlers.expired({ address: row.address, envelopeId: row.envelope_id });
      store.finishExpiry(row.address, row.seq, clock());
    } catch (error) {
      this.options.onError(error);
      this.guard(() => {
        store.retryExpiry(row.address, row.seq, clock() + retryDelay(backoff, row.attempt));
      });
    }
  }
}
