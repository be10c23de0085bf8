/**
 * Key-transparency vectors (docs/protocol.md §18.9): inclusion under a
 * cosigned checkpoint, consistency proofs, the witness's add-checkpoint
 * rules and fork detection, each with its refusals. Registered in
 * generate-vectors.ts; it draws no randomness (Ed25519 is deterministic and
 * every key comes from a fixed seed).
 */
import {
  MemoryTree,
  buildPublication,
  signManifest,
  checkpointText,
  cosign,
  encodeAddCheckpointRequest,
  logEntryFor,
  logEntryLeafHash,
  logOrigin,
  ready,
  sha256,
  signCheckpoint,
  signatureLine,
  toBase64,
  toBase64url,
  toHex,
  utf8,
  witnessAddCheckpoint,
  type ErrorCode,
  type LogEntry,
  type NoteSigner,
  type SigningKeyPair,
} from '../src/index.js';
import { buildTestWorld } from '../src/testing/index.js';
import { VECTOR_NOW, vector, type Vector } from './vectors-common.js';

const b64 = (hashes: readonly Uint8Array[]) => hashes.map((h) => toBase64(h));
const verifierOf = (name: string, key: SigningKeyPair) => ({
  name,
  publicKey: toBase64url(key.publicKey),
});
const seedOf = (key: SigningKeyPair) => toBase64url(key.secretKey.subarray(0, 32));

/** Synthetic entries after the first: statements stood in for by labels. */
function entryAt(network: string, i: number): LogEntry {
  const kinds = ['rotation', 'revocation', 'introduction', 'manifest'] as const;
  return {
    type: 'log-entry',
    network,
    kind: kinds[i % 4]!,
    hash: toHex(sha256(utf8(`transparency-vector/${network}/${i}`))),
  };
}

