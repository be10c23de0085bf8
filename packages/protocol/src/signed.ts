import { Type, type Static, type TSchema } from 'typebox';
import { concatBytes, fromBase64url, sha256, toBase64url, toHex, utf8 } from './bytes.js';
import { canonicalBytes } from './encoding.js';
import { fail } from './errors.js';
import type { SigningKeyPair } from './keys.js';
import { Base64url, KeyIdSchema } from './schema.js';
import { primitives } from './primitives.js';

/**
 * Domain separation: every kind of signed object has its own context string,
 * prepended to the signed bytes, so a signature made for one kind can never
 * be accepted as another.
 */
export const CONTEXTS = {
  manifest: 'rogatory/v1/manifest',
  introduction: 'rogatory/v1/introduction',
  keyRotation: 'rogatory/v1/key-rotation',
  keyRotationProof: 'rogatory/v1/key-rotation-proof',
  revocation: 'rogatory/v1/revocation',
  encryptionKey: 'rogatory/v1/encryption-key',
  envelope: 'rogatory/v1/envelope',
  dossier: 'rogatory/v1/dossier',
  evidence: 'rogatory/v1/evidence',
  sessionChallenge: 'rogatory/v1/session-challenge',
  relayCall: 'rogatory/v1/relay-call',
  treeHead: 'rogatory/v1/tree-head',
} as const;
export type SigningContext = (typeof CONTEXTS)[keyof typeof CONTEXTS];

export const SignatureSchema = Type.Object(
  { kid: KeyIdSchema, value: Base64url(64) },
  { additionalProperties: false },
);
export type Signature = Static<typeof SignatureSchema>;

/** `{ body, signature }`: the wire form of every signed object. */
export const SignedSchema = <B extends TSchema>(body: B) =>
  Type.Object({ body, signature: SignatureSchema }, { additionalProperties: false });

export interface Signed<B> {
  readonly body: B;
  readonly signature: Signature;
}

/** Signed bytes: UTF-8(context) || 0x00 || canonical(body). */
export function signingInput(context: SigningContext, body: unknown): Uint8Array {
  return concatBytes(utf8(context), Uint8Array.of(0), canonicalBytes(body));
}

/** Detached Ed25519 signature (crypto_sign_detached) over the signing input. */
export function signBytes(context: SigningContext, body: unknown, key: SigningKeyPair): Signature {
  const sig = primitives().signDetached(signingInput(context, body), key.secretKey);
  return { kid: key.kid, value: toBase64url(sig) };
}

export function sign<B>(context: SigningContext, body: B, key: SigningKeyPair): Signed<B> {
  return { body, signature: signBytes(context, body, key) };
}

/**
 * Verify a detached signature (crypto_sign_verify_detached). The caller has
 * already resolved `publicKey` for `signature.kid` from its trust store.
 * Throws SIGNATURE_INVALID.
 */
export function verifySignature(
  context: SigningContext,
  body: unknown,
  signature: Signature,
  publicKey: Uint8Array,
): void {
  const sig = fromBase64url(signature.value, 'signature');
  const ok =
    sig.length === 64 && primitives().verifyDetached(sig, signingInput(context, body), publicKey);
  if (!ok) fail('SIGNATURE_INVALID', `signature by key ${signature.kid} does not verify`);
}

/** Lowercase hex SHA-256 of the canonical encoding of a value. */
export function hashOf(value: unknown): string {
  return toHex(sha256(canonicalBytes(value)));
}
