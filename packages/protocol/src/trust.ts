import { networkOf } from './address.js';
import { fail } from './errors.js';
import { checkKeyValidity, type KeyRef } from './keys.js';
import { validator } from './schema.js';
import { CONTEXTS } from './signed.js';
import {
  IntroductionSchema,
  ManifestSchema,
  RevocationSchema,
  checkManifestSuccession,
  manifestHash,
  verifyKeyRotation,
  verifyManifest,
  verifyStatementSignature,
  type AuthorityEntry,
  type Introduction,
  type KeyRotation,
  type Manifest,
  type RelayEntry,
  type Revocation,
  type RevocationReason,
} from './statements.js';

export type Role = 'relay' | 'poc' | 'authority';

export interface ResolvedKey {
  readonly address: string;
  readonly network: string;
  readonly role: Role;
  readonly key: KeyRef;
}

export interface PinnedRoot {
  readonly network: string;
  readonly root: KeyRef;
}

interface RevocationRecord {
  readonly revokedAt: number;
  readonly reason: RevocationReason;
}

const manifestShape = validator(ManifestSchema, 'manifest');
const revocationShape = validator(RevocationSchema, 'revocation');
const introductionShape = validator(IntroductionSchema, 'introduction');

/**
 * What a verifier believes: pinned roots, the manifests it has verified
 * under them (and under anchors those manifests publish for peer networks),
 * revocations, rotations and introductions. Every lookup takes the time at
 * which a key was used, so archives stay verifiable after rotation.
 *
 * Trust is one level deep by design: a pinned root may anchor peer networks,
 * but anchors published by a peer do not extend trust further.
 */
export class TrustStore {
  private readonly pinned = new Map<string, KeyRef>();
  private readonly anchors = new Map<string, KeyRef>();
  private readonly manifests = new Map<string, Manifest>();
  private readonly revoked = new Map<string, RevocationRecord>();
  private readonly rotatedKeys = new Map<string, KeyRef[]>();
  private readonly supersededAt = new Map<string, number>();
  private readonly introductionList: Introduction[] = [];

  constructor(options: { pinned: readonly PinnedRoot[] }) {
    for (const { network, root } of options.pinned) this.pinned.set(network, root);
  }

  /** The root key trusted for a network (pinned, or anchored by a pinned network). */
  rootOf(network: string): KeyRef | undefined {
    return this.pinned.get(network) ?? this.anchors.get(network);
  }

  /**
   * Add a manifest. It must be signed by the network's trusted root, and if
   * an earlier version is held it must follow it directly (no rollback, no
   * fork). Returns true when it was new.
   */
  addManifest(value: unknown): boolean {
    const network = manifestShape.parse(value).body.network;
    const root = this.rootOf(network);
    if (!root) return fail('TRUST_CHAIN_BROKEN', `no trusted root for network ${network}`);
    const manifest = verifyManifest(value, root);
    const held = this.manifests.get(network);
    if (held) {
      if (manifest.body.version === held.body.version && manifestHash(manifest) === manifestHash(held)) return false;
      checkManifestSuccession(held, manifest);
    }
    this.manifests.set(network, manifest);
    for (const r of manifest.body.revoked) this.recordRevocation(r.kid, r.revokedAt, r.reason);
    if (this.pinned.has(network)) {
      for (const peer of manifest.body.peers) {
        if (this.pinned.has(peer.network)) continue;
        const known = this.anchors.get(peer.network);
        if (known && known.kid !== peer.root.kid) fail('TRUST_CHAIN_BROKEN', `conflicting anchors for ${peer.network}`);
        this.anchors.set(peer.network, peer.root);
      }
    }
    return true;
  }

  manifest(network: string): Manifest | undefined {
    return this.manifests.get(network);
  }

  networks(): string[] {
    return [...this.manifests.keys()];
  }

  authority(address: string): AuthorityEntry | undefined {
    return this.manifests.get(networkOf(address))?.body.authorities.find((a) => a.address === address);
  }

  relays(network: string): readonly RelayEntry[] {
    return this.manifests.get(network)?.body.relays ?? [];
  }

  /** Add a revocation signed by the network root or by the revoked key itself. */
  addRevocation(value: unknown): Revocation {
    const revocation = revocationShape.parse(value);
    const { body, signature } = revocation;
    if (networkOf(body.subject) !== body.network) fail('SCHEMA_INVALID', 'revocation subject outside its network');
    const root = this.rootOf(body.network);
    if (root && signature.kid === root.kid) {
      verifyStatementSignature(CONTEXTS.revocation, revocation, root);
    } else {
      if (signature.kid !== body.kid) fail('KEY_WRONG_ROLE', 'revocation must be signed by the root or the revoked key');
      const own = this.findKey(body.subject, body.kid);
      if (!own) return fail('KEY_UNKNOWN', `revoked key ${body.kid} is unknown`);
      verifyStatementSignature(CONTEXTS.revocation, revocation, own.key);
    }
    this.recordRevocation(body.kid, body.revokedAt, body.reason);
    return revocation;
  }

