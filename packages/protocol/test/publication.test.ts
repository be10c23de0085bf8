import { beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '../src/signed.js';
import { ready } from '../src/sodium.js';
import { signKeyRotation, signManifest, type Manifest } from '../src/statements.js';
import { generateSigningKeyPair } from '../src/keys.js';
import { buildTestWorld, testSeed, type TestWorld } from '../src/testing/index.js';
import {
  MemoryTree,
  cosign,
  encodeNote,
  logEntryFor,
  logEntryBytes,
  parseNote,
  type LogEntry,
} from '../src/transparency/index.js';
import {
  buildPublication,
  checkPublicationQuorum,
  publicationWitnesses,
  verifyPublication,
  verifyPublicationChain,
  type Publication,
} from '../src/transparency/publication.js';
import { codeOf } from './support/code-of.js';

const NOW = Date.UTC(2026, 10, 1);
let world: TestWorld;

/** A network's log in memory, with the statements it published. */
class Log {
  readonly tree = new MemoryTree();
  readonly entries: LogEntry[] = [];
  readonly statements = new Map<number, unknown>();
  constructor(readonly network: string) {}
  append(kind: LogEntry['kind'], statement: unknown): void {
    const entry = logEntryFor(this.network, kind, statement);
    this.statements.set(this.entries.length, statement);
    this.entries.push(entry);
    this.tree.appendData(logEntryBytes(entry));
  }
  source() {
    return {
      root: (size: number) => this.tree.root(size),
      entry: (i: number) => this.entries[i]!,
      inclusionProof: (i: number, size: number) => this.tree.inclusionProof(i, size),
      consistencyProof: (a: number, b: number) => this.tree.consistencyProof(a, b),
    };
  }
}

function nextEdition(prev: Manifest, issuedAt: number): Manifest {
  const { type: _t, version: _v, previous: _p, ...rest } = prev.body;
  return signManifest({ ...rest, issuedAt }, world.networks[prev.body.network]!.root, prev);
}

function publish(log: Log, from: number): Publication {
  return buildPublication({
    network: log.network,
    log: log.source(),
    from,
    size: log.entries.length,
    statementOf: (i) => log.statements.get(i),
    root: world.networks[log.network]!.root,
  });
}

function cosignBy(pub: Publication, network: string): Publication {
  const note = parseNote(pub.checkpoint);
  const relay = world.networks[network]!.relay;
  const line = cosign(note.text, { name: relay.id, key: relay.key }, Math.floor(NOW / 1000));
  return { ...pub, checkpoint: encodeNote({ ...note, signatures: [...note.signatures, line] }) };
}

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: NOW });
});

