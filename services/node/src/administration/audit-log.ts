import { readFileSync } from 'node:fs';
import { Type } from 'typebox';
import {
  canonicalBytes,
  concatBytes,
  fromHex,
  sha256,
  toHex,
  utf8,
  validator,
} from '@rogatory/protocol';
import type { LocalCipher } from '../store/local-cipher.js';
import { AuditTable, type AuditFilter } from '../store/audit-table.js';
import type { NodeDatabase } from '../store/db.js';
import { writeFileAtomicSync } from '../files/atomic-write.js';

/** Every state-changing action the node records. Entries name ids and codes only, never content. */
export const AUDIT_ACTIONS = [
  'node.init',
  'node.gc',
  'user.add',
  'user.disable',
  'user.enable',
  'user.password-change',
  'user.password-reset',
  'user.set-role',
  'user.set-clearance',
  'auth.failed',
  'dossier.compose',
  'dossier.update',
  'dossier.submit',
  'dossier.approve',
  'dossier.return',
  'dossier.send',
  'dossier.send-rejected',
  'dossier.receive',
  'dossier.quarantine',
  'dossier.quarantine-superseded',
  'dossier.open',
  'dossier.attachments-saved',
  'dossier.export',
  'dossier.export-sealed',
  'dossier.status',
  'evidence.receive',
  'evidence.invalid',
  'relay.misbehaviour',
  'evidence.sent',
  'outbox.retry',
  'audit.export',
  'trust.edition-applied',
  'trust.publication-refused',
  'trust.fork-detected',
  'trust.fork-cleared',
  'trust.manifest-refused',
  'keys.rotate-encryption',
  'keys.rotate-identity',
  'keys.identity-switch',
  'introduction.receive',
  'introduction.refused',
  'introduction.issue',
  'introduction.refer',
  'introduction.decline',
  'introduction.export',
  'mailbox.reset',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEntry {
  readonly seq: number;
  readonly at: number;
  /** A user id, or `system` for the node's own work (sync, outbox). */
  readonly actor: string;
  readonly action: AuditAction;
  /** Local id, envelope id or username the action is about. */
  readonly target: string | null;
  /** Codes and small facts (status names, evidence kinds, error codes). */
  readonly detail: string | null;
}

/** One exported entry: the entry and its place in the hash chain. */
export interface AuditExportLine extends AuditEntry {
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditProblem {
  readonly code:
    | 'ENTRY_ALTERED'
    | 'CHAIN_BROKEN'
    | 'SEQUENCE_GAP'
    | 'HEAD_MISSING'
    | 'HEAD_INVALID'
    | 'HEAD_MISMATCH'
    | 'TRUNCATED'
    | 'CHECKPOINT_MISMATCH';
  readonly seq?: number;
}

export interface AuditReport {
  readonly ok: boolean;
  readonly entries: number;
  readonly head: { seq: number; hash: string } | null;
  readonly problems: readonly AuditProblem[];
}

const GENESIS = '0'.repeat(64);
const DOMAIN = utf8('rogatory-node/v1/audit');
const HeadSchema = Type.Object(
  {
    seq: Type.Integer({ minimum: 0 }),
    hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    mac: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  },
  { additionalProperties: false },
);
const headShape = validator(HeadSchema, 'audit head');

/** The hash of an entry: SHA-256 over a domain string, the previous hash and the canonical entry. */
export function auditEntryHash(
  entry: Omit<AuditEntry, 'action'> & { action: string },
  prev: string,
): string {
  const body = {
    seq: entry.seq,
    at: entry.at,
    actor: entry.actor,
    action: entry.action,
    target: entry.target,
    detail: entry.detail,
  };
  return toHex(sha256(concatBytes(DOMAIN, Uint8Array.of(0), fromHex(prev), canonicalBytes(body))));
}

/**
 * Tamper-evident local audit log: a hash chain over canonical entries.
 * The head (last seq and hash, MACed under a subkey of the storage key, so
 * only the passphrase holder can forge one) is kept twice: in its own table,
 * updated in the same transaction as the entry, and in a file outside the
 * database written after each commit. Altering an entry breaks the chain;
 * deleting the last entries leaves a head that points past the end.
 */
export class AuditLog {
  private readonly db: NodeDatabase;
  private readonly table: AuditTable;
  private readonly cipher: LocalCipher;
  private readonly headFile: string;

  constructor(options: { db: NodeDatabase; cipher: LocalCipher; headFile: string }) {
    this.db = options.db;
    this.table = new AuditTable(options.db);
    this.cipher = options.cipher;
    this.headFile = options.headFile;
  }

  /** Append an entry; joins the caller's transaction (one is opened otherwise). */
  append(entry: {
    at: number;
    actor: string;
    action: AuditAction;
    target?: string | null;
    detail?: string | null;
  }): void {
    this.db.transaction(() => {
      const head = this.sqlHead();
      const seq = (head?.seq ?? 0) + 1;
      const prev = head?.hash ?? GENESIS;
      const full: AuditEntry = {
        seq,
        at: entry.at,
        actor: entry.actor,
        action: entry.action,
        target: entry.target ?? null,
        detail: entry.detail ?? null,
      };
      const hash = auditEntryHash(full, prev);
      this.table.insert({ ...full, prev_hash: prev, hash });
      const mac = this.headMac(seq, hash);
      this.table.setHead({ seq, hash, mac });
      this.db.onCommit(() => {
        writeFileAtomicSync(this.headFile, `${JSON.stringify({ seq, hash, mac })}\n`);
      });
    });
  }

  /** The last `limit` entries (default 10,000) matching the filter, oldest first. */
  entries(options: AuditFilter & { limit?: number } = {}): AuditEntry[] {
    const { limit = 10_000, ...filter } = options;
    const rows = this.table.latest(limit, filter);
    return rows.reverse().map((r) => ({
      seq: r.seq,
      at: r.at,
      actor: r.actor,
      action: r.action as AuditAction,
      target: r.target,
      detail: r.detail,
    }));
  }

  /**
   * Every entry with its chain hashes, oldest first, then the MACed head: what
   * `rogatory audit export` writes, so a reviewer can recompute the chain
   * (`auditEntryHash`) away from the node.
   */
  *exportLines(): Generator<AuditExportLine> {
    for (const r of this.table.iterate())
      yield {
        seq: r.seq,
        at: r.at,
        actor: r.actor,
        action: r.action as AuditAction,
        target: r.target,
        detail: r.detail,
        prevHash: r.prev_hash,
        hash: r.hash,
      };
  }

  /** Recompute the chain and compare both heads. */
  verify(): AuditReport {
    const problems: AuditProblem[] = [];
    let prev = GENESIS;
    let expected = 1;
    let last: { seq: number; hash: string } | null = null;
    const hashes = new Map<number, string>();
    for (const row of this.table.iterate()) {
      if (row.seq !== expected) problems.push({ code: 'SEQUENCE_GAP', seq: row.seq });
      if (row.prev_hash !== prev) problems.push({ code: 'CHAIN_BROKEN', seq: row.seq });
      if (auditEntryHash(row, row.prev_hash) !== row.hash)
        problems.push({ code: 'ENTRY_ALTERED', seq: row.seq });
      hashes.set(row.seq, row.hash);
      prev = row.hash;
      expected = row.seq + 1;
      last = { seq: row.seq, hash: row.hash };
    }
    const head = this.sqlHead();
    if (!head) {
      if (last) problems.push({ code: 'HEAD_MISSING' });
    } else {
      if (!this.checkMac(head)) problems.push({ code: 'HEAD_INVALID' });
      if (!last || head.seq > last.seq) problems.push({ code: 'TRUNCATED', seq: head.seq });
      else if (head.seq !== last.seq || head.hash !== last.hash)
        problems.push({ code: 'HEAD_MISMATCH', seq: head.seq });
    }
    const checkpoint = this.fileHead();
    if (checkpoint === 'invalid') problems.push({ code: 'HEAD_INVALID' });
    else if (checkpoint === undefined) {
      if (last) problems.push({ code: 'HEAD_MISSING' });
    } else {
      // The file lags the table by at most the commit in flight when a crash hit; it never leads it.
      if (!this.checkMac(checkpoint)) problems.push({ code: 'HEAD_INVALID' });
      if (!last || checkpoint.seq > last.seq)
        problems.push({ code: 'TRUNCATED', seq: checkpoint.seq });
      else if (hashes.get(checkpoint.seq) !== checkpoint.hash)
        problems.push({ code: 'CHECKPOINT_MISMATCH', seq: checkpoint.seq });
    }
    return { ok: problems.length === 0, entries: hashes.size, head: last, problems };
  }

  private sqlHead(): { seq: number; hash: string; mac: string } | undefined {
    return this.table.head();
  }

  private fileHead(): { seq: number; hash: string; mac: string } | 'invalid' | undefined {
    let text: string;
    try {
      text = readFileSync(this.headFile, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const value: unknown = JSON.parse(text);
      return headShape.check(value) ? value : 'invalid';
    } catch {
      return 'invalid';
    }
  }

  private headMac(seq: number, hash: string): string {
    return toHex(this.cipher.mac(canonicalBytes({ type: 'audit-head', seq, hash })));
  }

  private checkMac(head: { seq: number; hash: string; mac: string }): boolean {
    if (!/^[0-9a-f]{64}$/.test(head.mac)) return false;
    return this.cipher.verifyMac(
      fromHex(head.mac),
      canonicalBytes({ type: 'audit-head', seq: head.seq, hash: head.hash }),
    );
  }
}
