import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  certifyEncryptionKey,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  isProtocolError,
  signKeyRotation,
  sodium,
  ROTATION_OVERLAP_MAX_MS,
  toBase64url,
  type EncryptionKeyCert,
  type EncryptionKeyPair,
  type KeyRef,
  type KeyRotation,
  type SigningKeyPair,
} from '@rogatory/protocol';
import { audit, type NodeContext } from '../context.js';
import { nodeFail } from '../errors.js';
import { CONFIG_FILE, readConfig, writeConfig, type NodeConfig } from './config.js';
import { checkPassphrase, writeSealedKey, type Keyring } from './keyring.js';

const DAY = 24 * 3600 * 1000;
const YEAR = 365 * DAY;
/** How far ahead `rotate-identity` puts `effectiveAt` by default: time to carry it to the secretariat and publish. */
export const DEFAULT_ROTATION_LEAD_MS = 7 * DAY;
/** Keys a node.json may list (the schema's bound). */
const MAX_KEYS = 16;

export type NodeKeyState = 'current' | 'pending' | 'retired';

/** One of the node's keys, public facts only. */
export interface NodeKeyInfo {
  readonly kid: string;
  readonly kind: 'identity' | 'encryption';
  /** Start of the key's validity (its KeyRef `notBefore`): when it was made, or, for a rotated-in identity key, its `effectiveAt`. */
  readonly created: number;
  readonly notAfter: number;
  /**
   * `current`: the identity key the node signs with, or an encryption key
   * the trusted manifest lists (senders seal to the newest); `pending`: made
   * here and not yet in force (an identity key waiting for its edition and
   * its `effectiveAt`, an encryption key no edition lists yet); `retired`:
   * replaced, kept only to read and verify what was made with it.
   */
  readonly state: NodeKeyState;
  /** Whether the trusted manifest of the node's network lists it for this node. */
  readonly listed: boolean;
}

/** What `keys rotate-encryption` hands to the secretariat (`rogatory-network authority update --cert`). */
export interface EncryptionRotation {
  readonly kid: string;
  readonly certificate: EncryptionKeyCert;
}

/** What `keys rotate-identity` hands to the secretariat (`authority update --rotation` and `--cert`). */
export interface IdentityRotation {
  readonly oldKid: string;
  readonly newKid: string;
  readonly effectiveAt: number;
  readonly rotation: KeyRotation;
  /** The node's newest encryption key certified by the new identity key (the edition must list it). */
  readonly certificate: EncryptionKeyCert;
}

/** The node's identity and encryption keys, current and past. */
export function listNodeKeys(ctx: NodeContext): NodeKeyInfo[] {
  const { config, trust } = ctx;
  const entry = trust.authority(ctx.address) ?? trust.poc(ctx.address);
  const listedEnc = new Set(entry?.encryptionKeys.map((c) => c.body.key.kid) ?? []);
  const identity = (key: KeyRef, state: NodeKeyState): NodeKeyInfo => ({
    kid: key.kid,
    kind: 'identity',
    created: key.notBefore,
    notAfter: key.notAfter,
    state,
    listed: entry?.key.kid === key.kid,
  });
  const keys: NodeKeyInfo[] = [
    identity(config.identity, 'current'),
    ...(config.pendingIdentity
      ? [identity(config.pendingIdentity.rotation.body.newKey, 'pending')]
      : []),
    ...(config.retiredIdentities ?? []).map((k) => identity(k, 'retired')),
  ];
  const certs = config.encryptionCerts;
  let lastListed = -1;
  certs.forEach((c, i) => {
    if (listedEnc.has(c.body.key.kid)) lastListed = i;
  });
  certs.forEach((c, i) => {
    const listed = listedEnc.has(c.body.key.kid);
    keys.push({
      kid: c.body.key.kid,
      kind: 'encryption',
      created: c.body.key.notBefore,
      notAfter: c.body.key.notAfter,
      state: listed ? 'current' : i > lastListed ? 'pending' : 'retired',
      listed,
    });
  });
  return keys;
}

/**
 * A new encryption key pair: sealed under the node passphrase beside the
 * others, certified by the identity key, and used at once as the node's
 * archive key. Senders seal to it once an edition lists the certificate;
 * the old pairs stay (dossiers sealed to them are opened by kid).
 * PASSPHRASE_INVALID (nothing written) unless `passphrase` opens the
 * identity key file; INVALID_STATE while an identity rotation is pending.
 */
