import { sodium, type Sodium } from './sodium.js';

/** One chunk handed to an {@link AttachmentHashSession}. */
export interface ChunkHashJob {
  /** The ciphertext chunk; its SHA-256 is the chunk id. */
  readonly ciphertext: Uint8Array;
  /** The chunk's plaintext, appended to the session's running plaintext SHA-256. */
  readonly plaintext: Uint8Array;
  /**
   * True when the caller owns the whole `ciphertext.buffer` and will not
   * touch it until the job settles: the session may detach it (transfer it
   * to a worker) and hand back an equal view in the result. False means the
   * session must leave the caller's buffer intact (copy it if it must move).
   */
  readonly ciphertextOwned: boolean;
  /** Same as `ciphertextOwned`, for `plaintext`. */
  readonly plaintextOwned: boolean;
}

/** Result of a {@link ChunkHashJob}. */
export interface ChunkHashResult {
  /** SHA-256 of the ciphertext chunk (32 bytes). */
  readonly digest: Uint8Array;
  /** The ciphertext, with the same bytes as passed: use this one, the one passed may have been detached. */
  readonly ciphertext: Uint8Array;
  /** The plaintext, with the same bytes as passed: use this one, the one passed may have been detached. */
  readonly plaintext: Uint8Array;
}

/**
 * The hashing of one attachment. Jobs are processed in call order: the
 * running plaintext hash covers the `plaintext` of every job in the order
 * `chunk` was called.
 */
export interface AttachmentHashSession {
  /** Hash one chunk. The caller may have several jobs outstanding; they settle in order. */
  chunk(job: ChunkHashJob): Promise<ChunkHashResult>;
  /** SHA-256 of all plaintext passed so far (32 bytes). Ends the session. */
  finish(): Promise<Uint8Array>;
  /** Drop the session's state (abandoned or failed stream). Idempotent, also after `finish`. */
  close(): void;
}

/**
 * Where the SHA-256 computations of attachments run. The isomorphic default,
 * {@link sodiumHashing}, computes them inline with libsodium; the Node entry
 * point (`@rogatory/protocol/node`) moves them to a worker thread so that they
 * overlap with encryption.
 */
export interface AttachmentHashing {
  /** Start the hashing of one attachment. */
  open(): AttachmentHashSession;
}

class SodiumHashSession implements AttachmentHashSession {
  readonly #s: Sodium;
  #state: ReturnType<Sodium['crypto_hash_sha256_init']> | undefined;

  constructor() {
    this.#s = sodium();
    this.#state = this.#s.crypto_hash_sha256_init();
  }

  chunk(job: ChunkHashJob): Promise<ChunkHashResult> {
    if (this.#state === undefined)
      return Promise.reject(new Error('attachment hash session is closed'));
    const digest = this.#s.crypto_hash_sha256(job.ciphertext);
    this.#s.crypto_hash_sha256_update(this.#state, job.plaintext);
    return Promise.resolve({ digest, ciphertext: job.ciphertext, plaintext: job.plaintext });
  }

  finish(): Promise<Uint8Array> {
    const state = this.#state;
    if (state === undefined) return Promise.reject(new Error('attachment hash session is closed'));
    this.#state = undefined;
    // crypto_hash_sha256_final frees the state in the wrapper.
    return Promise.resolve(this.#s.crypto_hash_sha256_final(state));
  }

  close(): void {
    const state = this.#state;
    if (state === undefined) return;
    this.#state = undefined;
    // Finalising is the wrapper's only way to release the state's memory.
    this.#s.crypto_hash_sha256_final(state);
  }
}

/**
 * Isomorphic hashing with libsodium (`crypto_hash_sha256`,
 * `crypto_hash_sha256_init/update/final`) on the calling thread.
 * Requires `await ready()` before `open()`.
 */
export const sodiumHashing: AttachmentHashing = {
  open: () => new SodiumHashSession(),
};
