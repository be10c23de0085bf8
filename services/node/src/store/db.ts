import Database from 'better-sqlite3';
import { nodeFail, toNodeError } from '../errors.js';
import { MIGRATIONS } from './schema.js';

export type Sqlite = Database.Database;

/**
 * The node's SQLite file: WAL (readers do not block the writer), synchronous
 * FULL (a committed transaction survives power loss), foreign keys on,
 * migrations applied in one transaction.
 */
export class NodeDatabase {
  readonly sql: Sqlite;
  private readonly afterCommit: (() => void)[] = [];
  private depth = 0;

  private constructor(sql: Sqlite) {
    this.sql = sql;
  }

  static open(path: string): NodeDatabase {
    let sql: Sqlite;
    try {
      sql = new Database(path);
      sql.pragma('journal_mode = WAL');
      sql.pragma('synchronous = FULL');
      sql.pragma('foreign_keys = ON');
      sql.pragma('busy_timeout = 5000');
    } catch (cause) {
      throw toNodeError(cause, 'open database');
    }
    const db = new NodeDatabase(sql);
    db.migrate();
    return db;
  }

  private migrate(): void {
    const current = this.sql.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length)
      nodeFail('CONFIG_INVALID', 'the database was written by a newer version of the node');
    if (current === MIGRATIONS.length) return;
    // A migration may rebuild a table others reference (SQLite's way to change a
    // constraint): foreign keys are off while migrations run (the pragma is a
    // no-op inside a transaction) and every reference is checked before commit.
    this.sql.pragma('foreign_keys = OFF');
    try {
      this.sql.transaction(() => {
        for (let v = current; v < MIGRATIONS.length; v++) this.sql.exec(MIGRATIONS[v]!);
        if ((this.sql.pragma('foreign_key_check') as unknown[]).length > 0)
          nodeFail('CONFIG_INVALID', 'the database migration broke a reference between rows');
        this.sql.pragma(`user_version = ${MIGRATIONS.length}`);
      })();
    } finally {
      this.sql.pragma('foreign_keys = ON');
    }
  }

  /**
   * Run `fn` in one transaction (nested calls join the outer one). `onCommit`
   * callbacks registered during it run after the outermost commit, never
   * after a rollback. Database failures become NodeErrors (SQLITE_FULL →
   * STORAGE_FULL).
   */
  transaction<T>(fn: () => T): T {
    if (this.depth > 0) return fn();
    this.depth++;
    let result: T;
    try {
      result = this.sql.transaction(fn).immediate();
    } catch (err) {
      this.afterCommit.length = 0;
      throw toNodeError(err, 'database transaction');
    } finally {
      this.depth--;
    }
    const hooks = this.afterCommit.splice(0);
    for (const hook of hooks) hook();
    return result;
  }

  /** Run `hook` after the current transaction commits (at once when none is open). */
  onCommit(hook: () => void): void {
    if (this.depth === 0) hook();
    else this.afterCommit.push(hook);
  }

  setting(key: string): string | undefined {
    const row = this.sql.prepare('SELECT value FROM settings WHERE key = ?').get(key) as
      { value: string } | undefined;
    return row?.value;
  }

  setSetting(key: string, value: string): void {
    this.sql
      .prepare(
        'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      )
      .run(key, value);
  }

  close(): void {
    if (this.sql.open) this.sql.close();
  }
}
