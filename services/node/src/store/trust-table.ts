import type { NodeDatabase } from './db.js';

/** A publication accepted from a network's log, as the relay served it. */
export interface StoredPublication {
  readonly network: string;
  /** The checkpoint size the publication ends at. */
  readonly size: number;
  /** Standard base64 of the checkpoint's root hash. */
  readonly rootHash: string;
  /** The version of the last manifest edition the publication carries, if any. */
  readonly edition: number | null;
  /** The publication (JSON). */
  readonly publication: unknown;
  readonly storedAt: number;
}

/** What the node holds of one network's log: the largest accepted checkpoint and the highest edition. */
export interface TrustNetworkRow {
  readonly network: string;
  readonly size: number;
  readonly rootHash: string;
  /** The newest checkpoint's signed note (with the cosignature lines it had). */
  readonly checkpoint: string;
  readonly edition: number | null;
  readonly editionHash: string | null;
  /** Witness names whose cosignature counted towards the quorum on the newest checkpoint. */
  readonly cosigners: readonly string[];
  readonly updatedAt: number;
}

export type FetchSource = 'relay' | 'second';

/** The outcome of the last fetch from one source: `ok`, `unchanged`, or the refusal/failure code. */
export interface TrustFetchRow {
  readonly network: string;
  readonly source: FetchSource;
  readonly at: number;
  readonly url: string;
  readonly outcome: string;
}

/** A fork alarm: two checkpoints of one log that cannot both be true, both notes kept as evidence. */
export interface TrustAlarm {
  readonly id: number;
  readonly network: string;
  readonly code: string;
  readonly raisedAt: number;
  readonly sourceA: string;
  readonly noteA: string;
  readonly sourceB: string;
  readonly noteB: string;
  readonly clearedAt: number | null;
  readonly clearedBy: string | null;
}

interface NetworkSqlRow {
  network: string;
  size: number;
  root_hash: string;
  checkpoint: string;
  edition: number | null;
  edition_hash: string | null;
  cosigners: string;
  updated_at: number;
}

interface AlarmSqlRow {
  id: number;
  network: string;
  code: string;
  raised_at: number;
  source_a: string;
  note_a: string;
  source_b: string;
  note_b: string;
  cleared_at: number | null;
  cleared_by: string | null;
}

/**
 * The node's durable trust state (design D4): accepted publications per
 * network, the highest checkpoint and edition, the last fetch of each
 * source, and fork alarms. Callers group writes in one transaction.
 */
export class TrustTable {
  private readonly db: NodeDatabase;

  constructor(db: NodeDatabase) {
    this.db = db;
  }

