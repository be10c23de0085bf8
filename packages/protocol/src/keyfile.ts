import { Type, type Static } from 'typebox';
import { concatBytes, fromBase64url, randomBytes, toBase64url, utf8 } from './bytes.js';
import { fail } from './errors.js';
import {
  generateSigningKeyPair,
  keyId,
  type EncryptionKeyPair,
  type SigningKeyPair,
} from './keys.js';
import { Base64url, validator } from './schema.js';
import { sodium } from './sodium.js';

/**
 * Private keys at rest: encrypted under a key derived from a passphrase with
 * Argon2id (crypto_pwhash, ALG_ARGON2ID13), then XChaCha20-Poly1305 with
 * additional data naming the format and the key's purpose, so a sealed key
 * cannot be swapped for another purpose's.
 */
export const SealedSecretSchema = Type.Object(
  {
    type: Type.Literal('rogatory-sealed-secret'),
    version: Type.Literal(1),
    /** What the secret is, e.g. "relay-identity", "authority-identity", "authority-encryption". */
    purpose: Type.String({ pattern: '^[a-z0-9-]{1,64}$' }),
    kdf: Type.Literal('argon2id13'),
    opslimit: Type.Integer({ minimum: 1, maximum: 64 }),
    memlimit: Type.Integer({ minimum: 8192, maximum: 4 * 1024 * 1024 * 1024 }),
    salt: Base64url(16),
    nonce: Base64url(24),
    ciphertext: Base64url(),
  },
  { additionalProperties: false },
);
export type SealedSecret = Static<typeof SealedSecretSchema>;
const sealedSecretShape = validator(SealedSecretSchema, 'sealed secret');

/** Work factors: interactive for tests, moderate (libsodium's defaults) for real keys. */
export const KDF_LIMITS = {
  interactive: { opslimit: 2, memlimit: 64 * 1024 * 1024 },
  moderate: { opslimit: 3, memlimit: 256 * 1024 * 1024 },
} as const;

function associatedData(purpose: string): Uint8Array {
  return concatBytes(utf8('rogatory/v1/sealed-secret'), Uint8Array.of(0), utf8(purpose));
}

/**
 * An Argon2id (crypto_pwhash, ALG_ARGON2ID13) derivation of a 32-byte key.
 * Injectable so that Node processes can run it elsewhere (e.g. on a
 * short-lived worker thread, see `deriveKeyInWorker` of
 * `@rogatory/protocol/node`): the result must be the same bytes.
 */
export type DeriveKey = (
  passphrase: string,
  salt: Uint8Array,
  opslimit: number,
  memlimit: number,
) => Uint8Array | Promise<Uint8Array>;

/** The default derivation: libsodium of this process (its WebAssembly memory grows to memlimit and stays there). */
export function deriveKeyInProcess(
  passphrase: string,
  salt: Uint8Array,
  opslimit: number,
  memlimit: number,
): Uint8Array {
  const s = sodium();
  return s.crypto_pwhash(
    32,
    utf8(passphrase),
    salt,
    opslimit,
    memlimit,
    s.crypto_pwhash_ALG_ARGON2ID13,
  );
}

type Limits = { opslimit: number; memlimit: number };
type SealOptions = { passphrase: string; purpose: string; limits?: Limits };
type OpenOptions = { passphrase: string; purpose: string };

interface SealPlan {
  readonly secret: Uint8Array;
  readonly purpose: string;
  readonly passphrase: string;
  readonly opslimit: number;
  readonly memlimit: number;
  readonly salt: Uint8Array;
  readonly nonce: Uint8Array;
}

function planSeal(secret: Uint8Array, options: SealOptions): SealPlan {
  if (options.passphrase.length < 8)
    fail('LIMIT_EXCEEDED', 'passphrase must have at least 8 characters');
  const { opslimit, memlimit } = options.limits ?? KDF_LIMITS.moderate;
  return {
    secret,
    purpose: options.purpose,
    passphrase: options.passphrase,
    opslimit,
    memlimit,
    salt: randomBytes(16),
    nonce: randomBytes(24),
  };
}

function finishSeal(plan: SealPlan, key: Uint8Array): SealedSecret {
  const s = sodium();
  const ciphertext = s.crypto_aead_xchacha20poly1305_ietf_encrypt(
    plan.secret,
    associatedData(plan.purpose),
    null,
    plan.nonce,
    key,
  );
  s.memzero(key);
  return sealedSecretShape.parse({
    type: 'rogatory-sealed-secret',
    version: 1,
    purpose: plan.purpose,
    kdf: 'argon2id13',
    opslimit: plan.opslimit,
    memlimit: plan.memlimit,
    salt: toBase64url(plan.salt),
    nonce: toBase64url(plan.nonce),
    ciphertext: toBase64url(ciphertext),
  });
}

