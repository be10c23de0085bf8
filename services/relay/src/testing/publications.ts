import {
  MemoryTree,
  logEntryFor,
  logEntryLeafHash,
  logOrigin,
  signCheckpoint,
  toBase64,
  type LogEntryKind,
  type SigningKeyPair,
} from '@rogatory/protocol';
import type { Publication } from '../trust/publication.js';

/**
 * A network's key transparency log in memory, for tests: append statements,
 * then `publish()` the entries since the last publication as a Publication
 * (design D1) signed by the network root.
 */
export class TestLog {
  readonly tree = new MemoryTree();
  private readonly entries: { kind: LogEntryKind; statement: unknown }[] = [];
  private published = 0;

  constructor(
    readonly network: string,
    private readonly root: SigningKeyPair,
  ) {}

  /** Another log with the same entries so far (to build forks and refused variants). */
  clone(): TestLog {
    const copy = new TestLog(this.network, this.root);
    for (const e of this.entries) copy.append(e.kind, e.statement);
    copy.published = this.published;
    return copy;
  }

  append(kind: LogEntryKind, statement: unknown): this {
    const entry = logEntryFor(this.network, kind, statement);
    this.tree.appendLeafHash(logEntryLeafHash(entry));
    this.entries.push({ kind, statement });
    return this;
  }

  /** The publication of the entries appended since the last one (or from `from`, to rebuild an old one). */
  publish(options: { from?: number; to?: number } = {}): Publication {
    const from = options.from ?? this.published;
    const size = options.to ?? this.tree.size;
    if (options.from === undefined) this.published = size;
    const origin = logOrigin(this.network);
    return {
      type: 'publication',
      network: this.network,
      previous: from === 0 ? null : { size: from, rootHash: toBase64(this.tree.root(from)) },
      consistency: from === 0 ? [] : this.tree.consistencyProof(from, size).map(toBase64),
      checkpoint: signCheckpoint({ origin, size, rootHash: this.tree.root(size) }, this.root),
      entries: this.entries.slice(from, size).map((e, i) => {
        const entry = logEntryFor(this.network, e.kind, e.statement);
        return {
          index: from + i,
          entry,
          ...(e.kind === 'introduction' ? {} : { statement: e.statement }),
          proof: this.tree.inclusionProof(from + i, size).map(toBase64),
        };
      }),
    };
  }
}
