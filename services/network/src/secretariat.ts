import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Type } from 'typebox';
import {
  AddressSchema,
  AuthorityEntrySchema,
  KDF_LIMITS,
  KeyRefSchema,
  NetworkIdSchema,
  PocEntrySchema,
  RelayEntrySchema,
  RevokedKeySchema,
  canonicalBytes,
  generateSigningKeyPair,
  isProtocolError,
  keyRef,
  manifestHash,
  networkOf,
  openSigningKeyAsync,
  publicKeyOf,
  ready,
  sealSigningKey,
  sha256,
  hashOf,
  logEntryFor,
  signCheckpoint,
  signManifest,
  signRevocation,
  toBase64,
  toHex,
  validator,
  verifyEncryptionKeyCert,
  verifyManifest,
  type AuthorityEntry,
  type KeyRef,
  type LogEntryKind,
  type Manifest,
  type PocEntry,
  type RevocationReason,
} from '@rogatory/protocol';
import { mapProtocol, networkFail } from './errors.js';
import {
  MAX_PUBLICATION_ENTRIES,
  allEntries,
  beginPublication,
  completePublication,
  crashAt,
  publicationFile,
  queueLength,
  readQueue,
  requestKey,
  withLog,
  writeQueue,
  type CrashPoint,
  type Journal,
  type LoggedStatement,
} from './log.js';
import {
  FILES,
  baseOf,
  editionFile,
  readConfig,
  readDraft,
  readEditions,
  readJsonFile,
  writeDraft,
  writeFileAtomic,
  type Draft,
  type SecretariatConfig,
} from './folder.js';

const DAY = 86_400_000;
const ROOT_PURPOSE = 'network-root';
/** A root key guards a whole network: a longer passphrase than the protocol's minimum of 8. */
export const MIN_ROOT_PASSPHRASE = 12;

export type KdfLevel = keyof typeof KDF_LIMITS;

// ---------------------------------------------------------------- init

export interface InitOptions {
  readonly dir: string;
  readonly network: string;
  readonly passphrase: string;
  /** Argon2id work factors of the sealed root key; default moderate. */
  readonly kdf?: KdfLevel;
  /** Validity of the root key; default 10 years. */
  readonly rootValidDays?: number;
  readonly clock?: () => number;
}

export interface Anchor {
  readonly type: 'rogatory-anchor';
  readonly network: string;
  readonly root: KeyRef;
  /** Grouped hex of SHA-256 of the canonical root KeyRef: what two secretariats read to each other. */
  readonly fingerprint: string;
}

/** Create a secretariat folder: a fresh root key sealed with the passphrase, an empty draft. */
export async function initSecretariat(options: InitOptions): Promise<Anchor> {
  await ready();
  const dir = resolve(options.dir);
  if (!validator(NetworkIdSchema, 'network').check(options.network))
    networkFail('INPUT_INVALID', '--network must be a network id (lowercase letters, digits, -)');
  if (options.passphrase.length < MIN_ROOT_PASSPHRASE)
    networkFail(
      'INPUT_INVALID',
      `the passphrase must have at least ${MIN_ROOT_PASSPHRASE} characters`,
    );
  const days = options.rootValidDays ?? 3650;
  if (!Number.isInteger(days) || days < 1 || days > 36_500)
    networkFail('INPUT_INVALID', '--root-valid-days must be 1..36500');
  await mkdir(dir, { recursive: true });
  const present = await readdir(dir);
  if (present.includes(FILES.config) || present.includes(FILES.rootKey))
    networkFail('SECRETARIAT_EXISTS', `${dir} already holds a secretariat`);
  const now = (options.clock ?? Date.now)();
  const key = generateSigningKeyPair();
  try {
    const root = keyRef(key, { notBefore: now, notAfter: now + days * DAY });
    const sealed = sealSigningKey(key, {
      passphrase: options.passphrase,
      purpose: ROOT_PURPOSE,
      limits: KDF_LIMITS[options.kdf ?? 'moderate'],
    });
    // 'wx': two inits racing in one folder cannot both write a root.
    await writeFile(join(dir, FILES.rootKey), `${JSON.stringify(sealed, null, 2)}\n`, {
      mode: 0o600,
      flag: 'wx',
    });
    await mkdir(join(dir, FILES.editions), { recursive: true });
    const draft: Draft = {
      basedOn: null,
      relays: [],
      pocs: [],
      authorities: [],
      peers: [],
      revoked: [],
    };
    await writeDraft(dir, draft);
    const config: SecretariatConfig = {
      format: 'rogatory-secretariat',
      version: 1,
      network: options.network,
      root,
      createdAt: now,
    };
    // network.json last: its presence marks a complete secretariat.
    await writeFileAtomic(join(dir, FILES.config), `${JSON.stringify(config, null, 2)}\n`);
    return anchorOf(config);
  } finally {
    key.secretKey.fill(0);
  }
}

