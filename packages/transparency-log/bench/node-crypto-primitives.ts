/**
 * A benchmark-only variant of the protocol primitives on Node's own crypto
 * (OpenSSL): Ed25519 through a KeyObject made from the raw public key (JWK,
 * the cheaper of JWK and a DER prefix), SHA-256 through createHash. It is
 * measured against libsodium in `bench:trust` and not used by any product
 * code: it is slower than natively compiled libsodium here (creating the
 * KeyObject costs more than the verification), and OpenSSL's acceptance rules
 * for non-canonical encodings and small-order keys are not libsodium's.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { toBase64url, type Primitives } from '@rogatory/protocol';

export const nodeCryptoPrimitives: Primitives = {
  name: 'node-crypto',
  signDetached(message, secretKey) {
    const key = createPrivateKey({
      key: {
        kty: 'OKP',
        crv: 'Ed25519',
        d: toBase64url(secretKey.subarray(0, 32)),
        x: toBase64url(secretKey.subarray(32)),
      },
      format: 'jwk',
    });
    return new Uint8Array(sign(null, message, key));
  },
  verifyDetached(signature, message, publicKey) {
    if (signature.length !== 64 || publicKey.length !== 32) return false;
    try {
      const key = createPublicKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: toBase64url(publicKey) },
        format: 'jwk',
      });
      return verify(null, message, key, signature);
    } catch {
      return false;
    }
  },
  sha256: (data) => new Uint8Array(createHash('sha256').update(data).digest()),
};
