/**
 * The three primitives every signed or hashed object goes through, behind
 * one switch: Ed25519 detached signatures and SHA-256. The default is
 * libsodium compiled to WebAssembly (isomorphic). A Node process can switch
 * to libsodium compiled natively (`useNativeCrypto()` of
 * `@rogatory/protocol/node`): the same library and so the same acceptance
 * rules, about three times faster. Every test vector runs on both.
 */
import { sodium } from './sodium.js';

export interface Primitives {
  /** Which implementation this is, for logs and benchmarks. */
  readonly name: string;
  /** crypto_sign_detached: a 64-byte signature of `message` under the 64-byte secret key. */
  signDetached(message: Uint8Array, secretKey: Uint8Array): Uint8Array;
  /** crypto_sign_verify_detached; false (never a throw) for anything that does not verify. */
  verifyDetached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  /** crypto_hash_sha256. */
  sha256(data: Uint8Array): Uint8Array;
  /**
   * Optional: crypto_hash_sha256 written into `out` (32 bytes) instead of a
   * fresh array. Loops of small hashes (Merkle proof verification) use it
   * where present: allocating the 32-byte result costs as much as hashing
   * 65 bytes natively. Same hash as `sha256`.
   */
  sha256Into?(out: Uint8Array, data: Uint8Array): void;
}

export const wasmPrimitives: Primitives = {
  name: 'libsodium-wasm',
  signDetached: (message, secretKey) => sodium().crypto_sign_detached(message, secretKey),
  verifyDetached: (signature, message, publicKey) => {
    if (signature.length !== 64 || publicKey.length !== 32) return false;
    try {
      return sodium().crypto_sign_verify_detached(signature, message, publicKey);
    } catch {
      return false;
    }
  },
  sha256: (data) => sodium().crypto_hash_sha256(data),
};

let current: Primitives = wasmPrimitives;

/** The primitives in use. */
export function primitives(): Primitives {
  return current;
}

/** Switch implementation (process-wide); returns the previous one. */
export function setPrimitives(next: Primitives): Primitives {
  const previous = current;
  current = next;
  return previous;
}

/** SHA-256 of `data` into `out` (32 bytes), with `sha256Into` when the primitives have it. */
export function sha256Into(out: Uint8Array, data: Uint8Array): void {
  if (current.sha256Into) current.sha256Into(out, data);
  else out.set(current.sha256(data));
}
