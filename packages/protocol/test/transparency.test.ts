import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../src/bytes.js';
import { generateSigningKeyPair } from '../src/keys.js';
import { primitives } from '../src/primitives.js';
import { ready } from '../src/sodium.js';
import { testSeed } from '../src/testing/index.js';
import {
  MemoryTree,
  checkCheckpointsConsistent,
  checkpointText,
  cosign,
  emptyRoot,
  encodeAddCheckpointRequest,
  encodeNote,
  fromBase64,
  leafHash,
  logEntryFor,
  logEntryLeafHash,
  logOrigin,
  nodeHash,
  noteKeyId,
  parseAddCheckpointRequest,
  parseCheckpointText,
  parseNote,
  rootFromLeafHashes,
  signCheckpoint,
  signatureLine,
  toBase64,
  verifyCheckpoint,
  verifyConsistency,
  verifyCosignedCheckpoint,
  verifyInclusion,
  witnessAddCheckpoint,
  type NoteSigner,
  type WitnessLogState,
} from '../src/transparency/index.js';
import { codeOf } from './support/code-of.js';

// RFC 6962 leaves and roots of transparency-dev/merkle testonly/constants.go.
const LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
];
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

interface Probe {
  file: string;
  wantErr: boolean;
  proof: string[] | null;
}
const probes = JSON.parse(
  readFileSync(join(import.meta.dirname, 'fixtures', 'transparency-dev-probes.json'), 'utf8'),
) as {
  inclusion: (Probe & {
    leafIdx: number;
    treeSize: number;
    root: string | null;
    leafHash: string | null;
  })[];
  consistency: (Probe & {
    size1: number;
    size2: number;
    root1: string | null;
    root2: string | null;
  })[];
};
const b64 = (s: string | null) => (s === null ? new Uint8Array(0) : Buffer.from(s, 'base64'));

const ORIGIN = logOrigin('wacap');
let logKey: ReturnType<typeof generateSigningKeyPair>;
let witnessA: NoteSigner;
let witnessB: NoteSigner;
const NOW = Date.UTC(2026, 11, 1);

beforeAll(async () => {
  await ready();
  logKey = generateSigningKeyPair(testSeed('tlog/root'));
  witnessA = { name: 'relay@casc', key: generateSigningKeyPair(testSeed('tlog/witness-a')) };
  witnessB = { name: 'relay@hub', key: generateSigningKeyPair(testSeed('tlog/witness-b')) };
});

function treeOf(n: number, label = 'leaf'): MemoryTree {
  const tree = new MemoryTree();
  for (let i = 0; i < n; i++) tree.appendData(utf8(`${label}-${i}`));
  return tree;
}

const flip = (h: Uint8Array, bit = 0) => {
  const c = h.slice();
  c[bit >> 3]! ^= 1 << (bit & 7);
  return c;
};

describe('Merkle hashing (RFC 9162 §2.1.1)', () => {
  it('gives the RFC 6962 roots of transparency-dev for sizes 0 to 8', () => {
    const leaves = LEAVES.map((l) => leafHash(fromHex(l)));
    ROOTS.forEach((root, n) => {
      expect(toHex(rootFromLeafHashes(leaves.slice(0, n))), `size ${n}`).toBe(root);
      const tree = new MemoryTree();
      leaves.slice(0, n).forEach((h) => tree.appendLeafHash(h));
      expect(toHex(tree.root()), `memory tree size ${n}`).toBe(root);
    });
    expect(toHex(emptyRoot())).toBe(ROOTS[0]);
    expect(toHex(nodeHash(leaves[0]!, leaves[1]!))).toBe(ROOTS[2]);
  });
});