// ---------------------------------------------------------------- anchors

/**
 * Grouped lowercase hex (groups of 4) of SHA-256 of the canonical
 * `{ network, root }`: the network id is inside, so a genuine root relabelled
 * as another network's anchor does not match what was read out of band.
 */
export function fingerprintOf(network: string, root: KeyRef): string {
  return toHex(sha256(canonicalBytes({ network, root }))).replace(/(.{4})(?!$)/g, '$1 ');
}

function normaliseFingerprint(value: string): string {
  return value.replace(/[\s:-]/g, '').toLowerCase();
}

export function anchorOf(config: SecretariatConfig): Anchor {
  return {
    type: 'rogatory-anchor',
    network: config.network,
    root: config.root,
    fingerprint: fingerprintOf(config.network, config.root),
  };
}

export async function exportAnchor(dir: string): Promise<Anchor> {
  await ready();
  return anchorOf(await readConfig(resolve(dir)));
}

const AnchorSchema = Type.Object(
  {
    type: Type.Literal('rogatory-anchor'),
    network: NetworkIdSchema,
    root: KeyRefSchema,
    fingerprint: Type.String({ maxLength: 200 }),
  },
  { additionalProperties: false },
);

export interface AddPeerOptions {
  readonly dir: string;
  /** The other secretariat's `anchor export --json` output. */
  readonly anchorFile: string;
  /** The fingerprint read out of band (phone, meeting): must match the anchor's root. */
  readonly fingerprint: string;
  /** A direct peer (the hub) through which this peer is reached; default none (direct link). */
  readonly via?: string;
}

/**
 * Import another network's anchor into the draft. The fingerprint written in
 * the file proves nothing (whoever altered the root could alter it too): only
 * the one compared out of band counts.
 */
export async function addPeer(
  options: AddPeerOptions,
): Promise<{ network: string; root: KeyRef; via: string | null }> {
  await ready();
  const dir = resolve(options.dir);
  const config = await readConfig(dir);
  const value = await readJsonFile(options.anchorFile, 'the anchor file');
  const anchor = mapProtocol('INPUT_INVALID', `the anchor file ${options.anchorFile}`, () => {
    const parsed = validator(AnchorSchema, 'anchor').parse(value);
    publicKeyOf(parsed.root);
    return parsed;
  });
  if (anchor.root.alg !== 'ed25519')
    networkFail(
      'INPUT_INVALID',
      `the anchor file ${options.anchorFile}: /root/alg must be ed25519`,
    );
  if (
    normaliseFingerprint(options.fingerprint) !==
    normaliseFingerprint(fingerprintOf(anchor.network, anchor.root))
  )
    networkFail(
      'FINGERPRINT_MISMATCH',
      `the root of ${anchor.network} does not have the fingerprint given with --fingerprint`,
    );
  if (anchor.network === config.network)
    networkFail('INPUT_INVALID', 'a network cannot peer with itself');
  const draft = await readDraft(dir);
  if (draft.peers.some((p) => p.network === anchor.network))
    networkFail('MEMBER_EXISTS', `peer ${anchor.network} is listed already`);
  const via = options.via ?? null;
  if (via !== null && !draft.peers.some((p) => p.network === via && p.via === null))
    networkFail(
      'INPUT_INVALID',
      `--via ${via} is not a direct peer of this network (add it first)`,
    );
  assertKidFree(config, draft, anchor.root.kid);
  const entry = { network: anchor.network, root: anchor.root, via };
  draft.peers.push(entry);
  await writeDraft(dir, draft);
  return entry;
}

