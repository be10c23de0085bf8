import { createRequire } from 'node:module';
import { setPrimitives, wasmPrimitives, type Primitives } from '../primitives.js';

/** The part of sodium-native (libsodium as a native addon) used here. */
interface SodiumNative {
  crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
  crypto_sign_verify_detached(
    signature: Uint8Array,
    message: Uint8Array,
    publicKey: Uint8Array,
  ): boolean;
  crypto_hash_sha256(out: Uint8Array, data: Uint8Array): void;
}

let loaded: SodiumNative | null | undefined;

function load(): SodiumNative | null {
  if (loaded !== undefined) return loaded;
  try {
    loaded = createRequire(import.meta.url)('sodium-native') as SodiumNative;
  } catch {
    // No prebuilt addon for this platform: the WebAssembly build stays in use.
    loaded = null;
  }
  return loaded;
}

/** libsodium's own functions through sodium-native, or null where the addon does not load. */
export function nativePrimitives(): Primitives | null {
  const sn = load();
  if (sn === null) return null;
  return {
    name: 'libsodium-native',
    signDetached(message, secretKey) {
      if (secretKey.length !== 64) return wasmPrimitives.signDetached(message, secretKey);
      const signature = new Uint8Array(64);
      sn.crypto_sign_detached(signature, message, secretKey);
      return signature;
    },
    verifyDetached(signature, message, publicKey) {
      if (signature.length !== 64 || publicKey.length !== 32) return false;
      try {
        return sn.crypto_sign_verify_detached(signature, message, publicKey);
      } catch {
        return false;
      }
    },
    sha256(data) {
      const out = new Uint8Array(32);
      sn.crypto_hash_sha256(out, data);
      return out;
    },
    sha256Into(out, data) {
      if (out.length !== 32) throw new RangeError('sha256Into needs a 32-byte output');
      sn.crypto_hash_sha256(out, data);
    },
  };
}

/**
 * Sign, verify and hash with natively compiled libsodium from now on
 * (process-wide): the same library as the default WebAssembly build, so the
 * same bytes and the same acceptance rules, at roughly three times the speed.
 * Returns the name of the implementation in use (the WebAssembly one if the
 * addon is not available on this platform).
 *
 * Call it once, from a process's entry point, never from library code: the
 * relay CLI does (a relay verifies and signs for every envelope, ~1,300-1,500
 * a second in bench:relay, where WebAssembly's 8.7k verifies a second would
 * be a large share of its CPU), and so do the benchmarks. An authority node
 * handles a few dossiers a day and stays on the WebAssembly default: opening
 * or creating one changes nothing process-wide.
 */
export function useNativeCrypto(): string {
  const native = nativePrimitives();
  if (native === null) return wasmPrimitives.name;
  setPrimitives(native);
  return native.name;
}