describe('proof verification agrees with transparency-dev on its probes', () => {
  it('inclusion', () => {
    const wrong = probes.inclusion.filter((p) => {
      const code = codeOf(() =>
        verifyInclusion({
          index: p.leafIdx,
          size: p.treeSize,
          leafHash: b64(p.leafHash),
          proof: (p.proof ?? []).map(b64),
          root: b64(p.root),
        }),
      );
      if (code !== undefined && code !== 'PROOF_INVALID') return true;
      return (code === 'PROOF_INVALID') !== p.wantErr;
    });
    expect(wrong.map((p) => p.file)).toEqual([]);
  });

  it('consistency (a proof from the empty tree is accepted only as an empty proof from the empty root)', () => {
    const wrong = probes.consistency.filter((p) => {
      const root1 = b64(p.root1);
      const code = codeOf(() =>
        verifyConsistency({
          size1: p.size1,
          size2: p.size2,
          root1,
          root2: b64(p.root2),
          proof: (p.proof ?? []).map(b64),
        }),
      );
      if (code !== undefined && code !== 'PROOF_INVALID') return true;
      // Two deliberate differences: roots that are not 32 bytes are always refused, and
      // transparency-dev refuses every proof from size 0 where §18.2 accepts the empty proof from the empty root.
      const root2 = b64(p.root2);
      const fromEmpty =
        p.size1 === 0 &&
        (p.proof ?? []).length === 0 &&
        toHex(root1) === ROOTS[0] &&
        (p.size2 > 0 || toHex(root2) === ROOTS[0]);
      const expected =
        root1.length !== 32 || root2.length !== 32 ? true : fromEmpty ? false : p.wantErr;
      return (code === 'PROOF_INVALID') !== expected;
    });
    expect(wrong.map((p) => p.file)).toEqual([]);
  });
});

describe('MemoryTree proofs', () => {
  it('verify for every index and pair of sizes up to 40, and any one-bit change breaks them', () => {
    const tree = treeOf(40);
    for (let size = 1; size <= 40; size++) {
      const root = tree.root(size);
      for (let index = 0; index < size; index++) {
        const proof = tree.inclusionProof(index, size);
        verifyInclusion({ index, size, leafHash: tree.leafHashAt(index), proof, root });
        expect(
          codeOf(() =>
            verifyInclusion({ index, size, leafHash: flip(tree.leafHashAt(index)), proof, root }),
          ),
        ).toBe('PROOF_INVALID');
        if (proof.length > 0) {
          const bad = proof.map((h, i) => (i === proof.length - 1 ? flip(h, 255) : h));
          expect(
            codeOf(() =>
              verifyInclusion({ index, size, leafHash: tree.leafHashAt(index), proof: bad, root }),
            ),
          ).toBe('PROOF_INVALID');
          expect(
            codeOf(() =>
              verifyInclusion({
                index,
                size,
                leafHash: tree.leafHashAt(index),
                proof: proof.slice(1),
                root,
              }),
            ),
          ).toBe('PROOF_INVALID');
        }
        if (index + 1 < size)
          expect(
            codeOf(() =>
              verifyInclusion({
                index: index + 1,
                size,
                leafHash: tree.leafHashAt(index),
                proof,
                root,
              }),
            ),
          ).toBe('PROOF_INVALID');
      }
      for (let size1 = 0; size1 <= size; size1++) {
        const proof = tree.consistencyProof(size1, size);
        const args = { size1, size2: size, root1: tree.root(size1), root2: root, proof };
        verifyConsistency(args);
        // From the empty tree any root is consistent: nothing to check against.
        if (size1 > 0)
          expect(codeOf(() => verifyConsistency({ ...args, root2: flip(root) }))).toBe(
            'PROOF_INVALID',
          );
        if (size1 > 0 && size1 < size) {
          expect(codeOf(() => verifyConsistency({ ...args, root1: flip(args.root1) }))).toBe(
            'PROOF_INVALID',
          );
          expect(codeOf(() => verifyConsistency({ ...args, proof: [...proof, proof[0]!] }))).toBe(
            'PROOF_INVALID',
          );
          expect(
            codeOf(() =>
              verifyConsistency({
                ...args,
                proof: proof.map((h, i) => (i === 0 ? flip(h, 3) : h)),
              }),
            ),
          ).toBe('PROOF_INVALID');
        }
      }
    }
  });

  it('verify across larger trees, and a flipped bit anywhere in a proof breaks them (property)', () => {
    const tree = treeOf(3000);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3000 }), fc.nat(), fc.nat(), (size, a, bit) => {
        const index = a % size;
        const size1 = a % (size + 1);
        const root = tree.root(size);
        const leaf = tree.leafHashAt(index);
        const proof = tree.inclusionProof(index, size);
        verifyInclusion({ index, size, leafHash: leaf, proof, root });
        const cons = tree.consistencyProof(size1, size);
        const root1 = tree.root(size1);
        verifyConsistency({ size1, size2: size, root1, root2: root, proof: cons });
        if (proof.length > 0) {
          const at = bit % (proof.length * 256);
          const bad = proof.map((h, i) => (i === Math.floor(at / 256) ? flip(h, at % 256) : h));
          expect(
            codeOf(() => verifyInclusion({ index, size, leafHash: leaf, proof: bad, root })),
          ).toBe('PROOF_INVALID');
        }
        if (cons.length > 0) {
          const at = bit % (cons.length * 256);
          const bad = cons.map((h, i) => (i === Math.floor(at / 256) ? flip(h, at % 256) : h));
          expect(
            codeOf(() => verifyConsistency({ size1, size2: size, root1, root2: root, proof: bad })),
          ).toBe('PROOF_INVALID');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuse sizes and indexes outside the tree with PROOF_INVALID', () => {
    const tree = treeOf(5);
    expect(codeOf(() => tree.root(6))).toBe('PROOF_INVALID');
    expect(codeOf(() => tree.inclusionProof(5, 5))).toBe('PROOF_INVALID');
    expect(codeOf(() => tree.consistencyProof(4, 3))).toBe('PROOF_INVALID');
    expect(
      codeOf(() =>
        verifyInclusion({
          index: -1,
          size: 5,
          leafHash: tree.leafHashAt(0),
          proof: [],
          root: tree.root(),
        }),
      ),
    ).toBe('PROOF_INVALID');
    expect(
      codeOf(() =>
        verifyConsistency({
          size1: 5,
          size2: 4,
          root1: tree.root(),
          root2: tree.root(4),
          proof: [],
        }),
      ),
    ).toBe('PROOF_INVALID');
  });
});

