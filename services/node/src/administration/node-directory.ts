import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RelayClient, type Dispatcher, type RetryPolicy } from '@rogatory/client';
import {
  KDF_LIMITS,
  certifyEncryptionKey,
  isAddress,
  keyRef,
  networkOf,
  ready,
  type EncryptionKeyCert,
  type KeyRef,
} from '@rogatory/protocol';
import { FsBlobStore, S3BlobStore, type BlobStore } from '@rogatory/storage';
import { AuditLog } from './audit-log.js';
import {
  readConfig,
  writeConfig,
  type BlobStoreConfig,
  type KdfLimits,
  type NodeConfig,
} from './config.js';
import type { NodeContext } from '../context.js';
import { isNodeError, nodeFail, toNodeError } from '../errors.js';
import {
  DEFAULT_KEY_PATHS,
  createKeyring,
  openKeyring,
  wipeKeyring,
  type ImportedKeys,
} from './keyring.js';
import { LocalCipher } from '../store/local-cipher.js';
import { NodeDatabase } from '../store/db.js';
import { MailboxStore } from '../store/mailbox-store.js';
import { buildTrust, readTrustFolder, writeTrustMaterial } from './trust-material.js';
import { TrustTable } from '../store/trust-table.js';
import { loadNodeTrust } from '../trust/trust-state.js';
import { UserDirectory, type NewUser } from './users.js';

const YEAR = 365 * 24 * 3600 * 1000;

export interface InitNodeOptions {
  /** Directory of the node; created if missing, must not hold a node already. */
  readonly dir: string;
  /** `authority@network`. */
  readonly address: string;
  readonly relayUrl: string;
  /** The relay's id in the manifest, e.g. `relay@wacap`: login refuses a challenge naming another relay. */
  readonly relayId: string;
  /** At least 8 characters; seals every key file. */
  readonly passphrase: string;
  /** The own network's root key, obtained out of band. */
  readonly pinnedRoot: KeyRef;
  /** Signed manifests: the own network's, and those of peers reachable from it. */
  readonly manifests: readonly unknown[];
  /** Argon2id work factors for key files and password hashes; default KDF_LIMITS.moderate. */
  readonly kdf?: KdfLimits;
  /** Use these key pairs (test world, demo) instead of fresh ones. */
  readonly importKeys?: ImportedKeys;
  /** Validity of the published keys; default: as the manifest lists the identity, else now .. now + 2 years. */
  readonly keyValidity?: { readonly notBefore: number; readonly notAfter: number };
  /** First administrator account. */
  readonly admin?: { readonly username: string; readonly password: string };
  /** Where chunks and sealed dossiers go; default a `blobs` directory in the node. */
  readonly blobs?: BlobStoreConfig;
  readonly envelopeLifetimeDays?: number;
  readonly clock?: () => number;
  /** A point of contact's node (`rogatory init --poc`): the address must not be an authority of the manifest; its keys are looked up among the manifest's pocs. */
  readonly role?: 'authority' | 'poc';
}

export interface InitNodeResult {
  readonly dir: string;
  readonly address: string;
  /** The public identity key, for the network secretariat to list in the manifest. */
  readonly identity: KeyRef;
  /** The encryption-key certificate signed by the identity key, for the manifest. */
  readonly encryptionCertificate: EncryptionKeyCert;
  /** Whether the trusted manifest already lists this identity key for the address. */
  readonly listedInManifest: boolean;
  /** `poc` for a point of contact's node (what `rogatory-network poc add --from` admits). */
  readonly role: 'authority' | 'poc';
}

/**
 * Create a node directory: sealed key files, node.json, trust material, an
 * empty mailbox database with its first audit entry, and optionally the
 * first administrator. Inputs are all checked before anything is written;
 * if writing fails midway, what was created is removed.
 */
