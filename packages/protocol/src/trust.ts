import { networkOf } from './address.js';
import { fail } from './errors.js';
import { checkKeyValidity, type KeyRef } from './keys.js';
import { validator } from './schema.js';
import { CONTEXTS } from './signed.js';
import {
  IntroductionSchema,
  KeyRotationSchema,
  ManifestSchema,
  RevocationSchema,
  checkManifestSuccession,
  manifestHash,
  verifyKeyRotation,
  verifyManifest,
  verifyEncryptionKeyCert,
  verifyStatementSignature,
  type AuthorityEntry,
  type EncryptionKeyCert,
  type Introduction,
  type KeyRotation,
  type Manifest,
  type PocEntry,
  type RelayEntry,
  type Revocation,
  type RevocationReason,
} from './statements.js';

export type Role = 'relay' | 'poc' | 'authority';

/**
 * How long after the edition that replaces it an identity key rotated out
 * with a later `effectiveAt` stays usable at most (§6.4, §7.3): 30 days.
 */
export const ROTATION_OVERLAP_MAX_MS = 30 * 24 * 3600 * 1000;

/**
 * Who may send, receive and sign evidences about dossiers: authorities and
 * points of contact (a PoC is written to and writes like an authority, §4.1).
 */
export const DOSSIER_PARTY_ROLES: readonly Role[] = ['authority', 'poc'];

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
const rotationShape = validator(KeyRotationSchema, 'key rotation');

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
  /** Revocations per network, then per key id: a network can only revoke its own members' keys. */
  private readonly revoked = new Map<string, Map<string, RevocationRecord>>();
  /** Keys rotated in, per address, each with the key it replaced. */
  private readonly rotatedKeys = new Map<
    string,
    { key: KeyRef; oldKid: string; effectiveAt: number }[]
  >();
  private readonly supersededAt = new Map<string, number>();
  /**
   * Identity keys a later edition replaced or dropped (D6), per address, with
   * the role they had: they stay resolvable for times before `until` (the
   * replacing edition's `issuedAt`, or an earlier rotation's `effectiveAt`).
   */
  private readonly retiredKeys = new Map<string, { role: Role; key: KeyRef; until: number }[]>();
  /** Encryption keys of every edition seen, per address then kid: dropped certificates stay known for opening archives. */
  private readonly knownEncryptionKeys = new Map<string, Map<string, KeyRef>>();
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
  addManifest(value: unknown, options: { now?: number } = {}): boolean {
    const network = manifestShape.parse(value).body.network;
    const root = this.rootOf(network);
    if (!root) return fail('TRUST_CHAIN_BROKEN', `no trusted root for network ${network}`);
    const manifest = verifyManifest(value, root);
    if (options.now !== undefined && options.now >= manifest.body.validUntil)
      fail('MANIFEST_EXPIRED', `manifest ${network} v${manifest.body.version} has expired`);
    const held = this.manifests.get(network);
    if (held) {
      if (
        manifest.body.version === held.body.version &&
        manifestHash(manifest) === manifestHash(held)
      )
        return false;
      checkManifestSuccession(held, manifest);
      this.retireReplacedKeys(held, manifest);
    }
    this.manifests.set(network, manifest);
    for (const member of [...manifest.body.pocs, ...manifest.body.authorities]) {
      const known = this.knownEncryptionKeys.get(member.address) ?? new Map<string, KeyRef>();
      for (const cert of member.encryptionKeys) known.set(cert.body.key.kid, cert.body.key);
      this.knownEncryptionKeys.set(member.address, known);
    }
    for (const r of manifest.body.revoked)
      this.recordRevocation(network, r.kid, r.revokedAt, r.reason);
    if (this.pinned.has(network)) {
      for (const peer of manifest.body.peers) {
        if (this.pinned.has(peer.network)) continue;
        const known = this.anchors.get(peer.network);
        if (known && known.kid !== peer.root.kid)
          fail('TRUST_CHAIN_BROKEN', `conflicting anchors for ${peer.network}`);
        this.anchors.set(peer.network, peer.root);
      }
    }
    return true;
  }

  /**
   * Keep the identity keys `next` replaces or drops (§7.3 step 6a): each
   * stays resolvable for times before `next.body.issuedAt`, or, for a key a
   * rotation replaced, before the rotation's `effectiveAt` (earlier or later
   * than the edition; later by at most ROTATION_OVERLAP_MAX_MS).
   */
  private retireReplacedKeys(held: Manifest, next: Manifest): void {
    const current = new Map(membersOf(next).map((m) => [m.address, m.key.kid]));
    const listedKids = new Set(membersOf(next).map((m) => m.key.kid));
    for (const member of membersOf(held)) {
      if (current.get(member.address) === member.key.kid) continue;
      if (listedKids.has(member.key.kid)) continue;
      // A rotation states when its old key stops (§6.4): an edition that confirms it
      // before then does not cut the overlap short, up to ROTATION_OVERLAP_MAX_MS.
      const rotatedAt = this.supersededAt.get(member.key.kid);
      const until =
        rotatedAt === undefined
          ? next.body.issuedAt
          : Math.min(rotatedAt, next.body.issuedAt + ROTATION_OVERLAP_MAX_MS);
      const list = this.retiredKeys.get(member.address) ?? [];
      if (!list.some((r) => r.key.kid === member.key.kid))
        list.push({ role: member.role, key: member.key, until });
      this.retiredKeys.set(member.address, list);
      this.supersededAt.set(member.key.kid, until);
    }
  }

  /**
   * An encryption key of `address` by key id, from the current edition or an
   * earlier one (D6): for opening archives sealed to a key since dropped.
   * Validity and revocation are not checked: this is a lookup for reading,
   * never for sealing (use `encryptionKeysFor`).
   */
  encryptionKeyByKid(address: string, kid: string): KeyRef | undefined {
    return this.knownEncryptionKeys.get(address)?.get(kid);
  }

  /** The revocation of `kid` by `network`, if any (earliest `revokedAt` seen). */
  revocationOf(
    kid: string,
    network: string,
  ): { readonly revokedAt: number; readonly reason: RevocationReason } | undefined {
    return this.revoked.get(network)?.get(kid);
  }

  /**
   * Identity keys known for `address`: the listed one, rotated-in ones and
   * those earlier editions listed (D6), each with the time from which it is
   * superseded (absent while current).
   */
  identityKeysOf(address: string): { key: KeyRef; supersededAt?: number }[] {
    const found = this.memberEntry(address);
    const keys = [
      ...(found ? [found.key] : []),
      ...(this.rotatedKeys.get(address) ?? []).map((r) => r.key),
      ...(this.retiredKeys.get(address) ?? []).map((r) => r.key),
    ];
    const seen = new Set<string>();
    return keys
      .filter((k) => !seen.has(k.kid) && seen.add(k.kid))
      .map((key) => {
        const at = this.supersededAt.get(key.kid);
        return at === undefined ? { key } : { key, supersededAt: at };
      });
  }

  manifest(network: string): Manifest | undefined {
    return this.manifests.get(network);
  }

  networks(): string[] {
    return [...this.manifests.keys()];
  }

  authority(address: string): AuthorityEntry | undefined {
    return this.manifests
      .get(networkOf(address))
      ?.body.authorities.find((a) => a.address === address);
  }

  poc(address: string): PocEntry | undefined {
    return this.manifests.get(networkOf(address))?.body.pocs.find((p) => p.address === address);
  }

  relays(network: string): readonly RelayEntry[] {
    return this.manifests.get(network)?.body.relays ?? [];
  }

  /** Add a revocation signed by the network root or by the revoked key itself. */
  addRevocation(value: unknown): Revocation {
    const revocation = revocationShape.parse(value);
    const { body, signature } = revocation;
    if (networkOf(body.subject) !== body.network)
      fail('SCHEMA_INVALID', 'revocation subject outside its network');
    const root = this.rootOf(body.network);
    if (root && signature.kid === root.kid) {
      verifyStatementSignature(CONTEXTS.revocation, revocation, root);
      if (!this.findKey(body.subject, body.kid))
        fail('KEY_UNKNOWN', `revoked key ${body.kid} is not a key of ${body.subject}`);
    } else {
      if (signature.kid !== body.kid)
        fail('KEY_WRONG_ROLE', 'revocation must be signed by the root or the revoked key');
      const own = this.findKey(body.subject, body.kid);
      if (!own) return fail('KEY_UNKNOWN', `revoked key ${body.kid} is unknown`);
      verifyStatementSignature(CONTEXTS.revocation, revocation, own.key);
    }
    this.recordRevocation(body.network, body.kid, body.revokedAt, body.reason);
    return revocation;
  }

  private recordRevocation(
    network: string,
    kid: string,
    revokedAt: number,
    reason: RevocationReason,
  ): void {
    const map = this.revoked.get(network) ?? new Map<string, RevocationRecord>();
    const prior = map.get(kid);
    if (!prior || revokedAt < prior.revokedAt) map.set(kid, { revokedAt, reason });
    this.revoked.set(network, map);
  }

  /** Add an identity key rotation; the old key must be known and valid when the rotation takes effect. */
  addKeyRotation(value: unknown): KeyRotation {
    const { body } = rotationShape.parse(value);
    const old = this.findKey(body.subject, body.oldKid);
    if (!old) return fail('KEY_UNKNOWN', 'key rotation: old key unknown');
    const rotation = verifyKeyRotation(value, old.key);
    this.assertUsable(old.key, rotation.body.effectiveAt, old.network);
    const list = this.rotatedKeys.get(body.subject) ?? [];
    if (!list.some((k) => k.key.kid === rotation.body.newKey.kid))
      list.push({
        key: rotation.body.newKey,
        oldKid: old.key.kid,
        effectiveAt: rotation.body.effectiveAt,
      });
    this.rotatedKeys.set(body.subject, list);
    this.supersededAt.set(old.key.kid, rotation.body.effectiveAt);
    return rotation;
  }

  /** Add an introduction by a point of contact of a trusted network. */
  addIntroduction(value: unknown): Introduction {
    const intro = introductionShape.parse(value);
    if (intro.body.validUntil <= intro.body.issuedAt)
      fail('SCHEMA_INVALID', 'introduction: validUntil before issuedAt');
    const issuer = this.resolveSigningKey(
      intro.body.issuer,
      intro.signature.kid,
      intro.body.issuedAt,
      ['poc'],
    );
    verifyStatementSignature(CONTEXTS.introduction, intro, issuer.key);
    const listed = this.authority(intro.body.subject);
    if (
      listed &&
      listed.key.kid !== intro.body.subjectKey.kid &&
      !this.findKey(intro.body.subject, intro.body.subjectKey.kid)
    ) {
      fail('TRUST_CHAIN_BROKEN', 'introduction names a key the subject network does not list');
    }
    this.introductionList.push(intro);
    return intro;
  }

  /** Every verified introduction, in the order added (a directory filters them by audience and validity). */
  introductions(): readonly Introduction[] {
    return [...this.introductionList];
  }

  /** Introductions naming `subject`, valid at `at`. */
  introductionsFor(subject: string, at: number): Introduction[] {
    return this.introductionList.filter(
      (i) => i.body.subject === subject && i.body.issuedAt <= at && at < i.body.validUntil,
    );
  }

  /**
   * The signing key `kid` of `address`, checked for use at time `at`:
   * KEY_UNKNOWN, KEY_WRONG_ROLE, KEY_NOT_YET_VALID, KEY_EXPIRED (including
   * superseded by a rotation) or KEY_REVOKED.
   */
  resolveSigningKey(
    address: string,
    kid: string,
    at: number,
    roles?: readonly Role[],
  ): ResolvedKey {
    const found = this.findKey(address, kid);
    if (!found) return fail('KEY_UNKNOWN', `no key ${kid} for ${address}`);
    if (roles && !roles.includes(found.role))
      fail('KEY_WRONG_ROLE', `${address} is not a ${roles.join(' or ')}`);
    this.assertUsable(found.key, at, found.network);
    // A rotated-in key is only as good as the key that rotated it: revoking the old key
    // as of (or before) the rotation also voids every key it introduced.
    let link = (this.rotatedKeys.get(address) ?? []).find((r) => r.key.kid === found.key.kid);
    const seen = new Set<string>();
    while (link && !seen.has(link.oldKid)) {
      seen.add(link.oldKid);
      if (this.isRevoked(link.oldKid, link.effectiveAt, found.network))
        fail('KEY_REVOKED', `key ${found.key.kid} was rotated in by a revoked key`);
      const oldKid = link.oldKid;
      link = (this.rotatedKeys.get(address) ?? []).find((r) => r.key.kid === oldKid);
    }
    return found;
  }

  /** Encryption keys of an authority or a point of contact usable at `at`, newest first. */
  encryptionKeysFor(address: string, at: number): KeyRef[] {
    const entry = this.authority(address) ?? this.poc(address);
    if (!entry) return fail('KEY_UNKNOWN', `unknown recipient ${address}`);
    const usable = entry.encryptionKeys
      .map((c) => c.body.key)
      .filter(
        (k) =>
          k.notBefore <= at && at < k.notAfter && !this.isRevoked(k.kid, at, networkOf(address)),
      );
    return usable.sort((a, b) => b.notBefore - a.notBefore);
  }

  /** Whether network `network` revoked key `kid` at or before `at`. */
  isRevoked(kid: string, at: number, network?: string): boolean {
    const maps = network === undefined ? [...this.revoked.values()] : [this.revoked.get(network)];
    return maps.some((m) => {
      const r = m?.get(kid);
      return r !== undefined && at >= r.revokedAt;
    });
  }

  private assertUsable(key: KeyRef, at: number, network?: string): void {
    if (this.isRevoked(key.kid, at, network)) fail('KEY_REVOKED', `key ${key.kid} is revoked`);
    checkKeyValidity(key, at);
    const superseded = this.supersededAt.get(key.kid);
    if (superseded !== undefined && at >= superseded)
      fail('KEY_EXPIRED', `key ${key.kid} was rotated out`);
  }

  private memberEntry(address: string): Member | undefined {
    const manifest = this.manifests.get(networkOf(address));
    return manifest ? membersByAddress(manifest).get(address) : undefined;
  }

  private findKey(address: string, kid: string): ResolvedKey | undefined {
    const network = networkOf(address);
    if (!this.manifests.has(network)) return undefined;
    const entry = this.memberEntry(address);
    const retired = this.retiredKeys.get(address) ?? [];
    if (entry) {
      const keys = [entry.key, ...(this.rotatedKeys.get(address) ?? []).map((r) => r.key)];
      const key = keys.find((k) => k.kid === kid);
      if (key) return { address, network, role: entry.role, key };
    }
    // D6: a key an earlier edition listed (the edition's role); supersededAt bounds its use.
    const old = retired.find((r) => r.key.kid === kid);
    return old ? { address, network, role: old.role, key: old.key } : undefined;
  }
}

