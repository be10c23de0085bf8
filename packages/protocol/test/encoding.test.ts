import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fromBase64url,
  fromBase64urlLoop,
  fromHex,
  toBase64url,
  toBase64urlLoop,
  toHex,
  utf8,
} from '../src/bytes.js';
import {
  MAX_DEPTH,
  canonicalBytes,
  canonicalString,
  decodeCanonical,
  decodeCanonicalFrozen,
} from '../src/encoding.js';
import { isProtocolError } from '../src/errors.js';

const enc = (text: string) => utf8(text);

function rejects(text: string | Uint8Array): string | undefined {
  try {
    decodeCanonical(typeof text === 'string' ? enc(text) : text);
    return undefined;
  } catch (err) {
    return isProtocolError(err) ? err.code : 'OTHER';
  }
}

describe('canonical JSON', () => {
  it('sorts keys by UTF-16 code units and has no whitespace', () => {
    expect(canonicalString({ b: 1, a: [true, null, 'x'], '\u00e9': 2, A: {} })).toBe(
      '{"A":{},"a":[true,null,"x"],"b":1,"\u00e9":2}',
    );
    // RFC 8785 ordering example: code units, so U+1F600 (surrogates D83D..) sorts before U+FB33.
    expect(canonicalString({ '\ufb33': 1, '\ud83d\ude00': 2 })).toBe(
      '{"\ud83d\ude00":2,"\ufb33":1}',
    );
  });

  it('escapes only what JCS escapes', () => {
    expect(canonicalString('a"\\\n\u0001\u007f/')).toBe('"a\\"\\\\\\n\\u0001\u007f/"');
  });

  it.each([
    ['whitespace', '{"a": 1}'],
    ['key order', '{"b":1,"a":2}'],
    ['duplicate keys', '{"a":1,"a":1}'],
    ['float', '{"a":1.5}'],
    ['trailing zero float', '{"a":1.0}'],
    ['exponent', '{"a":1e3}'],
    ['negative zero', '{"a":-0}'],
    ['unsafe integer', '{"a":9007199254740993}'],
    ['unneeded escape', '{"a":"\\u0041"}'],
    ['escaped slash', '{"a":"\\/"}'],
    ['lone surrogate', '{"a":"\\ud800"}'],
    ['trailing newline', '{"a":1}\n'],
    ['not JSON', '{a:1}'],
    ['top-level number with plus', '+1'],
  ])('rejects %s', (_name, text) => {
    expect(rejects(text)).toBe('ENCODING_INVALID');
  });

  it('rejects a byte-order mark and invalid UTF-8', () => {
    expect(rejects(Uint8Array.of(0xef, 0xbb, 0xbf, 0x31))).toBe('ENCODING_INVALID');
    expect(rejects(Uint8Array.of(0x22, 0xc3, 0x28, 0x22))).toBe('ENCODING_INVALID');
  });

  it('rejects nesting deeper than the limit', () => {
    expect(rejects('['.repeat(40) + ']'.repeat(40))).toBe('LIMIT_EXCEEDED');
  });

  it('refuses to encode floats, undefined and class instances', () => {
    expect(() => canonicalString({ a: 0.5 })).toThrow(/ENCODING_INVALID/);
    expect(() => canonicalString({ a: undefined })).toThrow(/ENCODING_INVALID/);
    expect(() => canonicalString(new Date(0))).toThrow(/ENCODING_INVALID/);
    expect(() => canonicalString(Uint8Array.of(1))).toThrow(/ENCODING_INVALID/);
  });

  const jsonValue = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.constant(null),
      fc.boolean(),
      fc.maxSafeInteger(),
      fc.string({ unit: 'grapheme' }),
      fc.array(tie('value'), { maxLength: 5 }),
      fc.dictionary(fc.string(), tie('value'), { maxKeys: 5 }),
    ),
  })).value;

  it('round-trips arbitrary values and decoding is the inverse of encoding', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        const text = canonicalString(value);
        const decoded = decodeCanonical(enc(text));
        expect(canonicalString(decoded)).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it('accepts only the canonical form of arbitrary values', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        const pretty = JSON.stringify(value, null, 1);
        const canonical = canonicalString(value);
        if (pretty !== canonical) expect(rejects(pretty)).toBe('ENCODING_INVALID');
      }),
      { numRuns: 300 },
    );
  });
});

