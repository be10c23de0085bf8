import type { NodeDatabase } from './db.js';

/** A row of the `audit` table: an entry and its place in the hash chain. */
export interface AuditRow {
  readonly seq: number;
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly detail: string | null;
  readonly prev_hash: string;
  readonly hash: string;
}

/** Which entries to list: every field given must match (`since`: at or after, in ms). */
export interface AuditFilter {
  readonly target?: string;
  readonly actor?: string;
  readonly action?: string;
  readonly since?: number;
}

/** The chain head kept beside the entries (one row), MACed by the caller. */
export interface AuditHeadRow {
  readonly seq: number;
  readonly hash: string;
  readonly mac: string;
}

/** The audit log's tables. The caller (AuditLog) computes hashes and MACs and groups writes in a transaction. */
export class AuditTable {
  private readonly db: NodeDatabase;

  constructor(db: NodeDatabase) {
    this.db = db;
  }

  insert(row: AuditRow): void {
    this.db.sql
      .prepare(
        'INSERT INTO audit (seq, at, actor, action, target, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(row.seq, row.at, row.actor, row.action, row.target, row.detail, row.prev_hash, row.hash);
  }

  setHead(head: AuditHeadRow): void {
    this.db.sql
      .prepare(
        'INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac',
      )
      .run(head.seq, head.hash, head.mac);
  }

  head(): AuditHeadRow | undefined {
    return this.db.sql.prepare('SELECT seq, hash, mac FROM audit_head WHERE id = 1').get() as
      AuditHeadRow | undefined;
  }

  /** The last `limit` entries matching every filter given, newest first. */
  latest(limit: number, filter: AuditFilter = {}): AuditRow[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.target !== undefined) {
      where.push('target = ?');
      args.push(filter.target);
    }
    if (filter.actor !== undefined) {
      where.push('actor = ?');
      args.push(filter.actor);
    }
    if (filter.action !== undefined) {
      where.push('action = ?');
      args.push(filter.action);
    }
    if (filter.since !== undefined) {
      where.push('at >= ?');
      args.push(filter.since);
    }
    const clause = where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`;
    return this.db.sql
      .prepare(`SELECT * FROM audit${clause} ORDER BY seq DESC LIMIT ?`)
      .all(...args, limit) as AuditRow[];
  }

  /** Every entry in order, read one at a time. */
  iterate(): IterableIterator<AuditRow> {
    return this.db.sql
      .prepare('SELECT * FROM audit ORDER BY seq')
      .iterate() as IterableIterator<AuditRow>;
  }
}
