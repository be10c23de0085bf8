import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  KDF_LIMITS,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  isProtocolError,
  openEncryptionKeyAsync,
  openSecretAsync,
  openSigningKeyAsync,
  randomBytes,
  sealEncryptionKeyAsync,
  sealSecretAsync,
  sealSigningKeyAsync,
  sodium,
  type EncryptionKeyPair,
  type SigningKeyPair,
} from '@rogatory/protocol';
import { deriveKeyInWorker } from '@rogatory/protocol/node';
import { nodeFail } from '../errors.js';
import { whyUnreadable } from '../files/file-errors.js';
import type { KdfLimits } from './config.js';

/** Purposes bound into each sealed key file (protocol §13): a file cannot be swapped for another's. */
export const KEY_PURPOSES = {
  identity: 'authority-identity',
  encryption: 'authority-encryption',
  storage: 'node-storage',
} as const;

/** The node's secrets once unlocked. */
export interface Keyring {
  /** The key the node signs with (the one its network's manifest lists). */
  readonly identity: SigningKeyPair;
  /** An identity key rotated in (`keys rotate-identity`) that no trusted edition lists yet: never used to sign. */
  readonly pendingIdentity?: SigningKeyPair;
  /** Every encryption key pair the node holds, oldest first (old ones keep archives readable). */
  readonly encryption: readonly EncryptionKeyPair[];
  /** 32 random bytes: the root of local encryption at rest. */
  readonly storageKey: Uint8Array;
}

export interface KeyringPaths {
  readonly identityKey: string;
  readonly encryptionKeys: readonly string[];
  readonly pendingIdentityKey?: string;
  readonly storageKey: string;
}

export const DEFAULT_KEY_PATHS: KeyringPaths = {
  identityKey: 'keys/identity.json',
  encryptionKeys: ['keys/encryption-1.json'],
  storageKey: 'keys/storage.json',
};

/** Given key pairs instead of fresh ones (the test world's deterministic keys, a demo). */
export interface ImportedKeys {
  readonly identity: SigningKeyPair;
  readonly encryption: EncryptionKeyPair;
}

/** Generate (or take the imported) keys, seal each under the passphrase and write them (never overwriting). */
export async function createKeyring(options: {
  dir: string;
  passphrase: string;
  kdf?: KdfLimits;
  importKeys?: ImportedKeys;
  paths?: KeyringPaths;
}): Promise<Keyring> {
  const paths = options.paths ?? DEFAULT_KEY_PATHS;
  const limits = options.kdf ?? KDF_LIMITS.moderate;
  // Copies: the keyring is wiped after use, the caller's key objects must not be.
  const identity = options.importKeys
    ? copyPair(options.importKeys.identity)
    : generateSigningKeyPair();
  const encryption = options.importKeys
    ? copyPair(options.importKeys.encryption)
    : generateEncryptionKeyPair();
  const storageKey = randomBytes(32);
  // Argon2id runs on short-lived worker threads: in-process, libsodium's
  // WebAssembly memory would grow to the memlimit and never shrink.
  const files: [string, unknown][] = [
    [
      paths.identityKey,
      await sealSigningKeyAsync(identity, {
        passphrase: options.passphrase,
        purpose: KEY_PURPOSES.identity,
        limits,
        derive: deriveKeyInWorker,
      }),
    ],
    [
      paths.encryptionKeys[0]!,
      await sealEncryptionKeyAsync(encryption, {
        passphrase: options.passphrase,
        purpose: KEY_PURPOSES.encryption,
        limits,
        derive: deriveKeyInWorker,
      }),
    ],
    [
      paths.storageKey,
      await sealSecretAsync(storageKey, {
        passphrase: options.passphrase,
        purpose: KEY_PURPOSES.storage,
        limits,
        derive: deriveKeyInWorker,
      }),
    ],
  ];
  for (const [path, sealed] of files) {
    await writeFile(join(options.dir, path), `${JSON.stringify(sealed, null, 2)}\n`, {
      mode: 0o600,
      flag: 'wx',
    });
  }
  return { identity, encryption: [encryption], storageKey };
}

/**
 * Unlock the key files. The identity key is opened first, so a wrong
 * passphrase fails (PASSPHRASE_INVALID) before anything else is read, and
 * nothing on disk is ever written here.
 */