// ---------------------------------------------------------------- members

/** Identity KeyRef + encryption-key certificate, as `rogatory init` prints them. */
export interface MemberKeys {
  /** Where they came from, for messages: e.g. "--from init.json". */
  readonly source: { readonly identity: string; readonly certificate: string };
  readonly identity: unknown;
  readonly certificate: unknown;
}

/** Read member keys from `rogatory init --json` output, or from two files. */
export async function readMemberKeys(files: {
  from?: string;
  identity?: string;
  certificate?: string;
}): Promise<MemberKeys> {
  if (files.from !== undefined) {
    if (files.identity !== undefined || files.certificate !== undefined)
      networkFail('INPUT_INVALID', 'give --from, or --identity with --certificate, not both');
    const value = await readJsonFile(files.from, 'the --from file');
    const obj =
      typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
    return {
      source: {
        identity: `--from ${files.from} (field identity)`,
        certificate: `--from ${files.from} (field encryptionCertificate)`,
      },
      identity: obj['identity'],
      certificate: obj['encryptionCertificate'],
    };
  }
  if (files.identity === undefined || files.certificate === undefined)
    return networkFail(
      'INPUT_INVALID',
      'give --from <rogatory init --json output>, or --identity and --certificate',
    );
  return {
    source: {
      identity: `--identity ${files.identity}`,
      certificate: `--certificate ${files.certificate}`,
    },
    identity: await readJsonFile(files.identity, 'the --identity file'),
    certificate: await readJsonFile(files.certificate, 'the --certificate file'),
  };
}

/** Check an identity KeyRef and its encryption-key certificate; the certificate's subject is the member's address. */
function checkMemberKeys(config: SecretariatConfig, keys: MemberKeys) {
  const identity = mapProtocol('INPUT_INVALID', keys.source.identity, () => {
    const ref = validator(KeyRefSchema, 'identity key').parse(keys.identity);
    publicKeyOf(ref);
    return ref;
  });
  if (identity.alg !== 'ed25519')
    networkFail('INPUT_INVALID', `${keys.source.identity}: /alg must be ed25519`);
  if (identity.notAfter <= identity.notBefore)
    networkFail('INPUT_INVALID', `${keys.source.identity}: /notAfter must be after /notBefore`);
  const certificate = mapProtocol('INPUT_INVALID', keys.source.certificate, () =>
    verifyEncryptionKeyCert(keys.certificate, identity),
  );
  const address = certificate.body.subject;
  if (networkOf(address) !== config.network)
    networkFail(
      'INPUT_INVALID',
      `${keys.source.certificate}: /body/subject ${address} is not in network ${config.network}`,
    );
  return { address, identity, certificate };
}

function memberAddresses(draft: Draft): string[] {
  return [
    ...draft.relays.map((r) => r.id),
    ...draft.pocs.map((p) => p.address),
    ...draft.authorities.map((a) => a.address),
  ];
}

function assertAddressFree(draft: Draft, address: string): void {
  if (memberAddresses(draft).includes(address))
    networkFail('MEMBER_EXISTS', `${address} is listed already`);
}

export function assertKidFree(config: SecretariatConfig, draft: Draft, kid: string): void {
  const kids = [
    config.root.kid,
    ...draft.relays.map((r) => r.key.kid),
    ...draft.pocs.flatMap((p) => [p.key.kid, ...p.encryptionKeys.map((c) => c.body.key.kid)]),
    ...draft.authorities.flatMap((a) => [
      a.key.kid,
      ...a.encryptionKeys.map((c) => c.body.key.kid),
    ]),
    ...draft.peers.map((p) => p.root.kid),
    // A revoked key stays revoked: it cannot come back under a new entry.
    ...draft.revoked.map((r) => r.kid),
  ];
  if (kids.includes(kid)) networkFail('MEMBER_EXISTS', `key ${kid} is listed already`);
}

const authorityShape = validator(AuthorityEntrySchema, 'authority entry');
const pocShape = validator(PocEntrySchema, 'poc entry');
const relayShape = validator(RelayEntrySchema, 'relay entry');

