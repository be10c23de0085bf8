import fc from 'fast-check';
import { concatBytes } from '@rogatory/protocol';
import type { SeededRandom } from './seeded.js';

/**
 * Generators of malformed input, all driven by a SeededRandom (and
 * fast-check's `fc.sample` with seeds drawn from it), so a run is
 * reproducible from its seed.
 */

const enc = new TextEncoder();

/** Values of the wrong type, or at the edges of JSON numbers and strings. */
export const WRONG_VALUES: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  2 ** 53 + 2,
  -(2 ** 63),
  1e308,
  '',
  ' ',
  '0',
  'null',
  'x'.repeat(300),
  '\u0000',
  '\ud800',
  '../../etc/passwd',
  [],
  [null],
  {},
  { __proto__: { polluted: true } },
  JSON.parse('{"__proto__":{"polluted":true}}') as unknown,
  { constructor: { prototype: { polluted: true } } },
];

/** Random JSON documents (fast-check), as text. */
export function jsonDocuments(rng: SeededRandom, n: number): string[] {
  return fc
    .sample(fc.jsonValue({ maxDepth: 4 }), { seed: rng.seed(), numRuns: n })
    .map((v) => JSON.stringify(v));
}

/** Random objects shaped like `{ key: anything }` with keys from `keys` (wrong types for known fields). */
export function objectsWithKeys(rng: SeededRandom, keys: readonly string[], n: number): string[] {
  const values = fc.sample(
    fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(...WRONG_VALUES)),
    { seed: rng.seed(), numRuns: n * 3 },
  );
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const obj: Record<string, unknown> = {};
    const count = rng.range(0, keys.length + 1);
    for (let k = 0; k < count; k++)
      obj[rng.chance(0.85) ? rng.pick(keys) : `x${String(rng.int(5))}`] =
        values[(i * 3 + k) % values.length];
    out.push(JSON.stringify(obj));
  }
  return out;
}

/** Bodies that are not JSON at all, or barely: random bytes, invalid UTF-8, broken syntax, deep nesting. */
export function nonJsonBodies(rng: SeededRandom, n: number): Uint8Array[] {
  const fixed: Uint8Array[] = [
    new Uint8Array(0),
    enc.encode(' '),
    enc.encode('{'),
    enc.encode('}'),
    enc.encode('[1,]'),
    enc.encode('{"a":1,}'),
    enc.encode('{"a" 1}'),
    enc.encode("{'a':1}"),
    enc.encode('NaN'),
    enc.encode('Infinity'),
    enc.encode('undefined'),
    enc.encode('{"a":1}{"b":2}'),
    enc.encode('{"a":1} trailing'),
    enc.encode('\ufeff{}'),
    Uint8Array.of(0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00),
    Uint8Array.of(0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d),
    Uint8Array.of(0x22, 0xed, 0xa0, 0x80, 0x22),
    Uint8Array.of(0x22, 0xf4, 0x90, 0x80, 0x80, 0x22),
    enc.encode(`${'['.repeat(5000)}${']'.repeat(5000)}`),
    enc.encode(`${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`),
    enc.encode(`"${'\\u0000'.repeat(100)}"`),
    enc.encode('1'.repeat(400)),
    enc.encode('-0'),
    enc.encode('1e999999'),
  ];
  const out = [...fixed];
  const strings = fc.sample(fc.string({ unit: 'binary', maxLength: 200 }), {
    seed: rng.seed(),
    numRuns: n,
  });
  for (let i = out.length; i < n; i++) {
    const r = rng.int(3);
    if (r === 0) out.push(rng.bytes(rng.range(1, 400)));
    else if (r === 1) out.push(enc.encode(strings[i % strings.length]));
    else
      out.push(enc.encode(`{"${strings[i % strings.length]!.slice(0, 20)}":${String(rng.next())}`));
  }
  return out.slice(0, n);
}