export async function initNode(options: InitNodeOptions): Promise<InitNodeResult> {
  await ready();
  const clock = options.clock ?? Date.now;
  const dir = resolve(options.dir);
  if (!isAddress(options.address) || !isAddress(options.relayId))
    nodeFail('INPUT_INVALID', 'address and relay id must be authority@network');
  if (networkOf(options.relayId) !== networkOf(options.address))
    nodeFail('INPUT_INVALID', "the relay must be one of the node's own network");
  if (options.passphrase.length < 8)
    nodeFail('INPUT_INVALID', 'the passphrase must have at least 8 characters');
  if (!/^https?:\/\//.test(options.relayUrl))
    nodeFail('INPUT_INVALID', 'the relay URL must be http(s)');
  const network = networkOf(options.address);
  if (options.pinnedRoot.alg !== 'ed25519')
    nodeFail('INPUT_INVALID', 'the pinned root must be an ed25519 key');
  const trust = buildTrust({ network, root: options.pinnedRoot }, options.manifests);
  const role = options.role ?? 'authority';
  // A PoC's entry is looked up among the pocs; one address is never both.
  if (role === 'poc' ? trust.authority(options.address) : trust.poc(options.address))
    nodeFail(
      'INPUT_INVALID',
      role === 'poc'
        ? `${options.address} is an authority of the manifest, not a point of contact`
        : `${options.address} is a point of contact of the manifest: use --poc`,
    );
  const prepared = await prepareDirectory(dir);

  try {
    await mkdir(join(dir, 'keys'), { recursive: true, mode: 0o700 });
    const kdf = options.kdf ?? KDF_LIMITS.moderate;
    const keys = await createKeyring({
      dir,
      passphrase: options.passphrase,
      kdf,
      ...(options.importKeys ? { importKeys: options.importKeys } : {}),
    });
    const now = clock();
    const listed = role === 'poc' ? trust.poc(options.address) : trust.authority(options.address);
    const listedIdentity = listed?.key.kid === keys.identity.kid ? listed.key : undefined;
    const validity =
      options.keyValidity ??
      (listedIdentity
        ? { notBefore: listedIdentity.notBefore, notAfter: listedIdentity.notAfter }
        : { notBefore: now, notAfter: now + 2 * YEAR });
    const identity = listedIdentity ?? keyRef(keys.identity, validity);
    const listedCert = listed?.encryptionKeys.find(
      (c) => c.body.key.kid === keys.encryption[0]!.kid && c.body.identityKid === keys.identity.kid,
    );
    const certificate =
      listedCert ??
      certifyEncryptionKey({
        subject: options.address,
        identity: keys.identity,
        encryptionKey: keys.encryption[0]!,
        ...validity,
      });

    const config: NodeConfig = {
      format: 'rogatory-node',
      version: 1,
      address: options.address,
      network,
      relay: { url: options.relayUrl, id: options.relayId },
      pinnedRoot: options.pinnedRoot,
      identity,
      encryptionCerts: [certificate],
      paths: {
        ...DEFAULT_KEY_PATHS,
        encryptionKeys: [...DEFAULT_KEY_PATHS.encryptionKeys],
        database: 'mailbox.db',
        trust: 'trust',
        auditHead: 'audit-head.json',
      },
      blobs: options.blobs ?? { kind: 'fs', dir: 'blobs' },
      passwordKdf: kdf,
      envelopeLifetimeDays: options.envelopeLifetimeDays ?? 30,
      createdAt: now,
    };
    await writeTrustMaterial(join(dir, config.paths.trust), trust);
    const cipher = new LocalCipher(keys.storageKey);
    const db = NodeDatabase.open(join(dir, config.paths.database));
    try {
      const log = new AuditLog({ db, cipher, headFile: join(dir, config.paths.auditHead) });
      const users = new UserDirectory(db, kdf);
      db.transaction(() => {
        log.append({
          at: now,
          actor: 'system',
          action: 'node.init',
          target: options.address,
          detail: identity.kid,
        });
        if (options.admin) {
          const admin: NewUser = {
            username: options.admin.username,
            password: options.admin.password,
            role: 'admin',
            clearances: [],
          };
          const user = users.add(admin, null, now);
          log.append({
            at: now,
            actor: 'system',
            action: 'user.add',
            target: user.username,
            detail: 'admin',
          });
        }
      });
    } finally {
      db.close();
      cipher.destroy();
      wipeKeyring(keys);
    }
    // node.json last: its presence marks a complete node.
    await writeConfig(dir, config);
    return {
      dir,
      address: options.address,
      identity,
      encryptionCertificate: certificate,
      listedInManifest: listedIdentity !== undefined,
      role,
    };
  } catch (err) {
    // Leave the directory as it was: removed if we made it, emptied if it was empty.
    if (prepared === 'created')
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    else
      for (const entry of await readdir(dir).catch(() => [] as string[]))
        await rm(join(dir, entry), { recursive: true, force: true }).catch(() => undefined);
    throw isNodeError(err) ? err : toNodeError(err, 'init');
  }
}

/** Create the directory, or accept an existing empty one; refuse one holding a node. */
async function prepareDirectory(dir: string): Promise<'created' | 'empty'> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) return nodeFail('INPUT_INVALID', 'the node path is not a directory');
    const entries = await readdir(dir);
    if (entries.includes('node.json'))
      return nodeFail('NODE_EXISTS', 'the directory already holds a node');
    if (entries.length > 0) return nodeFail('NODE_EXISTS', 'the directory is not empty');
    return 'empty';
  } catch (err) {
    if (isNodeError(err)) throw err;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return 'created';
  }
}

