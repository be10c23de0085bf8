/**
 * Schema migrations of the node's SQLite file, applied in order; the
 * database's `user_version` is the number applied. Never edit a shipped
 * migration: add one.
 *
 * Columns ending in `_enc` hold records sealed under the local storage key
 * (LocalCipher: table + row id as additional data). Everything else is what
 * a stolen disk may show: ids, times, sizes, statuses, kinds, and the
 * links between rows.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  CREATE TABLE cases (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    meta_enc   BLOB NOT NULL
  ) STRICT;

  CREATE TABLE dossiers (
    id              TEXT PRIMARY KEY,
    case_id         TEXT REFERENCES cases(id),
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    kind            TEXT NOT NULL CHECK (kind IN ('request', 'answer', 'unknown')),
    status          TEXT NOT NULL,
    envelope_id     TEXT UNIQUE,
    sealed_id       TEXT,
    total_size      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    drafted_by      TEXT,
    contributors    TEXT NOT NULL DEFAULT '[]',
    approved_by     TEXT,
    first_opened_at INTEGER,
    first_opened_by TEXT,
    quarantine_code TEXT,
    meta_enc        BLOB,
    content_enc     BLOB,
    attachments_enc BLOB,
    dossier_enc     BLOB
  ) STRICT;
  CREATE INDEX dossiers_case ON dossiers(case_id);
  CREATE INDEX dossiers_status ON dossiers(status);

  CREATE TABLE envelopes (
    id           TEXT PRIMARY KEY,
    dossier_id   TEXT NOT NULL REFERENCES dossiers(id),
    direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    stored_at    INTEGER NOT NULL,
    mailbox_seq  INTEGER,
    envelope_enc BLOB NOT NULL
  ) STRICT;

  CREATE TABLE evidences (
    id           TEXT PRIMARY KEY,
    envelope_id  TEXT NOT NULL REFERENCES envelopes(id),
    kind         TEXT NOT NULL,
    issued_at    INTEGER NOT NULL,
    stored_at    INTEGER NOT NULL,
    evidence_enc BLOB NOT NULL
  ) STRICT;
  CREATE INDEX evidences_envelope ON evidences(envelope_id);

  CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('submit', 'evidence')),
    dossier_id  TEXT NOT NULL REFERENCES dossiers(id),
    envelope_id TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'failed')) DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    payload_enc BLOB
  ) STRICT;

  CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('officer', 'approver', 'admin')),
    clearances    TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    created_by    TEXT
  ) STRICT;

  CREATE TABLE approvals (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    dossier_id TEXT NOT NULL REFERENCES dossiers(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    decision   TEXT NOT NULL CHECK (decision IN ('approved', 'returned')),
    at         INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT,
    detail    TEXT,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
  ) STRICT;

  CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL,
    mac  TEXT NOT NULL
  ) STRICT;
  `,
  // 2 — trust synchronisation (design D4). The log's publications are public
  // (root-signed, served by every relay): stored in clear, as received.
  `
  CREATE TABLE trust_publications (
    network     TEXT NOT NULL,
    size        INTEGER NOT NULL,
    root_hash   TEXT NOT NULL,
    edition     INTEGER,
    publication TEXT NOT NULL,
    stored_at   INTEGER NOT NULL,
    PRIMARY KEY (network, size)
  ) STRICT;

  CREATE TABLE trust_networks (
    network       TEXT PRIMARY KEY,
    size          INTEGER NOT NULL,
    root_hash     TEXT NOT NULL,
    checkpoint    TEXT NOT NULL,
    edition       INTEGER,
    edition_hash  TEXT,
    cosigners     TEXT NOT NULL DEFAULT '[]',
    updated_at    INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE trust_fetches (
    network    TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('relay', 'second')),
    at         INTEGER NOT NULL,
    url        TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    PRIMARY KEY (network, source)
  ) STRICT;

  CREATE TABLE trust_alarms (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    network    TEXT NOT NULL,
    code       TEXT NOT NULL,
    raised_at  INTEGER NOT NULL,
    source_a   TEXT NOT NULL,
    note_a     TEXT NOT NULL,
    source_b   TEXT NOT NULL,
    note_b     TEXT NOT NULL,
    cleared_at INTEGER,
    cleared_by TEXT
  ) STRICT;
  CREATE INDEX trust_alarms_open ON trust_alarms(network) WHERE cleared_at IS NULL;
  `,
  // 3: introduction dossiers (docs/protocol.md §10.12) get their own kind, and the
  // point-of-contact workflow its tables. SQLite cannot alter a CHECK constraint:
  // the dossiers table is rebuilt (NodeDatabase.migrate turns foreign keys off
  // around migrations and checks them before committing).
  `
  CREATE TABLE dossiers_v2 (
    id              TEXT PRIMARY KEY,
    case_id         TEXT REFERENCES cases(id),
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    kind            TEXT NOT NULL CHECK (kind IN ('request', 'answer', 'introduction', 'unknown')),
    status          TEXT NOT NULL,
    envelope_id     TEXT UNIQUE,
    sealed_id       TEXT,
    total_size      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    drafted_by      TEXT,
    contributors    TEXT NOT NULL DEFAULT '[]',
    approved_by     TEXT,
    first_opened_at INTEGER,
    first_opened_by TEXT,
    quarantine_code TEXT,
    meta_enc        BLOB,
    content_enc     BLOB,
    attachments_enc BLOB,
    dossier_enc     BLOB
  ) STRICT;
  INSERT INTO dossiers_v2 SELECT * FROM dossiers;
  DROP TABLE dossiers;
  ALTER TABLE dossiers_v2 RENAME TO dossiers;
  CREATE INDEX dossiers_case ON dossiers(case_id);
  CREATE INDEX dossiers_status ON dossiers(status);

  -- One row per introduction request this node takes part in: as the requester,
  -- as the PoC asked, or as the peer PoC a request was referred to.
  CREATE TABLE introduction_requests (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('requester', 'poc', 'referee', 'subject')),
    dossier_id  TEXT NOT NULL REFERENCES dossiers(id),
    status      TEXT NOT NULL CHECK (status IN ('pending', 'referred', 'introduced', 'declined', 'refused')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    record_enc  BLOB NOT NULL,
    UNIQUE (request_id, role)
  ) STRICT;

  -- Verified introductions: issued by this node (a PoC) or received and
  -- accepted by TrustStore.addIntroduction; reloaded into the trust store at start.
  CREATE TABLE introductions (
    hash          TEXT PRIMARY KEY,
    direction     TEXT NOT NULL CHECK (direction IN ('issued', 'received')),
    request_id    TEXT,
    issued_at     INTEGER NOT NULL,
    valid_until   INTEGER NOT NULL,
    stored_at     INTEGER NOT NULL,
    statement_enc BLOB NOT NULL
  ) STRICT;
  CREATE INDEX introductions_issued ON introductions(direction, issued_at);
  `,
  // 4: an issued introduction is exported only once the answer dossier carrying it
  // is approved (four eyes): the row names that dossier.
  `
  ALTER TABLE introductions ADD COLUMN dossier_id TEXT REFERENCES dossiers(id);
  CREATE INDEX introduction_requests_role ON introduction_requests(role, created_at);
  `,
];