export interface AddAuthorityOptions {
  readonly dir: string;
  readonly keys: MemberKeys;
  readonly name: string;
  readonly country: string;
  readonly competences: readonly string[];
  readonly languages: readonly string[];
}

export async function addAuthority(options: AddAuthorityOptions): Promise<AuthorityEntry> {
  const dir = resolve(options.dir);
  const config = await readConfig(dir);
  await ready();
  const { address, identity, certificate } = checkMemberKeys(config, options.keys);
  const entry = mapProtocol(
    'INPUT_INVALID',
    'the authority entry (--name, --country, --competences, --languages)',
    () =>
      authorityShape.parse({
        address,
        name: options.name,
        country: options.country,
        competences: options.competences,
        languages: options.languages,
        key: identity,
        encryptionKeys: [certificate],
      }),
  );
  const draft = await readDraft(dir);
  assertAddressFree(draft, address);
  assertKidFree(config, draft, identity.kid);
  assertKidFree(config, draft, certificate.body.key.kid);
  draft.authorities.push(entry);
  await writeDraft(dir, draft);
  return entry;
}

export interface AddPocOptions {
  readonly dir: string;
  readonly keys: MemberKeys;
  readonly name: string;
  readonly country: string;
}

export async function addPoc(options: AddPocOptions): Promise<PocEntry> {
  const dir = resolve(options.dir);
  const config = await readConfig(dir);
  await ready();
  const { address, identity, certificate } = checkMemberKeys(config, options.keys);
  const entry = mapProtocol('INPUT_INVALID', 'the PoC entry (--name, --country)', () =>
    pocShape.parse({
      address,
      name: options.name,
      country: options.country,
      key: identity,
      encryptionKeys: [certificate],
    }),
  );
  const draft = await readDraft(dir);
  assertAddressFree(draft, address);
  assertKidFree(config, draft, identity.kid);
  assertKidFree(config, draft, certificate.body.key.kid);
  draft.pocs.push(entry);
  await writeDraft(dir, draft);
  return entry;
}

export interface AddRelayOptions {
  readonly dir: string;
  /** The KeyRef `rogatory-relay keygen` printed. */
  readonly keyFile: string;
  readonly url: string;
  /** Default `relay@<network>`. */
  readonly id?: string;
}

export async function addRelay(options: AddRelayOptions) {
  const dir = resolve(options.dir);
  const config = await readConfig(dir);
  await ready();
  const value = await readJsonFile(options.keyFile, 'the --key file');
  const key = mapProtocol('INPUT_INVALID', `--key ${options.keyFile}`, () => {
    const ref = validator(KeyRefSchema, 'relay key').parse(value);
    publicKeyOf(ref);
    return ref;
  });
  if (key.alg !== 'ed25519')
    networkFail('INPUT_INVALID', `--key ${options.keyFile}: /alg must be ed25519`);
  if (key.notAfter <= key.notBefore)
    networkFail('INPUT_INVALID', `--key ${options.keyFile}: /notAfter must be after /notBefore`);
  const id = options.id ?? `relay@${config.network}`;
  if (!validator(AddressSchema, 'id').check(id) || networkOf(id) !== config.network)
    networkFail('INPUT_INVALID', `--id must be an address in network ${config.network}`);
  const entry = mapProtocol('INPUT_INVALID', 'the relay entry (--url, --id)', () =>
    relayShape.parse({ id, url: options.url, key }),
  );
  const draft = await readDraft(dir);
  assertAddressFree(draft, id);
  assertKidFree(config, draft, key.kid);
  draft.relays.push(entry);
  await writeDraft(dir, draft);
  return entry;
}

/**
 * Remove a relay, PoC or authority from the draft (its revocations stay).
 * This is how a member whose keys were revoked is admitted again with new
 * keys: revoke, remove, add.
 */