export interface OpenNodeOptions {
  readonly dir: string;
  readonly passphrase: string;
  readonly clock?: () => number;
  /** Wrap the configured blob store (tests: fault injection). */
  readonly wrapBlobStore?: (store: BlobStore) => BlobStore;
  /** Relay client tuning (tests: fast retries). */
  readonly relay?: {
    readonly retry?: Partial<RetryPolicy>;
    readonly timeoutMs?: number;
    readonly dispatcher?: Dispatcher;
  };
}

/** Unlock a node: keys first (PASSPHRASE_INVALID before anything else is touched), then trust, database and stores. */
export async function openContext(options: OpenNodeOptions): Promise<NodeContext> {
  await ready();
  const dir = resolve(options.dir);
  const config = await readConfig(dir);
  const keys = await openKeyring({ dir, passphrase: options.passphrase, paths: config.paths });
  let db: NodeDatabase | undefined;
  let cipher: LocalCipher | undefined;
  try {
    if (keys.identity.kid !== config.identity.kid)
      nodeFail('CONFIG_INVALID', 'the identity key file does not match node.json');
    cipher = new LocalCipher(keys.storageKey);
    db = NodeDatabase.open(join(dir, config.paths.database));
    // The trust folder is checked against the editions the node accepted from the logs (D4).
    const trustDir = join(dir, config.paths.trust);
    const loaded = await loadNodeTrust({
      pinned: { network: config.network, root: config.pinnedRoot },
      folder: await readTrustFolder(trustDir),
      folderDir: trustDir,
      table: new TrustTable(db),
    });
    const trust = loaded.trust;
    const inner = await openBlobStore(dir, config.blobs);
    const blobs = options.wrapBlobStore ? options.wrapBlobStore(inner) : inner;
    const relay = new RelayClient({
      baseUrl: config.relay.url,
      address: config.address,
      identity: keys.identity,
      relayId: config.relay.id,
      trust,
      // The outbox has its own backoff: the client retries a transient failure only briefly.
      retry: options.relay?.retry ?? { retries: 2, baseMs: 200, maxMs: 2_000 },
      ...(options.relay?.dispatcher ? { dispatcher: options.relay.dispatcher } : {}),
      ...(options.relay?.timeoutMs ? { timeoutMs: options.relay.timeoutMs } : {}),
      // The node's clock is the machine's: sessions are dated and timed on it too.
      ...(options.clock ? { runtime: { now: options.clock } } : {}),
    });
    const store = new MailboxStore(db, cipher);
    return {
      dir,
      config,
      address: config.address,
      keys,
      trust,
      trustState: { base: loaded.base, refusals: loaded.refusals },
      cipher,
      db,
      store,
      audit: new AuditLog({ db, cipher, headFile: join(dir, config.paths.auditHead) }),
      users: new UserDirectory(db, config.passwordKdf),
      blobs,
      relay,
      clock: options.clock ?? Date.now,
    };
  } catch (err) {
    db?.close();
    cipher?.destroy();
    wipeKeyring(keys);
    throw toNodeError(err, 'open node');
  }
}

async function openBlobStore(dir: string, config: BlobStoreConfig): Promise<BlobStore> {
  if (config.kind === 'fs') return FsBlobStore.open({ dir: join(dir, config.dir) });
  const accessKey = process.env[config.accessKeyEnv];
  const secretKey = process.env[config.secretKeyEnv];
  if (!accessKey || !secretKey)
    return nodeFail(
      'CONFIG_INVALID',
      `set ${config.accessKeyEnv} and ${config.secretKeyEnv} for the S3 blob store`,
    );
  return S3BlobStore.open({
    endPoint: config.endPoint,
    bucket: config.bucket,
    accessKey,
    secretKey,
    ...(config.port === undefined ? {} : { port: config.port }),
    ...(config.useSSL === undefined ? {} : { useSSL: config.useSSL }),
    ...(config.prefix === undefined ? {} : { prefix: config.prefix }),
    ...(config.region === undefined ? {} : { region: config.region }),
  });
}

/** Release what a context holds. */
export async function closeContext(ctx: NodeContext): Promise<void> {
  await ctx.blobs.close().catch(() => undefined);
  ctx.db.close();
  ctx.cipher.destroy();
  wipeKeyring(ctx.keys);
}
