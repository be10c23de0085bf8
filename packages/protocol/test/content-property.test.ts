import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Compile } from 'typebox/compile';
import {
  ANSWER_TYPES,
  DossierContentSchema,
  REQUEST_TYPES,
  exampleAnswer,
  exampleRequest,
  validateDossierContent,
  type DossierContent,
} from '../src/content/index.js';
import { canonicalBytes, decodeCanonical } from '../src/encoding.js';
import type { ContentIssue } from '../src/errors.js';

const examples: DossierContent[] = [
  ...REQUEST_TYPES.map((t) => exampleRequest(t)),
  ...ANSWER_TYPES.map((t) => exampleAnswer(t)),
];

const union = Compile(DossierContentSchema);

/** Every JSON pointer of a value, containers included. */
function pointers(value: unknown, pointer = ''): string[] {
  const out = [pointer];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pointers(v, `${pointer}/${i}`)));
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) out.push(...pointers(v, `${pointer}/${k}`));
  }
  return out;
}

/** A copy of `root` with the value at `pointer` replaced (or removed when `value` is undefined). */
function replaced(root: unknown, pointer: string, value: unknown): unknown {
  if (pointer === '') return value;
  const copy = structuredClone(root);
  const segments = pointer.slice(1).split('/');
  const last = segments.pop()!;
  let node = copy as Record<string, unknown>;
  for (const s of segments) node = node[s] as Record<string, unknown>;
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
    else delete node[last];
  } else {
    node[last] = value;
  }
  return copy;
}

function wellFormed(issues: unknown): issues is ContentIssue[] {
  return (
    Array.isArray(issues) &&
    issues.every(
      (i: ContentIssue) =>
        typeof i.message === 'string' &&
        i.message.length > 0 &&
        (i.path === '' || i.path.startsWith('/')),
    )
  );
}

const MARKER = 'Qx7-VALUE-MARKER';

/** Mutations of valid examples: the inputs most likely to reach deep into the validator. */
const mutated = fc
  .tuple(
    fc.constantFrom(...examples),
    fc.nat(),
    fc.oneof(
      // No -0: canonical JSON has no encoding for it (§3.1), so it can never round-trip.
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown),
      fc.constant(undefined),
      fc.string({ maxLength: 30 }).map((s) => `${MARKER}${s}`),
      fc.constantFrom(
        'life',
        'bank-secrecy',
        'urgent',
        '2025-02-29',
        'other',
        'enforcement-of-sentence',
        0,
        -1,
        1.5,
        true,
      ),
    ),
  )
  .map(([example, n, value]) => {
    const all = pointers(example);
    return replaced(example, all[n % all.length]!, value);
  });

describe('validateDossierContent on arbitrary input', () => {
  it('never throws on arbitrary JSON, only returns issues', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        expect(wellFormed(validateDossierContent(value))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on request- and answer-shaped objects', () => {
    const shaped = fc.record(
      {
        kind: fc.constantFrom('request', 'answer', 'x'),
        requestType: fc.constantFrom(...REQUEST_TYPES, 'x'),
        answerType: fc.constantFrom(...ANSWER_TYPES),
        header: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })),
        mla: fc.jsonValue({ maxDepth: 3 }),
      },
      { requiredKeys: ['kind'] },
    );
    fc.assert(
      fc.property(
        shaped,
        fc.option(fc.nat({ max: 5 }), { nil: undefined }),
        (value, attachmentCount) => {
          const options =
            attachmentCount === undefined
              ? { today: '2025-06-01' }
              : { attachmentCount, today: '2025-06-01' };
          expect(wellFormed(validateDossierContent(value, options))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('on mutated examples: never throws, one issue per path, no value in messages, sound against the schema', () => {
    fc.assert(
      fc.property(mutated, (value) => {
        const issues = validateDossierContent(value);
        expect(wellFormed(issues)).toBe(true);
        expect(new Set(issues.map((i) => i.path)).size).toBe(issues.length);
        for (const issue of issues) expect(issue.message).not.toContain(MARKER);
        // Whatever the validator accepts, the published schema accepts too.
        if (issues.length === 0) expect(union.Check(value)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('canonical encoding', () => {
  it('valid examples survive canonicalBytes / decodeCanonical unchanged and stay valid', () => {
    fc.assert(
      fc.property(fc.constantFrom(...examples), (example) => {
        const decoded = decodeCanonical(canonicalBytes(example));
        expect(decoded).toEqual(example);
        expect(validateDossierContent(decoded, { attachmentCount: 2 })).toEqual([]);
        expect(canonicalBytes(decoded)).toEqual(canonicalBytes(example));
      }),
      { numRuns: 20 },
    );
  });

  it('valid mutated content also round-trips', () => {
    fc.assert(
      fc.property(mutated, (value) => {
        fc.pre(validateDossierContent(value).length === 0);
        expect(decodeCanonical(canonicalBytes(value))).toEqual(value);
      }),
      { numRuns: 300 },
    );
  });
});
