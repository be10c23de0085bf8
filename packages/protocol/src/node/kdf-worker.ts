import { WorkerPool, besideEntry } from '@rogatory/worker-pool';
import { utf8 } from '../bytes.js';

/**
 * Argon2id on a worker thread (kdf-thread.ts) with its own libsodium
 * instance, stopped as soon as no call is outstanding.
 *
 * libsodium's WebAssembly memory grows to the memlimit of the largest
 * crypto_pwhash run (64 MiB interactive, 256 MiB moderate) and WebAssembly
 * memory never shrinks: in-process, one key-file unlock or password check
 * leaves a process that much larger for the rest of its life. The worker's
 * memory goes with it. Calls that overlap share one worker (and run one after
 * the other), so concurrent unlocks hold one libsodium heap, not one each.
 */
const pool = new WorkerPool({
  url: () => besideEntry('@rogatory/protocol/node', './kdf-thread.ts', import.meta.url),
  // libsodium is half a megabyte: required from node_modules rather than bundled into the worker's source.
  external: ['libsodium-wrappers-sumo'],
  name: 'rogatory-argon2id',
  idleStopMs: 0,
});

function deriveArgs(
  passphrase: string,
  salt: Uint8Array,
  opslimit: number,
  memlimit: number,
): { a: Record<string, unknown>; transfer: ArrayBuffer[] } {
  const p = utf8(passphrase);
  const pass = new Uint8Array(p.length);
  pass.set(p);
  const s = new Uint8Array(salt.length);
  s.set(salt);
  return {
    a: { passphrase: pass, salt: s, opslimit, memlimit },
    transfer: [pass.buffer, s.buffer],
  };
}

function asKey(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== 32)
    throw new Error('malformed reply from the Argon2id worker');
  return value;
}

function asString(value: unknown): string {
  if (typeof value !== 'string') throw new Error('malformed reply from the Argon2id worker');
  return value;
}

function asBoolean(value: unknown): boolean {
  if (typeof value !== 'boolean') throw new Error('malformed reply from the Argon2id worker');
  return value;
}

/**
 * The key derivation of sealed secrets (a `DeriveKey` for `openSecretAsync`
 * and friends) on a short-lived worker: the same 32 bytes as in-process.
 */
export async function deriveKeyInWorker(
  passphrase: string,
  salt: Uint8Array,
  opslimit: number,
  memlimit: number,
): Promise<Uint8Array> {
  const { a, transfer } = deriveArgs(passphrase, salt, opslimit, memlimit);
  return asKey(await pool.call('derive', a, { transfer }));
}

/** `deriveKeyInWorker`, blocking until done (for synchronous callers). */
export function deriveKeyInWorkerSync(
  passphrase: string,
  salt: Uint8Array,
  opslimit: number,
  memlimit: number,
): Uint8Array {
  const { a, transfer } = deriveArgs(passphrase, salt, opslimit, memlimit);
  return asKey(pool.callSync('derive', a, { transfer }));
}

/** libsodium crypto_pwhash_str (Argon2id, encoded string) on a short-lived worker. */
export async function pwhashStrInWorker(
  password: string,
  opslimit: number,
  memlimit: number,
): Promise<string> {
  return asString(await pool.call('str', { password, opslimit, memlimit }));
}

/** `pwhashStrInWorker`, blocking until done (for synchronous callers). */
export function pwhashStrInWorkerSync(
  password: string,
  opslimit: number,
  memlimit: number,
): string {
  return asString(pool.callSync('str', { password, opslimit, memlimit }));
}

/** libsodium crypto_pwhash_str_verify on a short-lived worker. Throws where libsodium throws (e.g. a malformed hash). */
export async function pwhashStrVerifyInWorker(hash: string, password: string): Promise<boolean> {
  return asBoolean(await pool.call('verify', { hash, password }));
}

/** `pwhashStrVerifyInWorker`, blocking until done (for synchronous callers). */
export function pwhashStrVerifyInWorkerSync(hash: string, password: string): boolean {
  return asBoolean(pool.callSync('verify', { hash, password }));
}
