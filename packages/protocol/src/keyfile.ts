import { Type, type Static } from 'typebox';
import { concatBytes, fromBase64url, randomBytes, toBase64url, utf8 } from './bytes.js';
import { fail } from './errors.js';
import { generateSigningKeyPair, keyId, type EncryptionKeyPair, type SigningKeyPair } from './keys.js';
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

function deriveKey(passphrase: string, salt: Uint8Array, opslimit: number, memlimit: number): Uint8Array {
  const s = sodium();
  return s.crypto_pwhash(32, utf8(passphrase), salt, opslimit, memlimit, s.crypto_pwhash_ALG_ARGON2ID13);
}

/** Encrypt a secret (a private key or seed) under a passphrase. */
export function sealSecret(
  secret: Uint8Array,
  options: { passphrase: string; purpose: string; limits?: { opslimit: number; memlimit: number } },
): SealedSecret {
  if (options.passphrase.length < 8) fail('LIMIT_EXCEEDED', 'passphrase must have at least 8 characters');
  const s = sodium();
  const { opslimit, memlimit } = options.limits ?? KDF_LIMITS.moderate;
  const salt = randomBytes(16);
  const nonce = randomBytes(24);
  const key = deriveKey(options.passphrase, salt, opslimit, memlimit);
  const ciphertext = s.crypto_aead_xchacha20poly1305_ietf_encrypt(secret, associatedData(options.purpose), null, nonce, key);
  s.memzero(key);
  return sealedSecretShape.parse({
    type: 'rogatory-sealed-secret',
    version: 1,
    purpose: options.purpose,
    kdf: 'argon2id13',
    opslimit,
    memlimit,
    salt: toBase64url(salt),
    nonce: toBase64url(nonce),
    ciphertext: toBase64url(ciphertext),
  });
}

/** Decrypt a sealed secret. A wrong passphrase (or a tampered file) gives PASSPHRASE_INVALID. */
export function openSecret(value: unknown, options: { passphrase: string; purpose: string }): Uint8Array {
  const sealed = sealedSecretShape.parse(value);
  if (sealed.purpose !== options.purpose) fail('KEY_WRONG_ROLE', `sealed secret is a ${sealed.purpose}, not a ${options.purpose}`);
  const s = sodium();
  const key = deriveKey(options.passphrase, fromBase64url(sealed.salt), sealed.opslimit, sealed.memlimit);
  try {
    return s.crypto_aead_xchacha20poly1305_ietf_decrypt(null, fromBase64url(sealed.ciphertext), associatedData(sealed.purpose), fromBase64url(sealed.nonce), key);
  } catch (cause) {
    return fail('PASSPHRASE_INVALID', 'wrong passphrase or damaged key file', { cause });
  } finally {
    s.memzero(key);
  }
}

/** Seal a signing key pair (its 32-byte seed is what is stored). */
export function sealSigningKey(pair: SigningKeyPair, options: { passphrase: string; purpose: string; limits?: { opslimit: number; memlimit: number } }): SealedSecret {
  return sealSecret(pair.secretKey.subarray(0, 32), options);
}

export function openSigningKey(value: unknown, options: { passphrase: string; purpose: string }): SigningKeyPair {
  return generateSigningKeyPair(openSecret(value, options));
}

/** Seal an encryption key pair (its 32-byte X25519 secret is what is stored). */
export function sealEncryptionKey(pair: EncryptionKeyPair, options: { passphrase: string; purpose: string; limits?: { opslimit: number; memlimit: number } }): SealedSecret {
  return sealSecret(pair.secretKey, options);
}

export function openEncryptionKey(value: unknown, options: { passphrase: string; purpose: string }): EncryptionKeyPair {
  const secretKey = openSecret(value, options);
  const publicKey = sodium().crypto_scalarmult_base(secretKey);
  return { alg: 'x25519', kid: keyId('x25519', publicKey), publicKey, secretKey };
}