  insertPublication(p: StoredPublication): void {
    this.db.sql
      .prepare(
        'INSERT INTO trust_publications (network, size, root_hash, edition, publication, stored_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(p.network, p.size, p.rootHash, p.edition, JSON.stringify(p.publication), p.storedAt);
  }

  /** Every stored publication of `network`, in chain order. */
  publications(network: string): StoredPublication[] {
    const rows = this.db.sql
      .prepare(
        'SELECT network, size, root_hash, edition, publication, stored_at FROM trust_publications WHERE network = ? ORDER BY size',
      )
      .all(network) as {
      network: string;
      size: number;
      root_hash: string;
      edition: number | null;
      publication: string;
      stored_at: number;
    }[];
    return rows.map((r) => ({
      network: r.network,
      size: r.size,
      rootHash: r.root_hash,
      edition: r.edition,
      publication: JSON.parse(r.publication) as unknown,
      storedAt: r.stored_at,
    }));
  }

  setNetwork(row: TrustNetworkRow): void {
    this.db.sql
      .prepare(
        `INSERT INTO trust_networks (network, size, root_hash, checkpoint, edition, edition_hash, cosigners, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(network) DO UPDATE SET size = excluded.size, root_hash = excluded.root_hash,
           checkpoint = excluded.checkpoint, edition = excluded.edition, edition_hash = excluded.edition_hash,
           cosigners = excluded.cosigners, updated_at = excluded.updated_at`,
      )
      .run(
        row.network,
        row.size,
        row.rootHash,
        row.checkpoint,
        row.edition,
        row.editionHash,
        JSON.stringify(row.cosigners),
        row.updatedAt,
      );
  }

  network(network: string): TrustNetworkRow | undefined {
    const row = this.db.sql
      .prepare('SELECT * FROM trust_networks WHERE network = ?')
      .get(network) as NetworkSqlRow | undefined;
    return row === undefined ? undefined : networkRow(row);
  }

  networks(): TrustNetworkRow[] {
    return (
      this.db.sql.prepare('SELECT * FROM trust_networks ORDER BY network').all() as NetworkSqlRow[]
    ).map(networkRow);
  }

  setFetch(row: TrustFetchRow): void {
    this.db.sql
      .prepare(
        `INSERT INTO trust_fetches (network, source, at, url, outcome) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(network, source) DO UPDATE SET at = excluded.at, url = excluded.url, outcome = excluded.outcome`,
      )
      .run(row.network, row.source, row.at, row.url, row.outcome);
  }

  fetches(network: string): TrustFetchRow[] {
    return this.db.sql
      .prepare(
        'SELECT network, source, at, url, outcome FROM trust_fetches WHERE network = ? ORDER BY source',
      )
      .all(network) as TrustFetchRow[];
  }

  raiseAlarm(alarm: Omit<TrustAlarm, 'id' | 'clearedAt' | 'clearedBy'>): number {
    const info = this.db.sql
      .prepare(
        'INSERT INTO trust_alarms (network, code, raised_at, source_a, note_a, source_b, note_b) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        alarm.network,
        alarm.code,
        alarm.raisedAt,
        alarm.sourceA,
        alarm.noteA,
        alarm.sourceB,
        alarm.noteB,
      );
    return Number(info.lastInsertRowid);
  }

  /** Alarms not cleared (of `network` when given), oldest first. */
  openAlarms(network?: string): TrustAlarm[] {
    const rows = (
      network === undefined
        ? this.db.sql
            .prepare('SELECT * FROM trust_alarms WHERE cleared_at IS NULL ORDER BY id')
            .all()
        : this.db.sql
            .prepare(
              'SELECT * FROM trust_alarms WHERE cleared_at IS NULL AND network = ? ORDER BY id',
            )
            .all(network)
    ) as AlarmSqlRow[];
    return rows.map(alarmRow);
  }

  /** Every alarm ever raised: the metric `rogatory_node_trust_forks_total`. */
  alarmCount(): number {
    return (this.db.sql.prepare('SELECT count(*) AS n FROM trust_alarms').get() as { n: number }).n;
  }

  /** Clear the open alarms of `network`; returns how many. */
  clearAlarms(network: string, at: number, by: string): number {
    return this.db.sql
      .prepare(
        'UPDATE trust_alarms SET cleared_at = ?, cleared_by = ? WHERE network = ? AND cleared_at IS NULL',
      )
      .run(at, by, network).changes;
  }
}

function networkRow(r: NetworkSqlRow): TrustNetworkRow {
  return {
    network: r.network,
    size: r.size,
    rootHash: r.root_hash,
    checkpoint: r.checkpoint,
    edition: r.edition,
    editionHash: r.edition_hash,
    cosigners: JSON.parse(r.cosigners) as string[],
    updatedAt: r.updated_at,
  };
}

function alarmRow(r: AlarmSqlRow): TrustAlarm {
  return {
    id: r.id,
    network: r.network,
    code: r.code,
    raisedAt: r.raised_at,
    sourceA: r.source_a,
    noteA: r.note_a,
    sourceB: r.source_b,
    noteB: r.note_b,
    clearedAt: r.cleared_at,
    clearedBy: r.cleared_by,
  };
}
