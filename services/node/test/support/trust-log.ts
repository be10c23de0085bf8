import Fastify, { type FastifyInstance } from 'fastify';
import {
  MemoryTree,
  buildPublication,
  cosign,
  encodeNote,
  logEntryBytes,
  logEntryFor,
  parseNote,
  type LogEntry,
  type LogEntryKind,
  type Publication,
  type SigningKeyPair,
} from '@rogatory/protocol';

/** A network's log kept in memory by a test secretariat: append statements, publish them. */
export class TestLog {
  readonly network: string;
  private readonly root: SigningKeyPair;
  private readonly tree = new MemoryTree();
  private readonly entries: LogEntry[] = [];
  private readonly statements: unknown[] = [];
  private published = 0;

  constructor(network: string, root: SigningKeyPair) {
    this.network = network;
    this.root = root;
  }

  append(kind: LogEntryKind, statement: unknown): void {
    const entry = logEntryFor(this.network, kind, statement);
    this.tree.appendData(logEntryBytes(entry));
    this.entries.push(entry);
    this.statements.push(statement);
  }

  /** Publish what was appended since the last publication, cosigned by `witnesses`. */
  publish(witnesses: readonly { name: string; key: SigningKeyPair }[]): Publication {
    const tree = this.tree;
    const entries = this.entries;
    const pub = buildPublication({
      network: this.network,
      log: {
        root: (size) => tree.root(size),
        entry: (i) => entries[i]!,
        inclusionProof: (i, size) => tree.inclusionProof(i, size),
        consistencyProof: (a, b) => tree.consistencyProof(a, b),
      },
      from: this.published,
      size: tree.size,
      statementOf: (i) => this.statements[i],
      root: this.root,
    });
    this.published = tree.size;
    const note = parseNote(pub.checkpoint);
    return {
      ...pub,
      checkpoint: encodeNote({
        text: note.text,
        signatures: [
          ...note.signatures,
          ...witnesses.map((w) => cosign(note.text, w, Math.floor(Date.now() / 1000))),
        ],
      }),
    };
  }
}

/** A relay serving publication chains (GET /v1/trust/publications/:network?after=). */
export interface FakeTrustRelay {
  readonly url: string;
  readonly chains: Map<string, unknown[]>;
  close(): Promise<void>;
}

export async function startFakeTrustRelay(): Promise<FakeTrustRelay> {
  const chains = new Map<string, unknown[]>();
  const app: FastifyInstance = Fastify();
  app.get<{ Params: { network: string }; Querystring: { after?: string } }>(
    '/v1/trust/publications/:network',
    async (request, reply) => {
      const chain = chains.get(request.params.network);
      if (!chain)
        return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no such network' } });
      const after = Number(request.query.after ?? 0);
      const size = (p: unknown): number =>
        Number(parseNote((p as { checkpoint: string }).checkpoint).text.split('\n')[1]);
      return { publications: chain.filter((p) => size(p) > after).slice(0, 100) };
    },
  );
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, chains, close: () => app.close() };
}
