import { describe, it, expect } from 'vitest';
import { Compile } from 'typebox/compile';
import { Settings } from 'typebox/system';
import {
  ANSWER_SCHEMAS,
  ANSWER_TYPES,
  CONTENT_LIMITS,
  DossierContentSchema,
  REQUEST_SCHEMAS,
  REQUEST_TYPES,
  assertDossierContent,
  exampleAnswer,
  exampleRequest,
  isCalendarDate,
  isValidIban,
  referencedAttachments,
  validateDossierContent,
  type ContentValidationOptions,
  type DossierContent,
} from '../src/content/index.js';
import { ProtocolError, isProtocolError, type ContentIssue } from '../src/errors.js';

type Json = Record<string, unknown>;

const TODAY = '2025-06-01';
const OPTIONS: ContentValidationOptions = { attachmentCount: 2, today: TODAY };

/** A mutable deep copy of an example, for tests that break it on purpose. */
function request(type: (typeof REQUEST_TYPES)[number]): Json {
  const copy: Json = structuredClone(exampleRequest(type));
  return copy;
}
function answer(type: (typeof ANSWER_TYPES)[number]): Json {
  const copy: Json = structuredClone(exampleAnswer(type));
  return copy;
}

function parse(pointer: string): string[] {
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(root: unknown, pointer: string): [Json | unknown[], string] {
  const segments = parse(pointer);
  const last = segments.pop()!;
  let node: unknown = root;
  for (const s of segments) node = (node as Json)[s];
  return [node as Json, last];
}

function set(root: unknown, pointer: string, value: unknown): void {
  const [parent, key] = parentOf(root, pointer);
  (parent as Json)[key] = value;
}

function remove(root: unknown, pointer: string): void {
  const [parent, key] = parentOf(root, pointer);
  // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
  delete (parent as Json)[key];
}

function paths(issues: readonly ContentIssue[]): string[] {
  return issues.map((i) => i.path);
}

function issueAt(issues: readonly ContentIssue[], path: string): ContentIssue | undefined {
  return issues.find((i) => i.path === path);
}

interface RequiredField {
  readonly pointer: string;
  readonly title: string | undefined;
}

/** Every required property present in `value`, found by walking `schema` alongside it. */
function requiredFields(schema: Json, value: unknown, pointer = ''): RequiredField[] {
  const out: RequiredField[] = [];
  if (Array.isArray(value)) {
    const items = schema['items'] as Json | undefined;
    if (items)
      value.forEach((item, i) => out.push(...requiredFields(items, item, `${pointer}/${i}`)));
    return out;
  }
  if (typeof value !== 'object' || value === null) return out;
  const properties = (schema['properties'] ?? {}) as Record<string, Json>;
  const required = (schema['required'] ?? []) as string[];
  for (const [key, child] of Object.entries(properties)) {
    const item = (value as Json)[key];
    if (item === undefined) continue;
    if (required.includes(key))
      out.push({ pointer: `${pointer}/${key}`, title: child['title'] as string | undefined });
    out.push(...requiredFields(child, item, `${pointer}/${key}`));
  }
  return out;
}

const examples: [string, Json, Json][] = [
  ...REQUEST_TYPES.map((t): [string, Json, Json] => [
    t,
    request(t),
    REQUEST_SCHEMAS[t] as unknown as Json,
  ]),
  ...ANSWER_TYPES.map((t): [string, Json, Json] => [
    t,
    answer(t),
    ANSWER_SCHEMAS[t] as unknown as Json,
  ]),
];

describe('examples', () => {
  const unionCheck = Compile(DossierContentSchema);

  it.each(examples)('%s example is valid', (_name, content) => {
    expect(validateDossierContent(content, OPTIONS)).toEqual([]);
    expect(() => {
      assertDossierContent(content, OPTIONS);
    }).not.toThrow();
    // The exported union and the dispatching validator agree.
    expect(unionCheck.Check(content)).toBe(true);
  });

  it('returns a fresh object on every call', () => {
    const a = exampleRequest('mla');
    a.header.caseReference = 'CHANGED';
    expect(exampleRequest('mla').header.caseReference).not.toBe('CHANGED');
  });

  it('lists the attachments the content refers to', () => {
    expect(referencedAttachments(exampleRequest('extradition'))).toEqual([0, 1]);
    expect(referencedAttachments(exampleAnswer('withdrawal'))).toEqual([]);
    expect(referencedAttachments(exampleAnswer('full-execution'))).toEqual([0, 1]);
  });
});

describe('required fields', () => {
  for (const [name, content, schema] of examples) {
    const fields = requiredFields(schema, content);
    it(`${name}: removing any of its ${fields.length} required fields is reported at that field`, () => {
      expect(fields.length).toBeGreaterThan(10);
      for (const { pointer, title } of fields) {
        const broken = structuredClone(content);
        remove(broken, pointer);
        const issues = validateDossierContent(broken, OPTIONS);
        const issue = issueAt(issues, pointer);
        expect(issue, `removing ${pointer}`).toBeDefined();
        if (title !== undefined) expect(issue!.message, pointer).toContain(title);
      }
    });
  }

  it('names the field and says what to write', () => {
    const content = request('mla');
    remove(content, '/header/summaryOfFacts');
    expect(issueAt(validateDossierContent(content), '/header/summaryOfFacts')?.message).toBe(
      'Summary of facts is required: describe the conduct, when and where it took place',
    );
  });

  it('treats an empty or blank text as missing', () => {
    const content = request('mla');
    set(content, '/header/summaryOfFacts', '');
    expect(issueAt(validateDossierContent(content), '/header/summaryOfFacts')?.message).toMatch(
      /^Summary of facts is required/,
    );
    set(content, '/header/summaryOfFacts', ' \n\t ');
    expect(issueAt(validateDossierContent(content), '/header/summaryOfFacts')?.message).toMatch(
      /not blank/,
    );
  });

  it('labels list entries by position, counting from 1', () => {
    const content = request('mla');
    remove(content, '/header/persons/1/name');
    expect(issueAt(validateDossierContent(content), '/header/persons/1/name')?.message).toMatch(
      /^Person concerned 2 › Name is required/,
    );
    set(content, '/header/offences/0/legalProvisions', []);
    expect(
      issueAt(validateDossierContent(content), '/header/offences/0/legalProvisions')?.message,
    ).toMatch(/^Offence 1 › Legal provisions: at least one entry is required/);
  });
});

describe('dispatch on kind and type', () => {
  it('rejects what is not an object', () => {
    for (const value of [null, 42, 'request', [], true]) {
      expect(paths(validateDossierContent(value))).toEqual(['']);
    }
  });

  it('requires a known kind', () => {
    expect(validateDossierContent({})).toEqual([
      {
        path: '/kind',
        message:
          'Kind is required: "request", "answer", "introduction-request", "introduction-referral", "introduction-answer"',
      },
    ]);
    expect(paths(validateDossierContent({ kind: 'memo' }))).toEqual(['/kind']);
  });

  it('requires a known request type and still checks the header', () => {
    const content = request('mla');
    content['requestType'] = 'letter-rogatory';
    remove(content, '/header/caseReference');
    const issues = validateDossierContent(content);
    expect(issueAt(issues, '/requestType')?.message).toContain(
      'mla, extradition, transfer-of-sentenced-persons, confiscation',
    );
    expect(issueAt(issues, '/header/caseReference')).toBeDefined();
  });

  it('requires a known answer type', () => {
    const content = answer('refusal');
    content['answerType'] = 'maybe';
    expect(paths(validateDossierContent(content))).toContain('/answerType');
  });

  it('rejects the part of another type and asks for its own', () => {
    const content = request('mla');
    content['extradition'] = exampleRequest('extradition').extradition;
    remove(content, '/mla');
    const issues = validateDossierContent(content);
    expect(paths(issues)).toEqual(expect.arrayContaining(['/extradition', '/mla']));
    expect(issueAt(issues, '/extradition')?.message).toMatch(/no such field/);
  });

  it('rejects unknown fields', () => {
    const content = request('confiscation');
    set(content, '/header/requestingAuthority/email', 'x@example.invalid');
    const issues = validateDossierContent(content);
    expect(issueAt(issues, '/header/requestingAuthority/email')?.message).toBe(
      'Requesting authority has no such field: remove it or check its spelling',
    );
  });
});

describe('formats', () => {
  const cases: [string, string, unknown, RegExp][] = [
    ['mla', '/header/requestingAuthority/address', 'NG-MoJ@wacap', /authority@network/],
    ['mla', '/header/requestingAuthority/address', 'ng-moj', /authority@network/],
    ['mla', '/header/requestedAuthority/country', 'gh', /ISO 3166-1/],
    ['mla', '/header/requestedAuthority/country', 'UK', /GB, not UK/],
    ['mla', '/header/language', 'English', /BCP 47/],
    ['mla', '/header/persons/0/dateOfBirth', '1980-02-30', /real calendar date/],
    ['mla', '/header/persons/0/dateOfBirth', '01/01/1980', /YYYY-MM-DD/],
    ['mla', '/header/persons/0/name', 'two\nlines', /single line/],
    ['mla', '/header/urgency', 'asap', /normal, urgent, very-urgent/],
    ['mla', '/mla/accounts/0/swiftBic', 'exam ghac', /SWIFT\/BIC/],
    [
      'confiscation',
      '/confiscation/assets/0/account/iban',
      'GB83WEST12345698765432',
      /check digits/,
    ],
    [
      'confiscation',
      '/confiscation/assets/0/estimatedValue/amount',
      '125,000.50',
      /decimal amount/,
    ],
    ['confiscation', '/confiscation/assets/0/estimatedValue/amount', 125000, /decimal amount/],
    ['confiscation', '/confiscation/assets/0/estimatedValue/currency', 'usd', /ISO 4217/],
    [
      'transfer-of-sentenced-persons',
      '/transfer/sentence/lengthDays',
      'forever',
      /whole number of days.*life/,
    ],
    [
      'transfer-of-sentenced-persons',
      '/transfer/sentence/timeServedDays',
      1.5,
      /whole number of days/,
    ],
    ['transfer-of-sentenced-persons', '/transfer/consent/given', 'yes', /true or false/],
    ['extradition', '/extradition/photo', { attachment: -1 }, /no such field/],
    ['extradition', '/extradition/personSought/photo/attachment', -1, /at least 0/],
  ];
  it.each(cases)('%s %s = %j', (type, pointer, value, message) => {
    const content = request(type as (typeof REQUEST_TYPES)[number]);
    set(content, pointer, value);
    const issues = validateDossierContent(content, OPTIONS);
    const issue = issueAt(issues, pointer);
    expect(issue, JSON.stringify(issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
  });

  it('gives one message per field', () => {
    const content = request('mla');
    set(content, '/header/persons/0/dateOfBirth', '1980/02/30 and more text');
    const issues = validateDossierContent(content);
    expect(issues.filter((i) => i.path === '/header/persons/0/dateOfBirth')).toHaveLength(1);
    expect(new Set(paths(issues)).size).toBe(issues.length);
  });

  it('checks IBANs and dates with the published algorithms', () => {
    expect(isValidIban('GB82WEST12345698765432')).toBe(true);
    expect(isValidIban('FR7630006000011234567890189')).toBe(true);
    expect(isValidIban('GB82WEST12345698765433')).toBe(false);
    expect(isCalendarDate('2024-02-29')).toBe(true);
    expect(isCalendarDate('2023-02-29')).toBe(false);
    expect(isCalendarDate('1900-02-29')).toBe(false);
    expect(isCalendarDate('2000-02-29')).toBe(true);
    expect(isCalendarDate('2025-04-31')).toBe(false);
  });
});

describe('cross-field rules', () => {
  function issuesAfter(
    content: Json,
    changes: Record<string, unknown>,
    options = OPTIONS,
  ): ContentIssue[] {
    for (const [pointer, value] of Object.entries(changes)) {
      if (value === undefined) remove(content, pointer);
      else set(content, pointer, value);
    }
    return validateDossierContent(content, options);
  }

  it('an urgent request needs a deadline and a reason', () => {
    const issues = issuesAfter(request('mla'), { '/header/urgency': 'urgent' });
    expect(issueAt(issues, '/header/deadline')?.message).toBe(
      'An urgent request needs a deadline (header.deadline, YYYY-MM-DD)',
    );
    expect(issueAt(issues, '/header/urgencyReason')).toBeDefined();
    expect(
      issuesAfter(request('mla'), {
        '/header/urgency': 'very-urgent',
        '/header/deadline': '2025-06-15',
        '/header/urgencyReason': 'The suspect is about to leave the country.',
      }),
    ).toEqual([]);
  });

  it('a deadline cannot be in the past, when today is given', () => {
    const content = request('mla');
    set(content, '/header/deadline', '2025-05-31');
    expect(issueAt(validateDossierContent(content, OPTIONS), '/header/deadline')?.message).toMatch(
      /already past/,
    );
    expect(validateDossierContent(content, { attachmentCount: 2 })).toEqual([]);
    set(content, '/header/deadline', TODAY);
    expect(validateDossierContent(content, OPTIONS)).toEqual([]);
  });

  it('events cannot be later than today', () => {
    const issues = issuesAfter(request('mla'), {
      '/header/persons/0/dateOfBirth': '2025-06-02',
      '/header/offences/0/dateOfCommissionEnd': '2030-01-01',
    });
    expect(paths(issues)).toEqual(
      expect.arrayContaining([
        '/header/persons/0/dateOfBirth',
        '/header/offences/0/dateOfCommissionEnd',
      ]),
    );
  });

  it('an offence period cannot end before it starts', () => {
    const issues = issuesAfter(request('mla'), {
      '/header/offences/0/dateOfCommissionEnd': '2024-02-01',
    });
    expect(paths(issues)).toEqual(['/header/offences/0/dateOfCommissionEnd']);
  });

  it('UNTOC needs an article; treaties, conventions and laws need a title', () => {
    const issues = issuesAfter(request('mla'), {
      '/header/legalBasis/0/article': undefined,
      '/header/legalBasis/2': { instrument: 'bilateral-treaty', article: '5' },
      '/header/legalBasis/3': { instrument: 'regional-convention' },
      '/header/legalBasis/4': { instrument: 'domestic-law' },
    });
    expect(paths(issues)).toEqual([
      '/header/legalBasis/0/article',
      '/header/legalBasis/2/title',
      '/header/legalBasis/3/title',
      '/header/legalBasis/4/title',
    ]);
  });

  it('requesting and requested authorities differ', () => {
    const issues = issuesAfter(request('mla'), {
      '/header/requestedAuthority/address': 'ng-moj@wacap',
    });
    expect(paths(issues)).toEqual(['/header/requestedAuthority/address']);
    const reply = answer('acknowledgement');
    set(reply, '/to/address', 'gh-ag@wacap');
    expect(paths(validateDossierContent(reply))).toEqual(['/to/address']);
  });

  it('a person with role other needs a role description', () => {
    const issues = issuesAfter(request('mla'), { '/header/persons/1/role': 'other' });
    expect(paths(issues)).toEqual(['/header/persons/1/roleDescription']);
  });

  it('a related request needs an envelope id or a case reference', () => {
    expect(
      paths(
        issuesAfter(request('mla'), { '/header/relatedRequests': [{ note: 'earlier request' }] }),
      ),
    ).toEqual(['/header/relatedRequests/0']);
    expect(
      issuesAfter(request('mla'), {
        '/header/relatedRequests': [{ caseReference: 'EX-MLA-2024-0099' }],
      }),
    ).toEqual([]);
  });

  it('a bank account needs an IBAN or an account number, and an ordered period', () => {
    const issues = issuesAfter(request('mla'), {
      '/mla/accounts/0/accountNumber': undefined,
      '/mla/accounts/0/periodTo': '2023-12-31',
    });
    expect(paths(issues)).toEqual(['/mla/accounts/0/accountNumber', '/mla/accounts/0/periodTo']);
  });

  it('the bank account rules also apply to the account of an asset', () => {
    expect(
      paths(
        issuesAfter(request('confiscation'), {
          '/confiscation/assets/0/account/iban': undefined,
          '/confiscation/assets/0/account/periodFrom': '2024-02-01',
          '/confiscation/assets/0/account/periodTo': '2024-01-31',
        }),
      ),
    ).toEqual([
      '/confiscation/assets/0/account/accountNumber',
      '/confiscation/assets/0/account/periodTo',
    ]);
  });

  it('MLA: testimony needs persons to be heard; confidentiality needs an explanation', () => {
    expect(paths(issuesAfter(request('mla'), { '/mla/personsToBeHeard': undefined }))).toEqual([
      '/mla/personsToBeHeard',
    ]);
    expect(
      paths(issuesAfter(request('mla'), { '/mla/confidentialityExplanation': undefined })),
    ).toEqual(['/mla/confidentialityExplanation']);
    expect(
      issuesAfter(request('mla'), {
        '/mla/confidentialityExplanation': undefined,
        '/header/confidentiality': 'standard',
      }),
    ).toEqual([]);
  });

  it('extradition for prosecution needs the maximum penalty', () => {
    expect(paths(issuesAfter(request('extradition'), { '/extradition/penalty': {} }))).toEqual([
      '/extradition/penalty/maximumPenalty',
    ]);
  });

  it('extradition to enforce a sentence needs the judgment, the sentence imposed and what remains', () => {
    const issues = issuesAfter(request('extradition'), {
      '/extradition/purpose': 'enforcement-of-sentence',
    });
    expect(paths(issues)).toEqual([
      '/extradition/penalty/sentenceImposed',
      '/extradition/penalty/remainingToServeDays',
      '/extradition/warrantOrJudgment/kind',
    ]);
    expect(
      issuesAfter(request('extradition'), {
        '/extradition/purpose': 'enforcement-of-sentence',
        '/extradition/warrantOrJudgment/kind': 'judgment',
        '/extradition/penalty': {
          sentenceImposed: "8 years' imprisonment",
          remainingToServeDays: 1200,
        },
      }),
    ).toEqual([]);
  });

  it('extradition: limitation period, speciality', () => {
    expect(
      paths(
        issuesAfter(request('extradition'), {
          '/extradition/limitationPeriod/statement': undefined,
        }),
      ),
    ).toEqual(['/extradition/limitationPeriod/statement']);
    const expired = issuesAfter(request('extradition'), {
      '/extradition/limitationPeriod/expiryDate': '2020-01-01',
    });
    expect(issueAt(expired, '/extradition/limitationPeriod/expiryDate')?.message).toMatch(/barred/);
    expect(
      paths(
        issuesAfter(request('extradition'), { '/extradition/specialtyRuleAcknowledged': false }),
      ),
    ).toEqual(['/extradition/specialtyRuleAcknowledged']);
  });

  it('transfer: final judgment, consistent sentence, dated consent', () => {
    expect(
      paths(
        issuesAfter(request('transfer-of-sentenced-persons'), {
          '/transfer/judgment/final': false,
        }),
      ),
    ).toEqual(['/transfer/judgment/final']);
    expect(
      paths(
        issuesAfter(request('transfer-of-sentenced-persons'), {
          '/transfer/sentence/remainingDays': 3000,
        }),
      ),
    ).toEqual(['/transfer/sentence/remainingDays']);
    expect(
      paths(
        issuesAfter(request('transfer-of-sentenced-persons'), {
          '/transfer/sentence/timeServedDays': 3000,
        }),
      ),
    ).toEqual(['/transfer/sentence/remainingDays', '/transfer/sentence/timeServedDays']);
    expect(
      paths(
        issuesAfter(request('transfer-of-sentenced-persons'), {
          '/transfer/sentence/remainingDays': undefined,
        }),
      ),
    ).toEqual(['/transfer/sentence/remainingDays']);
    expect(
      issuesAfter(request('transfer-of-sentenced-persons'), {
        '/transfer/sentence/lengthDays': 'life',
        '/transfer/sentence/remainingDays': undefined,
      }),
    ).toEqual([]);
    expect(
      paths(
        issuesAfter(request('transfer-of-sentenced-persons'), {
          '/transfer/consent/date': undefined,
        }),
      ),
    ).toEqual(['/transfer/consent/date']);
  });

  it('confiscation: bank-account assets carry account details, other assets do not; confiscation needs the order', () => {
    expect(
      paths(issuesAfter(request('confiscation'), { '/confiscation/assets/0/account': undefined })),
    ).toEqual(['/confiscation/assets/0/account']);
    expect(
      paths(issuesAfter(request('confiscation'), { '/confiscation/assets/0/type': 'cash' })),
    ).toEqual(['/confiscation/assets/0/account']);
    expect(
      paths(issuesAfter(request('confiscation'), { '/confiscation/order': undefined })),
    ).toEqual(['/confiscation/order']);
    expect(
      issuesAfter(request('confiscation'), {
        '/confiscation/order': undefined,
        '/confiscation/orderType': 'freezing',
      }),
    ).toEqual([]);
  });

  it('partial execution lists what remains; full execution does not', () => {
    expect(paths(issuesAfter(answer('partial-execution'), { '/execution/remaining': [] }))).toEqual(
      ['/execution/remaining'],
    );
    expect(
      paths(
        issuesAfter(answer('full-execution'), {
          '/execution/remaining': [{ description: 'x', reason: 'y' }],
        }),
      ),
    ).toEqual(['/execution/remaining']);
  });

  it('attachment references must be in range, when the count is given', () => {
    const content = request('extradition');
    expect(paths(validateDossierContent(content, { attachmentCount: 1 }))).toEqual([
      '/extradition/personSought/photo/attachment',
    ]);
    expect(paths(validateDossierContent(content, { attachmentCount: 0 }))).toEqual([
      '/extradition/personSought/photo/attachment',
      '/extradition/warrantOrJudgment/attachment/attachment',
    ]);
    expect(validateDossierContent(content)).toEqual([]);
  });

  it('reports schema problems and rule problems together', () => {
    const issues = issuesAfter(request('mla'), {
      '/header/urgency': 'urgent',
      '/header/summaryOfFacts': undefined,
    });
    expect(paths(issues)).toEqual([
      '/header/summaryOfFacts',
      '/header/deadline',
      '/header/urgencyReason',
    ]);
  });
});

describe('refusal grounds', () => {
  function refuse(ground: string): ContentIssue[] {
    const content = answer('refusal');
    set(content, '/refusal/grounds/0/ground', ground);
    return validateDossierContent(content);
  }

  it('rejects bank secrecy, citing UNTOC art. 18(8)', () => {
    for (const ground of ['bank-secrecy', 'bank-secrecy-not-a-ground']) {
      expect(refuse(ground)).toEqual([
        {
          path: '/refusal/grounds/0/ground',
          message: 'Bank secrecy is not a ground for refusal under UNTOC art. 18(8)',
        },
      ]);
    }
  });

  it('rejects the fiscal nature of the offence, citing UNTOC art. 18(22)', () => {
    for (const ground of ['fiscal-offence', 'fiscal-offence-not-a-ground']) {
      expect(refuse(ground)[0]?.message).toMatch(
        /not a ground for refusal under UNTOC art\. 18\(22\)/,
      );
    }
  });

  it('accepts the grounds the Convention allows', () => {
    for (const ground of [
      'dual-criminality',
      'political-offence',
      'sovereignty-security-public-order',
      'death-penalty',
      'other',
    ]) {
      expect(refuse(ground)).toEqual([]);
    }
    expect(refuse('whatever')[0]?.message).toMatch(/must be one of: dual-criminality/);
  });
});

describe('limits', () => {
  it('rejects oversize strings', () => {
    const content = request('mla');
    set(content, '/header/summaryOfFacts', 'x'.repeat(CONTENT_LIMITS.summary + 1));
    set(content, '/header/persons/0/name', 'x'.repeat(CONTENT_LIMITS.name + 1));
    const issues = validateDossierContent(content);
    expect(issueAt(issues, '/header/summaryOfFacts')?.message).toBe(
      'Summary of facts is too long: at most 20000 characters',
    );
    expect(issueAt(issues, '/header/persons/0/name')?.message).toMatch(
      /too long: at most 200 characters/,
    );
    set(content, '/header/summaryOfFacts', 'x'.repeat(CONTENT_LIMITS.summary));
    set(content, '/header/persons/0/name', 'x'.repeat(CONTENT_LIMITS.name));
    expect(validateDossierContent(content)).toEqual([]);
  });

  it('rejects oversize lists', () => {
    const content = request('confiscation');
    const asset = (content['confiscation'] as Json)['assets'] as unknown[];
    set(
      content,
      '/confiscation/assets',
      Array.from({ length: CONTENT_LIMITS.assets + 1 }, () => structuredClone(asset[1])),
    );
    set(
      content,
      '/header/persons',
      Array.from({ length: CONTENT_LIMITS.persons + 1 }, () => ({ role: 'witness', name: 'N' })),
    );
    const issues = validateDossierContent(content);
    expect(issueAt(issues, '/confiscation/assets')?.message).toBe(
      'Assets has too many entries: at most 500',
    );
    expect(issueAt(issues, '/header/persons')).toBeDefined();
  });

  it('keeps "too many entries" when the issue list is truncated', () => {
    const content = request('mla');
    set(
      content,
      '/header/persons',
      Array.from({ length: 300 }, () => ({ role: 'nobody', name: '' })),
    );
    const issues = validateDossierContent(content);
    expect(issues.length).toBeLessThanOrEqual(200);
    expect(issueAt(issues, '/header/persons')?.message).toMatch(/too many entries/);
  });

  it('stops hostile input before schema validation', () => {
    const huge = request('mla');
    set(huge, '/header/summaryOfFacts', 'x'.repeat(CONTENT_LIMITS.hardStringLength + 1));
    expect(paths(validateDossierContent(huge))).toEqual(['/header/summaryOfFacts']);

    const long = request('mla');
    set(long, '/header/persons', new Array<number>(CONTENT_LIMITS.hardArrayItems + 1).fill(0));
    expect(paths(validateDossierContent(long))).toEqual(['/header/persons']);

    let deep: unknown = 'x';
    for (let i = 0; i < 1000; i++) deep = [deep];
    const nested = validateDossierContent({ kind: 'request', requestType: 'mla', header: deep });
    expect(nested).toHaveLength(1);
    expect(nested[0]!.message).toMatch(/nested too deeply/);

    const wide = request('mla');
    set(wide, '/header/x', Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, i])));
    expect(paths(validateDossierContent(wide))).toEqual(['/header/x']);
  });

  it('rejects values that are not JSON', () => {
    const content = request('mla');
    set(content, '/header/deadline', undefined);
    (content['header'] as Json)['deadline'] = undefined;
    expect(paths(validateDossierContent(content))).toEqual(['/header/deadline']);
    for (const value of [new Date(0), () => 1, Symbol('s'), 10n, Number.NaN, new Map()]) {
      const c = request('mla');
      set(c, '/header/caseReference', value);
      expect(paths(validateDossierContent(c))).toEqual(['/header/caseReference']);
    }
  });

  it('restores the global TypeBox error limit', () => {
    const before = Settings.Get().maxErrors;
    validateDossierContent({ kind: 'request', requestType: 'mla' });
    expect(Settings.Get().maxErrors).toBe(before);
  });
});

