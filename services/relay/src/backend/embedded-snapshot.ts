/**
 * Export and import of the embedded backend's whole state (for
 * `rogatory-relay migrate-backend`), and its mailbox epoch. The import runs
 * in one transaction: a failure leaves the file as it was (empty).
 */
import type Database from 'better-sqlite3';
import { BackendError } from './errors.js';
import { asBuffer, toBytes } from './shared.js';
import type {
  BackendSnapshot,
  MailboxItemKind,
  SnapshotEnvelope,
  SnapshotItem,
  SnapshotTask,
  SnapshotUpload,
} from './types.js';

export function readEpoch(db: Database.Database): string {
  const row = db
    .prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'mailbox_epoch'")
    .get();
  if (row === undefined) throw new Error('relay database: no mailbox epoch');
  return row.value;
}

/** Set the mailbox epoch (nodes that see another one resync from 0). */
export function writeEpoch(db: Database.Database, epoch: string): void {
  db.prepare("UPDATE meta SET value = ? WHERE key = 'mailbox_epoch'").run(epoch);
}

function parseStrings(json: string): string[] {
  const value: unknown = JSON.parse(json);
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string'))
    throw new Error('relay database: corrupt string list');
  return value;
}

interface EnvelopeRow {
  id: string;
  hash: string;
  bytes: Buffer;
  sender: string;
  recipients: string;
  chunk_ids: string;
  expires_at: number;
  accepted_at: number;
  retain_until: number;
  acceptance: Buffer;
  uploader: string | null;
  held_bytes: number;
  done_at: number | null;
  released_at: number | null;
}

interface ItemRow {
  address: string;
  seq: number;
  kind: MailboxItemKind;
  envelope_id: string;
  payload: Buffer | null;
  dedup_key: string;
  deliver_by: number | null;
  state: 'pending' | 'expiring' | 'acked';
  due_at: number | null;
  attempt: number;
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
  next_at: number | null;
  state: 'pending' | 'running' | 'done' | 'gave_up';
}

export function exportEmbedded(db: Database.Database): BackendSnapshot {
  // One read transaction: a consistent view even if another process writes meanwhile.
  return db.transaction((): BackendSnapshot => {
    const envelopes = db
      .prepare<[], EnvelopeRow>(
        `SELECT id, hash, bytes, sender, recipients, chunk_ids, expires_at, accepted_at, retain_until,
                acceptance, uploader, held_bytes, done_at, released_at FROM envelopes ORDER BY id`,
      )
      .all()
      .map((row): SnapshotEnvelope => ({
        id: row.id,
        hash: row.hash,
        bytes: toBytes(row.bytes),
        sender: row.sender,
        recipients: parseStrings(row.recipients),
        chunkIds: parseStrings(row.chunk_ids),
        expiresAt: row.expires_at,
        acceptedAt: row.accepted_at,
        acceptance: toBytes(row.acceptance),
        retainUntil: row.retain_until,
        heldBytes: row.held_bytes,
        ...(row.uploader === null ? {} : { uploader: row.uploader }),
        ...(row.done_at === null ? {} : { doneAt: row.done_at }),
        ...(row.released_at === null ? {} : { releasedAt: row.released_at }),
      }));
    const items = db
      .prepare<[], ItemRow>(
        `SELECT address, seq, kind, envelope_id, payload, dedup_key, deliver_by, state, due_at, attempt
         FROM mailbox_items ORDER BY address, seq`,
      )
      .all()
      .map((row): SnapshotItem => ({
        address: row.address,
        seq: row.seq,
        kind: row.kind,
        envelopeId: row.envelope_id,
        dedupKey: row.dedup_key,
        state: row.state,
        attempt: row.attempt,
        ...(row.payload === null ? {} : { payload: toBytes(row.payload) }),
        ...(row.deliver_by === null ? {} : { deliverBy: row.deliver_by }),
        ...(row.due_at === null ? {} : { dueAt: row.due_at }),
      }));
    const tasks = db
      .prepare<[], TaskRow>(
        `SELECT id, kind, envelope_id, network, recipients, payload, deadline, attempt, next_at, state
         FROM forward_tasks ORDER BY id`,
      )
      .all()
      .map((row): SnapshotTask => ({
        id: row.id,
        kind: row.kind,
        envelopeId: row.envelope_id,
        network: row.network,
        deadline: row.deadline,
        attempt: row.attempt,
        // A running task's lease died with its relay: it is due again.
        state: row.state === 'running' ? 'pending' : row.state,
        ...(row.recipients === null ? {} : { recipients: parseStrings(row.recipients) }),
        ...(row.payload === null ? {} : { payload: toBytes(row.payload) }),
        ...(row.next_at === null ? {} : { nextAt: row.next_at }),
      }));
    const uploads = db
      .prepare<
        [],
        { chunk_id: string; owner: string; size: number; at: number; referenced: number }
      >('SELECT chunk_id, owner, size, at, referenced FROM chunk_uploads ORDER BY chunk_id, owner')
      .all()
      .map((row): SnapshotUpload => ({
        chunkId: row.chunk_id,
        owner: row.owner,
        size: row.size,
        at: row.at,
        referenced: row.referenced === 1,
      }));
    return {
      epoch: readEpoch(db),
      mailboxSeqs: db
        .prepare<[], { address: string; lastSeq: number }>(
          'SELECT address, last_seq AS lastSeq FROM mailbox_seqs ORDER BY address',
        )
        .all(),
      envelopes,
      items,
      tasks,
      uploads,
      claims: db
        .prepare<[], { key: string; expiresAt: number }>(
          'SELECT key, expires_at AS expiresAt FROM claims ORDER BY key',
        )
        .all(),
    };
  })();
}

