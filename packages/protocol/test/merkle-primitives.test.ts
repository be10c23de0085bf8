import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { utf8 } from '../src/bytes.js';
import { nativePrimitives } from '../src/node/index.js';
import { setPrimitives, sha256Into, wasmPrimitives, type Primitives } from '../src/primitives.js';
import { ready } from '../src/sodium.js';
import {
  MemoryTree,
  nodeHash,
  rootFromInclusionProof,
  verifyConsistency,
  verifyInclusion,
} from '../src/transparency/index.js';
import { codeOf } from './support/code-of.js';

// Proof verification hashes into reused buffers (`sha256Into`) where the
// primitives offer it (native libsodium) and through `sha256` where they do
// not (WebAssembly): both must accept and refuse exactly the same proofs.

beforeAll(ready);
afterEach(() => {
  setPrimitives(wasmPrimitives);
});

const native = () => {
  const n = nativePrimitives();
  if (n === null) throw new Error('the native addon does not load here');
  return n;
};
const variants = (): [string, Primitives][] => [
  ['libsodium-wasm (no sha256Into)', wasmPrimitives],
  ['libsodium-native (sha256Into)', native()],
];

interface Probe {
  file: string;
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

function treeOf(n: number): MemoryTree {
  const tree = new MemoryTree();
  for (let i = 0; i < n; i++) tree.appendData(utf8(`leaf-${i}`));
  return tree;
}

describe('sha256Into', () => {
  it('native sha256Into writes the same hash as sha256 on both builds', () => {
    const n = native();
    expect('sha256Into' in n).toBe(true);
    expect('sha256Into' in wasmPrimitives).toBe(false);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        const out = new Uint8Array(32).fill(0xaa);
        n.sha256Into!(out, data);
        expect(out).toEqual(wasmPrimitives.sha256(data));
        expect(out).toEqual(n.sha256(data));
      }),
      { numRuns: 200 },
    );
  });

  it('the shared helper uses whichever primitives are in place', () => {
    const data = utf8('rogatory');
    const expected = wasmPrimitives.sha256(data);
    for (const [, p] of variants()) {
      setPrimitives(p);
      const out = new Uint8Array(32);
      sha256Into(out, data);
      expect(out).toEqual(expected);
    }
  });

  it('native sha256Into refuses an output that is not 32 bytes', () => {
    expect(() => native().sha256Into!(new Uint8Array(31), utf8('x'))).toThrow(RangeError);
  });
});

describe('proof verification is the same with and without sha256Into', () => {
  it('every transparency-dev probe gets the same outcome on both', () => {
    const outcomes = variants().map(([, p]) => {
      setPrimitives(p);
      return {
        inclusion: probes.inclusion.map((q) =>
          codeOf(() =>
            verifyInclusion({
              index: q.leafIdx,
              size: q.treeSize,
              leafHash: b64(q.leafHash),
              proof: (q.proof ?? []).map(b64),
              root: b64(q.root),
            }),
          ),
        ),
        consistency: probes.consistency.map((q) =>
          codeOf(() =>
            verifyConsistency({
              size1: q.size1,
              size2: q.size2,
              root1: b64(q.root1),
              root2: b64(q.root2),
              proof: (q.proof ?? []).map(b64),
            }),
          ),
        ),
      };
    });
    expect(outcomes[1]).toEqual(outcomes[0]);
    // The probes include both accepted and refused proofs.
    expect(outcomes[0]!.inclusion).toContain(undefined);
    expect(outcomes[0]!.inclusion).toContain('PROOF_INVALID');
  });

  it('inclusion and consistency proofs of random trees verify on both, and a flipped bit fails on both', () => {
    const tree = treeOf(300);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.nat(),
        fc.nat(),
        fc.nat(255),
        (size, i, s1, bit) => {
          const index = i % size;
          const size1 = 1 + (s1 % size);
          const root = tree.root(size);
          const proof = tree.inclusionProof(index, size);
          const consistency = tree.consistencyProof(size1, size);
          const root1 = tree.root(size1);
          for (const [, p] of variants()) {
            setPrimitives(p);
            const leaf = tree.leafHashAt(index);
            const leafCopy = leaf.slice();
            const computed = rootFromInclusionProof(index, size, leaf, proof);
            expect(computed).toEqual(root);
            // The caller's leaf and proof hashes are never written to.
            expect(leaf).toEqual(leafCopy);
            verifyInclusion({ index, size, leafHash: leaf, proof, root });
            verifyConsistency({ size1, size2: size, root1, root2: root, proof: consistency });
            const badRoot = root.slice();
            badRoot[bit >> 3]! ^= 1 << (bit & 7);
            expect(
              codeOf(() => verifyInclusion({ index, size, leafHash: leaf, proof, root: badRoot })),
            ).toBe('PROOF_INVALID');
            expect(
              codeOf(() =>
                verifyConsistency({
                  size1,
                  size2: size,
                  root1,
                  root2: badRoot,
                  proof: consistency,
                }),
              ),
            ).toBe('PROOF_INVALID');
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('two roots computed in a row are distinct arrays (no shared buffer escapes)', () => {
    const tree = treeOf(10);
    setPrimitives(native());
    const a = rootFromInclusionProof(3, 10, tree.leafHashAt(3), tree.inclusionProof(3, 10));
    const b = rootFromInclusionProof(4, 10, tree.leafHashAt(4), tree.inclusionProof(4, 10));
    expect(a).not.toBe(b);
    expect(a).toEqual(tree.root(10));
    expect(b).toEqual(tree.root(10));
    expect(nodeHash(a, b)).toEqual(wasmPrimitives.sha256(Uint8Array.of(1, ...a, ...b)));
  });
});