export async function removeMember(options: {
  readonly dir: string;
  readonly address: string;
}): Promise<{ address: string; role: 'relay' | 'poc' | 'authority' }> {
  const dir = resolve(options.dir);
  await readConfig(dir);
  const draft = await readDraft(dir);
  const { address } = options;
  const role = draft.relays.some((r) => r.id === address)
    ? 'relay'
    : draft.pocs.some((p) => p.address === address)
      ? 'poc'
      : draft.authorities.some((a) => a.address === address)
        ? 'authority'
        : networkFail('MEMBER_NOT_FOUND', `no member ${address} in the draft`);
  await writeDraft(dir, {
    ...draft,
    relays: draft.relays.filter((r) => r.id !== address),
    pocs: draft.pocs.filter((p) => p.address !== address),
    authorities: draft.authorities.filter((a) => a.address !== address),
  });
  return { address, role };
}

// ---------------------------------------------------------------- revocation

export const REVOCATION_REASONS = [
  'key-compromise',
  'superseded',
  'cessation-of-operation',
  'affiliation-changed',
] as const;

export interface RevokeOptions {
  readonly dir: string;
  /** A key id, or a member address (then its identity key and every encryption key it lists). */
  readonly target: string;
  readonly reason: string;
  /** Uses at or after this instant are invalid; for key-compromise, the earliest suspected compromise. Default now. */
  readonly revokedAt?: number;
  readonly clock?: () => number;
}

/** Add revocations to the draft; they take effect when the next edition is published. */
export async function revoke(
  options: RevokeOptions,
): Promise<{ kid: string; reason: RevocationReason; revokedAt: number }[]> {
  const dir = resolve(options.dir);
  const config = await readConfig(dir);
  const reason = options.reason as RevocationReason;
  if (!REVOCATION_REASONS.includes(reason))
    networkFail('INPUT_INVALID', `--reason must be one of ${REVOCATION_REASONS.join(', ')}`);
  const revokedAt = options.revokedAt ?? (options.clock ?? Date.now)();
  const draft = await readDraft(dir);
  const members = [
    ...draft.relays.map((r) => ({ address: r.id, kids: [r.key.kid] })),
    ...[...draft.pocs, ...draft.authorities].map((m) => ({
      address: m.address,
      kids: [m.key.kid, ...m.encryptionKeys.map((c) => c.body.key.kid)],
    })),
  ];
  if (options.target === config.root.kid)
    networkFail(
      'INPUT_INVALID',
      'the root key cannot be revoked by an edition it signs (root rotation is not part of version 1)',
    );
  const byAddress = members.find((m) => m.address === options.target);
  const kids = byAddress
    ? byAddress.kids
    : members.some((m) => m.kids.includes(options.target))
      ? [options.target]
      : [];
  if (kids.length === 0)
    networkFail('MEMBER_NOT_FOUND', `no member or key ${options.target} in the draft`);
  const fresh = kids.filter((kid) => !draft.revoked.some((r) => r.kid === kid));
  if (fresh.length === 0) networkFail('ALREADY_REVOKED', `${options.target} is revoked already`);
  const entries = fresh.map((kid) => ({ kid, reason, revokedAt }));
  mapProtocol('INPUT_INVALID', '--at', () =>
    entries.forEach((e) => validator(RevokedKeySchema, 'revocation').parse(e)),
  );
  // Keys readers know (listed in the current edition) also get a Revocation
  // statement in the log, signed by the root at the next publish; a key only
  // in the draft is revoked by the edition alone.
  const last = (await readEditions(dir, config)).at(-1);
  const listed = (kid: string): string | undefined => {
    if (!last) return undefined;
    const b = last.body;
    return (
      b.relays.find((r) => r.key.kid === kid)?.id ??
      [...b.pocs, ...b.authorities].find(
        (m) => m.key.kid === kid || m.encryptionKeys.some((c) => c.body.key.kid === kid),
      )?.address
    );
  };
  await withLog(dir, config, async () => {
    const queue = await readQueue(dir);
    for (const e of entries) {
      const subject = listed(e.kid);
      if (subject !== undefined && !queue.revocationRequests.some((r) => r.kid === e.kid))
        queue.revocationRequests.push({ subject, kid: e.kid, reason, revokedAt });
    }
    if (queueLength(queue) >= MAX_PUBLICATION_ENTRIES)
      networkFail(
        'QUEUE_FULL',
        `the next publication would hold more than ${MAX_PUBLICATION_ENTRIES} entries`,
      );
    await writeQueue(dir, queue);
    draft.revoked.push(...entries);
    await writeDraft(dir, draft);
  });
  return entries;
}

