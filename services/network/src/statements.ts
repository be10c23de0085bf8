/**
 * Statements for the log (D1, D5, D6): `log add` queues signed KeyRotation,
 * Revocation and Introduction statements after checking them against the
 * current edition; `authority|poc|relay update` change a member's keys in
 * the draft and queue the rotation.
 */
import { resolve } from 'node:path';
import {
  CONTEXTS,
  IntroductionSchema,
  KeyRefSchema,
  KeyRotationSchema,
  RevocationSchema,
  TrustStore,
  hashOf,
  isProtocolError,
  networkOf,
  publicKeyOf,
  ready,
  validator,
  verifyEncryptionKeyCert,
  verifySignature,
  verifyKeyRotation,
  type KeyRef,
  type KeyRotation,
  type LogEntryKind,
  type Manifest,
} from '@rogatory/protocol';
import { mapProtocol, networkFail } from './errors.js';
import {
  readConfig,
  readDraft,
  readEditions,
  readJsonFile,
  writeDraft,
  type Draft,
} from './folder.js';
import {
  MAX_PUBLICATION_ENTRIES,
  allEntries,
  queueLength,
  readQueue,
  withLog,
  writeQueue,
  type Queue,
} from './log.js';
import { assertKidFree } from './secretariat.js';
import type { SecretariatConfig } from './folder.js';

export type MemberRole = 'relay' | 'poc' | 'authority';

interface Listed {
  readonly role: MemberRole;
  readonly key: KeyRef;
  /** Identity key, then every encryption key. */
  readonly kids: string[];
}

function listedIn(
  side: Pick<Draft, 'relays' | 'pocs' | 'authorities'>,
  address: string,
): Listed | undefined {
  const relay = side.relays.find((r) => r.id === address);
  if (relay) return { role: 'relay', key: relay.key, kids: [relay.key.kid] };
  const poc = side.pocs.find((p) => p.address === address);
  const member = poc ?? side.authorities.find((a) => a.address === address);
  if (!member) return undefined;
  return {
    role: poc ? 'poc' : 'authority',
    key: member.key,
    kids: [member.key.kid, ...member.encryptionKeys.map((c) => c.body.key.kid)],
  };
}

function statementFail(what: string, cause: unknown): never {
  if (isProtocolError(cause))
    return networkFail('STATEMENT_INVALID', `${what}: ${cause.message}`, {
      cause,
      detail: cause.code,
    });
  throw cause;
}

function parseWith<T>(shape: { parse: (v: unknown) => T }, value: unknown, what: string): T {
  try {
    return shape.parse(value);
  } catch (cause) {
    return statementFail(what, cause);
  }
}

const rotationShape = validator(KeyRotationSchema, 'key rotation');
const revocationShape = validator(RevocationSchema, 'revocation');
const introductionShape = validator(IntroductionSchema, 'introduction');

function requireEdition(last: Manifest | undefined): Manifest {
  if (!last)
    return networkFail(
      'MEMBER_NOT_FOUND',
      'no edition is published yet: statements are checked against the current edition',
    );
  return last;
}

function requireOwnNetwork(config: SecretariatConfig, address: string, what: string): void {
  if (networkOf(address) !== config.network)
    networkFail('STATEMENT_INVALID', `${what}: ${address} is not in network ${config.network}`);
}

/** A rotation checked against the key `address` holds in `side`; MEMBER_NOT_FOUND / KEY_NOT_LISTED / STATEMENT_INVALID. */
function checkRotation(
  config: SecretariatConfig,
  side: Pick<Draft, 'relays' | 'pocs' | 'authorities'>,
  sideName: string,
  value: unknown,
  what: string,
): { rotation: KeyRotation; listed: Listed } {
  const parsed = parseWith(rotationShape, value, what);
  requireOwnNetwork(config, parsed.body.subject, what);
  const listed = listedIn(side, parsed.body.subject);
  if (!listed)
    return networkFail(
      'MEMBER_NOT_FOUND',
      `${what}: ${parsed.body.subject} is not a member in ${sideName}`,
    );
  if (parsed.body.oldKid !== listed.key.kid || parsed.signature.kid !== listed.key.kid)
    networkFail(
      'KEY_NOT_LISTED',
      `${what}: signed by key ${parsed.signature.kid}, but ${parsed.body.subject}'s key in ${sideName} is ${listed.key.kid}`,
    );
  try {
    return { rotation: verifyKeyRotation(value, listed.key), listed };
  } catch (cause) {
    return statementFail(what, cause);
  }
}

