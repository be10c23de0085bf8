/**
 * RFC 9162 (RFC 6962) Merkle tree hashing and proof verification
 * (docs/protocol.md §18.2). Hashes are 32-byte SHA-256 values; sizes and
 * indexes are non-negative safe integers (a log never nears 2^53 leaves).
 */
import { equalBytes, sha256 } from '../bytes.js';
import { fail } from '../errors.js';
import { sha256Into } from '../primitives.js';

export const HASH_BYTES = 32;
/** The most proof hashes a tree of up to 2^63 leaves needs (C2SP tlog-witness bound). */
export const MAX_PROOF_HASHES = 63;

/** MTH({}) = SHA-256(""), the root of the empty tree. */
export function emptyRoot(): Uint8Array {
  return sha256(new Uint8Array(0));
}

/** Leaf hash: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Uint8Array {
  const input = new Uint8Array(data.length + 1);
  input.set(data, 1);
  return sha256(input);
}

// One input buffer for every node hash (proof verification is a loop of them); sha256 returns a fresh array.
const nodeInput = Uint8Array.of(1, ...new Uint8Array(2 * HASH_BYTES));

/** Interior node hash: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== HASH_BYTES || right.length !== HASH_BYTES)
    fail('PROOF_INVALID', 'a node hash takes two 32-byte hashes');
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_BYTES);
  return sha256(nodeInput);
}

/**
 * {@link nodeHash} written into `out` (32 bytes; may be `left` or `right`:
 * both are copied before hashing) and returned: proof verification hashes
 * into one buffer per running hash rather than allocating each result.
 */
function nodeHashInto(out: Uint8Array, left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== HASH_BYTES || right.length !== HASH_BYTES)
    fail('PROOF_INVALID', 'a node hash takes two 32-byte hashes');
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_BYTES);
  sha256Into(out, nodeInput);
  return out;
}

function checkSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0)
    fail('PROOF_INVALID', `${what} is not a tree size or index`);
}

function checkHash(h: Uint8Array, what: string): void {
  if (h.length !== HASH_BYTES) fail('PROOF_INVALID', `${what} is not a 32-byte hash`);
}