function planOpen(value: unknown, options: OpenOptions): SealedSecret {
  const sealed = sealedSecretShape.parse(value);
  if (sealed.purpose !== options.purpose)
    fail('KEY_WRONG_ROLE', `sealed secret is a ${sealed.purpose}, not a ${options.purpose}`);
  return sealed;
}

function finishOpen(sealed: SealedSecret, key: Uint8Array): Uint8Array {
  const s = sodium();
  try {
    return s.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      fromBase64url(sealed.ciphertext),
      associatedData(sealed.purpose),
      fromBase64url(sealed.nonce),
      key,
    );
  } catch (cause) {
    return fail('PASSPHRASE_INVALID', 'wrong passphrase or damaged key file', { cause });
  } finally {
    s.memzero(key);
  }
}

/** Encrypt a secret (a private key or seed) under a passphrase. */
export function sealSecret(secret: Uint8Array, options: SealOptions): SealedSecret {
  const plan = planSeal(secret, options);
  return finishSeal(
    plan,
    deriveKeyInProcess(plan.passphrase, plan.salt, plan.opslimit, plan.memlimit),
  );
}

/** Decrypt a sealed secret. A wrong passphrase (or a tampered file) gives PASSPHRASE_INVALID. */
export function openSecret(value: unknown, options: OpenOptions): Uint8Array {
  const sealed = planOpen(value, options);
  return finishOpen(
    sealed,
    deriveKeyInProcess(
      options.passphrase,
      fromBase64url(sealed.salt),
      sealed.opslimit,
      sealed.memlimit,
    ),
  );
}

/** `sealSecret` with the key derivation injectable (default: in this process). Same format, same result. */
export async function sealSecretAsync(
  secret: Uint8Array,
  options: SealOptions & { derive?: DeriveKey },
): Promise<SealedSecret> {
  const plan = planSeal(secret, options);
  const derive = options.derive ?? deriveKeyInProcess;
  return finishSeal(plan, await derive(plan.passphrase, plan.salt, plan.opslimit, plan.memlimit));
}

/** `openSecret` with the key derivation injectable (default: in this process). Same errors, same result. */
export async function openSecretAsync(
  value: unknown,
  options: OpenOptions & { derive?: DeriveKey },
): Promise<Uint8Array> {
  const sealed = planOpen(value, options);
  const derive = options.derive ?? deriveKeyInProcess;
  return finishOpen(
    sealed,
    await derive(options.passphrase, fromBase64url(sealed.salt), sealed.opslimit, sealed.memlimit),
  );
}

/** Seal a signing key pair (its 32-byte seed is what is stored). */
export function sealSigningKey(pair: SigningKeyPair, options: SealOptions): SealedSecret {
  return sealSecret(pair.secretKey.subarray(0, 32), options);
}

export function openSigningKey(value: unknown, options: OpenOptions): SigningKeyPair {
  return generateSigningKeyPair(openSecret(value, options));
}

/** Seal an encryption key pair (its 32-byte X25519 secret is what is stored). */
export function sealEncryptionKey(pair: EncryptionKeyPair, options: SealOptions): SealedSecret {
  return sealSecret(pair.secretKey, options);
}

export function openEncryptionKey(value: unknown, options: OpenOptions): EncryptionKeyPair {
  return encryptionPair(openSecret(value, options));
}

export function sealSigningKeyAsync(
  pair: SigningKeyPair,
  options: SealOptions & { derive?: DeriveKey },
): Promise<SealedSecret> {
  return sealSecretAsync(pair.secretKey.subarray(0, 32), options);
}

export async function openSigningKeyAsync(
  value: unknown,
  options: OpenOptions & { derive?: DeriveKey },
): Promise<SigningKeyPair> {
  return generateSigningKeyPair(await openSecretAsync(value, options));
}

export function sealEncryptionKeyAsync(
  pair: EncryptionKeyPair,
  options: SealOptions & { derive?: DeriveKey },
): Promise<SealedSecret> {
  return sealSecretAsync(pair.secretKey, options);
}

export async function openEncryptionKeyAsync(
  value: unknown,
  options: OpenOptions & { derive?: DeriveKey },
): Promise<EncryptionKeyPair> {
  return encryptionPair(await openSecretAsync(value, options));
}

function encryptionPair(secretKey: Uint8Array): EncryptionKeyPair {
  const publicKey = sodium().crypto_scalarmult_base(secretKey);
  return { alg: 'x25519', kid: keyId('x25519', publicKey), publicKey, secretKey };
}
