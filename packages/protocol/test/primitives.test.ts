import { randomFillSync } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  generateSigningKeyPair,
  primitives,
  ready,
  setPrimitives,
  signBytes,
  verifySignature,
  wasmPrimitives,
} from '../src/index.js';
import { nativePrimitives, useNativeCrypto } from '../src/node/index.js';

beforeAll(ready);
afterEach(() => {
  setPrimitives(wasmPrimitives);
});

describe('native and WebAssembly libsodium agree', () => {
  it('loads the native addon here, and useNativeCrypto switches to it', () => {
    const native = nativePrimitives();
    expect(native).not.toBeNull();
    expect(primitives().name).toBe('libsodium-wasm');
    expect(useNativeCrypto()).toBe('libsodium-native');
    expect(primitives().name).toBe('libsodium-native');
  });

  it('same signatures, same hashes, each verifies the other, and both refuse a flipped bit', () => {
    const native = nativePrimitives()!;
    const key = generateSigningKeyPair();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.nat(), (message, flip) => {
        const a = native.signDetached(message, key.secretKey);
        const b = wasmPrimitives.signDetached(message, key.secretKey);
        // Ed25519 signatures are deterministic.
        expect(a).toEqual(b);
        expect(native.sha256(message)).toEqual(wasmPrimitives.sha256(message));
        expect(native.verifyDetached(b, message, key.publicKey)).toBe(true);
        expect(wasmPrimitives.verifyDetached(a, message, key.publicKey)).toBe(true);
        const bad = a.slice();
        bad[flip % 64]! ^= 1 << (flip % 8);
        expect(native.verifyDetached(bad, message, key.publicKey)).toBe(false);
        expect(wasmPrimitives.verifyDetached(bad, message, key.publicKey)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses malformed inputs without throwing', () => {
    const native = nativePrimitives()!;
    const key = generateSigningKeyPair();
    const message = randomFillSync(new Uint8Array(10));
    const sig = native.signDetached(message, key.secretKey);
    for (const p of [native, wasmPrimitives]) {
      expect(p.verifyDetached(sig.subarray(0, 63), message, key.publicKey)).toBe(false);
      expect(p.verifyDetached(sig, message, key.publicKey.subarray(0, 31))).toBe(false);
      expect(p.verifyDetached(new Uint8Array(64), message, new Uint8Array(32))).toBe(false);
    }
  });

  it('signed statements made on one verify on the other', () => {
    const key = generateSigningKeyPair();
    const body = { hello: 'world', n: 7 };
    setPrimitives(nativePrimitives()!);
    const signature = signBytes('rogatory/v1/evidence', body, key);
    setPrimitives(wasmPrimitives);
    expect(() =>
      verifySignature('rogatory/v1/evidence', body, signature, key.publicKey),
    ).not.toThrow();
    expect(() =>
      verifySignature('rogatory/v1/evidence', { ...body, n: 8 }, signature, key.publicKey),
    ).toThrow(/does not verify/);
  });
});
