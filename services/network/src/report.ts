import {
  canonicalBytes,
  manifestHash,
  verifyManifest,
  type Manifest,
  type RevokedKey,
} from '@rogatory/protocol';
import { mapProtocol, networkFail } from './errors.js';
import type { Draft } from './folder.js';
import { fingerprintOf, type Secretariat } from './secretariat.js';

/** One side of a diff: an edition, or the draft. */
export interface DiffSide {
  /** "v3" or "draft". */
  readonly label: string;
  readonly relays: Draft['relays'];
  readonly pocs: Draft['pocs'];
  readonly authorities: Draft['authorities'];
  readonly peers: Draft['peers'];
  readonly revoked: readonly RevokedKey[];
}

export interface ListDiff {
  readonly added: string[];
  readonly removed: string[];
  /** Entries present on both sides whose listed data differs, with the fields that changed. */
  readonly changed: { readonly name: string; readonly fields: string[] }[];
}

export interface EditionDiff {
  readonly from: string;
  readonly to: string;
  readonly relays: ListDiff;
  readonly pocs: ListDiff;
  readonly authorities: ListDiff;
  readonly peers: ListDiff;
  /** Keys revoked on the `to` side and not on the `from` side. */
  readonly revoked: RevokedKey[];
}

export function sideOfEdition(m: Manifest): DiffSide {
  return { label: `v${m.body.version}`, ...m.body };
}

export function sideOfDraft(draft: Draft): DiffSide {
  return { label: 'draft', ...draft };
}

export const EMPTY_SIDE: DiffSide = {
  label: 'none',
  relays: [],
  pocs: [],
  authorities: [],
  peers: [],
  revoked: [],
};

