/**
 * The Argon2id worker (started by kdf-worker.ts through a WorkerPool that
 * stops it as soon as it is idle), with its own libsodium instance.
 *
 * Operations:
 * - derive { passphrase, salt, opslimit, memlimit } -> 32-byte key (the
 *   passphrase bytes are zeroed after use);
 * - str { password, opslimit, memlimit } -> crypto_pwhash_str encoding;
 * - verify { hash, password } -> boolean (throws where libsodium throws).
 */
import sodiumModule from 'libsodium-wrappers-sumo';
import { serveWorker, withTransfer } from '@rogatory/worker-pool/worker';

const sodium = sodiumModule;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function field<T>(args: unknown, name: string, check: (v: unknown) => v is T): T {
  const value = isRecord(args) ? args[name] : undefined;
  if (!check(value)) throw new TypeError(`argument ${name} is missing or of the wrong type`);
  return value;
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isString = (v: unknown): v is string => typeof v === 'string';
const isInteger = (v: unknown): v is number => Number.isSafeInteger(v);

serveWorker({
  derive: async (args) => {
    const passphrase = field(args, 'passphrase', isBytes);
    try {
      await sodium.ready;
      const key = sodium.crypto_pwhash(
        32,
        passphrase,
        field(args, 'salt', isBytes),
        field(args, 'opslimit', isInteger),
        field(args, 'memlimit', isInteger),
        sodium.crypto_pwhash_ALG_ARGON2ID13,
      );
      const out = new Uint8Array(key);
      sodium.memzero(key);
      return withTransfer(out, [out.buffer]);
    } finally {
      passphrase.fill(0);
    }
  },
  str: async (args) => {
    await sodium.ready;
    return sodium.crypto_pwhash_str(
      field(args, 'password', isString),
      field(args, 'opslimit', isInteger),
      field(args, 'memlimit', isInteger),
    );
  },
  verify: async (args) => {
    await sodium.ready;
    return sodium.crypto_pwhash_str_verify(
      field(args, 'hash', isString),
      field(args, 'password', isString),
    );
  },
});