describe('base64url and hex', () => {
  it('round-trips arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        expect(fromBase64url(toBase64url(bytes))).toEqual(bytes);
        expect(fromHex(toHex(bytes))).toEqual(bytes);
        expect(Buffer.from(bytes).toString('base64url')).toBe(toBase64url(bytes));
      }),
    );
  });

  it('rejects padding, foreign characters, non-zero trailing bits and uppercase hex', () => {
    expect(() => fromBase64url('AA==')).toThrow(/ENCODING_INVALID/);
    expect(() => fromBase64url('A+')).toThrow(/ENCODING_INVALID/);
    expect(() => fromBase64url('AB')).toThrow(/ENCODING_INVALID/); // 'B' leaves a non-zero bit
    expect(() => fromBase64url('A')).toThrow(/ENCODING_INVALID/);
    expect(fromBase64url('AA')).toEqual(Uint8Array.of(0));
    expect(() => fromHex('AB')).toThrow(/ENCODING_INVALID/);
    expect(() => fromHex('abc')).toThrow(/ENCODING_INVALID/);
  });
});

describe('base64url on long values (the native codec of Node, held to the portable loops)', () => {
  it('encodes and decodes like the loops, at every length around the thresholds and beyond', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 150, maxLength: 4000 }), fc.nat(7), (bytes, skip) => {
        const view = bytes.subarray(skip); // an offset view encodes its own bytes only
        const text = toBase64url(view);
        expect(text).toBe(toBase64urlLoop(view));
        const decoded = fromBase64url(text);
        expect(decoded).toEqual(fromBase64urlLoop(text));
        expect(decoded).toEqual(Uint8Array.from(view));
        // A plain array of its own: nothing shared with a pool of Node's.
        expect(decoded.constructor).toBe(Uint8Array);
        expect(decoded.byteOffset).toBe(0);
        expect(decoded.buffer.byteLength).toBe(decoded.length);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects on long values what the strict loop rejects, with the same message', () => {
    const good = toBase64url(Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff));
    const cases = [
      `${good}==`, // padding
      `${good.slice(0, 500)}+${good.slice(501)}`, // standard alphabet
      `${good.slice(0, 500)}/${good.slice(501)}`,
      `${good.slice(0, 500)} ${good.slice(500)}`, // whitespace Node would skip
      `${good.slice(0, 500)}\n${good.slice(500)}`,
      `${good.slice(0, 500)}.${good.slice(501)}`, // a foreign character Node would skip
      `${good.slice(0, -1)}B`, // non-zero trailing bits ('...B' after a 1000-byte body)
      `${good}AAA`, // a length of 1 mod 4 (1,334 + 3)
      `${good.slice(0, 500)}\u00e9${good.slice(501)}`,
    ];
    for (const text of cases) {
      expect(text.length).toBeGreaterThanOrEqual(256);
      let loopError: unknown;
      try {
        fromBase64urlLoop(text, 'chunk');
      } catch (error) {
        loopError = error;
      }
      expect(loopError, text.slice(-8)).toBeDefined();
      expect(() => fromBase64url(text, 'chunk')).toThrow((loopError as Error).message);
    }
  });
});

