import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { utf8 } from '../bytes.js';

/**
 * Argon2id on a short-lived worker thread with its own libsodium instance.
 *
 * libsodium's WebAssembly memory grows to the memlimit of the largest
 * crypto_pwhash run (64 MiB interactive, 256 MiB moderate) and WebAssembly
 * memory never shrinks: in-process, one key-file unlock or password check
 * leaves a process that much larger for the rest of its life. A worker is
 * terminated after each call, and its memory goes with it.
 *
 * The worker's source is plain JavaScript evaluated with `eval: true` (as in
 * hash-worker.ts), so it runs the same under node, tsx and vitest. It
 * imports libsodium by absolute file URL, resolved here from this package.
 *
 * workerData: { op, a, port, flag, url }. One reply is posted on `port`:
 * { r } (the result) or { e } (an error message); then `flag` is set to 1
 * and notified, which lets a synchronous caller wait with Atomics.wait.
 */
const WORKER_SOURCE = `
'use strict';
const { workerData } = require('node:worker_threads');
const { op, a, port, flag, url } = workerData;
function done(message, transfer) {
  port.postMessage(message, transfer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}
(async () => {
  const mod = await import(url);
  const sodium = mod.default ?? mod;
  await sodium.ready;
  if (op === 'derive') {
    const key = sodium.crypto_pwhash(32, a.passphrase, a.salt, a.opslimit, a.memlimit, sodium.crypto_pwhash_ALG_ARGON2ID13);
    const r = new Uint8Array(key);
    sodium.memzero(key);
    a.passphrase.fill(0);
    done({ r }, [r.buffer]);
  } else if (op === 'str') {
    done({ r: sodium.crypto_pwhash_str(a.password, a.opslimit, a.memlimit) });
  } else if (op === 'verify') {
    done({ r: sodium.crypto_pwhash_str_verify(a.hash, a.password) });
  } else {
    throw new Error('unknown operation ' + op);
  }
})().catch((err) => {
  done({ e: String((err && err.message) || err) });
});
`;

/** Time a synchronous caller waits for the worker before giving up (Argon2id moderate takes about a second). */
const SYNC_TIMEOUT_MS = 300_000;

let sodiumUrl: string | undefined;

/** File URL of the ESM build of libsodium-wrappers-sumo, as this package resolves it. */
function libsodiumUrl(): string {
  if (sodiumUrl !== undefined) return sodiumUrl;
  // createRequire resolves the CommonJS entry; both builds sit in the same package, and the
  // worker imports whichever it is given (a CommonJS module's exports come as `default`).
  sodiumUrl = pathToFileURL(createRequire(import.meta.url).resolve('libsodium-wrappers-sumo')).href;
  return sodiumUrl;
}

interface Reply {
  readonly r?: unknown;
  readonly e?: string;
}

interface Started {
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly flag: Int32Array;
}

function start(op: string, a: Record<string, unknown>, transfer: ArrayBuffer[]): Started {
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    name: 'rogatory-argon2id',
    workerData: { op, a, port: port2, flag, url: libsodiumUrl() },
    transferList: [port2, ...transfer],
  });
  return { worker, port: port1, flag };
}

function stop(started: Started): void {
  started.port.close();
  void started.worker.terminate();
}

function result(reply: Reply, op: string): unknown {
  if (reply.e !== undefined) throw new Error(`Argon2id (${op}) failed in the worker: ${reply.e}`);
  return reply.r;
}

/** Run `op` on a fresh worker and await its reply; the worker is terminated afterwards. */
function runAsync(op: string, a: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<unknown> {
  const started = start(op, a, transfer);
  return new Promise<unknown>((resolve, reject) => {
    const finish = (settle: () => void): void => {
      started.worker.removeAllListeners();
      started.port.removeAllListeners();
      stop(started);
      settle();
    };
    started.port.once('message', (reply: Reply) => {
      finish(() => {
        try {
          resolve(result(reply, op));
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    started.worker.once('error', (err) => {
      finish(() => {
        reject(new Error(`the Argon2id worker failed (${op})`, { cause: err }));
      });
    });
    started.worker.once('exit', (code) => {
      finish(() => {
        reject(new Error(`the Argon2id worker exited (code ${code}) before replying (${op})`));
      });
    });
  });
}

/**
 * Run `op` on a fresh worker, blocking this thread until it replies (as an
 * in-process crypto_pwhash would); the worker is terminated afterwards.
 */
function runSync(op: string, a: Record<string, unknown>, transfer: ArrayBuffer[] = []): unknown {
  const started = start(op, a, transfer);
  try {
    const waited = Atomics.wait(started.flag, 0, 0, SYNC_TIMEOUT_MS);
    const received = receiveMessageOnPort(started.port) as { message: Reply } | undefined;
    if (received === undefined) {
      throw new Error(`the Argon2id worker did not reply (${op}${waited === 'timed-out' ? ', timed out' : ''})`);
    }
    return result(received.message, op);
  } finally {
    stop(started);
  }
}

function deriveArgs(passphrase: string, salt: Uint8Array, opslimit: number, memlimit: number): { a: Record<string, unknown>; transfer: ArrayBuffer[] } {
  const p = utf8(passphrase);
  const pass = new Uint8Array(p.length);
  pass.set(p);
  const s = new Uint8Array(salt.length);
  s.set(salt);
  return { a: { passphrase: pass, salt: s, opslimit, memlimit }, transfer: [pass.buffer, s.buffer] };
}

function asKey(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== 32) throw new Error('malformed reply from the Argon2id worker');
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
export async function deriveKeyInWorker(passphrase: string, salt: Uint8Array, opslimit: number, memlimit: number): Promise<Uint8Array> {
  const { a, transfer } = deriveArgs(passphrase, salt, opslimit, memlimit);
  return asKey(await runAsync('derive', a, transfer));
}

/** `deriveKeyInWorker`, blocking until done (for synchronous callers). */
export function deriveKeyInWorkerSync(passphrase: string, salt: Uint8Array, opslimit: number, memlimit: number): Uint8Array {
  const { a, transfer } = deriveArgs(passphrase, salt, opslimit, memlimit);
  return asKey(runSync('derive', a, transfer));
}

/** libsodium crypto_pwhash_str (Argon2id, encoded string) on a short-lived worker. */
export async function pwhashStrInWorker(password: string, opslimit: number, memlimit: number): Promise<string> {
  return asString(await runAsync('str', { password, opslimit, memlimit }));
}

/** `pwhashStrInWorker`, blocking until done (for synchronous callers). */
export function pwhashStrInWorkerSync(password: string, opslimit: number, memlimit: number): string {
  return asString(runSync('str', { password, opslimit, memlimit }));
}

/** libsodium crypto_pwhash_str_verify on a short-lived worker. Throws where libsodium throws (e.g. a malformed hash). */
export async function pwhashStrVerifyInWorker(hash: string, password: string): Promise<boolean> {
  return asBoolean(await runAsync('verify', { hash, password }));
}

/** `pwhashStrVerifyInWorker`, blocking until done (for synchronous callers). */
export function pwhashStrVerifyInWorkerSync(hash: string, password: string): boolean {
  return asBoolean(runSync('verify', { hash, password }));
}