export async function rotateEncryptionKey(
  ctx: NodeContext,
  options: { passphrase: string; validityDays?: number },
): Promise<EncryptionRotation> {
  const { config } = ctx;
  if (config.pendingIdentity)
    nodeFail(
      'INVALID_STATE',
      'an identity rotation is pending: rotate the encryption key once it took effect',
    );
  if (config.encryptionCerts.length >= MAX_KEYS)
    nodeFail('INVALID_STATE', `the node holds ${MAX_KEYS} encryption keys already`);
  await checkPassphrase({
    dir: ctx.dir,
    passphrase: options.passphrase,
    paths: config.paths,
    identityKid: config.identity.kid,
  });
  const now = ctx.clock();
  const notAfter = Math.min(
    config.identity.notAfter,
    now + (options.validityDays === undefined ? 2 * YEAR : options.validityDays * DAY),
  );
  if (notAfter <= now) nodeFail('INVALID_STATE', 'the identity key has expired');
  const pair = generateEncryptionKeyPair();
  try {
    const path = await freePath(
      ctx.dir,
      'keys/encryption-',
      config.paths.encryptionKeys.length + 1,
    );
    await writeSealedKey({
      dir: ctx.dir,
      path,
      passphrase: options.passphrase,
      limits: config.passwordKdf,
      pair: { kind: 'encryption', key: pair },
    });
    await writeHandover(ctx, path, pair);
    const certificate = certifyEncryptionKey({
      subject: ctx.address,
      identity: ctx.keys.identity,
      encryptionKey: pair,
      notBefore: now,
      notAfter,
    });
    const next: NodeConfig = {
      ...config,
      encryptionCerts: [...config.encryptionCerts, certificate],
      paths: { ...config.paths, encryptionKeys: [...config.paths.encryptionKeys, path] },
    };
    await writeConfig(ctx.dir, next);
    ctx.config = next;
    ctx.keys = { ...ctx.keys, encryption: [...ctx.keys.encryption, pair] };
    audit(ctx, 'system', 'keys.rotate-encryption', ctx.address, pair.kid);
    return { kid: pair.kid, certificate };
  } catch (err) {
    sodium().memzero(pair.secretKey);
    throw err;
  }
}

/**
 * A new identity key and the rotation statement the current one signs. The
 * node goes on signing with the current key until an edition it applied
 * lists the new key and `effectiveAt` has come, then switches by itself
 * (`switchIdentityIfDue`). `effectiveAt` defaults to 7 days ahead (at most
 * 30): the secretariat must publish before then (docs/protocol.md §6.4).
 */
export async function rotateIdentityKey(
  ctx: NodeContext,
  options: { passphrase: string; effectiveAt?: number },
): Promise<IdentityRotation> {
  const { config } = ctx;
  const now = ctx.clock();
  if (config.pendingIdentity) nodeFail('INVALID_STATE', 'an identity rotation is pending already');
  if ((config.retiredIdentities?.length ?? 0) >= MAX_KEYS)
    nodeFail('INVALID_STATE', `the node has retired ${MAX_KEYS} identity keys already`);
  const effectiveAt = options.effectiveAt ?? now + DEFAULT_ROTATION_LEAD_MS;
  if (!Number.isSafeInteger(effectiveAt) || effectiveAt <= now)
    nodeFail('INPUT_INVALID', 'effectiveAt must be in the future');
  if (effectiveAt > now + ROTATION_OVERLAP_MAX_MS)
    nodeFail('INPUT_INVALID', 'effectiveAt must be at most 30 days ahead');
  // The old key must be usable when the rotation takes effect (§6.4 step 7).
  try {
    ctx.trust.resolveSigningKey(ctx.address, config.identity.kid, effectiveAt);
  } catch (cause) {
    if (!isProtocolError(cause)) throw cause;
    nodeFail('INVALID_STATE', 'the identity key cannot sign a rotation taking effect then', {
      cause,
      detail: cause.code,
    });
  }
  await checkPassphrase({
    dir: ctx.dir,
    passphrase: options.passphrase,
    paths: config.paths,
    identityKid: config.identity.kid,
  });
  const pair = generateSigningKeyPair();
  try {
    const notAfter = effectiveAt + 2 * YEAR;
    const rotation = signKeyRotation({
      subject: ctx.address,
      oldKey: ctx.keys.identity,
      newKey: pair,
      effectiveAt,
      notAfter,
    });
    const newest = config.encryptionCerts[config.encryptionCerts.length - 1]!;
    const encryption = ctx.keys.encryption.find((k) => k.kid === newest.body.key.kid);
    if (!encryption) return nodeFail('CONFIG_INVALID', 'the newest encryption key is not held');
    const certificate = certifyEncryptionKey({
      subject: ctx.address,
      identity: pair,
      encryptionKey: encryption,
      notBefore: newest.body.key.notBefore,
      notAfter: Math.min(newest.body.key.notAfter, notAfter),
    });
    const path = await freePath(ctx.dir, 'keys/identity-', 2);
    await writeSealedKey({
      dir: ctx.dir,
      path,
      passphrase: options.passphrase,
      limits: config.passwordKdf,
      pair: { kind: 'identity', key: pair },
    });
    await writeHandover(ctx, path, pair);
    const next: NodeConfig = {
      ...config,
      pendingIdentity: { rotation, encryptionCerts: [certificate] },
      paths: { ...config.paths, pendingIdentityKey: path },
    };
    await writeConfig(ctx.dir, next);
    ctx.config = next;
    ctx.keys = { ...ctx.keys, pendingIdentity: pair };
    audit(ctx, 'system', 'keys.rotate-identity', ctx.address, `${config.identity.kid}>${pair.kid}`);
    return {
      oldKid: config.identity.kid,
      newKid: pair.kid,
      effectiveAt,
      rotation,
      certificate,
    };
  } catch (err) {
    sodium().memzero(pair.secretKey);
    throw err;
  }
}