// ---------------------------------------------------------------- publish

export interface PublishOptions {
  readonly dir: string;
  readonly passphrase: string;
  /** validUntil = issuedAt + validDays. */
  readonly validDays: number;
  /** Publish the queued statements without a new edition. */
  readonly statementsOnly?: boolean;
  readonly clock?: () => number;
  /** Tests: fail on purpose after this step (crash safety). */
  readonly crash?: CrashPoint;
}

export interface PublishResult {
  /** The new edition, or null with statementsOnly. */
  readonly manifest: Manifest | null;
  readonly version: number | null;
  readonly hash: string | null;
  /** The edition file, or null. */
  readonly file: string | null;
  /** The publication file and what it covers. */
  readonly publication: {
    readonly file: string;
    readonly size: number;
    readonly previousSize: number;
    readonly entries: { index: number; kind: LogEntryKind }[];
  };
}

/**
 * Publish: the statements queued since the last publish, then (unless
 * statementsOnly) the next edition signed from the draft (version + 1,
 * previous = hash of the last edition, issuedAt now), appended to the log
 * in the D1 order; the checkpoint signed by the root; the Publication
 * written to publications/. Editions published before the folder had a log
 * are appended first. Refuses (nothing written) when the editions are not
 * one chain (EDITION_CHAIN_BROKEN), the draft was based on another edition
 * (DRAFT_STALE), on a wrong passphrase (PASSPHRASE_INVALID), an invalid
 * draft (DRAFT_INVALID), or nothing to publish with statementsOnly.
 *
 * Crash safety: everything is signed first (edition, root-signed
 * revocations, and the checkpoint of the tree the append will give, from
 * `log.preview`), then written to publishing.json; then the log append;
 * then the edition and publication files. Any command that opens the log
 * finishes an interrupted publish from publishing.json
 * (`completePublication`), so neither a log entry without its files nor an
 * edition file without its log entry survives.
 */
