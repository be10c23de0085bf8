import {
  hashOf,
  randomBytes,
  toHex,
  type AttachmentManifest,
  type DossierContent,
  type Envelope,
  type Evidence,
  type SignedDossier,
} from '@rogatory/protocol';
import { nodeFail } from '../errors.js';
import type { LocalCipher } from './local-cipher.js';
import type { NodeDatabase } from './db.js';
import { shapes, type CaseMeta, type DossierMeta } from './records.js';

export type Direction = 'in' | 'out';
export type DossierKind = 'request' | 'answer' | 'introduction' | 'unknown';

export interface DossierRow {
  readonly id: string;
  readonly case_id: string | null;
  readonly direction: Direction;
  readonly kind: DossierKind;
  readonly status: string;
  readonly envelope_id: string | null;
  readonly sealed_id: string | null;
  readonly total_size: number;
  readonly created_at: number;
  readonly updated_at: number;
  readonly drafted_by: string | null;
  readonly contributors: string;
  readonly approved_by: string | null;
  readonly first_opened_at: number | null;
  readonly first_opened_by: string | null;
  readonly quarantine_code: string | null;
  readonly meta_enc: Uint8Array | null;
  readonly content_enc: Uint8Array | null;
  readonly attachments_enc: Uint8Array | null;
  readonly dossier_enc: Uint8Array | null;
}

export interface CaseRow {
  readonly id: string;
  readonly created_at: number;
  readonly updated_at: number;
  readonly meta_enc: Uint8Array;
}

export interface EvidenceRow {
  readonly id: string;
  readonly envelope_id: string;
  readonly kind: string;
  readonly issued_at: number;
  readonly stored_at: number;
  readonly evidence_enc: Uint8Array;
}

export interface OutboxRow {
  readonly id: number;
  readonly kind: 'submit' | 'evidence';
  readonly dossier_id: string;
  readonly envelope_id: string;
  readonly state: 'pending' | 'failed';
  readonly attempts: number;
  readonly next_at: number;
  readonly last_error: string | null;
  readonly created_at: number;
  readonly payload_enc: Uint8Array | null;
}

/** Fields of a new dossier row; sealed records are given in clear and sealed here. */
export interface NewDossier {
  readonly id?: string;
  readonly caseId: string | null;
  readonly direction: Direction;
  readonly kind: DossierKind;
  readonly status: string;
  readonly now: number;
  readonly envelopeId?: string;
  readonly sealedId?: string;
  readonly totalSize?: number;
  readonly draftedBy?: string;
  readonly quarantineCode?: string;
  readonly meta: DossierMeta;
  readonly content?: DossierContent;
  readonly attachments?: readonly AttachmentManifest[];
  readonly dossier?: SignedDossier;
}

const T = {
  cases: 'cases',
  dossierMeta: 'dossiers.meta',
  content: 'dossiers.content',
  attachments: 'dossiers.attachments',
  dossier: 'dossiers.dossier',
  envelope: 'envelopes',
  evidence: 'evidences',
  outbox: 'outbox',
} as const;

/** A fresh local id: a prefix and 16 hex digits. Local ids never leave the node. */
export function newLocalId(prefix: 'd' | 'c' | 'u'): string {
  return `${prefix}-${toHex(randomBytes(8))}`;
}

/**
 * Typed access to the mailbox tables. Sealed columns are sealed and
 * opened here, always with the table and row id as additional data.
 * Callers group writes with `db.transaction`.
 */
export class MailboxStore {
  readonly db: NodeDatabase;
  private readonly cipher: LocalCipher;

  constructor(db: NodeDatabase, cipher: LocalCipher) {
    this.db = db;
    this.cipher = cipher;
  }

  private get sql() {
    return this.db.sql;
  }

  // ------------------------------------------------------------------ cases

  insertCase(meta: CaseMeta, now: number): string {
    const id = newLocalId('c');
    this.sql
      .prepare('INSERT INTO cases (id, created_at, updated_at, meta_enc) VALUES (?, ?, ?, ?)')
      .run(id, now, now, this.cipher.sealJson(T.cases, id, meta));
    return id;
  }