describe('log entries (§18.1)', () => {
  it('hash the canonical JSON of the entry as a leaf, and refuse unknown kinds', () => {
    const entry = logEntryFor('wacap', 'manifest', { body: { version: 1 }, signature: {} });
    expect(Object.keys(entry)).toEqual(['type', 'network', 'kind', 'hash']);
    const canonical = `{"hash":"${entry.hash}","kind":"manifest","network":"wacap","type":"log-entry"}`;
    expect(toHex(logEntryLeafHash(entry))).toBe(toHex(leafHash(utf8(canonical))));
    expect(codeOf(() => logEntryFor('wacap', 'edition' as never, {}))).toBe('SCHEMA_INVALID');
    expect(codeOf(() => logEntryFor('WACAP', 'manifest', {}))).toBe('SCHEMA_INVALID');
    expect(logOrigin('wacap')).toBe('rogatory.invalid/key-log/wacap');
  });
});

describe('signed notes and checkpoints (§18.3)', () => {
  it('verify the signed-note specification example (key id and Ed25519 over the text)', () => {
    // vkey example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k
    const vkey = fromBase64('AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k', 'vkey');
    const note = parseNote(
      'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n',
    );
    expect(vkey[0]).toBe(0x01);
    expect(toHex(noteKeyId('example.com/foo', 0x01, vkey.subarray(1)))).toBe('530d903a');
    expect(toHex(note.signatures[0]!.keyId)).toBe('530d903a');
    expect(
      primitives().verifyDetached(note.signatures[0]!.signature, utf8(note.text), vkey.subarray(1)),
    ).toBe(true);
  });

  it('round-trip, and refuse another log, another key and malformed text', () => {
    const tree = treeOf(7);
    const cp = { origin: ORIGIN, size: 7, rootHash: tree.root() };
    const note = signCheckpoint(cp, logKey);
    const log = { name: ORIGIN, publicKey: logKey.publicKey };
    const v = verifyCheckpoint(note, log);
    expect(v.checkpoint.size).toBe(7);
    expect(toHex(v.checkpoint.rootHash)).toBe(toHex(tree.root()));
    expect(encodeNote(parseNote(note))).toBe(note);
    expect(
      codeOf(() =>
        verifyCheckpoint(note, { name: logOrigin('casc'), publicKey: logKey.publicKey }),
      ),
    ).toBe('KEY_UNKNOWN');
    const other = generateSigningKeyPair(testSeed('tlog/other'));
    expect(codeOf(() => verifyCheckpoint(note, { name: ORIGIN, publicKey: other.publicKey }))).toBe(
      'SIGNATURE_INVALID',
    );
    // A line that claims the log key but does not verify rejects the note, even beside a good one.
    const parsed = parseNote(note);
    const forged = encodeNote({
      text: parsed.text,
      signatures: [
        ...parsed.signatures,
        { ...parsed.signatures[0]!, signature: flip(parsed.signatures[0]!.signature) },
      ],
    });
    expect(codeOf(() => verifyCheckpoint(forged, log))).toBe('SIGNATURE_INVALID');
    const tampered = note.replace('\n7\n', '\n8\n');
    expect(codeOf(() => verifyCheckpoint(tampered, log))).toBe('SIGNATURE_INVALID');
    for (const bad of [
      note.replace('\n7\n', '\n07\n'),
      `${checkpointText(cp)}extension\n\n${note.slice(note.indexOf('—'))}`,
      note.replace('—', '-'),
      note.replace('\n\n', '\n\u0007\n'),
      note.slice(0, -1),
      checkpointText(cp),
      note.replace(/=\n$/, '\n'),
    ].filter((b) => b !== note))
      expect(
        codeOf(() => verifyCheckpoint(bad, log)),
        JSON.stringify(bad),
      ).toBe('CHECKPOINT_INVALID');
    expect(
      codeOf(() => parseCheckpointText(`${ORIGIN}\n7\n${toBase64(new Uint8Array(31))}\n`)),
    ).toBe('CHECKPOINT_INVALID');
    expect(
      codeOf(() =>
        parseNote(`${checkpointText(cp)}\n${signatureLine(parsed.signatures[0]!).repeat(65)}`),
      ),
    ).toBe('CHECKPOINT_INVALID');
  });
});

