import { fail } from './errors.js';
import { primitives } from './primitives.js';
import { sodium } from './sodium.js';

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Strict UTF-8 decoding: malformed sequences and a byte-order mark are rejected. */
export function fromUtf8(bytes: Uint8Array): string {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    fail('ENCODING_INVALID', 'byte-order mark is not allowed');
  }
  try {
    return strictDecoder.decode(bytes);
  } catch (cause) {
    return fail('ENCODING_INVALID', 'bytes are not valid UTF-8', { cause });
  }
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64URL.length; i++) B64URL_INDEX[B64URL.charCodeAt(i)] = i;

/**
 * Node's Buffer where the runtime has one (undefined in a browser). Its
 * base64url codec is native: about five times faster than the loops below
 * on objects of a few kilobytes, slower on short values, hence the
 * thresholds. The loops stay the definition; the native path is checked
 * against them (test/bytes.test.ts) and, when decoding, can only accept
 * the one canonical encoding (see fromBase64url).
 */
const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;
const NATIVE_ENCODE_MIN_BYTES = 192;
const NATIVE_DECODE_MIN_CHARS = 256;

/** base64url without padding (RFC 4648 section 5). */
export function toBase64url(bytes: Uint8Array): string {
  if (NodeBuffer !== undefined && bytes.length >= NATIVE_ENCODE_MIN_BYTES)
    return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64url');
  return toBase64urlLoop(bytes);
}

/** The portable encoder (exported for the tests that hold the native path to it). */
export function toBase64urlLoop(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]! + B64URL[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * Strict base64url decoding: no padding, no whitespace, no characters outside
 * the URL-safe alphabet, and unused trailing bits MUST be zero, so every byte
 * string has exactly one accepted encoding.
 */
export function fromBase64url(text: string, what = 'value'): Uint8Array {
  if (NodeBuffer !== undefined && text.length >= NATIVE_DECODE_MIN_CHARS) {
    // Node's decoder is lenient (it skips foreign characters, takes padding and '+/'), so
    // its result counts only if it encodes back to exactly `text`: the canonical encoding
    // of those bytes. Anything else goes to the strict loop, which says what is wrong.
    const out = new Uint8Array(Math.floor((text.length * 3) / 4));
    const view = NodeBuffer.from(out.buffer, 0, out.length);
    if (view.write(text, 'base64url') === out.length && view.toString('base64url') === text)
      return out;
  }
  return fromBase64urlLoop(text, what);
}

/** The portable strict decoder (exported for the tests that hold the native path to it). */
export function fromBase64urlLoop(text: string, what = 'value'): Uint8Array {
  const len = text.length;
  if (len % 4 === 1) fail('ENCODING_INVALID', `${what}: invalid base64url length`);
  const out = new Uint8Array(Math.floor((len * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64URL_INDEX[c]! : -1;
    if (v < 0) fail('ENCODING_INVALID', `${what}: invalid base64url character`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  if (acc !== 0) fail('ENCODING_INVALID', `${what}: non-canonical base64url (trailing bits)`);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

const HEX_RE = /^(?:[0-9a-f]{2})*$/;

/** Lowercase hex only: uppercase is non-canonical and rejected. */
export function fromHex(text: string, what = 'value'): Uint8Array {
  if (!HEX_RE.test(text)) fail('ENCODING_INVALID', `${what}: not lowercase hex`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Constant-time comparison (libsodium `sodium_memcmp`); false for different lengths. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return sodium().memcmp(a, b);
}

/** SHA-256 (libsodium `crypto_hash_sha256`, WebAssembly or native: see primitives.ts). */
export function sha256(data: Uint8Array): Uint8Array {
  return primitives().sha256(data);
}

export function randomBytes(length: number): Uint8Array {
  return sodium().randombytes_buf(length);
}
