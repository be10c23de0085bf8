import { Type, type Static } from 'typebox';
import { concatBytes, fromBase64url, sha256, toBase64url, utf8 } from './bytes.js';
import { fail } from './errors.js';
import { Base64url, KeyIdSchema, Timestamp } from './schema.js';
import { sodium } from './sodium.js';

export type KeyAlgorithm = 'ed25519' | 'x25519';

/**
 * Key id: the first 16 bytes of
 * SHA-256("rogatory/v1/kid" || 0x00 || alg || 0x00 || publicKey), base64url.
 */
export function keyId(alg: KeyAlgorithm, publicKey: Uint8Array): string {
  const digest = sha256(
    concatBytes(utf8('rogatory/v1/kid'), Uint8Array.of(0), utf8(alg), Uint8Array.of(0), publicKey),
  );
  return toBase64url(digest.subarray(0, 16));
}

/** A public key as published in manifests and statements, with its validity period. */
export const KeyRefSchema = Type.Object(
  {
    alg: Type.Union([Type.Literal('ed25519'), Type.Literal('x25519')]),
    kid: KeyIdSchema,
    publicKey: Base64url(32),
    notBefore: Timestamp,
    notAfter: Timestamp,
  },
  { additionalProperties: false },
);
export type KeyRef = Static<typeof KeyRefSchema>;

/** An Ed25519 signing key pair (identity, root, relay or PoC key). */
export interface SigningKeyPair {
  readonly alg: 'ed25519';
  readonly kid: string;
  readonly publicKey: Uint8Array;
  /** libsodium's 64-byte secret key (seed || public key). */
  readonly secretKey: Uint8Array;
}

/** An X25519 encryption key pair (a subkey certified by an identity key). */
export interface EncryptionKeyPair {
  readonly alg: 'x25519';
  readonly kid: string;
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** New Ed25519 key pair (crypto_sign_seed_keypair); a 32-byte seed makes it deterministic. */
export function generateSigningKeyPair(seed?: Uint8Array): SigningKeyPair {
  const s = sodium();
  const kp = seed ? s.crypto_sign_seed_keypair(checkSeed(seed)) : s.crypto_sign_keypair();
  return {
    alg: 'ed25519',
    kid: keyId('ed25519', kp.publicKey),
    publicKey: kp.publicKey,
    secretKey: kp.privateKey,
  };
}

/** New X25519 key pair (crypto_box_seed_keypair); a 32-byte seed makes it deterministic. */
export function generateEncryptionKeyPair(seed?: Uint8Array): EncryptionKeyPair {
  const s = sodium();
  const kp = seed ? s.crypto_box_seed_keypair(checkSeed(seed)) : s.crypto_box_keypair();
  return {
    alg: 'x25519',
    kid: keyId('x25519', kp.publicKey),
    publicKey: kp.publicKey,
    secretKey: kp.privateKey,
  };
}

function checkSeed(seed: Uint8Array): Uint8Array {
  if (seed.length !== 32) fail('LIMIT_EXCEEDED', 'key seed must be 32 bytes');
  return seed;
}

/** Publish a key pair's public half with a validity period. */
export function keyRef(
  pair: SigningKeyPair | EncryptionKeyPair,
  validity: { notBefore: number; notAfter: number },
): KeyRef {
  if (validity.notAfter <= validity.notBefore)
    fail('SCHEMA_INVALID', 'key validity ends before it starts');
  return {
    alg: pair.alg,
    kid: pair.kid,
    publicKey: toBase64url(pair.publicKey),
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
  };
}

/** Decode a KeyRef's public key and check that its kid matches it. */
export function publicKeyOf(ref: KeyRef): Uint8Array {
  const pk = fromBase64url(ref.publicKey, 'publicKey');
  if (pk.length !== 32) fail('SCHEMA_INVALID', 'public key must be 32 bytes');
  if (keyId(ref.alg, pk) !== ref.kid)
    fail('SCHEMA_INVALID', `key id ${ref.kid} does not match its public key`);
  return pk;
}

/** Check a key's validity period at time `at`; throws KEY_NOT_YET_VALID or KEY_EXPIRED. */
export function checkKeyValidity(ref: KeyRef, at: number): void {
  if (at < ref.notBefore)
    fail('KEY_NOT_YET_VALID', `key ${ref.kid} is not valid before its notBefore`);
  if (at >= ref.notAfter) fail('KEY_EXPIRED', `key ${ref.kid} expired`);
}