describe('cosignatures and quorum (§18.4, §18.6)', () => {
  it('count distinct trusted witnesses; a failing one rejects; too few is QUORUM_NOT_MET', () => {
    const cp = { origin: ORIGIN, size: 3, rootHash: treeOf(3).root() };
    const note = signCheckpoint(cp, logKey);
    const text = checkpointText(cp);
    const t = Math.floor(NOW / 1000);
    const a = signatureLine(cosign(text, witnessA, t));
    const b = signatureLine(cosign(text, witnessB, t + 1));
    const log = { name: ORIGIN, publicKey: logKey.publicKey };
    const witnesses = [witnessA, witnessB].map((w) => ({
      name: w.name,
      publicKey: w.key.publicKey,
    }));
    const both = note + a + b;
    const v = verifyCosignedCheckpoint({ note: both, log, witnesses, quorum: 2 });
    expect(v.cosigners).toEqual([
      { name: 'relay@casc', time: t },
      { name: 'relay@hub', time: t + 1 },
    ]);
    expect(
      codeOf(() => verifyCosignedCheckpoint({ note: note + a + a, log, witnesses, quorum: 2 })),
    ).toBe('QUORUM_NOT_MET');
    expect(codeOf(() => verifyCosignedCheckpoint({ note, log, witnesses, quorum: 1 }))).toBe(
      'QUORUM_NOT_MET',
    );
    // An unknown witness's line is ignored.
    const stranger = { name: 'relay@evil', key: generateSigningKeyPair(testSeed('tlog/evil')) };
    expect(
      codeOf(() =>
        verifyCosignedCheckpoint({
          note: note + signatureLine(cosign(text, stranger, t)),
          log,
          witnesses,
          quorum: 1,
        }),
      ),
    ).toBe('QUORUM_NOT_MET');
    // The time is signed: changing it breaks the cosignature, which rejects the note.
    const sig = cosign(text, witnessA, t);
    const stamp = sig.signature.slice();
    stamp[7]! ^= 1;
    expect(
      codeOf(() =>
        verifyCosignedCheckpoint({
          note: note + signatureLine({ ...sig, signature: stamp }) + b,
          log,
          witnesses,
          quorum: 1,
        }),
      ),
    ).toBe('SIGNATURE_INVALID');
    // A cosignature of another checkpoint does not count for this one.
    const otherText = checkpointText({ ...cp, size: 2, rootHash: treeOf(2).root() });
    expect(
      codeOf(() =>
        verifyCosignedCheckpoint({
          note: note + signatureLine(cosign(otherText, witnessA, t)),
          log,
          witnesses,
          quorum: 1,
        }),
      ),
    ).toBe('SIGNATURE_INVALID');
    // The same key as a plain Ed25519 note signature (type 0x01 key id) is not a cosignature.
    const plain = {
      name: witnessA.name,
      keyId: noteKeyId(witnessA.name, 0x01, witnessA.key.publicKey),
      signature: primitives().signDetached(utf8(text), witnessA.key.secretKey),
    };
    expect(
      codeOf(() =>
        verifyCosignedCheckpoint({ note: note + signatureLine(plain), log, witnesses, quorum: 1 }),
      ),
    ).toBe('QUORUM_NOT_MET');
    expect(codeOf(() => verifyCosignedCheckpoint({ note: both, log, witnesses, quorum: 0 }))).toBe(
      'SCHEMA_INVALID',
    );
  });
});