/** One random mutation of a byte string: bit flip, byte change, truncation, insertion, deletion, duplication. */
export function mutateBytes(
  rng: SeededRandom,
  bytes: Uint8Array,
): { bytes: Uint8Array; how: string } {
  const b = Uint8Array.from(bytes);
  const at = rng.int(Math.max(1, b.length));
  switch (rng.int(7)) {
    case 0: {
      const bit = rng.int(8);
      b[at] = b[at]! ^ (1 << bit);
      return { bytes: b, how: `flip bit ${String(bit)} of byte ${String(at)}` };
    }
    case 1: {
      const v = rng.pick([
        0x00, 0x20, 0x22, 0x2c, 0x30, 0x39, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x80, 0xff, 0x41, 0x61,
      ]);
      if (b[at] === v) b[at] = v ^ 1;
      else b[at] = v;
      return { bytes: b, how: `byte ${String(at)} := ${String(v)}` };
    }
    case 2:
      return { bytes: b.subarray(0, at), how: `truncate at ${String(at)}` };
    case 3: {
      const extra = rng.pick([' ', '\n', '0', '"', ',', '}', 'x', '\\']);
      return {
        bytes: concatBytes(b.subarray(0, at), enc.encode(extra), b.subarray(at)),
        how: `insert ${JSON.stringify(extra)} at ${String(at)}`,
      };
    }
    case 4: {
      const len = rng.range(1, 8);
      return {
        bytes: concatBytes(b.subarray(0, at), b.subarray(at + len)),
        how: `delete ${String(len)} at ${String(at)}`,
      };
    }
    case 5: {
      const len = rng.range(1, 40);
      return {
        bytes: concatBytes(b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)),
        how: `duplicate ${String(len)} at ${String(at)}`,
      };
    }
    default: {
      const n = rng.range(2, 6);
      for (let i = 0; i < n; i++) {
        const p = rng.int(b.length);
        b[p] = b[p]! ^ (1 << rng.int(8));
      }
      return { bytes: b, how: `flip ${String(n)} random bits` };
    }
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path (list of keys / indexes) to a value inside `value`. */
function paths(
  value: Json,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

/**
 * One structural mutation of a JSON value at a random place: a field
 * dropped, replaced by a value of another type, an unknown field added, an
 * array emptied or an item repeated. Never the value itself: a draw that
 * changes nothing (emptying an empty array, say) is drawn again.
 */
export function mutateJson(rng: SeededRandom, value: unknown): { value: unknown; how: string } {
  const original = JSON.stringify(value);
  for (let attempt = 0; attempt < 20; attempt++) {
    const m = mutateJsonOnce(rng, value);
    if (JSON.stringify(m.value) !== original) return m;
  }
  return { value: { mutated: value }, how: 'wrapped whole' };
}

function mutateJsonOnce(rng: SeededRandom, value: unknown): { value: unknown; how: string } {
  const copy = structuredClone(value) as Json;
  const all = paths(copy);
  const path = rng.pick(all);
  const how = `at /${path.join('/')}`;
  if (path.length === 0)
    return { value: rng.pick(WRONG_VALUES), how: `${how}: whole value replaced` };
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1]!;
  let parent: Json = copy;
  for (const p of parentPath) parent = (parent as Record<string | number, Json>)[p]!;
  const container = parent as Record<string | number, Json>;
  const wrong = rng.pick(WRONG_VALUES) as Json;
  switch (rng.int(5)) {
    case 0:
      if (Array.isArray(container)) container.splice(key as number, 1);
      else Reflect.deleteProperty(container, key);
      return { value: copy, how: `${how}: removed` };
    case 1:
      container[key] = wrong;
      return { value: copy, how: `${how}: := ${JSON.stringify(wrong).slice(0, 40)}` };
    case 2:
      if (Array.isArray(container)) container.push(structuredClone(container[key]));
      else container[`${String(key)}X`] = wrong;
      return { value: copy, how: `${how}: repeated or unknown sibling` };
    case 3: {
      const v = container[key];
      if (typeof v === 'number')
        container[key] = rng.pick([v + 1, v - 1, -v, v * 1000, v + 0.5, String(v)]);
      else if (typeof v === 'string')
        container[key] = rng.pick([
          v.toUpperCase(),
          `${v} `,
          v.slice(1),
          `${v}${v}`,
          v.replace(/./, '%'),
        ]);
      else if (Array.isArray(v)) container[key] = [];
      else container[key] = wrong;
      return { value: copy, how: `${how}: value nudged` };
    }
    default:
      container[key] = { nested: container[key] ?? null };
      return { value: copy, how: `${how}: wrapped in an object` };
  }
}

/** The same JSON value in non-canonical spellings (a canonical decoder must refuse every one). */
export function nonCanonicalSpellings(value: unknown): { text: string; how: string }[] {
  const canonical = JSON.stringify(value);
  const reversed = JSON.stringify(reverseKeys(value));
  const escaped = canonical.replace(/"type"/, '"\\u0074ype"');
  return [
    { text: JSON.stringify(value, null, 2), how: 'pretty-printed' },
    { text: `${canonical}\n`, how: 'trailing newline' },
    { text: ` ${canonical}`, how: 'leading space' },
    { text: reversed, how: 'keys in reverse order' },
    { text: escaped, how: 'escaped character in a key' },
    { text: canonical.replace(/"version":1/, '"version":1.0'), how: 'number with a fraction' },
    { text: canonical.replace(/"version":1/, '"version":1e0'), how: 'number with an exponent' },
    {
      text: canonical.replace(/\{"body":/, '{"body":{"type":"envelope"},"body":'),
      how: 'duplicate key',
    },
  ];
}

function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).reverse())
      out[k] = reverseKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/** Chunk ids that are not 64 lowercase hex characters, as URL path segments (some percent-encoded). */