  caseRow(id: string): CaseRow | undefined {
    return this.sql.prepare('SELECT * FROM cases WHERE id = ?').get(id) as CaseRow | undefined;
  }

  caseMeta(row: CaseRow): CaseMeta {
    return this.cipher.openJson(T.cases, row.id, row.meta_enc, shapes.caseMeta);
  }

  updateCase(id: string, meta: CaseMeta, now: number): void {
    this.sql
      .prepare('UPDATE cases SET meta_enc = ?, updated_at = ? WHERE id = ?')
      .run(this.cipher.sealJson(T.cases, id, meta), now, id);
  }

  touchCase(id: string, now: number): void {
    this.sql.prepare('UPDATE cases SET updated_at = ? WHERE id = ?').run(now, id);
  }

  allCases(): CaseRow[] {
    return this.sql.prepare('SELECT * FROM cases ORDER BY created_at').all() as CaseRow[];
  }

  // --------------------------------------------------------------- dossiers

  insertDossier(d: NewDossier): string {
    const id = d.id ?? newLocalId('d');
    this.sql
      .prepare(
        `INSERT INTO dossiers (id, case_id, direction, kind, status, envelope_id, sealed_id, total_size, created_at, updated_at,
           drafted_by, contributors, quarantine_code, meta_enc, content_enc, attachments_enc, dossier_enc)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        d.caseId,
        d.direction,
        d.kind,
        d.status,
        d.envelopeId ?? null,
        d.sealedId ?? null,
        d.totalSize ?? 0,
        d.now,
        d.now,
        d.draftedBy ?? null,
        JSON.stringify(d.draftedBy === undefined ? [] : [d.draftedBy]),
        d.quarantineCode ?? null,
        this.cipher.sealJson(T.dossierMeta, id, d.meta),
        d.content === undefined ? null : this.cipher.sealJson(T.content, id, d.content),
        d.attachments === undefined ? null : this.cipher.sealJson(T.attachments, id, d.attachments),
        d.dossier === undefined ? null : this.cipher.sealJson(T.dossier, id, d.dossier),
      );
    return id;
  }

  dossierRow(id: string): DossierRow | undefined {
    return this.sql.prepare('SELECT * FROM dossiers WHERE id = ?').get(id) as
      DossierRow | undefined;
  }

  requireDossier(id: string): DossierRow {
    return this.dossierRow(id) ?? nodeFail('NOT_FOUND', `no dossier ${id}`);
  }

  dossierByEnvelope(envelopeId: string): DossierRow | undefined {
    return this.sql.prepare('SELECT * FROM dossiers WHERE envelope_id = ?').get(envelopeId) as
      DossierRow | undefined;
  }

  allDossiers(): DossierRow[] {
    return this.sql.prepare('SELECT * FROM dossiers ORDER BY created_at, id').all() as DossierRow[];
  }

  /** Dossiers per status (no content), for the node's status. */
  countByStatus(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const row of this.sql
      .prepare('SELECT status, COUNT(*) AS n FROM dossiers GROUP BY status')
      .all() as { status: string; n: number }[])
      counts[row.status] = row.n;
    return counts;
  }

  dossiersOfCase(caseId: string): DossierRow[] {
    return this.sql
      .prepare('SELECT * FROM dossiers WHERE case_id = ? ORDER BY created_at, id')
      .all(caseId) as DossierRow[];
  }

  meta(row: DossierRow): DossierMeta {
    if (!row.meta_enc) return nodeFail('LOCAL_DATA_TAMPERED', `dossier ${row.id} has no metadata`);
    return this.cipher.openJson(T.dossierMeta, row.id, row.meta_enc, shapes.meta);
  }

  draftContent(row: DossierRow): DossierContent {
    if (!row.content_enc)
      return nodeFail('INVALID_STATE', `dossier ${row.id} has no draft content`);
    return this.cipher.openJson(T.content, row.id, row.content_enc, shapes.content);
  }

  draftAttachments(row: DossierRow): AttachmentManifest[] {
    if (!row.attachments_enc) return [];
    return this.cipher.openJson(
      T.attachments,
      row.id,
      row.attachments_enc,
      shapes.draftAttachments,
    );
  }

  signedDossier(row: DossierRow): SignedDossier {
    if (!row.dossier_enc)
      return nodeFail('INVALID_STATE', `dossier ${row.id} has no verified content`);
    return this.cipher.openJson(T.dossier, row.id, row.dossier_enc, shapes.dossier);
  }

  setStatus(id: string, status: string, now: number): void {
    this.sql
      .prepare('UPDATE dossiers SET status = ?, updated_at = ? WHERE id = ?')
      .run(status, now, id);
  }

  updateDraft(
    id: string,
    fields: {
      meta: DossierMeta;
      content: DossierContent;
      attachments: readonly AttachmentManifest[];
      contributors: readonly string[];
      now: number;
    },
  ): void {
    this.sql
      .prepare(
        'UPDATE dossiers SET meta_enc = ?, content_enc = ?, attachments_enc = ?, contributors = ?, updated_at = ? WHERE id = ?',
      )
      .run(
        this.cipher.sealJson(T.dossierMeta, id, fields.meta),
        this.cipher.sealJson(T.content, id, fields.content),
        this.cipher.sealJson(T.attachments, id, fields.attachments),
        JSON.stringify(fields.contributors),
        fields.now,
        id,
      );
  }

  /** The draft becomes a sealed dossier: the signed plaintext replaces draft content and manifests. */
  markSealed(
    id: string,
    fields: {
      envelopeId: string;
      sealedId: string;
      totalSize: number;
      dossier: SignedDossier;
      approvedBy: string;
      status: string;
      now: number;
    },
  ): void {
    this.sql
      .prepare(
        `UPDATE dossiers SET envelope_id = ?, sealed_id = ?, total_size = ?, dossier_enc = ?, content_enc = NULL, attachments_enc = NULL,
           approved_by = ?, status = ?, updated_at = ? WHERE id = ?`,
      )
      .run(
        fields.envelopeId,
        fields.sealedId,
        fields.totalSize,
        this.cipher.sealJson(T.dossier, id, fields.dossier),
        fields.approvedBy,
        fields.status,
        fields.now,
        id,
      );
  }

  markOpened(id: string, userId: string, now: number): void {
    this.sql
      .prepare(
        'UPDATE dossiers SET first_opened_at = ?, first_opened_by = ? WHERE id = ? AND first_opened_at IS NULL',
      )
      .run(now, userId, id);
  }

  // -------------------------------------------------------------- approvals

  /** Record an approver's decision on a dossier (four-eyes trail). */
  recordApproval(
    dossierId: string,
    userId: string,
    decision: 'approved' | 'returned',
    at: number,
  ): void {
    this.sql
      .prepare('INSERT INTO approvals (dossier_id, user_id, decision, at) VALUES (?, ?, ?, ?)')
      .run(dossierId, userId, decision, at);
  }

  /** Decisions on a dossier, oldest first, with the approver's username. */
  approvals(dossierId: string): { username: string; decision: string; at: number }[] {
    return this.sql
      .prepare(
        'SELECT u.username AS username, a.decision AS decision, a.at AS at FROM approvals a JOIN users u ON u.id = a.user_id WHERE a.dossier_id = ? ORDER BY a.id',
      )
      .all(dossierId) as { username: string; decision: string; at: number }[];
  }

  // -------------------------------------------------------------- envelopes

  insertEnvelope(
    envelope: Envelope,
    dossierId: string,
    direction: Direction,
    now: number,
    seq?: number,
  ): void {
    const id = envelope.body.id;
    this.sql
      .prepare(
        'INSERT INTO envelopes (id, dossier_id, direction, stored_at, mailbox_seq, envelope_enc) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(
        id,
        dossierId,
        direction,
        now,
        seq ?? null,
        this.cipher.sealJson(T.envelope, id, envelope),
      );
  }

  /**
   * Remove an incoming envelope quarantined with one of `codes` (and its
   * dossier row and evidences), so that another envelope under its id can be
   * stored. Returns false, removing nothing, for any other row.
   */
  dropQuarantined(envelopeId: string, codes: ReadonlySet<string>): boolean {
    return this.sql.transaction(() => {
      const row = this.sql
        .prepare(
          "SELECT d.id AS id, d.quarantine_code AS code FROM envelopes e JOIN dossiers d ON d.id = e.dossier_id WHERE e.id = ? AND d.direction = 'in' AND d.status = 'quarantined'",
        )
        .get(envelopeId) as { id: string; code: string | null } | undefined;
      if (row?.code == null || !codes.has(row.code)) return false;
      this.sql.prepare('DELETE FROM evidences WHERE envelope_id = ?').run(envelopeId);
      this.sql.prepare('DELETE FROM outbox WHERE dossier_id = ?').run(row.id);
      this.sql.prepare('DELETE FROM envelopes WHERE id = ?').run(envelopeId);
      this.sql.prepare('DELETE FROM dossiers WHERE id = ?').run(row.id);
      return true;
    })();
  }

  /**
   * Every blob id a row still needs: the chunks of drafts' attachments, the
   * sealed dossier of every signed dossier, and the dossier and chunks of
   * every stored envelope (sent or received, quarantined included).
   */
  referencedBlobIds(): Set<string> {
    const ids = new Set<string>();
    const drafts = this.sql
      .prepare('SELECT * FROM dossiers WHERE attachments_enc IS NOT NULL')
      .iterate() as IterableIterator<DossierRow>;
    for (const row of drafts)
      for (const manifest of this.draftAttachments(row))
        for (const c of manifest.chunks) ids.add(c);
    const sealed = this.sql
      .prepare('SELECT sealed_id FROM dossiers WHERE sealed_id IS NOT NULL')
      .iterate() as IterableIterator<{ sealed_id: string }>;
    for (const row of sealed) ids.add(row.sealed_id);
    const envelopes = this.sql
      .prepare('SELECT id, envelope_enc FROM envelopes')
      .iterate() as IterableIterator<{ id: string; envelope_enc: Uint8Array }>;
    for (const row of envelopes) {
      const env = this.cipher.openJson(T.envelope, row.id, row.envelope_enc, shapes.envelope);
      ids.add(env.body.dossier.id);
      for (const c of env.body.chunks) ids.add(c.id);
    }
    return ids;
  }

  hasEnvelope(id: string): boolean {
    return this.sql.prepare('SELECT 1 FROM envelopes WHERE id = ?').get(id) !== undefined;
  }

  envelope(id: string): Envelope | undefined {
    const row = this.sql.prepare('SELECT envelope_enc FROM envelopes WHERE id = ?').get(id) as
      { envelope_enc: Uint8Array } | undefined;
    return row
      ? this.cipher.openJson(T.envelope, id, row.envelope_enc, shapes.envelope)
      : undefined;
  }

  envelopeDirection(id: string): Direction | undefined {
    const row = this.sql.prepare('SELECT direction FROM envelopes WHERE id = ?').get(id) as
      { direction: Direction } | undefined;
    return row?.direction;
  }

  // -------------------------------------------------------------- evidences

  /** Store an evidence about a stored envelope; false when it was stored already (same canonical bytes). */
  insertEvidence(evidence: Evidence, now: number): boolean {
    const id = hashOf(evidence);
    const result = this.sql
      .prepare(
        'INSERT OR IGNORE INTO evidences (id, envelope_id, kind, issued_at, stored_at, evidence_enc) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(
        id,
        evidence.body.envelopeId,
        evidence.body.kind,
        evidence.body.issuedAt,
        now,
        this.cipher.sealJson(T.evidence, id, evidence),
      );
    return result.changes > 0;
  }

  evidences(envelopeId: string): Evidence[] {
    const rows = this.sql
      .prepare('SELECT * FROM evidences WHERE envelope_id = ? ORDER BY issued_at, id')
      .all(envelopeId) as EvidenceRow[];
    return rows.map((r) => this.cipher.openJson(T.evidence, r.id, r.evidence_enc, shapes.evidence));
  }

  evidenceKinds(envelopeId: string): string[] {
    return (
      this.sql.prepare('SELECT kind FROM evidences WHERE envelope_id = ?').all(envelopeId) as {
        kind: string;
      }[]
    ).map((r) => r.kind);
  }

  // ----------------------------------------------------------------- outbox

  enqueue(
    kind: OutboxRow['kind'],
    dossierId: string,
    envelopeId: string,
    now: number,
    payload?: Evidence,
  ): number {
    const info = this.sql
      .prepare(
        'INSERT INTO outbox (kind, dossier_id, envelope_id, next_at, created_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(kind, dossierId, envelopeId, now, now);
    const id = Number(info.lastInsertRowid);
    if (payload !== undefined) {
      this.sql
        .prepare('UPDATE outbox SET payload_enc = ? WHERE id = ?')
        .run(this.cipher.sealJson(T.outbox, String(id), payload), id);
    }
    return id;
  }

  outboxRows(): OutboxRow[] {
    return this.sql.prepare('SELECT * FROM outbox ORDER BY id').all() as OutboxRow[];
  }

  dueOutbox(now: number, force: boolean): OutboxRow[] {
    const rows = force
      ? this.sql.prepare("SELECT * FROM outbox WHERE state = 'pending' ORDER BY id").all()
      : this.sql
          .prepare("SELECT * FROM outbox WHERE state = 'pending' AND next_at <= ? ORDER BY id")
          .all(now);
    return rows as OutboxRow[];
  }

  nextOutboxAt(): number | undefined {
    const row = this.sql
      .prepare("SELECT MIN(next_at) AS at FROM outbox WHERE state = 'pending'")
      .get() as { at: number | null };
    return row.at ?? undefined;
  }

  outboxEvidence(row: OutboxRow): Evidence {
    if (!row.payload_enc)
      return nodeFail('LOCAL_DATA_TAMPERED', `outbox item ${row.id} has no payload`);
    return this.cipher.openJson(T.outbox, String(row.id), row.payload_enc, shapes.evidence);
  }

  rescheduleOutbox(id: number, attempts: number, nextAt: number, error: string): void {
    this.sql
      .prepare('UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?')
      .run(attempts, nextAt, error, id);
  }

  failOutbox(id: number, error: string): void {
    this.sql
      .prepare("UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ?")
      .run(error, id);
  }

  retryFailedOutbox(now: number): number {
    return this.sql
      .prepare(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_at = ? WHERE state = 'failed'",
      )
      .run(now).changes;
  }

  deleteOutbox(id: number): void {
    this.sql.prepare('DELETE FROM outbox WHERE id = ?').run(id);
  }

  hasOutbox(dossierId: string, kind: OutboxRow['kind']): boolean {
    return (
      this.sql
        .prepare('SELECT 1 FROM outbox WHERE dossier_id = ? AND kind = ?')
        .get(dossierId, kind) !== undefined
    );
  }

  // ----------------------------------------------------------------- cursor

  cursor(): number {
    return Number(this.db.setting('mailbox.cursor') ?? '0');
  }

  setCursor(seq: number): void {
    if (seq > this.cursor()) this.db.setSetting('mailbox.cursor', String(seq));
  }

  /** The relay's mailbox epoch the cursor belongs to; undefined until a relay gave one. */
  mailboxEpoch(): string | undefined {
    return this.db.setting('mailbox.epoch');
  }

  /**
   * Record the relay's mailbox epoch. When it replaces another one, the
   * cursor of the old epoch means nothing any more: it goes back to 0 in the
   * same transaction. Returns the cursor it replaced (0 when none).
   */
  setMailboxEpoch(epoch: string): { readonly previous?: string; readonly cursor: number } {
    return this.db.transaction(() => {
      const previous = this.mailboxEpoch();
      const cursor = this.cursor();
      if (previous === epoch) return { previous, cursor };
      this.db.setSetting('mailbox.epoch', epoch);
      if (previous === undefined) return { cursor };
      this.db.setSetting('mailbox.cursor', '0');
      return { previous, cursor };
    });
  }
}
