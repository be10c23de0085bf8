/**
 * crypto_secretstream_xchacha20poly1305 written out from lower-level
 * primitives (HChaCha20, ChaCha20-IETF, Poly1305), line for line the
 * pseudocode of docs/protocol.md §11.13. It exists to prove that pseudocode:
 * the generator builds the secretstream vectors with it, and the vector test
 * checks it against libsodium's own secretstream (WebAssembly and native)
 * byte for byte. Not used by the protocol implementation.
 */
import { concatBytes, sodium } from '../src/index.js';

export const TAG_MESSAGE = 0;
export const TAG_PUSH = 1;
export const TAG_REKEY = 2;
export const TAG_FINAL = 3;

export interface ReferenceState {
  /** The 32-byte subkey k. */
  k: Uint8Array;
  /** The 12-byte ChaCha20-IETF nonce: 4-byte little-endian counter ‖ 8-byte inonce. */
  nonce: Uint8Array;
}

function le64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

function counterReset(state: ReferenceState): void {
  state.nonce.fill(0, 0, 4);
  state.nonce[0] = 1;
}

/** init: the header is 24 bytes (random when pushing, received when pulling). */
export function referenceInit(key: Uint8Array, header: Uint8Array): ReferenceState {
  const s = sodium();
  const k = s.crypto_core_hchacha20(header.subarray(0, 16), key, null);
  const nonce = new Uint8Array(12);
  nonce.set(header.subarray(16, 24), 4);
  const state = { k, nonce };
  counterReset(state);
  return state;
}

export function referenceRekey(state: ReferenceState): void {
  const s = sodium();
  const input = concatBytes(state.k, state.nonce.subarray(4, 12));
  const out = s.crypto_stream_chacha20_ietf_xor_ic(input, state.nonce, 0, state.k);
  state.k = out.slice(0, 32);
  state.nonce.set(out.subarray(32, 40), 4);
  counterReset(state);
}

function mac(state: ReferenceState, ad: Uint8Array, block: Uint8Array, c: Uint8Array): Uint8Array {
  const s = sodium();
  const polyKey = s
    .crypto_stream_chacha20_ietf_xor_ic(new Uint8Array(64), state.nonce, 0, state.k)
    .subarray(0, 32);
  const input = concatBytes(
    ad,
    new Uint8Array((16 - (ad.length % 16)) % 16),
    block,
    c,
    // libsodium pads the ciphertext with (16 − 64 + mlen) mod 16 = mlen mod 16 zero bytes (sic).
    new Uint8Array(c.length % 16),
    le64(ad.length),
    le64(64 + c.length),
  );
  return s.crypto_onetimeauth(input, polyKey);
}

function advance(state: ReferenceState, tag: number, tagMac: Uint8Array): void {
  for (let i = 0; i < 8; i++) state.nonce[4 + i]! ^= tagMac[i]!;
  // Increment the 32-bit little-endian counter; rekey on TAG_REKEY or when it wraps to 0.
  let carry = 1;
  for (let i = 0; i < 4; i++) {
    const v = state.nonce[i]! + carry;
    state.nonce[i] = v & 0xff;
    carry = v >> 8;
  }
  const wrapped =
    state.nonce[0] === 0 && state.nonce[1] === 0 && state.nonce[2] === 0 && state.nonce[3] === 0;
  if ((tag & TAG_REKEY) !== 0 || wrapped) referenceRekey(state);
}

/** push: returns tagByte ‖ ciphertext ‖ mac (len(m) + 17 bytes) and advances the state. */
export function referencePush(
  state: ReferenceState,
  m: Uint8Array,
  ad: Uint8Array,
  tag: number,
): Uint8Array {
  const s = sodium();
  const block = new Uint8Array(64);
  block[0] = tag;
  const encBlock = s.crypto_stream_chacha20_ietf_xor_ic(block, state.nonce, 1, state.k);
  const c = s.crypto_stream_chacha20_ietf_xor_ic(m, state.nonce, 2, state.k);
  const tagMac = mac(state, ad, encBlock, c);
  advance(state, tag, tagMac);
  return concatBytes(encBlock.subarray(0, 1), c, tagMac);
}

/** pull: returns the plaintext and the tag, or throws if the MAC does not verify (the state is then unchanged). */
export function referencePull(
  state: ReferenceState,
  input: Uint8Array,
  ad: Uint8Array,
): { message: Uint8Array; tag: number } {
  const s = sodium();
  if (input.length < 17) throw new Error('secretstream chunk shorter than 17 bytes');
  const block = new Uint8Array(64);
  block[0] = input[0]!;
  const keystreamBlock = s.crypto_stream_chacha20_ietf_xor_ic(block, state.nonce, 1, state.k);
  const tag = keystreamBlock[0]!;
  // The MAC covers the block with the decrypted tag byte re-encrypted in place, i.e. the keystream block with input[0] at 0.
  const encBlock = keystreamBlock.slice();
  encBlock[0] = input[0]!;
  const c = input.subarray(1, input.length - 16);
  const expected = mac(state, ad, encBlock, c);
  if (!s.memcmp(expected, input.subarray(input.length - 16)))
    throw new Error('secretstream MAC does not verify');
  const message = s.crypto_stream_chacha20_ietf_xor_ic(c, state.nonce, 2, state.k);
  advance(state, tag, expected);
  return { message, tag };
}