describe('decodeCanonicalFrozen', () => {
  const text = '{"a":[1,{"b":"x"}],"c":{"d":{"e":null}},"f":true}';
  const bytes = new TextEncoder().encode(text);

  it('decodes like decodeCanonical, deep-frozen, and re-encodes to the same bytes', () => {
    const value = decodeCanonicalFrozen(bytes) as {
      a: [number, { b: string }];
      c: { d: { e: null } };
    };
    expect(value).toEqual(decodeCanonical(bytes));
    expect(Object.isFrozen(value)).toBe(true);
    expect(Object.isFrozen(value.a[1])).toBe(true);
    expect(Object.isFrozen(value.c.d)).toBe(true);
    expect(() => {
      (value.c.d as { e: unknown }).e = 1;
    }).toThrow(TypeError);
    expect(new TextDecoder().decode(canonicalBytes(value))).toBe(text);
    expect(canonicalString(value.c)).toBe('{"d":{"e":null}}');
    // A new object around decoded parts encodes as if built from scratch.
    expect(canonicalString({ z: value.a, y: value.c })).toBe(
      canonicalString({ z: [1, { b: 'x' }], y: { d: { e: null } } }),
    );
  });

  it('rejects what decodeCanonical rejects', () => {
    for (const bad of ['{"b":1,"a":2}', '{"a": 1}', '[1.5]', '{"a":1,"a":1}']) {
      expect(() => decodeCanonicalFrozen(new TextEncoder().encode(bad))).toThrow();
    }
  });

  it('keeps the nesting limit when decoded parts are placed deeper', () => {
    let deep = 'null';
    for (let i = 0; i < MAX_DEPTH; i++) deep = `[${deep}]`;
    const value = decodeCanonicalFrozen(new TextEncoder().encode(deep));
    expect(canonicalString(value)).toBe(deep);
    expect(() => canonicalString([value])).toThrow(/nesting/);
  });
});

describe('decoding order: too deep before non-canonical (docs/protocol.md §3.1)', () => {
  const deep = (n: number, inner = '1') => `${'['.repeat(n)}${inner}${']'.repeat(n)}`;

  it('is LIMIT_EXCEEDED wherever the non-canonical part sits, and both on the plain and the frozen decoder', () => {
    for (const text of [
      `{"a":1.5,"b":${deep(MAX_DEPTH + 1)}}`,
      `{"b":${deep(MAX_DEPTH + 1)},"a":1}`,
      `{"a":${deep(MAX_DEPTH + 1)},"a":1}`,
      `{"a":"\\u0061","b":${deep(MAX_DEPTH + 1)}}`,
      `${deep(MAX_DEPTH + 1)} `,
    ]) {
      expect(rejects(text), text.slice(0, 20)).toBe('LIMIT_EXCEEDED');
      expect(codeOfFrozen(text)).toBe('LIMIT_EXCEEDED');
    }
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const brackets = `"\\"${'['.repeat(40)}"`;
    expect(rejects(`{"a":${brackets},"a":1}`)).toBe('ENCODING_INVALID');
    expect(rejects(`{"a": ${brackets}}`)).toBe('ENCODING_INVALID');
    // Inside {"b": ...}, the n-th nested array is at depth n; its elements at n + 1.
    expect(rejects(`{"a":1.5,"b":${deep(MAX_DEPTH - 1, '"]]]]"')}}`)).toBe('ENCODING_INVALID');
    expect(rejects(`{"a":1.5,"b":${deep(MAX_DEPTH, '')}}`)).toBe('ENCODING_INVALID');
    expect(rejects(`{"a":1.5,"b":${deep(MAX_DEPTH, '1')}}`)).toBe('LIMIT_EXCEEDED');
    expect(rejects(`{"a":1.5,"b":${deep(MAX_DEPTH + 1, '')}}`)).toBe('LIMIT_EXCEEDED');
  });

  it('a syntax error stays ENCODING_INVALID however deep the text', () => {
    expect(rejects(`${deep(MAX_DEPTH + 5)},`)).toBe('ENCODING_INVALID');
  });
});

function codeOfFrozen(text: string): string | undefined {
  try {
    decodeCanonicalFrozen(enc(text));
    return undefined;
  } catch (err) {
    return isProtocolError(err) ? err.code : 'not a protocol error';
  }
}