export interface QueuedStatement {
  readonly kind: LogEntryKind;
  readonly subject: string;
  readonly hash: string;
  /** queued now, or found already queued or logged (nothing done). */
  readonly status: 'queued' | 'already-queued' | 'already-logged';
}

/** The statements in a `log add` file: one statement, an array, or `{ introductions | statements: [...] }`. */
function statementsIn(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'object' && value !== null) {
    const o = value as Record<string, unknown>;
    if (Array.isArray(o['introductions'])) return o['introductions'];
    if (Array.isArray(o['statements'])) return o['statements'];
  }
  return [value];
}

/**
 * `log add <file>`: check each statement against the current (last
 * published) edition and queue it for the next publish. All or nothing: one
 * bad statement queues none.
 * - KeyRotation: the subject is a member of this network whose listed
 *   identity key signed it (plus the new key's possession proof).
 * - Revocation: of a key the subject lists, signed by the network root or by
 *   the revoked key itself; the key is also added to the draft's revocations.
 * - Introduction: issued by a PoC of this network, under the key the
 *   current edition lists for it.
 */
export async function addStatements(options: {
  readonly dir: string;
  readonly file: string;
}): Promise<QueuedStatement[]> {
  await ready();
  const dir = resolve(options.dir);
  const config = await readConfig(dir);
  const values = statementsIn(await readJsonFile(options.file, 'the statement file'));
  if (values.length === 0) networkFail('INPUT_INVALID', `${options.file} holds no statement`);
  return withLog(dir, config, async (log) => {
    const last = (await readEditions(dir, config)).at(-1);
    const draft = await readDraft(dir);
    const queue = await readQueue(dir);
    const logged = new Set(allEntries(log).map((e) => e.hash));
    const queued = new Set(
      [...queue.rotations, ...queue.revocations, ...queue.introductions].map((s) => hashOf(s)),
    );
    const results: QueuedStatement[] = [];
    let draftChanged = false;
    for (const [i, value] of values.entries()) {
      const what = `${options.file}${values.length > 1 ? ` [${i}]` : ''}`;
      const type = (value as { body?: { type?: unknown } } | null)?.body?.type;
      const edition = requireEdition(last);
      let kind: LogEntryKind;
      let subject: string;
      let push: (q: Queue) => void;
      if (type === 'key-rotation') {
        const { rotation } = checkRotation(
          config,
          edition.body,
          `edition ${edition.body.version}`,
          value,
          what,
        );
        kind = 'rotation';
        subject = rotation.body.subject;
        push = (q) => q.rotations.push(rotation);
      } else if (type === 'revocation') {
        const revocation = parseWith(revocationShape, value, what);
        const { body, signature } = revocation;
        if (body.network !== config.network)
          networkFail('STATEMENT_INVALID', `${what}: a revocation of network ${body.network}`);
        requireOwnNetwork(config, body.subject, what);
        const listed = listedIn(edition.body, body.subject);
        if (!listed)
          return networkFail(
            'MEMBER_NOT_FOUND',
            `${what}: ${body.subject} is not a member in edition ${edition.body.version}`,
          );
        if (!listed.kids.includes(body.kid))
          networkFail('KEY_NOT_LISTED', `${what}: ${body.subject} does not list key ${body.kid}`);
        const signer =
          signature.kid === config.root.kid
            ? config.root
            : signature.kid === body.kid && body.kid === listed.key.kid
              ? listed.key
              : networkFail(
                  'KEY_NOT_LISTED',
                  `${what}: signed by key ${signature.kid}, neither the root nor the revoked identity key`,
                );
        try {
          verifySignature(CONTEXTS.revocation, body, signature, publicKeyOf(signer));
        } catch (cause) {
          statementFail(what, cause);
        }
        if (!draft.revoked.some((r) => r.kid === body.kid)) {
          draft.revoked.push({ kid: body.kid, reason: body.reason, revokedAt: body.revokedAt });
          draftChanged = true;
        }
        kind = 'revocation';
        subject = body.subject;
        push = (q) => q.revocations.push(revocation);
      } else if (type === 'introduction') {
        const intro = parseWith(introductionShape, value, what);
        requireOwnNetwork(config, intro.body.issuer, what);
        if (!edition.body.pocs.some((p) => p.address === intro.body.issuer))
          networkFail(
            'MEMBER_NOT_FOUND',
            `${what}: ${intro.body.issuer} is not a point of contact in edition ${edition.body.version}`,
          );
        const trust = new TrustStore({ pinned: [{ network: config.network, root: config.root }] });
        mapProtocol('LOG_INVALID', `edition ${edition.body.version}`, () =>
          trust.addManifest(edition),
        );
        try {
          trust.addIntroduction(value);
        } catch (cause) {
          if (
            isProtocolError(cause) &&
            [
              'KEY_UNKNOWN',
              'KEY_WRONG_ROLE',
              'KEY_REVOKED',
              'KEY_EXPIRED',
              'KEY_NOT_YET_VALID',
            ].includes(cause.code)
          )
            networkFail('KEY_NOT_LISTED', `${what}: ${cause.message}`, {
              cause,
              detail: cause.code,
            });
          statementFail(what, cause);
        }
        kind = 'introduction';
        subject = intro.body.subject;
        push = (q) => q.introductions.push(intro);
      } else {
        return networkFail(
          'STATEMENT_INVALID',
          `${what}: not a key rotation, revocation or introduction`,
        );
      }
      const hash = hashOf(value);
      const status = logged.has(hash)
        ? 'already-logged'
        : queued.has(hash)
          ? 'already-queued'
          : 'queued';
      if (status === 'queued') {
        push(queue);
        queued.add(hash);
      }
      results.push({ kind, subject, hash, status });
    }
    if (queueLength(queue) >= MAX_PUBLICATION_ENTRIES)
      networkFail(
        'QUEUE_FULL',
        `the next publication would hold more than ${MAX_PUBLICATION_ENTRIES} entries`,
      );
    await writeQueue(dir, queue);
    if (draftChanged) await writeDraft(dir, draft);
    return results;
  });
}