/**
 * When the pending identity key is in force — a trusted edition lists it
 * for this node and its `effectiveAt` has come — make it the key the node
 * signs with, in memory at once (the relay client too) and in node.json.
 * Returns whether it switched. Cheap: called before every signature.
 */
export function switchIdentityIfDue(ctx: NodeContext): boolean {
  const { config } = ctx;
  const pending = config.pendingIdentity;
  const pair = ctx.keys.pendingIdentity;
  if (!pending || !pair || config.paths.pendingIdentityKey === undefined) return false;
  const newKey = pending.rotation.body.newKey;
  if (ctx.clock() < newKey.notBefore) return false;
  const entry = ctx.trust.authority(ctx.address) ?? ctx.trust.poc(ctx.address);
  if (entry?.key.kid !== newKey.kid) return false;
  const reissued = new Map(pending.encryptionCerts.map((c) => [c.body.key.kid, c]));
  const { pendingIdentity: _p, ...rest } = config;
  const { pendingIdentityKey, ...paths } = config.paths;
  const next: NodeConfig = {
    ...rest,
    identity: entry.key,
    encryptionCerts: config.encryptionCerts.map((c) => reissued.get(c.body.key.kid) ?? c),
    retiredIdentities: [...(config.retiredIdentities ?? []), config.identity],
    paths: {
      ...paths,
      identityKey: pendingIdentityKey,
      retiredIdentityKeys: [...(config.paths.retiredIdentityKeys ?? []), config.paths.identityKey],
    },
  };
  const old = ctx.keys.identity;
  const keys: Keyring = {
    identity: pair,
    encryption: ctx.keys.encryption,
    storageKey: ctx.keys.storageKey,
  };
  ctx.config = next;
  ctx.keys = keys;
  ctx.relay.useIdentity(pair);
  sodium().memzero(old.secretKey);
  audit(ctx, 'system', 'keys.identity-switch', ctx.address, `${old.kid}>${pair.kid}`);
  // A failed write is made good at the next open: node.json still names the pending key.
  const write = (writes.get(ctx) ?? Promise.resolve())
    .then(() => writeConfig(ctx.dir, next))
    .catch(() => undefined);
  writes.set(ctx, write);
  return true;
}

const writes = new WeakMap<NodeContext, Promise<void>>();

/** Resolves once node.json holds the last identity switch (close waits for it). */
export function identitySwitchWritten(ctx: NodeContext): Promise<void> {
  return writes.get(ctx) ?? Promise.resolve();
}

/** The identity key to sign with now (after switching to a rotated-in key that took effect). */
export function signingIdentity(ctx: NodeContext): SigningKeyPair {
  switchIdentityIfDue(ctx);
  return ctx.keys.identity;
}

/** When the pending identity key will be due, if an edition lists it already; else undefined. */
export function identitySwitchAt(ctx: NodeContext): number | undefined {
  const pending = ctx.config.pendingIdentity;
  if (!pending || !ctx.keys.pendingIdentity) return undefined;
  const entry = ctx.trust.authority(ctx.address) ?? ctx.trust.poc(ctx.address);
  const newKey = pending.rotation.body.newKey;
  return entry?.key.kid === newKey.kid ? newKey.notBefore : undefined;
}

/**
 * Keys another process of this node made (`rogatory keys rotate-*` beside a
 * running `serve`): node.json names them, and each has a hand-over copy
 * sealed under the node's storage key (`<key file>.handover`), so that a
 * process already unlocked can take them up without the passphrase. Called
 * after each trust poll and before listing keys; a missing or altered copy
 * is skipped (the key is taken up at the next open, with the passphrase).
 */