/** Largest power of two strictly smaller than n (n ≥ 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[n]) from the leaf hashes, iteratively (the RFC's recursion, bottom-up). */
export function rootFromLeafHashes(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return emptyRoot();
  let level: Uint8Array[] = leaves.slice();
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    // An odd last node is promoted unchanged: the RFC's split at the largest power of two.
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

/**
 * RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or PROOF_INVALID
 * when the proof has the wrong shape for (index, size).
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array {
  checkSize(index, 'leaf index');
  checkSize(size, 'tree size');
  checkHash(leaf, 'leaf hash');
  if (index >= size) fail('PROOF_INVALID', 'leaf index is not below the tree size');
  if (proof.length > MAX_PROOF_HASHES) fail('PROOF_INVALID', 'inclusion proof is too long');
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  // The running hash, once it is no longer the caller's leaf.
  const acc = new Uint8Array(HASH_BYTES);
  for (const p of proof) {
    checkHash(p, 'proof hash');
    if (sn === 0) fail('PROOF_INVALID', 'inclusion proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHashInto(acc, p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHashInto(acc, r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail('PROOF_INVALID', 'inclusion proof is too short');
  return r;
}

/** Verify an inclusion proof against a root; PROOF_INVALID when it does not hold. */
export function verifyInclusion(options: {
  index: number;
  size: number;
  leafHash: Uint8Array;
  proof: readonly Uint8Array[];
  root: Uint8Array;
}): void {
  checkHash(options.root, 'root hash');
  const r = rootFromInclusionProof(options.index, options.size, options.leafHash, options.proof);
  if (!equalBytes(r, options.root))
    fail('PROOF_INVALID', 'inclusion proof does not lead to the root');
}

/**
 * Verify a consistency proof between two tree heads (RFC 9162 §2.1.4.2),
 * with the edge cases made explicit: size1 ≤ size2; from the empty tree the
 * proof is empty (and root1 the empty root); equal sizes need an empty proof
 * and equal roots. PROOF_INVALID when it does not hold.
 */
export function verifyConsistency(options: {
  size1: number;
  size2: number;
  root1: Uint8Array;
  root2: Uint8Array;
  proof: readonly Uint8Array[];
}): void {
  const { size1, size2, root1, root2, proof } = options;
  checkSize(size1, 'first tree size');
  checkSize(size2, 'second tree size');
  checkHash(root1, 'first root hash');
  checkHash(root2, 'second root hash');
  if (size2 < size1) fail('PROOF_INVALID', 'second tree is smaller than the first');
  if (proof.length > MAX_PROOF_HASHES) fail('PROOF_INVALID', 'consistency proof is too long');
  for (const p of proof) checkHash(p, 'proof hash');
  if (size1 === 0) {
    if (proof.length !== 0) fail('PROOF_INVALID', 'a proof from the empty tree must be empty');
    if (!equalBytes(root1, emptyRoot())) fail('PROOF_INVALID', 'the empty tree has another root');
    if (size2 === 0 && !equalBytes(root2, root1))
      fail('PROOF_INVALID', 'the empty tree has another root');
    return;
  }
  if (size1 === size2) {
    if (proof.length !== 0) fail('PROOF_INVALID', 'a proof between equal sizes must be empty');
    if (!equalBytes(root1, root2)) fail('PROOF_INVALID', 'equal sizes with different roots');
    return;
  }
  if (proof.length === 0) fail('PROOF_INVALID', 'consistency proof is empty');
  // Step 2: when size1 is a power of two, the first tree is a node of the second.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  // The two running hashes, once they are no longer the caller's first path hash.
  const frAcc = new Uint8Array(HASH_BYTES);
  const srAcc = new Uint8Array(HASH_BYTES);
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) fail('PROOF_INVALID', 'consistency proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHashInto(frAcc, c, fr);
      sr = nodeHashInto(srAcc, c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHashInto(srAcc, sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail('PROOF_INVALID', 'consistency proof is too short');
  if (!equalBytes(fr, root1))
    fail('PROOF_INVALID', 'consistency proof does not lead to the first root');
  if (!equalBytes(sr, root2))
    fail('PROOF_INVALID', 'consistency proof does not lead to the second root');
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && highestPowerOfTwo(n) === n;
}

/** Largest power of two ≤ n (n ≥ 1). */
function highestPowerOfTwo(n: number): number {
  let p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

/**
 * Hash access for proof construction: the hash of the complete, aligned
 * subtree of 2^level leaves starting at leaf `index * 2^level`. The durable
 * log reads these from disk; {@link MemoryTree} computes them.
 */
export type SubtreeHashes = (level: number, index: number) => Uint8Array;

/** MTH(D[start : end]) for a range whose start is a multiple of a power of two ≥ end - start. */
export function rangeHash(node: SubtreeHashes, start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 0) return emptyRoot();
  // The range is the binary decomposition of n: complete subtrees, largest first.
  const parts: Uint8Array[] = [];
  let at = start;
  for (let width = highestPowerOfTwo(n); width >= 1; width /= 2) {
    if (Math.floor(n / width) % 2 === 1) {
      parts.push(node(Math.log2(width), at / width));
      at += width;
    }
  }
  let r = parts[parts.length - 1]!;
  for (let i = parts.length - 2; i >= 0; i--) r = nodeHash(parts[i]!, r);
  return r;
}

/** RFC 9162 §2.1.3.1 PATH(m, D[start : end]): the inclusion proof of leaf m (absolute index). */
export function inclusionPath(
  node: SubtreeHashes,
  m: number,
  start: number,
  end: number,
): Uint8Array[] {
  const n = end - start;
  if (n <= 1) return [];
  const k = splitPoint(n);
  if (m < start + k)
    return [...inclusionPath(node, m, start, start + k), rangeHash(node, start + k, end)];
  return [...inclusionPath(node, m, start + k, end), rangeHash(node, start, start + k)];
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true). */
export function consistencyPath(node: SubtreeHashes, size1: number, size2: number): Uint8Array[] {
  if (size1 === 0 || size1 === size2) return [];
  return subproof(node, size1, 0, size2, true);
}

function subproof(
  node: SubtreeHashes,
  m: number,
  start: number,
  end: number,
  complete: boolean,
): Uint8Array[] {
  const n = end - start;
  if (m === n) return complete ? [] : [rangeHash(node, start, end)];
  const k = splitPoint(n);
  if (m <= k)
    return [...subproof(node, m, start, start + k, complete), rangeHash(node, start + k, end)];
  return [...subproof(node, m - k, start + k, end, false), rangeHash(node, start, start + k)];
}

/**
 * An in-memory tree over leaf hashes: the reference the durable log is
 * tested against, and what vectors and small verifiers use to build proofs.
 */
export class MemoryTree {
  /** levels[l][i] = hash of complete subtree i at level l. */
  private readonly levels: Uint8Array[][] = [[]];

  get size(): number {
    return this.levels[0]!.length;
  }

  appendLeafHash(hash: Uint8Array): void {
    checkHash(hash, 'leaf hash');
    this.levels[0]!.push(hash);
    let level = 0;
    let index = this.levels[0]!.length - 1;
    while (index % 2 === 1) {
      const row = this.levels[level]!;
      const parent = nodeHash(row[index - 1]!, row[index]!);
      level++;
      index = Math.floor(index / 2);
      (this.levels[level] ??= []).push(parent);
    }
  }

  appendData(data: Uint8Array): void {
    this.appendLeafHash(leafHash(data));
  }

  private readonly node: SubtreeHashes = (level, index) => {
    const h = this.levels[level]?.[index];
    if (!h) throw new Error(`no complete subtree at level ${level} index ${index}`);
    return h;
  };

  private checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size)
      fail('PROOF_INVALID', 'tree size beyond the tree');
  }

  root(size = this.size): Uint8Array {
    this.checkSize(size);
    return rangeHash(this.node, 0, size);
  }

  inclusionProof(index: number, size = this.size): Uint8Array[] {
    this.checkSize(size);
    if (!Number.isSafeInteger(index) || index < 0 || index >= size)
      fail('PROOF_INVALID', 'leaf index is not below the tree size');
    return inclusionPath(this.node, index, 0, size);
  }

  consistencyProof(size1: number, size2 = this.size): Uint8Array[] {
    this.checkSize(size2);
    if (!Number.isSafeInteger(size1) || size1 < 0 || size1 > size2)
      fail('PROOF_INVALID', 'first size beyond the second');
    return consistencyPath(this.node, size1, size2);
  }

  leafHashAt(index: number): Uint8Array {
    const h = this.levels[0]![index];
    if (!h) return fail('PROOF_INVALID', 'leaf index is not below the tree size');
    return h;
  }
}