// ---------------------------------------------------------------- update

export interface UpdateOptions {
  readonly dir: string;
  readonly role: MemberRole;
  readonly address: string;
  /** An encryption-key certificate (JSON file), added newest first. */
  readonly certFile?: string;
  /** A KeyRotation (JSON file) signed by the member's listed identity key. */
  readonly rotationFile?: string;
  /** An encryption key id to retire. */
  readonly dropKid?: string;
  /** Relays: a new KeyRef (`rogatory-relay keygen` output) replacing the relay key. */
  readonly keyFile?: string;
}

export interface UpdateResult {
  readonly address: string;
  readonly role: MemberRole;
  readonly key: string;
  readonly encryptionKeys: string[];
  readonly rotated: { oldKid: string; newKid: string; queued: boolean } | null;
  readonly added: string | null;
  readonly dropped: string[];
}

const MAX_ENCRYPTION_KEYS = 16;

/**
 * Change a member's keys in the draft. A rotation (verified against the
 * member's key in the draft) replaces its identity key, drops the
 * encryption certificates of the old key (a certificate by the new key must
 * come with it, `--cert`), and is queued for the log when the old key is in
 * the current edition (readers know it). A certificate is added newest
 * first (at most 16; retire one with --drop-key).
 */
export async function updateMember(options: UpdateOptions): Promise<UpdateResult> {
  await ready();
  const dir = resolve(options.dir);
  const config = await readConfig(dir);
  const { role, address } = options;
  if (
    options.certFile === undefined &&
    options.rotationFile === undefined &&
    options.dropKid === undefined &&
    options.keyFile === undefined
  )
    networkFail(
      'INPUT_INVALID',
      role === 'relay'
        ? 'give --key and/or --rotation'
        : 'give --cert, --rotation and/or --drop-key',
    );
  if (role === 'relay' && (options.certFile !== undefined || options.dropKid !== undefined))
    networkFail('INPUT_INVALID', 'a relay has no encryption keys: give --key or --rotation');
  if (role !== 'relay' && options.keyFile !== undefined)
    networkFail('INPUT_INVALID', '--key is for relays; a member rotates with --rotation');
  return withLog(dir, config, async () => {
    const last = (await readEditions(dir, config)).at(-1);
    const draft = await readDraft(dir);
    const listed = listedIn(draft, address);
    if (!listed || listed.role !== role)
      return networkFail('MEMBER_NOT_FOUND', `no ${role} ${address} in the draft`);
    const queue = await readQueue(dir);
    let rotated: UpdateResult['rotated'] = null;
    let newKey: KeyRef | undefined;
    if (options.rotationFile !== undefined) {
      const value = await readJsonFile(options.rotationFile, 'the --rotation file');
      const { rotation } = checkRotation(
        config,
        draft,
        'the draft',
        value,
        `--rotation ${options.rotationFile}`,
      );
      if (rotation.body.subject !== address)
        networkFail(
          'STATEMENT_INVALID',
          `--rotation ${options.rotationFile} rotates ${rotation.body.subject}`,
        );
      newKey = rotation.body.newKey;
      assertKidFree(config, draft, newKey.kid);
      const known = last ? listedIn(last.body, address) : undefined;
      const queued = known?.key.kid === rotation.body.oldKid;
      if (queued && !queue.rotations.some((r) => hashOf(r) === hashOf(rotation)))
        queue.rotations.push(rotation);
      rotated = { oldKid: rotation.body.oldKid, newKid: newKey.kid, queued };
    }
    if (options.keyFile !== undefined) {
      if (newKey) networkFail('INPUT_INVALID', 'give --key or --rotation, not both');
      const value = await readJsonFile(options.keyFile, 'the --key file');
      newKey = mapProtocol('INPUT_INVALID', `--key ${options.keyFile}`, () => {
        const ref = validator(KeyRefSchema, 'relay key').parse(value);
        publicKeyOf(ref);
        return ref;
      });
      if (newKey.alg !== 'ed25519' || newKey.notAfter <= newKey.notBefore)
        networkFail(
          'INPUT_INVALID',
          `--key ${options.keyFile}: an ed25519 key with a valid period`,
        );
      assertKidFree(config, draft, newKey.kid);
    }
    if (role === 'relay') {
      const relay = draft.relays.find((r) => r.id === address)!;
      if (newKey) relay.key = newKey;
      await writeDraft(dir, draft);
      if (rotated) await writeQueue(dir, queue);
      return {
        address,
        role,
        key: relay.key.kid,
        encryptionKeys: [],
        rotated,
        added: null,
        dropped: [],
      };
    }
    const member = (draft.pocs.find((p) => p.address === address) ??
      draft.authorities.find((a) => a.address === address))!;
    const dropped: string[] = [];
    if (newKey) {
      member.key = newKey;
      // Certificates of the old identity key cannot be listed under the new one.
      for (const c of member.encryptionKeys)
        if (c.body.identityKid !== newKey.kid) dropped.push(c.body.key.kid);
      member.encryptionKeys = member.encryptionKeys.filter(
        (c) => c.body.identityKid === newKey.kid,
      );
    }
    let added: string | null = null;
    if (options.certFile !== undefined) {
      const value = await readJsonFile(options.certFile, 'the --cert file');
      const cert = mapProtocol('STATEMENT_INVALID', `--cert ${options.certFile}`, () =>
        verifyEncryptionKeyCert(value, member.key),
      );
      if (cert.body.subject !== address)
        networkFail(
          'STATEMENT_INVALID',
          `--cert ${options.certFile} certifies ${cert.body.subject}`,
        );
      assertKidFree(config, draft, cert.body.key.kid);
      member.encryptionKeys.unshift(cert);
      added = cert.body.key.kid;
    }
    if (options.dropKid !== undefined) {
      const kid = options.dropKid;
      if (!member.encryptionKeys.some((c) => c.body.key.kid === kid))
        networkFail('MEMBER_NOT_FOUND', `${address} lists no encryption key ${kid}`);
      member.encryptionKeys = member.encryptionKeys.filter((c) => c.body.key.kid !== kid);
      dropped.push(kid);
    }
    if (member.encryptionKeys.length === 0)
      networkFail(
        'INPUT_INVALID',
        newKey
          ? `${address} would have no encryption key: give --cert with a certificate by the new identity key (rogatory keys rotate-encryption)`
          : `${address} would have no encryption key left`,
      );
    if (member.encryptionKeys.length > MAX_ENCRYPTION_KEYS)
      networkFail(
        'INPUT_INVALID',
        `${address} would list more than ${MAX_ENCRYPTION_KEYS} encryption keys: retire one with --drop-key`,
      );
    await writeDraft(dir, draft);
    if (rotated) await writeQueue(dir, queue);
    return {
      address,
      role,
      key: member.key.kid,
      encryptionKeys: member.encryptionKeys.map((c) => c.body.key.kid),
      rotated,
      added,
      dropped,
    };
  });
}