describe('no personal data in messages', () => {
  const SECRET = 'Zq9-SECRET-MARKER-7781';

  it('never repeats field values, even invalid ones', () => {
    const content = request('extradition');
    const header = content['header'] as Json;
    set(content, '/header/summaryOfFacts', `${SECRET}\u0000`);
    set(content, '/header/requestingAuthority/address', SECRET);
    set(content, '/header/requestingAuthority/country', SECRET);
    set(content, '/header/urgency', SECRET);
    set(content, '/header/language', SECRET);
    set(content, '/header/persons/0/dateOfBirth', SECRET);
    set(content, '/header/persons/0/name', `${SECRET}\n${'x'.repeat(300)}`);
    set(content, '/header/persons/0/role', SECRET);
    set(content, '/extradition/personSought/fullName', { [SECRET]: SECRET });
    set(content, '/extradition/purpose', [SECRET]);
    set(content, '/extradition/personSought/photo/attachment', 99);
    header['caseReference'] = 123;
    header[SECRET.toLowerCase()] = SECRET;
    const issues = validateDossierContent(content, { attachmentCount: 1, today: TODAY });
    expect(issues.length).toBeGreaterThan(10);
    for (const issue of issues) {
      expect(issue.message).not.toContain(SECRET);
      expect(issue.message.toLowerCase()).not.toContain(SECRET.toLowerCase());
      expect(issue.message).not.toContain('99');
    }
    try {
      assertDossierContent(content);
      expect.unreachable();
    } catch (err) {
      expect(isProtocolError(err, 'CONTENT_INVALID')).toBe(true);
      const e = err as ProtocolError;
      expect(e.message).toBe(`CONTENT_INVALID: dossier content has ${e.issues.length} problem(s)`);
      expect(e.issues.length).toBeGreaterThan(10);
      expect(JSON.stringify(e.toJSON()).replace(/\/[^"]*/g, '')).not.toContain(SECRET);
    }
  });
});

describe('options', () => {
  it('throws on invalid options, not on content', () => {
    expect(() => validateDossierContent({}, { attachmentCount: -1 })).toThrow(/attachmentCount/);
    expect(() => validateDossierContent({}, { attachmentCount: 1.5 })).toThrow(/attachmentCount/);
    expect(() => validateDossierContent({}, { today: '2025-02-30' })).toThrow(/today/);
  });
});

describe('types', () => {
  it('narrows with assertDossierContent', () => {
    const value: unknown = exampleRequest('transfer-of-sentenced-persons');
    assertDossierContent(value);
    const content: DossierContent = value;
    if (content.kind === 'request' && content.requestType === 'transfer-of-sentenced-persons') {
      expect(content.transfer.sentence.lengthDays).toBe(2920);
    } else {
      expect.unreachable();
    }
  });
});
