import { fail, isProtocolError } from './errors.js';
import { fromUtf8, utf8 } from './bytes.js';

/**
 * Canonical JSON: the RFC 8785 (JCS) serialisation restricted to the JSON
 * values the protocol uses — null, booleans, safe integers, strings, arrays
 * and objects. No floating-point numbers, so every implementation agrees on
 * number serialisation without an ECMAScript number formatter. Binary values
 * travel as base64url strings (no padding), typed by the schema of each field.
 */
export type CanonicalValue =
  | null
  | boolean
  | number
  | string
  | readonly CanonicalValue[]
  | { readonly [key: string]: CanonicalValue };

/** Nesting limit: deeper input is rejected rather than risking stack exhaustion. */
export const MAX_DEPTH = 32;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function encodeString(value: string): string {
  if (LONE_SURROGATE.test(value)) fail('ENCODING_INVALID', 'string contains a lone surrogate');
  // ECMAScript JSON.stringify produces exactly the JCS string form.
  return JSON.stringify(value);
}

/**
 * Canonical text of objects and arrays that `decodeCanonicalFrozen` decoded
 * and deep-froze: they cannot change any more, so neither can their text,
 * and encoding them again (to verify a signature, hash, store) is a lookup.
 */
const frozenText = new WeakMap<object, { readonly text: string; readonly height: number }>();
/** Deepest nesting level reached by the encoding in progress (to know the height of a subtree). */
let deepest = 0;
/** Depth down to which decoded objects keep their text (the envelope, its body, signature and hops, their members). */
const CACHE_DEPTH = 2;

function encodeValue(value: unknown, depth: number, freeze = false): string {
  if (depth > MAX_DEPTH) fail('LIMIT_EXCEEDED', `nesting deeper than ${MAX_DEPTH}`);
  if (depth > deepest) deepest = depth;
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value) || Object.is(value, -0)) {
        return fail('ENCODING_INVALID', 'numbers must be integers in the IEEE-754 safe range');
      }
      return String(value);
    case 'string':
      return encodeString(value);
    case 'object': {
      const cached = frozenText.get(value);
      if (cached !== undefined) {
        // Placed deeper than where it was decoded, it must still respect the limit.
        if (depth + cached.height > MAX_DEPTH)
          fail('LIMIT_EXCEEDED', `nesting deeper than ${MAX_DEPTH}`);
        if (depth + cached.height > deepest) deepest = depth + cached.height;
        return cached.text;
      }
      const outer = deepest;
      deepest = depth;
      const text = encodeObject(value, depth, freeze);
      const height = deepest - depth;
      if (outer > deepest) deepest = outer;
      if (freeze) {
        Object.freeze(value);
        if (depth <= CACHE_DEPTH) frozenText.set(value, { text, height });
      }
      return text;
    }
    default:
      return fail('ENCODING_INVALID', `cannot encode a value of type ${typeof value}`);
  }
}

function encodeObject(value: object, depth: number, freeze: boolean): string {
  if (Array.isArray(value)) {
    return `[${value.map((item) => encodeValue(item, depth + 1, freeze)).join(',')}]`;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    return fail('ENCODING_INVALID', 'only plain objects can be encoded');
  }
  const record = value as Record<string, unknown>;
  // Default string ordering compares UTF-16 code units, as RFC 8785 requires.
  const keys = Object.keys(record).sort();
  const parts: string[] = [];
  for (const key of keys) {
    const item = record[key];
    if (item === undefined)
      fail('ENCODING_INVALID', `property ${JSON.stringify(key)} is undefined`);
    parts.push(`${encodeString(key)}:${encodeValue(item, depth + 1, freeze)}`);
  }
  return `{${parts.join(',')}}`;
}

/** Canonical text of a value. */
export function canonicalString(value: unknown): string {
  return encodeValue(value, 0);
}

/** Canonical UTF-8 bytes of a value: what is signed and hashed. */
export function canonicalBytes(value: unknown): Uint8Array {
  return utf8(encodeValue(value, 0));
}

/** Parse `bytes` and check that they are exactly the canonical encoding of the value (see decodeCanonical). */
function decode(bytes: Uint8Array, maxBytes: number, freeze: boolean): unknown {
  if (bytes.length > maxBytes)
    fail('LIMIT_EXCEEDED', `encoded object larger than ${maxBytes} bytes`);
  const text = fromUtf8(bytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    return fail('ENCODING_INVALID', 'not valid JSON', { cause });
  }
  let encoded: string;
  try {
    encoded = encodeValue(value, 0, freeze);
  } catch (err) {
    // Too deep and non-canonical at once is LIMIT_EXCEEDED, wherever the two
    // faults sit in the text (docs/protocol.md §3.1, decoding order).
    if (isProtocolError(err, 'ENCODING_INVALID')) checkTextDepth(text);
    throw err;
  }
  if (encoded !== text) {
    checkTextDepth(text);
    fail('ENCODING_INVALID', 'not in canonical form');
  }
  return value;
}

/**
 * LIMIT_EXCEEDED if a value in the JSON text sits deeper than MAX_DEPTH,
 * counting values as written (also those of duplicate members, which a
 * parser drops). Only called on the failure path: a text that re-encodes
 * canonically has passed the encoder's own depth check. `text` is valid JSON.
 */
function checkTextDepth(text: string): void {
  let open = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5d || c === 0x7d)
      open--; // ] }
    else if (c === 0x2c || c === 0x3a || c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d)
      continue; // , : whitespace
    else {
      // The start of a value (or of a member name, whose value has the same depth).
      if (open > MAX_DEPTH) fail('LIMIT_EXCEEDED', `nesting deeper than ${MAX_DEPTH}`);
      if (c === 0x5b || c === 0x7b)
        open++; // [ {
      else if (c === 0x22) {
        // Skip the string, escapes included.
        for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++)
          if (text.charCodeAt(i) === 0x5c) i++;
      } else {
        // Skip the rest of a number or literal.
        while (i + 1 < text.length && !',:]} \t\n\r'.includes(text[i + 1]!)) i++;
      }
    }
  }
}

/**
 * Decode canonical JSON bytes. Rejects (ENCODING_INVALID) anything that is not
 * exactly the canonical encoding of its value: whitespace, reordered or
 * duplicate keys, escapes other than the mandatory ones, floats, exponents,
 * leading zeros, integers beyond 2^53-1, lone surrogates, a BOM, invalid UTF-8.
 */
export function decodeCanonical(bytes: Uint8Array, maxBytes = 16 * 1024 * 1024): unknown {
  return decode(bytes, maxBytes, false);
}

/**
 * `decodeCanonical`, and the decoded value is deep-frozen (any attempt to
 * change it throws) with the canonical text of its upper levels kept, so
 * that encoding it or its parts again costs nothing. For values that are
 * verified, hashed and stored as received: envelopes at relays.
 */
export function decodeCanonicalFrozen(bytes: Uint8Array, maxBytes = 16 * 1024 * 1024): unknown {
  return decode(bytes, maxBytes, true);
}
