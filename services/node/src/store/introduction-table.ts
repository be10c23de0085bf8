import { Type, type Static } from 'typebox';
import {
  AddressSchema,
  INTRODUCTION_DECLINE_REASONS,
  IntroductionSchema,
  KeyRefSchema,
  REQUEST_TYPES,
  hashOf,
  randomBytes,
  toHex,
  validator,
  type Introduction,
} from '@rogatory/protocol';
import type { LocalCipher } from './local-cipher.js';
import type { NodeDatabase } from './db.js';

/** What this node is in an introduction request: the officer's node, the PoC asked, the peer PoC it was referred to, or the authority introduced. */
export type IntroductionRole = 'requester' | 'poc' | 'referee' | 'subject';
/** `pending` is what a PoC lists as open. */
export type IntroductionState = 'pending' | 'referred' | 'introduced' | 'declined' | 'refused';

const Text = Type.String({ maxLength: 2000 });

/** The inquiry as the request (or the referral) states it. */
const InquiryRecordSchema = Type.Object(
  {
    country: Type.String({ minLength: 2, maxLength: 2 }),
    requestType: Type.Enum(REQUEST_TYPES),
    languages: Type.Array(Type.String({ maxLength: 35 }), { maxItems: 5 }),
    note: Type.Optional(Text),
    caseReference: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

/** An introduction as lists show it (the statement itself is in `introductions`). */
const IntroducedSchema = Type.Object(
  {
    hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    issuer: AddressSchema,
    subject: AddressSchema,
    audience: Type.String({ maxLength: 200 }),
    competences: Type.Array(Type.Enum(REQUEST_TYPES)),
    validUntil: Type.Integer(),
  },
  { additionalProperties: false },
);
export type IntroducedRecord = Static<typeof IntroducedSchema>;

/** The record sealed in `introduction_requests.record_enc`. */
export const IntroductionCaseSchema = Type.Object(
  {
    requester: AddressSchema,
    /** The sender of the dossier that made this node take part: the requester, the referring PoC or the answering PoC. */
    from: AddressSchema,
    /** The point of contact the request was first sent to (requester side: the `--to` PoC). */
    poc: Type.Optional(AddressSchema),
    inquiry: Type.Optional(InquiryRecordSchema),
    requesterKey: Type.Optional(KeyRefSchema),
    /** What this PoC answered, and the dossier carrying it (awaiting approval until an approver signs it off). */
    answer: Type.Optional(
      Type.Object(
        {
          dossierId: Type.String({ maxLength: 40 }),
          outcome: Type.Union([
            Type.Literal('introduced'),
            Type.Literal('referred'),
            Type.Literal('declined'),
          ]),
          to: Type.Optional(AddressSchema),
          subject: Type.Optional(AddressSchema),
          reason: Type.Optional(Type.Enum(INTRODUCTION_DECLINE_REASONS)),
          by: Type.String({ maxLength: 40 }),
          at: Type.Integer(),
        },
        { additionalProperties: false },
      ),
    ),
    /** What the requester (or the subject) received: the answering PoC, introductions kept, a decline or a refusal code. */
    result: Type.Optional(
      Type.Object(
        {
          poc: AddressSchema,
          dossierId: Type.String({ maxLength: 40 }),
          introductions: Type.Array(IntroducedSchema, { maxItems: 4 }),
          reason: Type.Optional(Type.Enum(INTRODUCTION_DECLINE_REASONS)),
          text: Type.Optional(Text),
          /** Why the introductions carried were refused (a stable code); none was stored. */
          code: Type.Optional(Type.String({ pattern: '^[A-Z_]{1,40}$' })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type IntroductionCase = Static<typeof IntroductionCaseSchema>;

export interface IntroductionRequestRow {
  readonly id: string;
  readonly request_id: string;
  readonly role: IntroductionRole;
  readonly dossier_id: string;
  readonly status: IntroductionState;
  readonly created_at: number;
  readonly updated_at: number;
  readonly record_enc: Uint8Array;
}

interface IntroductionRow {
  readonly hash: string;
  readonly direction: 'issued' | 'received';
  readonly request_id: string | null;
  readonly issued_at: number;
  readonly valid_until: number;
  readonly stored_at: number;
  readonly statement_enc: Uint8Array;
  readonly dossier_id: string | null;
}

const caseShape = validator(IntroductionCaseSchema, 'introduction case');
const introductionShape = validator(IntroductionSchema, 'introduction');
const T = { requests: 'introduction_requests', introductions: 'introductions' } as const;

/**
 * The point-of-contact workflow's tables (migrations 3 and 4): one row per
 * introduction request this node takes part in, and the verified
 * introductions it issued or received. Records are sealed under the local
 * storage key; the caller groups writes in a transaction.
 */
export class IntroductionTable {
  private readonly db: NodeDatabase;
  private readonly cipher: LocalCipher;

  constructor(db: NodeDatabase, cipher: LocalCipher) {
    this.db = db;
    this.cipher = cipher;
  }

  insertCase(fields: {
    requestId: string;
    role: IntroductionRole;
    dossierId: string;
    status: IntroductionState;
    record: IntroductionCase;
    now: number;
  }): string {
    const id = `i-${toHex(randomBytes(8))}`;
    this.db.sql
      .prepare(
        `INSERT INTO introduction_requests (id, request_id, role, dossier_id, status, created_at, updated_at, record_enc)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        fields.requestId,
        fields.role,
        fields.dossierId,
        fields.status,
        fields.now,
        fields.now,
        this.cipher.sealJson(T.requests, id, caseShape.parse(fields.record)),
      );
    return id;
  }

  updateCase(id: string, status: IntroductionState, record: IntroductionCase, now: number): void {
    this.db.sql
      .prepare(
        'UPDATE introduction_requests SET status = ?, updated_at = ?, record_enc = ? WHERE id = ?',
      )
      .run(status, now, this.cipher.sealJson(T.requests, id, caseShape.parse(record)), id);
  }

  caseRow(id: string): IntroductionRequestRow | undefined {
    return this.db.sql.prepare('SELECT * FROM introduction_requests WHERE id = ?').get(id) as
      IntroductionRequestRow | undefined;
  }

  caseByRequest(requestId: string, role: IntroductionRole): IntroductionRequestRow | undefined {
    return this.db.sql
      .prepare('SELECT * FROM introduction_requests WHERE request_id = ? AND role = ?')
      .get(requestId, role) as IntroductionRequestRow | undefined;
  }

  cases(roles: readonly IntroductionRole[]): IntroductionRequestRow[] {
    return this.db.sql
      .prepare(
        `SELECT * FROM introduction_requests WHERE role IN (${roles.map(() => '?').join(', ')}) ORDER BY created_at, id`,
      )
      .all(...roles) as IntroductionRequestRow[];
  }

  record(row: IntroductionRequestRow): IntroductionCase {
    return this.cipher.openJson(T.requests, row.id, row.record_enc, caseShape);
  }

  /** Keep a verified introduction (once: its hash is the key). Returns false when it was stored already. */
  insertIntroduction(fields: {
    introduction: Introduction;
    direction: 'issued' | 'received';
    requestId: string | null;
    dossierId: string | null;
    now: number;
  }): boolean {
    const intro = fields.introduction;
    const hash = hashOf(intro);
    const done = this.db.sql
      .prepare(
        `INSERT OR IGNORE INTO introductions (hash, direction, request_id, issued_at, valid_until, stored_at, statement_enc, dossier_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        hash,
        fields.direction,
        fields.requestId,
        intro.body.issuedAt,
        intro.body.validUntil,
        fields.now,
        this.cipher.sealJson(T.introductions, hash, intro),
        fields.dossierId,
      );
    return done.changes > 0;
  }

  hasIntroduction(hash: string): boolean {
    return (
      this.db.sql.prepare('SELECT 1 FROM introductions WHERE hash = ?').get(hash) !== undefined
    );
  }

  /** Stored introductions of one direction, oldest first, with the dossier that carries an issued one. */
  introductions(
    direction: 'issued' | 'received',
  ): { introduction: Introduction; dossierId: string | null; requestId: string | null }[] {
    const rows = this.db.sql
      .prepare('SELECT * FROM introductions WHERE direction = ? ORDER BY issued_at, hash')
      .all(direction) as IntroductionRow[];
    return rows.map((r) => ({
      introduction: this.cipher.openJson(
        T.introductions,
        r.hash,
        r.statement_enc,
        introductionShape,
      ),
      dossierId: r.dossier_id,
      requestId: r.request_id,
    }));
  }
}
