/**
 * A network's key-transparency log, durable in one SQLite file
 * (docs/protocol.md §18). Each leaf is the canonical JSON of a LogEntry;
 * beside it the file keeps the hash of every complete, aligned subtree, so
 * a root, an inclusion proof or a consistency proof reads O(log n) rows.
 *
 * Durability: WAL with synchronous=FULL, and one transaction per append, so
 * an append that returned survives a crash or power loss, and one that
 * failed left nothing behind.
 */
import Database from 'better-sqlite3';
import {
  checkpointText,
  consistencyPath,
  decodeCanonical,
  inclusionPath,
  isProtocolError,
  leafHash,
  logEntryBytes,
  logOrigin,
  nodeHash,
  parseLogEntry,
  rangeHash,
  type Checkpoint,
  type LogEntry,
  type SubtreeHashes,
} from '@rogatory/protocol';
import { TransparencyLogError } from './errors.js';

/** Most entries in one append (one transaction). */
export const MAX_BATCH = 100_000;
/** Most entries one `entries()` call returns. */
export const MAX_ENTRIES_READ = 1_000;
const FORMAT = '1';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
-- level 0 holds leaf hashes; level l, index i the subtree of leaves [i*2^l, (i+1)*2^l).
CREATE TABLE IF NOT EXISTS nodes (
  level INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  hash BLOB NOT NULL,
  PRIMARY KEY (level, idx)
) WITHOUT ROWID;
`;

export interface TransparencyLogOptions {
  /** The SQLite file (created if missing). */
  readonly path: string;
  /** The network whose log this is; a file of another network is refused. */
  readonly network: string;
}

/** A checkpoint of the log and its note text, ready for the root key to sign (`signCheckpoint`). */
export interface LogCheckpoint extends Checkpoint {
  readonly text: string;
}

function outOfRange(message: string): never {
  throw new TransparencyLogError('LOG_INDEX_OUT_OF_RANGE', message);
}

export class TransparencyLog {
  readonly network: string;
  readonly origin: string;
  private readonly db: Database.Database;
  private readonly stmt: {
    size: Database.Statement<[], { idx: number }>;
    node: Database.Statement<[number, number], { hash: Buffer }>;
    entry: Database.Statement<[number], { data: Buffer }>;
    entries: Database.Statement<[number, number], { data: Buffer }>;
    insertEntry: Database.Statement<[number, Uint8Array]>;
    insertNode: Database.Statement<[number, number, Uint8Array]>;
  };
  private readonly appendTx: Database.Transaction<(entries: readonly Uint8Array[]) => number>;

  private constructor(db: Database.Database, network: string) {
    this.db = db;
    this.network = network;
    this.origin = logOrigin(network);
    this.stmt = {
      size: db.prepare('SELECT idx FROM entries ORDER BY idx DESC LIMIT 1'),
      node: db.prepare('SELECT hash FROM nodes WHERE level = ? AND idx = ?'),
      entry: db.prepare('SELECT data FROM entries WHERE idx = ?'),
      entries: db.prepare('SELECT data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
      insertEntry: db.prepare('INSERT INTO entries (idx, data) VALUES (?, ?)'),
      insertNode: db.prepare('INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)'),
    };
    this.appendTx = db.transaction((datas: readonly Uint8Array[]) => {
      let index = this.size;
      for (const data of datas) {
        this.stmt.insertEntry.run(index, data);
        let hash = leafHash(data);
        this.stmt.insertNode.run(0, index, hash);
        // Every subtree this leaf completes gets its hash now.
        let level = 0;
        let i = index;
        while (i % 2 === 1) {
          hash = nodeHash(this.readNode(level, i - 1), hash);
          level++;
          i = (i - 1) / 2;
          this.stmt.insertNode.run(level, i, hash);
        }
        index++;
      }
      return index;
    });
  }

  /** Open (or create) the log of `network` in `path`. */
  static open(options: TransparencyLogOptions): TransparencyLog {
    const origin = (() => {
      try {
        return logOrigin(options.network);
      } catch (cause) {
        throw new TransparencyLogError('LOG_STORE_INVALID', 'not a network id', { cause });
      }
    })();
    const db = new Database(options.path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      db.exec(SCHEMA);
      const meta = new Map(
        (db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map(
          (r) => [r.key, r.value],
        ),
      );
      if (meta.size === 0) {
        const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
        db.transaction(() => {
          put.run('format', FORMAT);
          put.run('origin', origin);
        })();
      } else if (meta.get('format') !== FORMAT || meta.get('origin') !== origin) {
        throw new TransparencyLogError(
          'LOG_STORE_INVALID',
          'the file is not this network’s log (format 1)',
        );
      }
      return new TransparencyLog(db, options.network);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Number of entries. */
  get size(): number {
    const last = this.stmt.size.get();
    return last === undefined ? 0 : last.idx + 1;
  }

  /**
   * Append entries in one durable transaction; returns the index of the
   * first and the new size. Every entry is checked first: a bad one appends
   * nothing. With `at`, the batch is appended only if the log holds exactly
   * `at` entries (checked under the write lock), else LOG_SIZE_CHANGED: two
   * writers finishing the same publication cannot both append it.
   */
  append(
    entries: readonly LogEntry[],
    options: { readonly at?: number } = {},
  ): { first: number; size: number } {
    const datas = this.encodeBatch(entries);
    // IMMEDIATE: the write lock is taken before the size is read, so a second writer waits.
    return this.db
      .transaction(() => {
        const first = this.size;
        if (options.at !== undefined && options.at !== first)
          throw new TransparencyLogError(
            'LOG_SIZE_CHANGED',
            `the log has ${first} entries, not ${options.at}`,
          );
        return { first, size: this.appendTx(datas) };
      })
      .immediate();
  }

  private encodeBatch(entries: readonly LogEntry[]): Uint8Array[] {
    if (!Array.isArray(entries) || entries.length === 0 || entries.length > MAX_BATCH)
      throw new TransparencyLogError(
        'LOG_BATCH_INVALID',
        `a batch holds 1 to ${MAX_BATCH} entries`,
      );
    return entries.map((entry, i) => {
      try {
        const e = parseLogEntry(entry);
        if (e.network !== this.network)
          throw new TransparencyLogError('LOG_ENTRY_INVALID', `entry ${i} is of another network`);
        return logEntryBytes(e);
      } catch (cause) {
        if (cause instanceof TransparencyLogError) throw cause;
        throw new TransparencyLogError('LOG_ENTRY_INVALID', `entry ${i} is not a log entry`, {
          cause,
        });
      }
    });
  }

  /**
   * The size and root hash the log would have after `append(entries)`,
   * computed in a transaction that is rolled back: nothing is written. The
   * secretariat signs the next checkpoint with this before it appends, so a
   * crash after the append never leaves entries without a signed checkpoint.
   */
  preview(entries: readonly LogEntry[]): { size: number; rootHash: Uint8Array } {
    const datas = this.encodeBatch(entries);
    let result: { size: number; rootHash: Uint8Array } | undefined;
    const rollback = new Error('preview rollback');
    try {
      this.db
        .transaction(() => {
          const size = this.appendTx(datas);
          result = { size, rootHash: rangeHash(this.reader(), 0, size).slice() };
          throw rollback;
        })
        .immediate();
    } catch (err) {
      if (err !== rollback) throw err;
    }
    return result!;
  }

  /** The entry at `index`. */
  entry(index: number): LogEntry {
    this.checkIndex(index, this.size);
    return this.decode(this.stmt.entry.get(index)!.data);
  }

  /** Entries [start, start + count), count at most MAX_ENTRIES_READ. */
  entries(start: number, count: number): LogEntry[] {
    const size = this.size;
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_ENTRIES_READ)
      outOfRange(`read 1 to ${MAX_ENTRIES_READ} entries at a time`);
    this.checkIndex(start, size);
    return this.stmt.entries
      .all(start, Math.min(size, start + count))
      .map((r) => this.decode(r.data));
  }

  /** The leaf hash of entry `index`. */
  leafHash(index: number): Uint8Array {
    this.checkIndex(index, this.size);
    return this.readNode(0, index);
  }

  /** The root hash of the tree of the first `size` entries (default: all). */
  root(size = this.size): Uint8Array {
    this.checkSize(size);
    return rangeHash(this.reader(), 0, size);
  }

  /** The checkpoint of the tree of the first `size` entries (default: all). */
  checkpoint(size = this.size): LogCheckpoint {
    const cp = { origin: this.origin, size, rootHash: this.root(size) };
    return { ...cp, text: checkpointText(cp) };
  }

  /** Inclusion proof of entry `index` in the tree of the first `size` entries (RFC 9162 §2.1.3.1). */
  inclusionProof(index: number, size = this.size): Uint8Array[] {
    this.checkSize(size);
    this.checkIndex(index, size);
    return inclusionPath(this.reader(), index, 0, size);
  }

  /** Consistency proof from the tree of `size1` entries to that of `size2` (RFC 9162 §2.1.4.1). */
  consistencyProof(size1: number, size2 = this.size): Uint8Array[] {
    this.checkSize(size2);
    if (!Number.isSafeInteger(size1) || size1 < 0 || size1 > size2)
      outOfRange('first size is beyond the second');
    return consistencyPath(this.reader(), size1, size2);
  }

  close(): void {
    this.db.close();
  }

  private checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size)
      outOfRange(`tree size ${size} is beyond the log`);
  }

  private checkIndex(index: number, size: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= size)
      outOfRange(`index ${index} is not below ${size}`);
  }

  private readNode(level: number, index: number): Uint8Array {
    const row = this.stmt.node.get(level, index);
    if (!row)
      throw new TransparencyLogError('LOG_STORE_INVALID', `subtree ${level}/${index} is missing`);
    return new Uint8Array(row.hash.buffer, row.hash.byteOffset, row.hash.byteLength);
  }

  /** A node reader for one proof: each subtree read once. */
  private reader(): SubtreeHashes {
    const seen = new Map<string, Uint8Array>();
    return (level, index) => {
      const key = `${level}/${index}`;
      let h = seen.get(key);
      if (!h) {
        h = this.readNode(level, index);
        seen.set(key, h);
      }
      return h;
    };
  }

  private decode(data: Buffer): LogEntry {
    try {
      return parseLogEntry(
        decodeCanonical(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)),
      );
    } catch (cause) {
      if (isProtocolError(cause))
        throw new TransparencyLogError('LOG_STORE_INVALID', 'a stored entry does not decode', {
          cause,
        });
      throw cause;
    }
  }
}