export async function takeUpNewKeys(ctx: NodeContext): Promise<boolean> {
  let disk: NodeConfig;
  try {
    // node.json unchanged since the last look: nothing to take up (one stat per call).
    const mtime = (await stat(join(ctx.dir, CONFIG_FILE))).mtimeMs;
    if (seenConfig.get(ctx) === mtime) return false;
    seenConfig.set(ctx, mtime);
    disk = await readConfig(ctx.dir);
  } catch {
    return false;
  }
  const mine = ctx.config;
  let keys = ctx.keys;
  let changed = false;
  // Another process already switched to the identity key rotated in (and this one never held it).
  if (
    disk.identity.kid !== keys.identity.kid &&
    (disk.retiredIdentities ?? []).some((k) => k.kid === keys.identity.kid) &&
    keys.pendingIdentity?.kid !== disk.identity.kid
  ) {
    const pair = await readHandover(ctx, disk.paths.identityKey, disk.identity, 'ed25519');
    if (!pair) return false;
    keys = {
      identity: pair as SigningKeyPair,
      encryption: keys.encryption,
      storageKey: keys.storageKey,
    };
    ctx.relay.useIdentity(pair as SigningKeyPair);
    changed = true;
  }
  const held = new Set(mine.paths.encryptionKeys);
  const encryption = [...keys.encryption];
  for (const [i, path] of disk.paths.encryptionKeys.entries()) {
    if (held.has(path)) continue;
    const cert = disk.encryptionCerts[i];
    if (!cert || encryption.some((k) => k.kid === cert.body.key.kid)) continue;
    const pair = await readHandover(ctx, path, cert.body.key, 'x25519');
    if (!pair) return false;
    encryption.push(pair as EncryptionKeyPair);
    changed = true;
  }
  if (changed) keys = { ...keys, encryption };
  const pendingPath = disk.paths.pendingIdentityKey;
  if (
    disk.pendingIdentity &&
    pendingPath !== undefined &&
    !keys.pendingIdentity &&
    mine.pendingIdentity === undefined &&
    disk.pendingIdentity.rotation.body.oldKid === keys.identity.kid
  ) {
    const pair = await readHandover(
      ctx,
      pendingPath,
      disk.pendingIdentity.rotation.body.newKey,
      'ed25519',
    );
    if (!pair) return false;
    keys = { ...keys, pendingIdentity: pair as SigningKeyPair };
    changed = true;
  }
  if (!changed) return false;
  // node.json as the other process wrote it, for the identity this process signs with.
  if (disk.identity.kid !== keys.identity.kid) return false;
  ctx.keys = keys;
  ctx.config = disk;
  return true;
}

const HANDOVER_TABLE = 'keys.handover';
const seenConfig = new WeakMap<NodeContext, number>();

async function writeHandover(
  ctx: NodeContext,
  path: string,
  pair: SigningKeyPair | EncryptionKeyPair,
): Promise<void> {
  const plain = new Uint8Array(pair.publicKey.length + pair.secretKey.length);
  plain.set(pair.publicKey, 0);
  plain.set(pair.secretKey, pair.publicKey.length);
  const sealed = ctx.cipher.seal(HANDOVER_TABLE, path, plain);
  plain.fill(0);
  await writeFile(join(ctx.dir, `${path}.handover`), sealed, { mode: 0o600, flag: 'wx' });
}

async function readHandover(
  ctx: NodeContext,
  path: string,
  expected: KeyRef,
  alg: 'ed25519' | 'x25519',
): Promise<SigningKeyPair | EncryptionKeyPair | undefined> {
  try {
    const plain = ctx.cipher.open(
      HANDOVER_TABLE,
      path,
      new Uint8Array(await readFile(join(ctx.dir, `${path}.handover`))),
    );
    const publicKey = plain.slice(0, 32);
    const secretKey = plain.slice(32);
    plain.fill(0);
    if (toBase64url(publicKey) !== expected.publicKey || expected.alg !== alg) {
      secretKey.fill(0);
      return undefined;
    }
    return { alg, kid: expected.kid, publicKey, secretKey };
  } catch {
    return undefined;
  }
}

/** The first `${prefix}${n}.json` at or after `from` with no file. */
async function freePath(dir: string, prefix: string, from: number): Promise<string> {
  for (let n = from; n < from + 64; n++) {
    const path = `${prefix}${n}.json`;
    try {
      await access(join(dir, path));
    } catch {
      return path;
    }
  }
  return nodeFail('CONFIG_INVALID', 'no free key file name');
}