export function isEmbeddedEmpty(db: Database.Database): boolean {
  const row = db
    .prepare<[], { n: number }>(
      `SELECT (SELECT count(*) FROM envelopes) + (SELECT count(*) FROM mailbox_seqs)
            + (SELECT count(*) FROM mailbox_items) + (SELECT count(*) FROM forward_tasks)
            + (SELECT count(*) FROM chunk_uploads) AS n`,
    )
    .get();
  return row?.n === 0;
}

export function importEmbedded(db: Database.Database, snapshot: BackendSnapshot): void {
  db.transaction(() => {
    if (!isEmbeddedEmpty(db)) throw new BackendError('BACKEND_NOT_EMPTY');
    writeEpoch(db, snapshot.epoch);
    const insertSeq = db.prepare('INSERT INTO mailbox_seqs (address, last_seq) VALUES (?, ?)');
    for (const { address, lastSeq } of snapshot.mailboxSeqs) insertSeq.run(address, lastSeq);
    // Upload records first: their triggers charge pending bytes for the unreferenced ones.
    const insertUpload = db.prepare(
      'INSERT INTO chunk_uploads (chunk_id, owner, size, at, referenced) VALUES (?, ?, ?, ?, ?)',
    );
    for (const upload of snapshot.uploads)
      insertUpload.run(
        upload.chunkId,
        upload.owner,
        upload.size,
        upload.at,
        upload.referenced ? 1 : 0,
      );
    const insertEnvelope = db.prepare(
      `INSERT INTO envelopes (id, hash, bytes, sender, recipients, chunk_ids, expires_at, accepted_at,
                              retain_until, acceptance, uploader, held_bytes, released_at)
       VALUES (@id, @hash, @bytes, @sender, @recipients, @chunkIds, @expiresAt, @acceptedAt,
               @retainUntil, @acceptance, @uploader, @heldBytes, @releasedAt)`,
    );
    // Set after the insert, so the triggers release the bytes a done envelope no longer holds.
    const setDone = db.prepare('UPDATE envelopes SET done_at = ? WHERE id = ?');
    const insertRef = db.prepare(
      'INSERT OR IGNORE INTO chunk_refs (chunk_id, envelope_id) VALUES (?, ?)',
    );
    for (const envelope of snapshot.envelopes) {
      insertEnvelope.run({
        id: envelope.id,
        hash: envelope.hash,
        bytes: asBuffer(envelope.bytes),
        sender: envelope.sender,
        recipients: JSON.stringify(envelope.recipients),
        chunkIds: JSON.stringify(envelope.chunkIds),
        expiresAt: envelope.expiresAt,
        acceptedAt: envelope.acceptedAt,
        retainUntil: envelope.retainUntil,
        acceptance: asBuffer(envelope.acceptance),
        uploader: envelope.uploader ?? null,
        heldBytes: envelope.heldBytes,
        releasedAt: envelope.releasedAt ?? null,
      });
      if (envelope.doneAt !== undefined) setDone.run(envelope.doneAt, envelope.id);
      if (envelope.releasedAt === undefined)
        for (const chunkId of envelope.chunkIds) insertRef.run(chunkId, envelope.id);
    }
    const insertItem = db.prepare(
      `INSERT INTO mailbox_items (address, seq, kind, envelope_id, payload, dedup_key, deliver_by, state, due_at, attempt)
       VALUES (@address, @seq, @kind, @envelopeId, @payload, @dedupKey, @deliverBy, @state, @dueAt, @attempt)`,
    );
    for (const item of snapshot.items)
      insertItem.run({
        address: item.address,
        seq: item.seq,
        kind: item.kind,
        envelopeId: item.envelopeId,
        payload: item.payload === undefined ? null : asBuffer(item.payload),
        dedupKey: item.dedupKey,
        deliverBy: item.deliverBy ?? null,
        state: item.state,
        dueAt: item.state === 'acked' ? null : (item.dueAt ?? item.deliverBy ?? null),
        attempt: item.attempt,
      });
    const insertTask = db.prepare(
      `INSERT INTO forward_tasks (id, kind, envelope_id, network, recipients, payload, deadline, attempt, next_at, state)
       VALUES (@id, @kind, @envelopeId, @network, @recipients, @payload, @deadline, @attempt, @nextAt, @state)`,
    );
    for (const task of snapshot.tasks)
      insertTask.run({
        id: task.id,
        kind: task.kind,
        envelopeId: task.envelopeId,
        network: task.network,
        recipients: task.recipients === undefined ? null : JSON.stringify(task.recipients),
        payload: task.payload === undefined ? null : asBuffer(task.payload),
        deadline: task.deadline,
        attempt: task.attempt,
        // A pending task runs at its retry time (or at once when it has none).
        nextAt: task.state === 'pending' ? (task.nextAt ?? 0) : null,
        state: task.state,
      });
    const insertClaim = db.prepare(
      'INSERT INTO claims (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)',
    );
    for (const claim of snapshot.claims) insertClaim.run(claim.key, claim.expiresAt);
  }).immediate();
}
