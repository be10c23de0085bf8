/**
 * crypto_secretstream_xchacha20poly1305 push/pull on buffers kept inside
 * libsodium's WebAssembly memory for the whole stream.
 *
 * The libsodium-wrappers functions allocate (malloc) an input and an output
 * buffer in the WebAssembly heap on every call, copy in, copy out into a new
 * array and free. For a multi-GB attachment cut into 1 MiB chunks that is
 * thousands of large allocations: slower, and the garbage lets the process
 * grow by tens of MB before V8 collects it. This class calls the same
 * libsodium functions (the wrapper's own module, `sodium.libsodium`) on one
 * input and one output buffer reserved when the stream starts: one copy in,
 * one copy out into the array the caller keeps, nothing else. The bytes are
 * identical to the wrapper's (the test vectors run through it).
 */
import { ready, sodium } from './sodium.js';

/** The parts of the Emscripten module behind libsodium-wrappers that this file uses. */
interface RawLibsodium {
  readonly HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  _crypto_secretstream_xchacha20poly1305_statebytes(): number;
  _crypto_secretstream_xchacha20poly1305_init_push(
    state: number,
    header: number,
    key: number,
  ): number;
  _crypto_secretstream_xchacha20poly1305_init_pull(
    state: number,
    header: number,
    key: number,
  ): number;
  /** (state, c, clen_p, m, mlen low, mlen high, ad, adlen low, adlen high, tag): 64-bit lengths are split in two. */
  _crypto_secretstream_xchacha20poly1305_push(...args: number[]): number;
  /** (state, m, mlen_p, tag_p, c, clen low, clen high, ad, adlen low, adlen high). */
  _crypto_secretstream_xchacha20poly1305_pull(...args: number[]): number;
}

/** crypto_secretstream_xchacha20poly1305_ABYTES. */
export const SECRETSTREAM_ABYTES = 17;
const KEYBYTES = 32;
const HEADERBYTES = 24;

function raw(): RawLibsodium {
  const lib = (sodium() as unknown as { libsodium?: RawLibsodium }).libsodium;
  if (lib === undefined || typeof lib._crypto_secretstream_xchacha20poly1305_push !== 'function') {
    throw new Error('this libsodium build does not expose its module');
  }
  return lib;
}

/** Zero `length` bytes of the heap at `ptr` (the heap view is re-read: memory may have grown). */
function wipe(lib: RawLibsodium, ptr: number, length: number): void {
  lib.HEAPU8.fill(0, ptr, ptr + length);
}

/** `length` heap bytes at `ptr`, copied into `into` if given, else into a new array. */
function copyOut(
  lib: RawLibsodium,
  ptr: number,
  length: number,
  into: Uint8Array | undefined,
): Uint8Array {
  const bytes = lib.HEAPU8.subarray(ptr, ptr + length);
  if (into === undefined) return bytes.slice();
  into.set(bytes);
  return into;
}

/**
 * One secretstream (push or pull direction) with its state and scratch
 * buffers in the WebAssembly heap. Call `dispose()` when done (also on
 * failure): it wipes the state and releases the buffers.
 */
export class SecretstreamCipher {
  readonly #lib: RawLibsodium;
  readonly #state: number;
  readonly #stateBytes: number;
  #capacity = 0;
  #input = 0;
  #output = 0;
  /** One byte for the tag pulled. */
  readonly #tag: number;
  #disposed = false;

