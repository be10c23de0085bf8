import { join } from 'node:path';
import {
  isProtocolError,
  manifestHash,
  validator,
  verifyPublicationChain,
  ManifestSchema,
  type KeyRef,
  type Manifest,
  type TrustStore,
  type VerifiedPublication,
} from '@rogatory/protocol';
import { buildTrust, parseManifest } from '../administration/trust-material.js';
import { nodeFail } from '../errors.js';
import { writeFileAtomic } from '../files/atomic-write.js';
import type { StoredPublication, TrustTable } from '../store/trust-table.js';
import { applyStatements } from './apply.js';

const manifestShape = validator(ManifestSchema, 'manifest');

/** A trust-folder manifest refused at start because the node holds a newer (or another) edition from the log. */
export interface ManifestRefusal {
  readonly network: string;
  readonly code: 'MANIFEST_ROLLBACK';
  readonly folderVersion: number;
  readonly storedVersion: number;
}

export interface NodeTrust {
  readonly trust: TrustStore;
  /** The manifests the store was built from, one a network (replayed chains come on top). */
  readonly base: readonly Manifest[];
  readonly refusals: readonly ManifestRefusal[];
}

/** The newest manifest edition a stored chain carries, or undefined. */
export function storedEdition(chain: readonly StoredPublication[]): Manifest | undefined {
  for (let i = chain.length - 1; i >= 0; i--) {
    const p = chain[i]!;
    if (p.edition === null) continue;
    const entries = (p.publication as { entries?: { statement?: unknown }[] }).entries ?? [];
    for (let j = entries.length - 1; j >= 0; j--) {
      const statement = entries[j]!.statement;
      const body = (statement as { body?: { type?: unknown } } | undefined)?.body;
      if (body?.type === 'manifest') return manifestShape.parse(statement);
    }
  }
  return undefined;
}

/**
 * The node's trust at start (design D4): the trust folder's manifests, each
 * checked against the highest edition the node accepted from its network's
 * log. A folder edition older than that one, or another edition of the same
 * version, is refused (MANIFEST_ROLLBACK) and the stored edition used in its
 * place (and written back to the folder, so the refusal is reported once);
 * networks the log brought in (peers anchored by a later edition) are added.
 * Then every stored chain is verified again and its rotations and
 * revocations replayed in order. A stored chain that no longer verifies is
 * LOCAL_DATA_TAMPERED: the database was altered.
 */
export async function loadNodeTrust(options: {
  pinned: { network: string; root: KeyRef };
  folder: readonly unknown[];
  folderDir: string;
  table: TrustTable;
}): Promise<NodeTrust> {
  const { pinned, table } = options;
  const chains = new Map<string, StoredPublication[]>();
  for (const row of table.networks()) chains.set(row.network, table.publications(row.network));
  const refusals: ManifestRefusal[] = [];
  const base: Manifest[] = [];
  const seen = new Set<string>();
  for (const value of options.folder) {
    const manifest = parseManifest(value);
    const network = manifest.body.network;
    seen.add(network);
    const stored = storedEdition(chains.get(network) ?? []);
    if (
      stored &&
      (manifest.body.version < stored.body.version ||
        (manifest.body.version === stored.body.version &&
          manifestHash(manifest) !== manifestHash(stored)))
    ) {
      refusals.push({
        network,
        code: 'MANIFEST_ROLLBACK',
        folderVersion: manifest.body.version,
        storedVersion: stored.body.version,
      });
      base.push(stored);
      await writeFileAtomic(
        join(options.folderDir, `${network}.json`),
        `${JSON.stringify(stored, null, 2)}\n`,
        { mode: 0o644 },
      );
      continue;
    }
    base.push(manifest);
  }
  for (const [network, chain] of chains) {
    if (seen.has(network)) continue;
    const stored = storedEdition(chain);
    if (stored) base.push(stored);
  }
  return { trust: rebuildTrust(pinned, base, chains), base, refusals };
}

/** A trust store from base manifests and the stored chains replayed on top (own network first). */
export function rebuildTrust(
  pinned: { network: string; root: KeyRef },
  base: readonly Manifest[],
  chains: ReadonlyMap<string, readonly StoredPublication[]>,
): TrustStore {
  const trust = buildTrust(pinned, base);
  const order = [
    ...[...chains.keys()].filter((n) => n === pinned.network),
    ...[...chains.keys()].filter((n) => n !== pinned.network),
  ];
  for (const network of order) replayChain(trust, network, chains.get(network)!);
  return trust;
}

/** Verify a stored chain from the empty log and apply it as history (no expiry, no rollback check). */
export function replayChain(
  trust: TrustStore,
  network: string,
  chain: readonly StoredPublication[],
): VerifiedPublication[] {
  if (chain.length === 0) return [];
  const root = trust.rootOf(network);
  if (!root)
    return nodeFail('LOCAL_DATA_TAMPERED', `stored trust chain of ${network} has no trusted root`);
  try {
    const verified = verifyPublicationChain({
      publications: chain.map((p) => p.publication),
      root,
      held: null,
    });
    for (const v of verified) applyStatements(trust, network, v.statements, { history: true });
    return verified;
  } catch (cause) {
    if (isProtocolError(cause))
      nodeFail('LOCAL_DATA_TAMPERED', `stored trust chain of ${network} does not verify`, {
        cause,
        detail: cause.code,
      });
    throw cause;
  }
}
