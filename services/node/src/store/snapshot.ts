import Database from 'better-sqlite3';

/** The audit head row of a database file (as AuditTable keeps it). */
export interface SnapshotHead {
  readonly seq: number;
  readonly hash: string;
  readonly mac: string;
}

/**
 * Copy the node database at `source` to `target` with SQLite's online backup
 * (consistent however many writes go on meanwhile), leave the copy in
 * rollback-journal mode (one file), and return the audit head it holds.
 * Opens the files directly: no passphrase, nothing decrypted.
 */
export async function snapshotDatabase(
  source: string,
  target: string,
): Promise<SnapshotHead | undefined> {
  const db = new Database(source, { fileMustExist: true });
  try {
    await db.backup(target);
  } finally {
    db.close();
  }
  const copy = new Database(target, { fileMustExist: true });
  try {
    copy.pragma('journal_mode = DELETE');
    return copy.prepare('SELECT seq, hash, mac FROM audit_head WHERE id = 1').get() as
      SnapshotHead | undefined;
  } finally {
    copy.close();
  }
}