  private constructor(lib: RawLibsodium) {
    this.#lib = lib;
    this.#stateBytes = lib._crypto_secretstream_xchacha20poly1305_statebytes();
    this.#state = lib._malloc(this.#stateBytes + 1);
    if (this.#state === 0) throw new Error('out of WebAssembly memory');
    this.#tag = this.#state + this.#stateBytes;
  }

  /**
   * Start pushing under `key` (32 bytes). With `header` (24 bytes, test
   * vectors and benchmarks only) the stream uses it instead of a random
   * one: the state libsodium derives is the same for push and pull.
   */
  static async push(
    key: Uint8Array,
    header?: Uint8Array,
  ): Promise<{ cipher: SecretstreamCipher; header: Uint8Array }> {
    await ready();
    const cipher = new SecretstreamCipher(raw());
    try {
      return { cipher, header: cipher.#init(key, header) };
    } catch (err) {
      cipher.dispose();
      throw err;
    }
  }

  /** Start pulling a stream that began with `header` under `key`. */
  static async pull(key: Uint8Array, header: Uint8Array): Promise<SecretstreamCipher> {
    await ready();
    const cipher = new SecretstreamCipher(raw());
    try {
      cipher.#init(key, header, true);
      return cipher;
    } catch (err) {
      cipher.dispose();
      throw err;
    }
  }

  #init(key: Uint8Array, header: Uint8Array | undefined, pull = false): Uint8Array {
    if (key.length !== KEYBYTES) throw new RangeError('a secretstream key is 32 bytes');
    if (header !== undefined && header.length !== HEADERBYTES)
      throw new RangeError('a secretstream header is 24 bytes');
    const lib = this.#lib;
    const scratch = lib._malloc(KEYBYTES + HEADERBYTES);
    if (scratch === 0) throw new Error('out of WebAssembly memory');
    try {
      lib.HEAPU8.set(key, scratch);
      const h = scratch + KEYBYTES;
      let rc: number;
      if (header === undefined) {
        rc = lib._crypto_secretstream_xchacha20poly1305_init_push(this.#state, h, scratch);
      } else {
        lib.HEAPU8.set(header, h);
        rc = lib._crypto_secretstream_xchacha20poly1305_init_pull(this.#state, h, scratch);
      }
      if (rc !== 0)
        throw new Error(
          pull ? 'invalid secretstream header' : 'secretstream initialisation failed',
        );
      return lib.HEAPU8.slice(h, h + HEADERBYTES);
    } finally {
      wipe(lib, scratch, KEYBYTES + HEADERBYTES);
      lib._free(scratch);
    }
  }

  /** Make the scratch buffers hold a message of `length` bytes plus the overhead. */
  #reserve(length: number): void {
    if (this.#disposed) throw new Error('the secretstream has been disposed');
    if (length <= this.#capacity) return;
    this.#releaseBuffers();
    const size = length + SECRETSTREAM_ABYTES;
    this.#input = this.#lib._malloc(size);
    this.#output = this.#lib._malloc(size);
    if (this.#input === 0 || this.#output === 0) {
      this.#releaseBuffers();
      throw new Error('out of WebAssembly memory');
    }
    this.#capacity = length;
  }

  #releaseBuffers(): void {
    const lib = this.#lib;
    if (this.#input !== 0) {
      wipe(lib, this.#input, this.#capacity + SECRETSTREAM_ABYTES);
      lib._free(this.#input);
    }
    if (this.#output !== 0) {
      wipe(lib, this.#output, this.#capacity + SECRETSTREAM_ABYTES);
      lib._free(this.#output);
    }
    this.#input = 0;
    this.#output = 0;
    this.#capacity = 0;
  }

  /**
   * Encrypt one message with `tag`: `message.length + 17` bytes, written to
   * `into` when given (it must have exactly that length), else to a new array.
   */
  push(message: Uint8Array, tag: number, into?: Uint8Array): Uint8Array {
    const length = message.length + SECRETSTREAM_ABYTES;
    if (into !== undefined && into.length !== length)
      throw new RangeError('the output array must be 17 bytes longer than the message');
    this.#reserve(message.length);
    const lib = this.#lib;
    lib.HEAPU8.set(message, this.#input);
    const rc = lib._crypto_secretstream_xchacha20poly1305_push(
      this.#state,
      this.#output,
      0,
      this.#input,
      message.length,
      0,
      0,
      0,
      0,
      tag,
    );
    if (rc !== 0) throw new Error('secretstream push failed');
    return copyOut(lib, this.#output, length, into);
  }

  /**
   * Decrypt one chunk: its message (a new array) and tag, or false if it
   * does not authenticate (then the stream can go no further).
   */
  pull(ciphertext: Uint8Array, into?: Uint8Array): { message: Uint8Array; tag: number } | false {
    if (ciphertext.length < SECRETSTREAM_ABYTES) return false;
    const length = ciphertext.length - SECRETSTREAM_ABYTES;
    if (into !== undefined && into.length !== length)
      throw new RangeError('the output array must be 17 bytes shorter than the ciphertext');
    this.#reserve(length);
    const lib = this.#lib;
    lib.HEAPU8.set(ciphertext, this.#input);
    const rc = lib._crypto_secretstream_xchacha20poly1305_pull(
      this.#state,
      this.#output,
      0,
      this.#tag,
      this.#input,
      ciphertext.length,
      0,
      0,
      0,
      0,
    );
    if (rc !== 0) return false;
    return { message: copyOut(lib, this.#output, length, into), tag: lib.HEAPU8[this.#tag]! };
  }

  /** Wipe the state and scratch buffers and release them. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#releaseBuffers();
    wipe(this.#lib, this.#state, this.#stateBytes + 1);
    this.#lib._free(this.#state);
  }
}