export async function transparencyVectors(): Promise<Vector[]> {
  await ready();
  const world = buildTestWorld({ now: VECTOR_NOW });
  const wacap = world.networks['wacap']!;
  const origin = logOrigin('wacap');
  const rootKey = wacap.root;
  const log = verifierOf(origin, rootKey);
  const witnesses: NoteSigner[] = ['casc', 'global'].map((n) => ({
    name: world.networks[n]!.relay.id,
    key: world.networks[n]!.relay.key,
  }));
  const witnessKeys = witnesses.map((w) => verifierOf(w.name, w.key));
  const time = Math.floor(VECTOR_NOW / 1000);

  // The log: the current wacap manifest, then 20 more entries. A fork shares the first 6.
  const first = logEntryFor('wacap', 'manifest', wacap.manifest);
  const entries = [first, ...Array.from({ length: 20 }, (_, i) => entryAt('wacap', i + 1))];
  const tree = new MemoryTree();
  for (const e of entries) tree.appendLeafHash(logEntryLeafHash(e));
  const fork = new MemoryTree();
  entries.slice(0, 6).forEach((e) => fork.appendLeafHash(logEntryLeafHash(e)));
  for (let i = 6; i < 21; i++) fork.appendLeafHash(logEntryLeafHash(entryAt('wacap', 100 + i)));

  const cp = (t: MemoryTree, size: number) => ({ origin, size, rootHash: t.root(size) });
  const signed = (t: MemoryTree, size: number) => signCheckpoint(cp(t, size), rootKey);
  const cosigned = (t: MemoryTree, size: number, by: readonly NoteSigner[]) =>
    signed(t, size) +
    by.map((w) => signatureLine(cosign(checkpointText(cp(t, size)), w, time))).join('');

  const out: Vector[] = [];
  const add = (
    name: string,
    description: string,
    code: ErrorCode | null,
    input: Record<string, unknown>,
    result: Record<string, unknown> | null,
  ) => out.push(vector({ name, kind: 'transparency', description, code, input, result }));

  // ------------------------------------------------------------ inclusion under a cosigned checkpoint
  const inclusion = (overrides: Record<string, unknown>) => ({
    check: 'inclusion',
    log,
    witnesses: witnessKeys,
    quorum: 2,
    checkpoint: cosigned(tree, 21, witnesses),
    entry: first,
    index: 0,
    proof: b64(tree.inclusionProof(0, 21)),
    ...overrides,
  });
  add(
    'transparency-inclusion-valid',
    'The wacap manifest is entry 0 of a 21-entry log; the checkpoint is signed by the wacap root and cosigned by the casc and global relays (quorum 2).',
    null,
    inclusion({}),
    {
      origin,
      size: 21,
      rootHash: toBase64(tree.root()),
      leafHash: toBase64(logEntryLeafHash(first)),
      cosigners: witnesses.map((w) => ({ name: w.name, time })),
    },
  );
  add(
    'transparency-inclusion-wrong-entry',
    'The proof of entry 0 presented for another statement: the leaf does not lead to the root.',
    'PROOF_INVALID',
    inclusion({ entry: entries[1] }),
    null,
  );
  add(
    'transparency-inclusion-wrong-index',
    'The proof of entry 0 presented as entry 1.',
    'PROOF_INVALID',
    inclusion({ index: 1 }),
    null,
  );
  add(
    'transparency-inclusion-quorum-not-met',
    'Only the casc relay cosigned; the verifier requires 2 of its 2 witnesses.',
    'QUORUM_NOT_MET',
    inclusion({ checkpoint: cosigned(tree, 21, witnesses.slice(0, 1)) }),
    null,
  );
  add(
    'transparency-inclusion-unknown-witness',
    'Two cosignatures, one by a relay the verifier does not trust (ignored): 1 of 2.',
    'QUORUM_NOT_MET',
    inclusion({
      checkpoint: cosigned(tree, 21, [
        witnesses[0]!,
        { name: 'relay@evil', key: world.networks['wacap']!.poc.key },
      ]),
    }),
    null,
  );
  {
    const note = cosigned(tree, 21, witnesses);
    const lines = note.split('\n');
    // Change the time of the last cosignature (bytes 4–11 of its value) without re-signing.
    const last = lines[lines.length - 2]!;
    const [dash, name, value] = last.split(' ') as [string, string, string];
    const bytes = Uint8Array.from(Buffer.from(value, 'base64'));
    bytes[11]! ^= 1;
    lines[lines.length - 2] = `${dash} ${name} ${toBase64(bytes)}`;
    add(
      'transparency-inclusion-bad-cosignature',
      'The global cosignature’s time was changed after signing: a trusted witness’s line that fails rejects the note.',
      'SIGNATURE_INVALID',
      inclusion({ checkpoint: lines.join('\n') }),
      null,
    );
  }
  add(
    'transparency-checkpoint-bad-log-signature',
    'A checkpoint signed by the casc root instead of the wacap root, cosigned by both witnesses.',
    'SIGNATURE_INVALID',
    inclusion({
      checkpoint:
        signCheckpoint(cp(tree, 21), world.networks['casc']!.root) +
        witnesses.map((w) => signatureLine(cosign(checkpointText(cp(tree, 21)), w, time))).join(''),
    }),
    null,
  );
  add(
    'transparency-checkpoint-other-log',
    'The checkpoint of the casc log presented as the wacap log’s.',
    'KEY_UNKNOWN',
    inclusion({
      checkpoint: signCheckpoint(
        { origin: logOrigin('casc'), size: 21, rootHash: tree.root() },
        rootKey,
      ),
    }),
    null,
  );
  {
    const text = `${checkpointText(cp(tree, 21))}extension\n`;
    const signature = signCheckpoint(cp(tree, 21), rootKey).split('\n\n')[1]!;
    add(
      'transparency-checkpoint-extension-line',
      'A checkpoint with an extension line: Rogatory checkpoints have exactly three lines.',
      'CHECKPOINT_INVALID',
      inclusion({ checkpoint: `${text}\n${signature}` }),
      null,
    );
  }
  add(
    'transparency-checkpoint-size-leading-zero',
    'A tree size line with a leading zero is not canonical.',
    'CHECKPOINT_INVALID',
    inclusion({ checkpoint: cosigned(tree, 21, witnesses).replace('\n21\n', '\n021\n') }),
    null,
  );

  // ------------------------------------------------------------ consistency
  const consistency = (size1: number, size2: number, proof: Uint8Array[]) => ({
    check: 'consistency',
    size1,
    size2,
    root1: toBase64(tree.root(size1)),
    root2: toBase64(tree.root(size2)),
    proof: b64(proof),
  });
  add(
    'transparency-consistency-valid',
    'Consistency proof from size 6 to size 21.',
    null,
    consistency(6, 21, tree.consistencyProof(6, 21)),
    { consistent: true },
  );
  add(
    'transparency-consistency-power-of-two',
    'Consistency proof from size 8 (a power of two: the first root is not in the proof) to 21.',
    null,
    consistency(8, 21, tree.consistencyProof(8, 21)),
    { consistent: true },
  );
  {
    const proof = tree.consistencyProof(6, 21);
    proof[1] = sha256(proof[1]!);
    add(
      'transparency-consistency-tampered',
      'One hash of the 6 → 21 proof replaced.',
      'PROOF_INVALID',
      consistency(6, 21, proof),
      null,
    );
  }
  add(
    'transparency-consistency-truncated',
    'The 6 → 21 proof without its last hash.',
    'PROOF_INVALID',
    consistency(6, 21, tree.consistencyProof(6, 21).slice(0, -1)),
    null,
  );

  // ------------------------------------------------------------ witness add-checkpoint
  const witness = witnesses[0]!;
  const witnessInput = (
    state: { size: number; t: MemoryTree } | null,
    oldSize: number,
    note: string,
    proof: Uint8Array[],
  ) => ({
    check: 'witness',
    logs: [log],
    witness: { name: witness.name, seed: seedOf(witness.key) },
    state:
      state === null
        ? []
        : [{ origin, size: state.size, rootHash: toBase64(state.t.root(state.size)) }],
    request: encodeAddCheckpointRequest({ oldSize, proof, checkpoint: note }),
  });
  const witnessResult = (input: ReturnType<typeof witnessInput>) => {
    const r = witnessAddCheckpoint({
      request: input.request,
      logs: [{ name: origin, publicKey: rootKey.publicKey }],
      state: new Map(
        input.state.map((s) => [
          s.origin,
          { size: s.size, rootHash: Uint8Array.from(Buffer.from(s.rootHash, 'base64')) },
        ]),
      ),
      witness,
      now: VECTOR_NOW,
    });
    if (!r.ok) throw new Error(`generator: witness refused ${r.code}`);
    return {
      origin: r.origin,
      size: r.state.size,
      rootHash: toBase64(r.state.rootHash),
      cosignature: r.cosignature,
    };
  };
  {
    const input = witnessInput(null, 0, signed(tree, 6), []);
    add(
      'transparency-witness-first',
      'A witness with no state for the log cosigns its first checkpoint (old size 0, no proof).',
      null,
      input,
      witnessResult(input),
    );
  }
  {
    const input = witnessInput(
      { size: 6, t: tree },
      6,
      signed(tree, 21),
      tree.consistencyProof(6, 21),
    );
    add(
      'transparency-witness-extend',
      'The witness last cosigned size 6; the log asks for size 21 with a consistency proof.',
      null,
      input,
      witnessResult(input),
    );
  }
  add(
    'transparency-witness-conflict',
    'The witness last cosigned size 6; the request claims old size 4 (the refusal carries the stored size, 6).',
    'WITNESS_CONFLICT',
    witnessInput({ size: 6, t: tree }, 4, signed(tree, 21), tree.consistencyProof(4, 21)),
    null,
  );
  add(
    'transparency-witness-smaller-tree',
    'The witness last cosigned size 21; it is asked to cosign size 6 of the same log.',
    'CHECKPOINT_ROLLBACK',
    witnessInput({ size: 21, t: tree }, 21, signed(tree, 6), []),
    null,
  );
  add(
    'transparency-witness-fork-same-size',
    'The witness last cosigned size 21; a checkpoint of size 21 with another root (a fork after entry 6).',
    'LOG_FORK_DETECTED',
    witnessInput({ size: 21, t: tree }, 21, signed(fork, 21), []),
    null,
  );
  add(
    'transparency-witness-forked-extension',
    'The witness last cosigned size 10; the forked log asks for size 21 with its own proof from 10: it does not extend what the witness holds.',
    'PROOF_INVALID',
    witnessInput({ size: 10, t: tree }, 10, signed(fork, 21), fork.consistencyProof(10, 21)),
    null,
  );
  add(
    'transparency-witness-bad-log-signature',
    'A checkpoint of the wacap log signed by another key.',
    'SIGNATURE_INVALID',
    witnessInput(
      { size: 6, t: tree },
      6,
      signCheckpoint(cp(tree, 21), world.networks['casc']!.root),
      tree.consistencyProof(6, 21),
    ),
    null,
  );
  add(
    'transparency-witness-unknown-log',
    'A checkpoint of the casc log, which this witness does not serve.',
    'KEY_UNKNOWN',
    witnessInput(
      null,
      0,
      signCheckpoint({ origin: logOrigin('casc'), size: 6, rootHash: tree.root(6) }, rootKey),
      [],
    ),
    null,
  );

  // ------------------------------------------------------------ comparing checkpoints
  const pair = (a: string, b: string, proof: Uint8Array[]) => ({
    check: 'checkpoints',
    log,
    checkpoints: [a, b],
    proof: b64(proof),
  });
  add(
    'transparency-checkpoints-consistent',
    'Checkpoints of size 10 and 21 seen through two relays, with the log’s consistency proof.',
    null,
    pair(signed(tree, 10), signed(tree, 21), tree.consistencyProof(10, 21)),
    { consistent: true },
  );
  add(
    'transparency-checkpoints-fork-same-size',
    'Two validly signed checkpoints of size 21 with different roots.',
    'LOG_FORK_DETECTED',
    pair(signed(tree, 21), signed(fork, 21), []),
    null,
  );
  add(
    'transparency-checkpoints-fork-no-proof',
    'Checkpoints of size 10 (main) and 21 (fork): the proof the log serves does not connect them.',
    'LOG_FORK_DETECTED',
    pair(signed(tree, 10), signed(fork, 21), fork.consistencyProof(10, 21)),
    null,
  );

  // ------------------------------------------------------------ publications (§18.10)
  const { type: _t, version: _v, previous: _p, ...body } = wacap.manifest.body;
  const v2 = signManifest({ ...body, issuedAt: VECTOR_NOW + 1000 }, rootKey, wacap.manifest);
  const plog = new MemoryTree();
  const pEntries: LogEntry[] = [];
  const statements = new Map<number, unknown>();
  const appendStatement = (kind: LogEntry['kind'], statement: unknown, entry?: LogEntry) => {
    const e = entry ?? logEntryFor('wacap', kind, statement);
    if (statement !== undefined) statements.set(pEntries.length, statement);
    pEntries.push(e);
    plog.appendLeafHash(logEntryLeafHash(e));
  };
  appendStatement('manifest', wacap.manifest);
  appendStatement('introduction', undefined, entryAt('wacap', 2));
  appendStatement('manifest', v2);
  const source = {
    root: (size: number) => plog.root(size),
    entry: (i: number) => pEntries[i]!,
    inclusionProof: (i: number, size: number) => plog.inclusionProof(i, size),
    consistencyProof: (a: number, b: number) => plog.consistencyProof(a, b),
  };
  const publicationOf = (from: number, size: number) =>
    buildPublication({
      network: 'wacap',
      log: source,
      from,
      size,
      statementOf: (i) => statements.get(i),
      root: rootKey,
    });
  const pub1 = publicationOf(0, 1);
  const pub2 = publicationOf(1, 3);
  const heldAfter1 = { size: 1, rootHash: toBase64(plog.root(1)) };
  const publication = (held: unknown, pub: unknown) => ({
    check: 'publication',
    root: wacap.rootRef,
    held,
    publication: pub,
  });
  const summary = (p: typeof pub1, size: number) => ({
    network: 'wacap',
    size,
    rootHash: toBase64(plog.root(size)),
    statements: p.entries.map((e) => ({ index: e.index, kind: (e.entry as LogEntry).kind })),
  });
  add(
    'transparency-publication-first',
    'The first publication of the wacap log: edition 1 of its manifest, to a verifier holding nothing.',
    null,
    publication(null, pub1),
    summary(pub1, 1),
  );
  add(
    'transparency-publication-next',
    'The second publication: an introduction published by hash only, then edition 2, to a verifier holding size 1.',
    null,
    publication(heldAfter1, pub2),
    summary(pub2, 3),
  );
  add(
    'transparency-publication-out-of-order',
    'The second publication offered to a verifier holding nothing: the first is missing.',
    'PUBLICATION_OUT_OF_ORDER',
    publication(null, pub2),
    null,
  );
  add(
    'transparency-publication-rollback',
    'The first publication offered to a verifier holding size 3.',
    'CHECKPOINT_ROLLBACK',
    publication({ size: 3, rootHash: toBase64(plog.root(3)) }, pub1),
    null,
  );
  const forkLog = new MemoryTree();
  forkLog.appendLeafHash(logEntryLeafHash(logEntryFor('wacap', 'manifest', v2)));
  add(
    'transparency-publication-fork',
    'A validly signed publication of size 1 whose root differs from the size-1 root the verifier holds.',
    'LOG_FORK_DETECTED',
    publication(heldAfter1, {
      ...pub1,
      entries: [
        { index: 0, entry: logEntryFor('wacap', 'manifest', v2), statement: v2, proof: [] },
      ],
      checkpoint: signCheckpoint({ origin, size: 1, rootHash: forkLog.root(1) }, rootKey),
    }),
    null,
  );
  add(
    'transparency-publication-statement-mismatch',
    'Entry 2 carries edition 1 instead of the edition its hash names.',
    'SCHEMA_INVALID',
    publication(heldAfter1, {
      ...pub2,
      entries: [pub2.entries[0], { ...pub2.entries[1]!, statement: wacap.manifest }],
    }),
    null,
  );
  add(
    'transparency-publication-manifest-without-statement',
    'Entry 2 (a manifest) is published by hash only.',
    'SCHEMA_INVALID',
    publication(heldAfter1, {
      ...pub2,
      entries: [pub2.entries[0], { ...pub2.entries[1]!, statement: undefined }].map((e) =>
        Object.fromEntries(Object.entries(e!).filter(([, v]) => v !== undefined)),
      ),
    }),
    null,
  );
  add(
    'transparency-publication-introduction-with-statement',
    'The introduction entry carries a statement: introductions are published by hash only.',
    'SCHEMA_INVALID',
    publication(heldAfter1, {
      ...pub2,
      entries: [{ ...pub2.entries[0]!, statement: wacap.manifest }, pub2.entries[1]],
    }),
    null,
  );
  add(
    'transparency-publication-bad-inclusion',
    'The inclusion proof of entry 2 is the proof of entry 1.',
    'PROOF_INVALID',
    publication(heldAfter1, {
      ...pub2,
      entries: [pub2.entries[0], { ...pub2.entries[1]!, proof: pub2.entries[0]!.proof }],
    }),
    null,
  );
  add(
    'transparency-publication-other-root',
    'The first publication verified under the casc root.',
    'SIGNATURE_INVALID',
    { ...publication(null, pub1), root: world.networks['casc']!.rootRef },
    null,
  );
  return out;
}