export function badChunkIdSegments(rng: SeededRandom, valid: string, n: number): string[] {
  const fixed = [
    '..%2F..%2Fetc%2Fpasswd',
    '..%2f..%2fetc%2fpasswd',
    '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '%252e%252e%252fetc%252fpasswd',
    '..%5c..%5cwindows%5csystem32',
    '%2E%2E',
    '..',
    '.',
    valid.toUpperCase(),
    valid.slice(0, 63),
    `${valid}0`,
    `${valid.slice(0, 63)}g`,
    `${valid.slice(0, 63)}%00`,
    `${valid}%00`,
    `${valid}%2F`,
    `${valid.slice(0, 62)}%20%20`,
    `${valid}.json`,
    `${valid};x`,
    `%${valid.slice(1)}`,
    `${valid.slice(0, 60)}%EF%BC%90%EF%BC%90`,
    encodeURIComponent(`${valid.slice(0, 63)}\u0660`),
    '0x' + valid.slice(2),
    '-' + valid.slice(1),
    ' '.repeat(64).replace(/ /g, '%20'),
    'null',
    'undefined',
    '%00',
    'a',
    '../../etc/passwd',
    `${valid}${valid}`,
    'a'.repeat(101),
    `${valid}/..`,
  ];
  const out = [...fixed];
  const hexUpper = '0123456789ABCDEF';
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_.~';
  while (out.length < n) {
    const r = rng.int(5);
    if (r === 0) out.push(Array.from({ length: 64 }, () => hexUpper[rng.int(16)]!).join(''));
    else if (r === 1) out.push(valid.slice(0, rng.range(1, 63)));
    else if (r === 2) out.push(valid + valid.slice(0, rng.range(1, 30)));
    else if (r === 3) {
      const chars = valid.split('');
      chars[rng.int(64)] = rng.pick(['g', 'z', 'G', '.', '-', '_', '~', '%41']);
      out.push(chars.join(''));
    } else
      out.push(
        Array.from({ length: rng.range(1, 90) }, () => alphabet[rng.int(alphabet.length)]!).join(
          '',
        ),
      );
  }
  return out.slice(0, n);
}
