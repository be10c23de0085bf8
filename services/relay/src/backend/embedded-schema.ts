/**
 * Schema of the embedded backend's SQLite file, as an ordered list of
 * migrations. A migration is never edited once released: a relay upgraded
 * in place replays only the ones its file lacks, inside one transaction,
 * so a crash mid-upgrade leaves the file at the old version.
 */
import type { Database } from 'better-sqlite3';

export const SCHEMA_MIGRATIONS: readonly string[] = [
  // 1: initial schema.
  `
  CREATE TABLE envelopes (
    id           TEXT PRIMARY KEY,
    hash         TEXT NOT NULL,
    bytes        BLOB NOT NULL,
    sender       TEXT NOT NULL,
    recipients   TEXT NOT NULL,            -- JSON array, routing header only
    chunk_ids    TEXT NOT NULL,            -- JSON array in envelope order
    expires_at   INTEGER NOT NULL,
    accepted_at  INTEGER NOT NULL,
    retain_until INTEGER NOT NULL,
    acceptance   BLOB NOT NULL,
    done_at      INTEGER,                  -- every delivery and forward finished
    released_at  INTEGER                   -- chunk refs dropped by GC
  ) STRICT;
  CREATE INDEX envelopes_done ON envelopes (done_at) WHERE done_at IS NOT NULL AND released_at IS NULL;
  CREATE INDEX envelopes_released ON envelopes (retain_until) WHERE released_at IS NOT NULL;

  -- Which envelopes still hold a chunk; dropped when the envelope's chunks are released.
  CREATE TABLE chunk_refs (
    chunk_id    TEXT NOT NULL,
    envelope_id TEXT NOT NULL REFERENCES envelopes (id) ON DELETE CASCADE,
    PRIMARY KEY (envelope_id, chunk_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX chunk_refs_chunk ON chunk_refs (chunk_id);

  CREATE TABLE mailbox_seqs (
    address  TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;

  -- state: pending (readable), expiring (taken out of the mailbox, expired() not yet confirmed),
  -- acked (evidence tombstone: keeps the dedup key while the envelope record refuses replays).
  -- due_at: when a worker must next look at the item (deliverBy, lease end or retry time).
  CREATE TABLE mailbox_items (
    address     TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('envelope', 'evidence')),
    envelope_id TEXT NOT NULL,
    payload     BLOB,                      -- evidence bytes; envelope items read envelopes.bytes
    dedup_key   TEXT NOT NULL,
    deliver_by  INTEGER,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'expiring', 'acked')),
    due_at      INTEGER,
    attempt     INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    PRIMARY KEY (address, seq),
    UNIQUE (address, dedup_key)
  ) STRICT;
  CREATE INDEX mailbox_items_due ON mailbox_items (due_at) WHERE due_at IS NOT NULL;
  CREATE INDEX mailbox_items_envelope ON mailbox_items (envelope_id);
  CREATE INDEX mailbox_items_lease ON mailbox_items (lease_owner) WHERE lease_owner IS NOT NULL;

  -- state: pending / running (next_at = retry time / lease end), done / gave_up (tombstones).
  CREATE TABLE forward_tasks (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('envelope', 'evidence')),
    envelope_id TEXT NOT NULL,
    network     TEXT NOT NULL,
    recipients  TEXT,                      -- JSON array, envelope tasks
    payload     BLOB,                      -- evidence tasks
    deadline    INTEGER NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'gave_up')),
    lease_owner TEXT,
    finished_at INTEGER
  ) STRICT;
  CREATE INDEX forward_tasks_due ON forward_tasks (next_at) WHERE next_at IS NOT NULL;
  CREATE INDEX forward_tasks_envelope ON forward_tasks (envelope_id);
  CREATE INDEX forward_tasks_lease ON forward_tasks (lease_owner) WHERE lease_owner IS NOT NULL;

  CREATE TABLE uploads (
    chunk_id TEXT PRIMARY KEY,
    at       INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX uploads_at ON uploads (at);

  CREATE TABLE rate_counters (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    window_end   INTEGER NOT NULL,
    count        INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX rate_counters_end ON rate_counters (window_end);

  CREATE TABLE claims (
    key        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX claims_expires ON claims (expires_at);
  `,
  // 2: upload records per uploader (chunk ownership) and bytes held per identity (quotas).
  `
  -- One record per (chunk, uploader): the uploader owns the chunk until the upload grace
  -- passes after its last upload (or renewal). Its bytes count as pending for the uploader
  -- until an accepted envelope of the uploader references it (referenced = 1); a renewal
  -- makes them pending again. Records of schema 1 had no uploader: they keep their chunk
  -- for the grace period and belong to nobody.
  CREATE TABLE chunk_uploads (
    chunk_id   TEXT NOT NULL,
    owner      TEXT NOT NULL,
    size       INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    referenced INTEGER NOT NULL DEFAULT 0 CHECK (referenced IN (0, 1)),
    PRIMARY KEY (chunk_id, owner)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX chunk_uploads_at ON chunk_uploads (at);
  INSERT INTO chunk_uploads (chunk_id, owner, size, at) SELECT chunk_id, '', 0, at FROM uploads;
  DROP TABLE uploads;

  -- Who handed the envelope's chunks over, and the bytes charged to it until the envelope is done.
  ALTER TABLE envelopes ADD COLUMN uploader TEXT;
  ALTER TABLE envelopes ADD COLUMN held_bytes INTEGER NOT NULL DEFAULT 0;

  -- Bytes held per identity, kept by the triggers below in the transaction of each change.
  CREATE TABLE chunk_usage (
    identity   TEXT PRIMARY KEY,
    pending    INTEGER NOT NULL DEFAULT 0,
    referenced INTEGER NOT NULL DEFAULT 0
  ) STRICT, WITHOUT ROWID;
  CREATE TRIGGER chunk_uploads_charge AFTER INSERT ON chunk_uploads BEGIN
    INSERT OR IGNORE INTO chunk_usage (identity) VALUES (new.owner);
    UPDATE chunk_usage SET pending = pending + new.size WHERE identity = new.owner AND new.referenced = 0;
  END;
  CREATE TRIGGER chunk_uploads_flip AFTER UPDATE OF referenced ON chunk_uploads
    WHEN old.referenced <> new.referenced BEGIN
    UPDATE chunk_usage SET pending = pending + (old.referenced - new.referenced) * new.size
      WHERE identity = new.owner;
  END;
  CREATE TRIGGER chunk_uploads_release AFTER DELETE ON chunk_uploads WHEN old.referenced = 0 BEGIN
    UPDATE chunk_usage SET pending = pending - old.size WHERE identity = old.owner;
  END;
  CREATE TRIGGER envelopes_charge AFTER INSERT ON envelopes WHEN new.uploader IS NOT NULL BEGIN
    INSERT OR IGNORE INTO chunk_usage (identity) VALUES (new.uploader);
    UPDATE chunk_usage SET referenced = referenced + new.held_bytes WHERE identity = new.uploader;
  END;
  CREATE TRIGGER envelopes_release AFTER UPDATE OF done_at ON envelopes
    WHEN old.done_at IS NULL AND new.done_at IS NOT NULL AND new.uploader IS NOT NULL BEGIN
    UPDATE chunk_usage SET referenced = referenced - new.held_bytes WHERE identity = new.uploader;
  END;
  `,
  // Version 3: the fixed-window rate counters had no caller and are gone.
  `
  DROP INDEX rate_counters_end;
  DROP TABLE rate_counters;
  `,
  // Version 4: the mailbox epoch, a random id of this store (seqs are comparable within one epoch).
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT, WITHOUT ROWID;
  INSERT INTO meta (key, value) VALUES ('mailbox_epoch', lower(hex(randomblob(16))));
  `,
];

/**
 * The store (SQLite file or Redis prefix) cannot be used by this relay:
 * SCHEMA_VERSION_NEWER, a newer relay wrote it; SCHEMA_VERSION_INVALID, its
 * version is not a number. Nothing was changed, and the relay does not start.
 */
export class SchemaVersionError extends Error {
  override readonly name = 'SchemaVersionError';
  readonly code: 'SCHEMA_VERSION_NEWER' | 'SCHEMA_VERSION_INVALID';
  constructor(
    message: string,
    code: 'SCHEMA_VERSION_NEWER' | 'SCHEMA_VERSION_INVALID' = 'SCHEMA_VERSION_NEWER',
  ) {
    super(message);
    this.code = code;
  }
}

/**
 * Brings the file to the latest schema. A file written by a newer relay is
 * refused rather than used: an older relay would misread its tables.
 */
export function migrate(db: Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT');
  const upgrade = db.transaction(() => {
    const row = db.prepare<[], { version: number }>('SELECT version FROM schema_version').get();
    const current = row?.version ?? 0;
    if (current > SCHEMA_MIGRATIONS.length) {
      throw new SchemaVersionError(
        `relay database schema version ${current} is newer than this relay supports (${SCHEMA_MIGRATIONS.length})`,
      );
    }
    for (let version = current + 1; version <= SCHEMA_MIGRATIONS.length; version++) {
      db.exec(SCHEMA_MIGRATIONS[version - 1]!);
    }
    if (row === undefined)
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_MIGRATIONS.length);
    else db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_MIGRATIONS.length);
  });
  // IMMEDIATE: two relay processes opening a fresh file at once must not both create the tables.
  upgrade.immediate();
}
