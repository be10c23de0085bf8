import type { NodeDatabase } from './db.js';

/** A row of the `users` table (clearances as a JSON array, disabled as 0/1). */
export interface UserRow {
  readonly id: string;
  readonly username: string;
  readonly role: string;
  readonly clearances: string;
  readonly password_hash: string;
  readonly disabled: number;
  readonly created_at: number;
  readonly created_by: string | null;
}

/** The officers' accounts. Callers check who may change them, and audit. */
export class UserTable {
  private readonly db: NodeDatabase;

  constructor(db: NodeDatabase) {
    this.db = db;
  }

  count(): number {
    return (this.db.sql.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
  }

  insert(row: Omit<UserRow, 'disabled'>): void {
    this.db.sql
      .prepare(
        'INSERT INTO users (id, username, role, clearances, password_hash, disabled, created_at, created_by) VALUES (?, ?, ?, ?, ?, 0, ?, ?)',
      )
      .run(
        row.id,
        row.username,
        row.role,
        row.clearances,
        row.password_hash,
        row.created_at,
        row.created_by,
      );
  }

  all(): UserRow[] {
    return this.db.sql.prepare('SELECT * FROM users ORDER BY username').all() as UserRow[];
  }

  byUsername(username: string): UserRow | undefined {
    return this.db.sql.prepare('SELECT * FROM users WHERE username = ?').get(username) as
      UserRow | undefined;
  }

  byId(id: string): UserRow | undefined {
    return this.db.sql.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
  }

  /** Whether an account was disabled (false: no such username). */
  disable(username: string): boolean {
    return (
      this.db.sql.prepare('UPDATE users SET disabled = 1 WHERE username = ?').run(username)
        .changes > 0
    );
  }
}