export async function publishEdition(options: PublishOptions): Promise<PublishResult> {
  await ready();
  const dir = resolve(options.dir);
  const config = await readConfig(dir);
  const statementsOnly = options.statementsOnly === true;
  if (
    !statementsOnly &&
    (!Number.isInteger(options.validDays) || options.validDays < 1 || options.validDays > 3650)
  )
    networkFail('INPUT_INVALID', '--valid-days must be 1..3650');
  return withLog(dir, config, async (log) => {
    const editions = await readEditions(dir, config);
    const last = editions.at(-1);
    const draft = await readDraft(dir);
    const base = baseOf(last);
    if (
      !statementsOnly &&
      (draft.basedOn?.version !== base?.version || draft.basedOn?.hash !== base?.hash)
    )
      networkFail(
        'DRAFT_STALE',
        `the draft is based on edition ${draft.basedOn?.version ?? 'none'} but the last edition is ${base?.version ?? 'none'}`,
      );
    const queue = await readQueue(dir);
    // Editions published before the folder had a log go in first, in order.
    const loggedManifests = allEntries(log).filter((e) => e.kind === 'manifest');
    loggedManifests.forEach((e, i) => {
      if (editions[i] === undefined || hashOf(editions[i]) !== e.hash)
        networkFail(
          'LOG_INVALID',
          `${FILES.log}: manifest entry ${i + 1} is not editions/${editionFile(i + 1)}`,
        );
    });
    const backfill = editions.slice(loggedManifests.length);
    if (statementsOnly && queueLength(queue) === 0 && backfill.length === 0)
      networkFail('NOTHING_TO_PUBLISH', 'no statement is queued (see log add, revoke, update)');
    const root = await openRoot(
      dir,
      options.passphrase,
      await readJsonFile(join(dir, FILES.rootKey), 'the root key file'),
    );
    const now = (options.clock ?? Date.now)();
    let manifest: Manifest | null = null;
    let journal: Journal;
    try {
      if (root.kid !== config.root.kid)
        networkFail(
          'PASSPHRASE_INVALID',
          'the root key file holds another key than network.json names',
        );
      if (!statementsOnly) {
        const { basedOn: _basedOn, ...members } = draft;
        manifest = mapProtocol('DRAFT_INVALID', 'the draft', () =>
          signManifest(
            {
              ...members,
              network: config.network,
              issuedAt: now,
              validUntil: now + options.validDays * DAY,
              root: config.root,
            },
            root,
            last,
          ),
        );
        // What we publish must verify as every reader will verify it.
        mapProtocol('DRAFT_INVALID', 'the signed edition', () =>
          verifyManifest(manifest, config.root),
        );
      }
      const requested = queue.revocationRequests.map((r) =>
        signRevocation({ network: config.network, ...r, issuedAt: now }, root),
      );
      const statements: LoggedStatement[] = [
        ...backfill.map((m) => ({ kind: 'manifest' as const, statement: m })),
        ...queue.rotations.map((s) => ({ kind: 'rotation' as const, statement: s })),
        ...queue.revocations.map((s) => ({ kind: 'revocation' as const, statement: s })),
        ...requested.map((s) => ({ kind: 'revocation' as const, statement: s })),
        ...queue.introductions.map((s) => ({ kind: 'introduction' as const, statement: s })),
        ...(manifest ? [{ kind: 'manifest' as const, statement: manifest }] : []),
      ];
      if (statements.length > MAX_PUBLICATION_ENTRIES)
        networkFail(
          'QUEUE_FULL',
          `the publication would hold ${statements.length} entries (at most ${MAX_PUBLICATION_ENTRIES})`,
        );
      const previousSize = log.size;
      const next = log.preview(
        statements.map((s) => logEntryFor(config.network, s.kind, s.statement)),
      );
      journal = {
        type: 'rogatory-publish-journal',
        previous:
          previousSize === 0 ? null : { size: previousSize, rootHash: toBase64(log.root()) },
        statements,
        checkpoint: signCheckpoint(
          { origin: log.origin, size: next.size, rootHash: next.rootHash },
          root,
        ),
        edition: manifest,
        consumed: [
          ...[...queue.rotations, ...queue.revocations, ...queue.introductions].map((s) =>
            hashOf(s),
          ),
          ...queue.revocationRequests.map(requestKey),
        ],
      };
    } finally {
      root.secretKey.fill(0);
    }
    await beginPublication(dir, journal);
    crashAt('journal', options.crash);
    const publication = await completePublication(dir, config, log, journal, options.crash);
    const size = (journal.previous?.size ?? 0) + journal.statements.length;
    return {
      manifest,
      version: manifest?.body.version ?? null,
      hash: manifest ? manifestHash(manifest) : null,
      file: manifest ? join(dir, FILES.editions, editionFile(manifest.body.version)) : null,
      publication: {
        file: join(dir, FILES.publications, publicationFile(size)),
        size,
        previousSize: journal.previous?.size ?? 0,
        entries: publication.entries.map((e) => ({ index: e.index, kind: e.entry.kind })),
      },
    };
  });
}

async function openRoot(dir: string, passphrase: string, sealed: unknown) {
  try {
    return await openSigningKeyAsync(sealed, { passphrase, purpose: ROOT_PURPOSE });
  } catch (cause) {
    if (isProtocolError(cause, 'PASSPHRASE_INVALID'))
      return networkFail('PASSPHRASE_INVALID', `the root key in ${dir} did not open`, {
        cause,
        detail: cause.code,
      });
    if (isProtocolError(cause))
      return networkFail('INPUT_INVALID', `${FILES.rootKey}: ${cause.message}`, {
        cause,
        detail: cause.code,
      });
    throw cause;
  }
}

// ---------------------------------------------------------------- reading

export interface Secretariat {
  readonly dir: string;
  readonly config: SecretariatConfig;
  readonly editions: Manifest[];
  readonly draft: Draft;
}

/** Read the folder: its configuration, its editions checked as one chain, and the draft. */
export async function loadSecretariat(dir: string): Promise<Secretariat> {
  await ready();
  const abs = resolve(dir);
  const config = await readConfig(abs);
  return {
    dir: abs,
    config,
    editions: await readEditions(abs, config),
    draft: await readDraft(abs),
  };
}