describe('publications (§18.10)', () => {
  const root = () => world.networks['wacap']!.rootRef;

  it('a chain of publications verifies step by step, statements and an introduction by hash', () => {
    const log = new Log('wacap');
    const v1 = world.networks['wacap']!.manifest;
    log.append('manifest', v1);
    const first = publish(log, 0);
    const authority = Object.values(world.networks['wacap']!.authorities)[0]!;
    const rotation = signKeyRotation({
      subject: authority.address,
      oldKey: authority.identity,
      newKey: generateSigningKeyPair(testSeed('publication/new-identity')),
      effectiveAt: NOW,
      notAfter: NOW + 1e10,
    });
    log.append('rotation', rotation);
    log.append('introduction', { body: { type: 'introduction', stand: 'in' }, signature: 'x' });
    const v2 = nextEdition(v1, NOW + 1000);
    log.append('manifest', v2);
    const second = publish(log, 1);
    expect(second.entries.map((e) => e.statement === undefined)).toEqual([false, true, false]);

    const [a, b] = verifyPublicationChain({
      publications: [first, second],
      root: root(),
      held: null,
    });
    expect(a!.size).toBe(1);
    expect(b!.size).toBe(4);
    expect(b!.statements.map((s) => s.kind)).toEqual(['rotation', 'introduction', 'manifest']);
    expect(hashOf(b!.statements[2]!.statement)).toBe(hashOf(v2));

    // Offered again once held: an older checkpoint is a rollback; a later one without its predecessor is out of order.
    const held = { size: b!.size, rootHash: b!.rootHash };
    expect(codeOf(() => verifyPublication({ publication: first, root: root(), held }))).toBe(
      'CHECKPOINT_ROLLBACK',
    );
    expect(codeOf(() => verifyPublication({ publication: second, root: root(), held: null }))).toBe(
      'PUBLICATION_OUT_OF_ORDER',
    );
  });

  it('refuses tampering, forks and publications of another log', () => {
    const log = new Log('wacap');
    log.append('manifest', world.networks['wacap']!.manifest);
    const first = publish(log, 0);
    log.append('manifest', nextEdition(world.networks['wacap']!.manifest, NOW + 5));
    const second = publish(log, 1);
    const held = verifyPublication({ publication: first, root: root(), held: null });
    const state = { size: held.size, rootHash: held.rootHash };

    // A statement that is not the entry's.
    const swapped = structuredClone(second);
    swapped.entries[0]!.statement = world.networks['wacap']!.manifest;
    expect(
      codeOf(() => verifyPublication({ publication: swapped, root: root(), held: state })),
    ).toBe('SCHEMA_INVALID');
    // A wrong inclusion proof.
    const badProof = structuredClone(second);
    badProof.entries[0]!.proof = [first.consistency[0] ?? 'A'.repeat(43) + '='];
    expect(
      codeOf(() => verifyPublication({ publication: badProof, root: root(), held: state })),
    ).toBe('PROOF_INVALID');
    // A manifest published without its statement.
    const bare = structuredClone(second);
    delete bare.entries[0]!.statement;
    expect(codeOf(() => verifyPublication({ publication: bare, root: root(), held: state }))).toBe(
      'SCHEMA_INVALID',
    );
    // Same size as held, another root: a fork.
    const other = new Log('wacap');
    other.append('manifest', nextEdition(world.networks['wacap']!.manifest, NOW + 99));
    const forked = publish(other, 0);
    expect(
      codeOf(() => verifyPublication({ publication: forked, root: root(), held: state })),
    ).toBe('LOG_FORK_DETECTED');
    // Signed by another network's root.
    expect(
      codeOf(() =>
        verifyPublication({
          publication: first,
          root: world.networks['casc']!.rootRef,
          held: null,
        }),
      ),
    ).toBe('SIGNATURE_INVALID');
    // A relay cannot append an entry without breaking the checkpoint.
    const extra = structuredClone(second);
    extra.entries.push({ ...extra.entries[0]!, index: 2 });
    expect(codeOf(() => verifyPublication({ publication: extra, root: root(), held: state }))).toBe(
      'SCHEMA_INVALID',
    );
  });

  it('quorum: witnesses are the other networks’ relays; fewer cosignatures than q are refused', () => {
    const trust = world.trustFor('wacap');
    const witnesses = publicationWitnesses(trust, 'wacap');
    expect(witnesses.map((w) => w.name).sort()).toEqual(['relay@casc', 'relay@global']);
    const log = new Log('wacap');
    log.append('manifest', world.networks['wacap']!.manifest);
    const pub = cosignBy(cosignBy(publish(log, 0), 'casc'), 'global');
    const ok = checkPublicationQuorum({
      note: pub.checkpoint,
      network: 'wacap',
      root: root(),
      witnesses,
      quorum: 2,
    });
    expect(ok.cosigners.map((c) => c.name).sort()).toEqual(['relay@casc', 'relay@global']);
    const one = cosignBy(publish(log, 0), 'casc');
    expect(
      codeOf(() =>
        checkPublicationQuorum({
          note: one.checkpoint,
          network: 'wacap',
          root: root(),
          witnesses,
          quorum: 2,
        }),
      ),
    ).toBe('QUORUM_NOT_MET');
    // The log's own relay is not a witness of its log.
    const self = cosignBy(publish(log, 0), 'wacap');
    expect(
      codeOf(() =>
        checkPublicationQuorum({
          note: self.checkpoint,
          network: 'wacap',
          root: root(),
          witnesses,
          quorum: 1,
        }),
      ),
    ).toBe('QUORUM_NOT_MET');
  });
});