export async function openKeyring(options: {
  dir: string;
  passphrase: string;
  paths: KeyringPaths;
}): Promise<Keyring> {
  const { dir, passphrase, paths } = options;
  // Read every file first: a missing file is a configuration problem, whatever the passphrase.
  const identityFile = await readKeyFile(dir, paths.identityKey);
  const encryptionFiles: unknown[] = [];
  for (const path of paths.encryptionKeys) encryptionFiles.push(await readKeyFile(dir, path));
  const storageFile = await readKeyFile(dir, paths.storageKey);
  const pendingFile =
    paths.pendingIdentityKey === undefined
      ? undefined
      : await readKeyFile(dir, paths.pendingIdentityKey);
  // Argon2id runs on short-lived worker threads (see createKeyring).
  const identity = await unlocked(paths.identityKey, () =>
    openSigningKeyAsync(identityFile, unlock(passphrase, KEY_PURPOSES.identity)),
  );
  const pendingIdentity =
    pendingFile === undefined
      ? undefined
      : await unlocked(paths.pendingIdentityKey!, () =>
          openSigningKeyAsync(pendingFile, unlock(passphrase, KEY_PURPOSES.identity)),
        );
  const encryption: EncryptionKeyPair[] = [];
  for (const [i, path] of paths.encryptionKeys.entries()) {
    encryption.push(
      await unlocked(path, () =>
        openEncryptionKeyAsync(encryptionFiles[i], unlock(passphrase, KEY_PURPOSES.encryption)),
      ),
    );
  }
  const storageKey = await unlocked(paths.storageKey, () =>
    openSecretAsync(storageFile, unlock(passphrase, KEY_PURPOSES.storage)),
  );
  if (storageKey.length !== 32)
    return nodeFail('CONFIG_INVALID', 'the storage key file does not hold a 32-byte key');
  return { identity, encryption, storageKey, ...(pendingIdentity ? { pendingIdentity } : {}) };
}

/** Seal a new key pair under the passphrase into `path` (never overwriting an existing file). */
export async function writeSealedKey(options: {
  dir: string;
  path: string;
  passphrase: string;
  limits: KdfLimits;
  pair: { kind: 'identity'; key: SigningKeyPair } | { kind: 'encryption'; key: EncryptionKeyPair };
}): Promise<void> {
  const { pair, passphrase, limits } = options;
  const sealed =
    pair.kind === 'identity'
      ? await sealSigningKeyAsync(pair.key, {
          passphrase,
          purpose: KEY_PURPOSES.identity,
          limits,
          derive: deriveKeyInWorker,
        })
      : await sealEncryptionKeyAsync(pair.key, {
          passphrase,
          purpose: KEY_PURPOSES.encryption,
          limits,
          derive: deriveKeyInWorker,
        });
  await writeFile(join(options.dir, options.path), `${JSON.stringify(sealed, null, 2)}\n`, {
    mode: 0o600,
    flag: 'wx',
  });
}

/** Check that `passphrase` opens the node's identity key file (PASSPHRASE_INVALID otherwise): new key files must open with it. */
export async function checkPassphrase(options: {
  dir: string;
  passphrase: string;
  paths: KeyringPaths;
  identityKid: string;
}): Promise<void> {
  const file = await readKeyFile(options.dir, options.paths.identityKey);
  const key = await unlocked(options.paths.identityKey, () =>
    openSigningKeyAsync(file, unlock(options.passphrase, KEY_PURPOSES.identity)),
  );
  const kid = key.kid;
  sodium().memzero(key.secretKey);
  if (kid !== options.identityKid)
    nodeFail('CONFIG_INVALID', 'the identity key file does not match node.json');
}

function copyPair<T extends SigningKeyPair | EncryptionKeyPair>(pair: T): T {
  return {
    ...pair,
    publicKey: Uint8Array.from(pair.publicKey),
    secretKey: Uint8Array.from(pair.secretKey),
  };
}

async function unlocked<T>(path: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (cause) {
    if (isProtocolError(cause, 'PASSPHRASE_INVALID'))
      return nodeFail('PASSPHRASE_INVALID', 'wrong passphrase (or a damaged key file)', {
        cause,
        detail: cause.code,
      });
    if (isProtocolError(cause))
      return nodeFail('CONFIG_INVALID', `key file ${path} is invalid`, {
        cause,
        detail: cause.code,
      });
    throw cause;
  }
}

function unlock(
  passphrase: string,
  purpose: string,
): { passphrase: string; purpose: string; derive: typeof deriveKeyInWorker } {
  return { passphrase, purpose, derive: deriveKeyInWorker };
}

async function readKeyFile(dir: string, path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(join(dir, path), 'utf8');
  } catch (cause) {
    return nodeFail('CONFIG_INVALID', `key file ${join(dir, path)} ${whyUnreadable(cause)}`, {
      cause,
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    return nodeFail('CONFIG_INVALID', `key file ${join(dir, path)} is not JSON`, { cause });
  }
}

/** Erase secret key material held in memory. */
export function wipeKeyring(keys: Keyring): void {
  const s = sodium();
  s.memzero(keys.identity.secretKey);
  if (keys.pendingIdentity) s.memzero(keys.pendingIdentity.secretKey);
  for (const k of keys.encryption) s.memzero(k.secretKey);
  s.memzero(keys.storageKey);
}