interface Member {
  readonly address: string;
  readonly role: Role;
  readonly key: KeyRef;
}

/**
 * A manifest's members by address, built once per manifest object (every
 * signature check looks its signer up; a manifest is never changed in
 * place, a new edition is a new object). The first entry of an address
 * wins, as a search in `membersOf` order would find it.
 */
const memberIndex = new WeakMap<Manifest, ReadonlyMap<string, Member>>();

function membersByAddress(manifest: Manifest): ReadonlyMap<string, Member> {
  let index = memberIndex.get(manifest);
  if (index === undefined) {
    const built = new Map<string, Member>();
    for (const member of membersOf(manifest))
      if (!built.has(member.address)) built.set(member.address, member);
    index = built;
    memberIndex.set(manifest, index);
  }
  return index;
}

function membersOf(manifest: Manifest): Member[] {
  const body = manifest.body;
  return [
    ...body.relays.map((r) => ({ address: r.id, role: 'relay' as const, key: r.key })),
    ...body.pocs.map((p) => ({ address: p.address, role: 'poc' as const, key: p.key })),
    ...body.authorities.map((a) => ({
      address: a.address,
      role: 'authority' as const,
      key: a.key,
    })),
  ];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Verify an encryption-key certificate presented on its own (not inside a
 * manifest): resolve its subject's identity key at `now` from the trust
 * store, then `verifyEncryptionKeyCert` against it. The order is normative
 * (docs/protocol.md §6.1): a certificate without an object `body` with a
 * string `subject`, or without an object `signature` with a string `kid`, is
 * SCHEMA_INVALID before anything is looked up; then the key resolution codes
 * (ADDRESS_INVALID for a subject that is not an address, KEY_*; the subject
 * must be an authority or a point of contact); then the
 * certificate's own schema and signature.
 */
export function verifyStandaloneCertificate(
  value: unknown,
  trust: TrustStore,
  now: number,
): EncryptionKeyCert {
  if (
    !isObject(value) ||
    !isObject(value['body']) ||
    typeof value['body']['subject'] !== 'string' ||
    !isObject(value['signature']) ||
    typeof value['signature']['kid'] !== 'string'
  ) {
    return fail(
      'SCHEMA_INVALID',
      'encryption key certificate: body.subject and signature.kid must be strings',
    );
  }
  const identity = trust.resolveSigningKey(
    value['body']['subject'],
    value['signature']['kid'],
    now,
    ['authority', 'poc'],
  );
  return verifyEncryptionKeyCert(value, identity.key);
}