  private recordRevocation(kid: string, revokedAt: number, reason: RevocationReason): void {
    const prior = this.revoked.get(kid);
    if (!prior || revokedAt < prior.revokedAt) this.revoked.set(kid, { revokedAt, reason });
  }

  /** Add an identity key rotation; the old key must be known and valid when the rotation takes effect. */
  addKeyRotation(value: unknown): KeyRotation {
    const subject = (value as { body?: { subject?: unknown } } | null)?.body?.subject;
    if (typeof subject !== 'string') return fail('SCHEMA_INVALID', 'key rotation: missing subject');
    const oldKid = (value as { body: { oldKid?: unknown } }).body.oldKid;
    const old = typeof oldKid === 'string' ? this.findKey(subject, oldKid) : undefined;
    if (!old) return fail('KEY_UNKNOWN', 'key rotation: old key unknown');
    const rotation = verifyKeyRotation(value, old.key);
    this.assertUsable(old.key, rotation.body.effectiveAt);
    const list = this.rotatedKeys.get(subject) ?? [];
    if (!list.some((k) => k.kid === rotation.body.newKey.kid)) list.push(rotation.body.newKey);
    this.rotatedKeys.set(subject, list);
    this.supersededAt.set(old.key.kid, rotation.body.effectiveAt);
    return rotation;
  }

  /** Add an introduction by a point of contact of a trusted network. */
  addIntroduction(value: unknown): Introduction {
    const intro = introductionShape.parse(value);
    const issuer = this.resolveSigningKey(intro.body.issuer, intro.signature.kid, intro.body.issuedAt, ['poc']);
    verifyStatementSignature(CONTEXTS.introduction, intro, issuer.key);
    this.introductionList.push(intro);
    return intro;
  }

  /** Introductions naming `subject`, valid at `at`. */
  introductionsFor(subject: string, at: number): Introduction[] {
    return this.introductionList.filter((i) => i.body.subject === subject && i.body.issuedAt <= at && at < i.body.validUntil);
  }

  /**
   * The signing key `kid` of `address`, checked for use at time `at`:
   * KEY_UNKNOWN, KEY_WRONG_ROLE, KEY_NOT_YET_VALID, KEY_EXPIRED (including
   * superseded by a rotation) or KEY_REVOKED.
   */
  resolveSigningKey(address: string, kid: string, at: number, roles?: readonly Role[]): ResolvedKey {
    const found = this.findKey(address, kid);
    if (!found) return fail('KEY_UNKNOWN', `no key ${kid} for ${address}`);
    if (roles && !roles.includes(found.role)) fail('KEY_WRONG_ROLE', `${address} is not a ${roles.join(' or ')}`);
    this.assertUsable(found.key, at);
    return found;
  }

  /** Encryption keys of an authority usable at `at`, newest first. */
  encryptionKeysFor(address: string, at: number): KeyRef[] {
    const entry = this.authority(address);
    if (!entry) return fail('KEY_UNKNOWN', `unknown authority ${address}`);
    const usable = entry.encryptionKeys
      .map((c) => c.body.key)
      .filter((k) => k.notBefore <= at && at < k.notAfter && !this.isRevoked(k.kid, at));
    return usable.sort((a, b) => b.notBefore - a.notBefore);
  }

  isRevoked(kid: string, at: number): boolean {
    const r = this.revoked.get(kid);
    return r !== undefined && at >= r.revokedAt;
  }

  private assertUsable(key: KeyRef, at: number): void {
    if (this.isRevoked(key.kid, at)) fail('KEY_REVOKED', `key ${key.kid} is revoked`);
    checkKeyValidity(key, at);
    const superseded = this.supersededAt.get(key.kid);
    if (superseded !== undefined && at >= superseded) fail('KEY_EXPIRED', `key ${key.kid} was rotated out`);
  }

  private findKey(address: string, kid: string): ResolvedKey | undefined {
    const network = networkOf(address);
    const body = this.manifests.get(network)?.body;
    if (!body) return undefined;
    const entries: { address: string; role: Role; key: KeyRef }[] = [
      ...body.relays.map((r) => ({ address: r.id, role: 'relay' as const, key: r.key })),
      ...body.pocs.map((p) => ({ address: p.address, role: 'poc' as const, key: p.key })),
      ...body.authorities.map((a) => ({ address: a.address, role: 'authority' as const, key: a.key })),
    ];
    const entry = entries.find((e) => e.address === address);
    if (!entry) return undefined;
    const keys = [entry.key, ...(this.rotatedKeys.get(address) ?? [])];
    const key = keys.find((k) => k.kid === kid);
    return key ? { address, network, role: entry.role, key } : undefined;
  }
}
