import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Type, type Static } from 'typebox';
import {
  AddressSchema,
  EncryptionKeyCertSchema,
  KeyRefSchema,
  KeyRotationSchema,
  NetworkIdSchema,
  validator,
} from '@rogatory/protocol';
import { isNodeError, nodeFail } from '../errors.js';
import { whyUnreadable } from '../files/file-errors.js';
import { writeFileAtomic } from '../files/atomic-write.js';

export const CONFIG_FILE = 'node.json';

/** Argon2id work factors (libsodium crypto_pwhash). */
export const KdfLimitsSchema = Type.Object(
  {
    opslimit: Type.Integer({ minimum: 1, maximum: 64 }),
    memlimit: Type.Integer({ minimum: 8192, maximum: 4 * 1024 * 1024 * 1024 }),
  },
  { additionalProperties: false },
);
export type KdfLimits = Static<typeof KdfLimitsSchema>;

const RelativePath = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^(?!/)(?!.*\\.\\.)[A-Za-z0-9._/-]+$',
});

/** Chunks and sealed dossiers: a directory under the node (default) or an S3/MinIO bucket. */
export const BlobStoreConfigSchema = Type.Union([
  Type.Object({ kind: Type.Literal('fs'), dir: RelativePath }, { additionalProperties: false }),
  Type.Object(
    {
      kind: Type.Literal('s3'),
      endPoint: Type.String({ minLength: 1, maxLength: 255 }),
      port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
      useSSL: Type.Optional(Type.Boolean()),
      bucket: Type.String({ minLength: 3, maxLength: 63 }),
      prefix: Type.Optional(Type.String({ maxLength: 200 })),
      region: Type.Optional(Type.String({ maxLength: 64 })),
      /** Names of the environment variables holding the credentials: secrets never go into node.json. */
      accessKeyEnv: Type.String({ pattern: '^[A-Z_][A-Z0-9_]{0,63}$' }),
      secretKeyEnv: Type.String({ pattern: '^[A-Z_][A-Z0-9_]{0,63}$' }),
    },
    { additionalProperties: false },
  ),
]);
export type BlobStoreConfig = Static<typeof BlobStoreConfigSchema>;

/** Trust synchronisation (design D4): witness quorum on a log's newest checkpoint, and how often to poll. */
export const TrustSyncConfigSchema = Type.Object(
  {
    /** Distinct trusted witnesses (peer networks' relays) that must have cosigned; default 1. */
    quorum: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    /** Seconds between polls of the publications while sync runs; default 300. */
    pollSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
  },
  { additionalProperties: false },
);
export type TrustSyncConfig = Static<typeof TrustSyncConfigSchema>;
export const DEFAULT_TRUST_QUORUM = 1;
export const DEFAULT_TRUST_POLL_SECONDS = 300;

export const NodeConfigSchema = Type.Object(
  {
    format: Type.Literal('rogatory-node'),
    version: Type.Literal(1),
    address: AddressSchema,
    network: NetworkIdSchema,
    relay: Type.Object(
      { url: Type.String({ pattern: '^https?://', maxLength: 512 }), id: AddressSchema },
      { additionalProperties: false },
    ),
    /** The root of the node's own network, pinned out of band. */
    pinnedRoot: KeyRefSchema,
    /** Public identity key, as the manifest lists it. */
    identity: KeyRefSchema,
    /** Certificates of the node's encryption keys, newest last; the last one is the archive key. */
    encryptionCerts: Type.Array(EncryptionKeyCertSchema, { minItems: 1, maxItems: 16 }),
    /**
     * An identity rotation waiting for an edition to list its new key
     * (`rogatory keys rotate-identity`): the rotation statement, and the
     * node's encryption certificates re-issued by the new key for that edition.
     */
    pendingIdentity: Type.Optional(
      Type.Object(
        {
          rotation: KeyRotationSchema,
          encryptionCerts: Type.Array(EncryptionKeyCertSchema, { minItems: 1, maxItems: 16 }),
        },
        { additionalProperties: false },
      ),
    ),
    /** Identity keys an edition replaced, oldest first. */
    retiredIdentities: Type.Optional(Type.Array(KeyRefSchema, { maxItems: 16 })),
    paths: Type.Object(
      {
        identityKey: RelativePath,
        encryptionKeys: Type.Array(RelativePath, { minItems: 1, maxItems: 16 }),
        /** The sealed key file of an identity key rotated in and not yet listed by an edition. */
        pendingIdentityKey: Type.Optional(RelativePath),
        /** Sealed key files of identity keys an edition has replaced (kept, never used to sign). */
        retiredIdentityKeys: Type.Optional(Type.Array(RelativePath, { maxItems: 16 })),
        storageKey: RelativePath,
        database: RelativePath,
        trust: RelativePath,
        auditHead: RelativePath,
      },
      { additionalProperties: false },
    ),
    blobs: BlobStoreConfigSchema,
    /** Work factors for officers' password hashes. */
    passwordKdf: KdfLimitsSchema,
    /** Lifetime of sent envelopes, in days (1..90). */
    envelopeLifetimeDays: Type.Integer({ minimum: 1, maximum: 90 }),
    trust: Type.Optional(TrustSyncConfigSchema),
    createdAt: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type NodeConfig = Static<typeof NodeConfigSchema>;

const configShape = validator(NodeConfigSchema, 'node.json');

export async function readConfig(dir: string): Promise<NodeConfig> {
  let text: string;
  try {
    text = await readFile(join(dir, CONFIG_FILE), 'utf8');
  } catch (cause) {
    return nodeFail(
      'NODE_NOT_FOUND',
      `${dir} holds no node: its ${CONFIG_FILE} ${whyUnreadable(cause)} (give the node folder with --dir or ROGATORY_NODE_DIR)`,
      { cause },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    return nodeFail('CONFIG_INVALID', `${join(dir, CONFIG_FILE)} is not JSON`, { cause });
  }
  try {
    const config = configShape.parse(value);
    if (config.address.split('@')[1] !== config.network)
      nodeFail('CONFIG_INVALID', 'node.json: address is not in the network');
    return config;
  } catch (cause) {
    if (isNodeError(cause)) throw cause;
    return nodeFail('CONFIG_INVALID', 'node.json does not match its schema', { cause });
  }
}

export async function writeConfig(dir: string, config: NodeConfig): Promise<void> {
  await writeFileAtomic(
    join(dir, CONFIG_FILE),
    `${JSON.stringify(configShape.parse(config), null, 2)}\n`,
    { mode: 0o600 },
  );
}
