import sodiumModule from 'libsodium-wrappers-sumo';

/**
 * libsodium (sumo build: it has crypto_hash_sha256) compiled to WebAssembly,
 * so the same code runs in Node and in browsers. Every protocol function
 * that touches cryptography needs `await ready()` once first.
 */
export type Sodium = typeof sodiumModule;

let loaded = false;

/** Load libsodium. Idempotent; await it once before any other call. */
export async function ready(): Promise<void> {
  if (loaded) return;
  await sodiumModule.ready;
  loaded = true;
}

/** The loaded libsodium instance. Throws if `ready()` has not completed. */
export function sodium(): Sodium {
  if (!loaded)
    throw new Error('libsodium is not loaded: await ready() from @rogatory/protocol first');
  return sodiumModule;
}
