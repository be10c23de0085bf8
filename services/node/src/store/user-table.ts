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

  /** Whether an account was enabled again (false: no such username). */
  enable(username: string): boolean {
    return (
      this.db.sql.prepare('UPDATE users SET disabled = 0 WHERE username = ?').run(username)
        .changes > 0
    );
  }

  /** Replace a password hash (false: no such username). */
  setPasswordHash(username: string, hash: string): boolean {
    return (
      this.db.sql
        .prepare('UPDATE users SET password_hash = ? WHERE username = ?')
        .run(hash, username).changes > 0
    );
  }

  /** Change a role (false: no such username). The table's CHECK admits only the known roles. */
  setRole(username: string, role: string): boolean {
    return (
      this.db.sql.prepare('UPDATE users SET role = ? WHERE username = ?').run(role, username)
        .changes > 0
    );
  }

  /** Replace the clearances, a JSON array (false: no such username). */
  setClearances(username: string, clearances: string): boolean {
    return (
      this.db.sql
        .prepare('UPDATE users SET clearances = ? WHERE username = ?')
        .run(clearances, username).changes > 0
    );
  }

  /** Enabled admins (to keep at least one). */
  activeAdmins(): number {
    return (
      this.db.sql
        .prepare("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled = 0")
        .get() as { n: number }
    ).n;
  }
}