describe('witness add-checkpoint (§18.5)', () => {
  const logs = () => [{ name: ORIGIN, publicKey: logKey.publicKey }];
  const request = (
    tree: MemoryTree,
    size: number,
    oldSize: number,
    proof = tree.consistencyProof(oldSize, size),
  ) =>
    encodeAddCheckpointRequest({
      oldSize,
      proof,
      checkpoint: signCheckpoint({ origin: ORIGIN, size, rootHash: tree.root(size) }, logKey),
    });

  it('cosigns a first checkpoint and then only consistent extensions, with a cosignature verifiers accept', () => {
    const tree = treeOf(20);
    const state = new Map<string, WitnessLogState>();
    const first = witnessAddCheckpoint({
      request: request(tree, 5, 0),
      logs: logs(),
      state,
      witness: witnessA,
      now: NOW,
    });
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    expect(first.state.size).toBe(5);
    state.set(first.origin, first.state);
    const second = witnessAddCheckpoint({
      request: request(tree, 20, 5),
      logs: logs(),
      state,
      witness: witnessA,
      now: NOW + 1000,
    });
    expect(second.ok).toBe(true);
    if (!second.ok) return;
    const note =
      signCheckpoint({ origin: ORIGIN, size: 20, rootHash: tree.root() }, logKey) +
      second.cosignature;
    const v = verifyCosignedCheckpoint({
      note,
      log: logs()[0]!,
      witnesses: [{ name: witnessA.name, publicKey: witnessA.key.publicKey }],
      quorum: 1,
    });
    expect(v.cosigners).toEqual([{ name: witnessA.name, time: Math.floor(NOW / 1000) + 1 }]);
    state.set(second.origin, second.state);
    // The same checkpoint again is fine (idempotent retry).
    expect(
      witnessAddCheckpoint({
        request: request(tree, 20, 20),
        logs: logs(),
        state,
        witness: witnessA,
        now: NOW,
      }).ok,
    ).toBe(true);
  });

  it('refuses with the code of each rule, and returns no state to persist', () => {
    const tree = treeOf(20);
    const forkTree = treeOf(20, 'fork');
    const state = new Map<string, WitnessLogState>([
      [ORIGIN, { size: 10, rootHash: tree.root(10) }],
    ]);
    const run = (req: string, origin = logs()) =>
      witnessAddCheckpoint({ request: req, logs: origin, state, witness: witnessA, now: NOW });
    const conflict = run(request(tree, 15, 8));
    expect(conflict).toMatchObject({ ok: false, code: 'WITNESS_CONFLICT', storedSize: 10 });
    expect(conflict).not.toHaveProperty('state');
    // A smaller tree than the witness holds: old size above the checkpoint size.
    expect(
      run(
        encodeAddCheckpointRequest({
          oldSize: 10,
          proof: [],
          checkpoint: signCheckpoint({ origin: ORIGIN, size: 9, rootHash: tree.root(9) }, logKey),
        }),
      ),
    ).toMatchObject({ ok: false, code: 'CHECKPOINT_ROLLBACK' });
    // A smaller tree asked with its own size as old size is a conflict carrying the stored size.
    expect(run(request(tree, 9, 9))).toMatchObject({
      ok: false,
      code: 'WITNESS_CONFLICT',
      storedSize: 10,
    });
    // A forked tree: same size, another root; or a larger tree not extending the stored one.
    expect(run(request(forkTree, 10, 10))).toMatchObject({ ok: false, code: 'LOG_FORK_DETECTED' });
    expect(
      run(
        encodeAddCheckpointRequest({
          oldSize: 10,
          proof: forkTree.consistencyProof(10, 15),
          checkpoint: signCheckpoint(
            { origin: ORIGIN, size: 15, rootHash: forkTree.root(15) },
            logKey,
          ),
        }),
      ),
    ).toMatchObject({ ok: false, code: 'PROOF_INVALID' });
    expect(run(request(tree, 15, 10, tree.consistencyProof(9, 15)))).toMatchObject({
      ok: false,
      code: 'PROOF_INVALID',
    });
    // Bad log signature, unknown origin, malformed body.
    const other = generateSigningKeyPair(testSeed('tlog/other'));
    expect(
      run(
        encodeAddCheckpointRequest({
          oldSize: 10,
          proof: tree.consistencyProof(10, 15),
          checkpoint: signCheckpoint({ origin: ORIGIN, size: 15, rootHash: tree.root(15) }, other),
        }),
      ),
    ).toMatchObject({ ok: false, code: 'SIGNATURE_INVALID' });
    expect(
      run(request(tree, 15, 10), [{ name: logOrigin('casc'), publicKey: logKey.publicKey }]),
    ).toMatchObject({ ok: false, code: 'KEY_UNKNOWN' });
    expect(run(request(tree, 15, 10).replace('old 10', 'old 010'))).toMatchObject({
      ok: false,
      code: 'CHECKPOINT_INVALID',
    });
    // A malformed note is refused as malformed (step 1) before its origin is looked up (step 2).
    const unknownBroken = request(tree, 15, 10)
      .replace(ORIGIN, logOrigin('casc'))
      .replace('\n15\n', '\n015\n');
    expect(run(unknownBroken)).toMatchObject({ ok: false, code: 'CHECKPOINT_INVALID' });
    // From an empty state: a proof must be empty, and size 0 must have the empty root.
    const fresh = new Map<string, WitnessLogState>();
    expect(
      witnessAddCheckpoint({
        request: encodeAddCheckpointRequest({
          oldSize: 0,
          proof: [tree.root(1)],
          checkpoint: signCheckpoint({ origin: ORIGIN, size: 5, rootHash: tree.root(5) }, logKey),
        }),
        logs: logs(),
        state: fresh,
        witness: witnessA,
        now: NOW,
      }),
    ).toMatchObject({ ok: false, code: 'PROOF_INVALID' });
    expect(
      witnessAddCheckpoint({
        request: encodeAddCheckpointRequest({
          oldSize: 0,
          proof: [],
          checkpoint: signCheckpoint({ origin: ORIGIN, size: 0, rootHash: tree.root(1) }, logKey),
        }),
        logs: logs(),
        state: fresh,
        witness: witnessA,
        now: NOW,
      }),
    ).toMatchObject({ ok: false, code: 'PROOF_INVALID' });
    expect(state.get(ORIGIN)!.size).toBe(10);
  });

  it('parses the tlog-witness specification example request', () => {
    const body = [
      'old 20852014',
      'PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=',
      'jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=',
      '5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=',
      '/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=',
      '',
      'example.com/behind-the-sofa',
      '20852163',
      'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=',
      '',
      '— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=',
      '— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=',
      '',
    ].join('\n');
    const r = parseAddCheckpointRequest(body);
    expect(r.oldSize).toBe(20852014);
    expect(r.proof).toHaveLength(4);
    expect(parseCheckpointText(parseNote(r.checkpoint).text).size).toBe(20852163);
    expect(encodeAddCheckpointRequest(r)).toBe(body);
    const many = `old 1\n${`${toBase64(new Uint8Array(32))}\n`.repeat(64)}\n${r.checkpoint}`;
    expect(codeOf(() => parseAddCheckpointRequest(many))).toBe('CHECKPOINT_INVALID');
  });
});

describe('fork detection (§18.7)', () => {
  it('same size and another root, or no valid consistency proof, is LOG_FORK_DETECTED', () => {
    const tree = treeOf(12);
    const fork = treeOf(12, 'fork');
    const at = (t: MemoryTree, n: number) => ({ origin: ORIGIN, size: n, rootHash: t.root(n) });
    checkCheckpointsConsistent(at(tree, 5), at(tree, 12), tree.consistencyProof(5, 12));
    checkCheckpointsConsistent(at(tree, 12), at(tree, 5), tree.consistencyProof(5, 12));
    checkCheckpointsConsistent(at(tree, 12), at(tree, 12), []);
    expect(codeOf(() => checkCheckpointsConsistent(at(tree, 12), at(fork, 12), []))).toBe(
      'LOG_FORK_DETECTED',
    );
    expect(
      codeOf(() =>
        checkCheckpointsConsistent(at(tree, 5), at(fork, 12), fork.consistencyProof(5, 12)),
      ),
    ).toBe('LOG_FORK_DETECTED');
    expect(
      codeOf(() =>
        checkCheckpointsConsistent(at(tree, 5), { ...at(tree, 12), origin: logOrigin('casc') }, []),
      ),
    ).toBe('SCHEMA_INVALID');
  });
});