const same = (a: unknown, b: unknown): boolean => {
  const x = canonicalBytes(a);
  const y = canonicalBytes(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

function diffList<T extends object>(
  from: readonly T[],
  to: readonly T[],
  name: (e: T) => string,
): ListDiff {
  const before = new Map(from.map((e) => [name(e), e]));
  const after = new Map(to.map((e) => [name(e), e]));
  const changed: ListDiff['changed'] = [];
  for (const [key, b] of after) {
    const a = before.get(key);
    if (!a) continue;
    const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter(
      (f) =>
        !same((a as Record<string, unknown>)[f] ?? null, (b as Record<string, unknown>)[f] ?? null),
    );
    if (fields.length > 0) changed.push({ name: key, fields: fields.sort() });
  }
  return {
    added: [...after.keys()].filter((k) => !before.has(k)),
    removed: [...before.keys()].filter((k) => !after.has(k)),
    changed,
  };
}

/** What changes from one edition (or the draft) to another. */
export function diffEditions(from: DiffSide, to: DiffSide): EditionDiff {
  const wasRevoked = new Set(from.revoked.map((r) => r.kid));
  return {
    from: from.label,
    to: to.label,
    relays: diffList(from.relays, to.relays, (r) => r.id),
    pocs: diffList(from.pocs, to.pocs, (p) => p.address),
    authorities: diffList(from.authorities, to.authorities, (a) => a.address),
    peers: diffList(from.peers, to.peers, (p) => p.network),
    revoked: to.revoked.filter((r) => !wasRevoked.has(r.kid)),
  };
}

export function isEmptyDiff(d: EditionDiff): boolean {
  const lists = [d.relays, d.pocs, d.authorities, d.peers];
  return (
    d.revoked.length === 0 &&
    lists.every((l) => l.added.length + l.removed.length + l.changed.length === 0)
  );
}

/** Human rendering of a diff. */
export function renderDiff(d: EditionDiff): string {
  const lines = [`changes from ${d.from} to ${d.to}:`];
  for (const what of ['relays', 'pocs', 'authorities', 'peers'] as const) {
    const l = d[what];
    for (const name of l.added)
      lines.push(`  + ${what.replace(/s$/, '').replace('authoritie', 'authority')} ${name}`);
    for (const name of l.removed)
      lines.push(`  - ${what.replace(/s$/, '').replace('authoritie', 'authority')} ${name}`);
    for (const c of l.changed)
      lines.push(
        `  ~ ${what.replace(/s$/, '').replace('authoritie', 'authority')} ${c.name}: ${c.fields.join(', ')}`,
      );
  }
  for (const r of d.revoked)
    lines.push(
      `  ! revoked key ${r.kid} (${r.reason}) from ${new Date(r.revokedAt).toISOString()}`,
    );
  if (isEmptyDiff(d)) lines.push('  (no changes)');
  return lines.join('\n');
}

// ---------------------------------------------------------------- verification reports

export interface ChainReport {
  readonly network: string;
  readonly rootKid: string;
  readonly fingerprint: string;
  readonly editions: number;
  readonly last: {
    readonly version: number;
    readonly hash: string;
    readonly issuedAt: number;
    readonly validUntil: number;
    readonly expired: boolean;
    readonly relays: number;
    readonly pocs: number;
    readonly authorities: number;
    readonly peers: number;
    readonly revoked: number;
  } | null;
}

/** The chain as loaded (loadSecretariat has verified it from version 1), summarised. */
export function chainReport(s: Secretariat, now: number): ChainReport {
  const last = s.editions.at(-1);
  return {
    network: s.config.network,
    rootKid: s.config.root.kid,
    fingerprint: fingerprintOf(s.config.network, s.config.root),
    editions: s.editions.length,
    last: last
      ? {
          version: last.body.version,
          hash: manifestHash(last),
          issuedAt: last.body.issuedAt,
          validUntil: last.body.validUntil,
          expired: now >= last.body.validUntil,
          relays: last.body.relays.length,
          pocs: last.body.pocs.length,
          authorities: last.body.authorities.length,
          peers: last.body.peers.length,
          revoked: last.body.revoked.length,
        }
      : null,
  };
}

export interface EditionReport {
  readonly network: string;
  readonly version: number;
  readonly hash: string;
  /** "root" (this network's own root) or "anchor" (a peer's root listed by this network). */
  readonly verifiedUnder: 'root' | 'anchor';
  readonly rootKid: string;
  /** For an edition of this network: whether it is the edition of that version in this folder's chain. */
  readonly inChain: boolean | null;
  readonly validUntil: number;
  readonly expired: boolean;
}

/**
 * Verify one edition file: an edition of this network under its root (and
 * it must be the one this folder published with that version: a different
 * one is a fork), or a peer's edition under the anchor this network lists.
 */
export function verifyEditionValue(
  s: Secretariat,
  value: unknown,
  file: string,
  now: number,
): EditionReport {
  const network =
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { body?: { network?: unknown } }).body?.network === 'string'
      ? (value as { body: { network: string } }).body.network
      : undefined;
  if (network === undefined)
    return networkFail('VERIFICATION_FAILED', `${file} is not a manifest`, {
      detail: 'SCHEMA_INVALID',
    });
  const own = network === s.config.network;
  const peer = [...s.draft.peers, ...(s.editions.at(-1)?.body.peers ?? [])].find(
    (p) => p.network === network,
  );
  const root = own ? s.config.root : peer?.root;
  if (!root)
    return networkFail('VERIFICATION_FAILED', `${file}: no anchor for network ${network}`, {
      detail: 'TRUST_CHAIN_BROKEN',
    });
  const manifest = mapProtocol('VERIFICATION_FAILED', file, () => verifyManifest(value, root));
  const hash = manifestHash(manifest);
  let inChain: boolean | null = null;
  if (own) {
    const held = s.editions[manifest.body.version - 1];
    inChain = held !== undefined && manifestHash(held) === hash;
    if (held && !inChain)
      networkFail(
        'VERIFICATION_FAILED',
        `${file} is a different edition ${manifest.body.version} than this folder published: a fork`,
        {
          detail: 'MANIFEST_CHAIN_BROKEN',
        },
      );
  }
  return {
    network,
    version: manifest.body.version,
    hash,
    verifiedUnder: own ? 'root' : 'anchor',
    rootKid: root.kid,
    inChain,
    validUntil: manifest.body.validUntil,
    expired: now >= manifest.body.validUntil,
  };
}
