/**
 * What every vectors module shares: the fixed verification time, the Vector
 * record and the trust setup of a scenario. No randomness is drawn here.
 */
import type { ErrorCode, KeyRef, Manifest } from '../src/index.js';
import { outcomeOf } from '../src/errors.js';
import type { TestWorld } from '../src/testing/index.js';

export const VECTOR_NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

export type VectorKind =
  | 'canonical'
  | 'manifest'
  | 'manifest-update'
  | 'statement'
  | 'envelope'
  | 'sealed-dossier'
  | 'seal'
  | 'attachment'
  | 'evidence-chain'
  | 'key-file'
  | 'signature'
  | 'secretstream'
  | 'bundle'
  | 'transparency';

export interface TrustSetup {
  pinned: { network: string; root: KeyRef }[];
  manifests: Manifest[];
  revocations: unknown[];
  rotations: unknown[];
}

export interface Vector {
  name: string;
  kind: VectorKind;
  description: string;
  /** Outcome class: "success" or the class of the expected error. */
  expect: string;
  /** The precise error code (docs/protocol.md, Errors), or null on success. */
  code: ErrorCode | null;
  /** Verification time, ms since the epoch. */
  now: number;
  input: Record<string, unknown>;
  /** What a successful run yields; null for failures. */
  result: Record<string, unknown> | null;
}

export function vector(v: Omit<Vector, 'expect' | 'now'> & { now?: number }): Vector {
  return {
    name: v.name,
    kind: v.kind,
    description: v.description,
    expect: v.code === null ? 'success' : outcomeOf(v.code),
    code: v.code,
    now: v.now ?? VECTOR_NOW,
    input: v.input,
    result: v.result,
  };
}

export function trustOf(
  world: TestWorld,
  network: string,
  extra: Partial<TrustSetup> = {},
): TrustSetup {
  const manifest = world.networks[network]!.manifest;
  return {
    pinned: [{ network, root: world.networks[network]!.rootRef }],
    manifests: [manifest, ...manifest.body.peers.map((p) => world.networks[p.network]!.manifest)],
    revocations: extra.revocations ?? [],
    rotations: extra.rotations ?? [],
  };
}
