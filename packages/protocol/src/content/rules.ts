import {
  FullExecutionContentSchema,
  PartialExecutionContentSchema,
  ANSWER_SCHEMAS,
} from './answers.js';
import {
  BankAccountSchema,
  LegalBasisSchema,
  OffenceSchema,
  PersonConcernedSchema,
  RelatedRequestSchema,
  RequestHeaderSchema,
} from './common.js';
import { isAssignedCountryCode } from './countries.js';
import { isRecord, joinPointer, labelOf, own, walkWithSchema, type SchemaNode } from './pointer.js';
import {
  AssetSchema,
  ConfiscationPartSchema,
  ConsentSchema,
  ExtraditionPartSchema,
  JudgmentSchema,
  LimitationPeriodSchema,
  MlaPartSchema,
  MlaRequestContentSchema,
  SentenceSchema,
} from './requests.js';
import { IBAN_PATTERN } from './primitives.js';

type Rec = Readonly<Record<string, unknown>>;

/** What the rules need besides the content. */
export interface RuleContext {
  readonly root: SchemaNode;
  readonly today: string | undefined;
  readonly attachmentCount: number | undefined;
  add(path: string, message: string): void;
}

type NodeRule = (value: Rec, path: string, ctx: RuleContext) => void;

const DATE_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** True for a real Gregorian calendar date written `YYYY-MM-DD`. */
export function isCalendarDate(value: string): boolean {
  const m = DATE_RE.exec(value);
  if (!m) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const max = month === 2 && leap ? 29 : (MONTH_DAYS[month - 1] ?? 0);
  return day <= max;
}

const IBAN_RE = new RegExp(IBAN_PATTERN, 'u');

/** ISO 13616 check: move the first four characters to the end, letters to numbers, modulo 97 is 1. */
export function isValidIban(iban: string): boolean {
  if (!IBAN_RE.test(iban)) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const digits = code >= 65 ? String(code - 55) : ch;
    for (const d of digits) remainder = (remainder * 10 + Number(d)) % 97;
  }
  return remainder === 1;
}

function present(v: Rec, key: string): boolean {
  return own(v, key) !== undefined;
}

function text(v: Rec, key: string): string | undefined {
  const value = own(v, key);
  return typeof value === 'string' ? value : undefined;
}

function date(v: Rec, key: string): string | undefined {
  const value = text(v, key);
  return value !== undefined && isCalendarDate(value) ? value : undefined;
}

function int(v: Rec, key: string): number | undefined {
  const value = own(v, key);
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined;
}

function record(v: Rec, key: string): Rec | undefined {
  const value = own(v, key);
  return isRecord(value) ? value : undefined;
}

function nonEmptyList(v: Rec, key: string): boolean {
  const value = own(v, key);
  return Array.isArray(value) && value.length > 0;
}

function address(v: Rec | undefined): string | undefined {
  return v === undefined ? undefined : text(v, 'address');
}

const p = joinPointer;

const header: NodeRule = (v, path, ctx) => {
  const urgency = own(v, 'urgency');
  if (urgency === 'urgent' || urgency === 'very-urgent') {
    const what = urgency === 'urgent' ? 'An urgent request' : 'A very urgent request';
    if (!present(v, 'deadline'))
      ctx.add(p(path, 'deadline'), `${what} needs a deadline (header.deadline, YYYY-MM-DD)`);
    if (!present(v, 'urgencyReason')) {
      ctx.add(
        p(path, 'urgencyReason'),
        `${what} must explain why it cannot wait (header.urgencyReason)`,
      );
    }
  }
  const requesting = address(record(v, 'requestingAuthority'));
  if (requesting !== undefined && requesting === address(record(v, 'requestedAuthority'))) {
    ctx.add(
      p(p(path, 'requestedAuthority'), 'address'),
      'The requested authority must be another authority than the requesting authority',
    );
  }
};

const TITLE_REQUIRED: Readonly<Record<string, string>> = {
  'bilateral-treaty':
    'A bilateral treaty must be identified by its title (legalBasis.title), e.g. "Treaty on Mutual Legal Assistance in Criminal Matters between A and B"',
  'regional-convention':
    'A regional convention must be identified by its title (legalBasis.title), e.g. "ECOWAS Convention on Mutual Assistance in Criminal Matters"',
  'domestic-law':
    'A domestic law must be identified by its title (legalBasis.title), e.g. "Mutual Legal Assistance in Criminal Matters Act"',
};

const legalBasis: NodeRule = (v, path, ctx) => {
  const instrument = text(v, 'instrument');
  if (instrument === 'untoc' && !present(v, 'article')) {
    ctx.add(
      p(path, 'article'),
      'A legal basis under UNTOC must cite the article relied on (legalBasis.article), e.g. 18 for mutual legal assistance, 16 for extradition',
    );
  }
  const needsTitle = instrument === undefined ? undefined : own(TITLE_REQUIRED, instrument);
  if (typeof needsTitle === 'string' && !present(v, 'title')) ctx.add(p(path, 'title'), needsTitle);
};

const offence: NodeRule = (v, path, ctx) => {
  const start = date(v, 'dateOfCommission');
  const end = date(v, 'dateOfCommissionEnd');
  if (start !== undefined && end !== undefined && end < start) {
    ctx.add(
      p(path, 'dateOfCommissionEnd'),
      `${labelOf(ctx.root, p(path, 'dateOfCommissionEnd'))} cannot be before the date of commission`,
    );
  }
};

const person: NodeRule = (v, path, ctx) => {
  if (own(v, 'role') === 'other' && !present(v, 'roleDescription')) {
    ctx.add(
      p(path, 'roleDescription'),
      `${labelOf(ctx.root, p(path, 'roleDescription'))} is required when the role is "other": explain the person's role`,
    );
  }
};

const relatedRequest: NodeRule = (v, path, ctx) => {
  if (!present(v, 'envelopeId') && !present(v, 'caseReference')) {
    ctx.add(
      path,
      `${labelOf(ctx.root, path)} must give the envelope id or the case reference of the earlier request`,
    );
  }
};

const bankAccount: NodeRule = (v, path, ctx) => {
  if (!present(v, 'iban') && !present(v, 'accountNumber')) {
    ctx.add(
      p(path, 'accountNumber'),
      `${labelOf(ctx.root, path)} needs an IBAN or, where there is none, an account number`,
    );
  }
  const from = date(v, 'periodFrom');
  const to = date(v, 'periodTo');
  if (from !== undefined && to !== undefined && to < from) {
    ctx.add(
      p(path, 'periodTo'),
      `${labelOf(ctx.root, p(path, 'periodTo'))} cannot be before the start of the period`,
    );
  }
};

const mlaPart: NodeRule = (v, path, ctx) => {
  const measures = own(v, 'measures');
  const testimony =
    Array.isArray(measures) &&
    measures.some((m) => isRecord(m) && own(m, 'type') === 'take-testimony');
  if (testimony && !nonEmptyList(v, 'personsToBeHeard')) {
    ctx.add(
      p(path, 'personsToBeHeard'),
      'Taking testimony needs at least one person to be heard (mla.personsToBeHeard), with the questions to put',
    );
  }
};

const mlaRequest: NodeRule = (v, _path, ctx) => {
  const confidentiality = own(record(v, 'header') ?? {}, 'confidentiality');
  const mla = record(v, 'mla');
  if (
    (confidentiality === 'confidential' || confidentiality === 'strictly-confidential') &&
    mla &&
    !present(mla, 'confidentialityExplanation')
  ) {
    ctx.add(
      '/mla/confidentialityExplanation',
      'A confidential request must explain why confidentiality is needed (mla.confidentialityExplanation, UNTOC art. 18(20))',
    );
  }
};

const extradition: NodeRule = (v, path, ctx) => {
  const purpose = own(v, 'purpose');
  const penalty = record(v, 'penalty');
  const penaltyPath = p(path, 'penalty');
  if (purpose === 'prosecution' && penalty && !present(penalty, 'maximumPenalty')) {
    ctx.add(
      p(penaltyPath, 'maximumPenalty'),
      'An extradition for prosecution must state the maximum penalty for the offence (extradition.penalty.maximumPenalty)',
    );
  }
  if (purpose === 'enforcement-of-sentence') {
    if (penalty && !present(penalty, 'sentenceImposed')) {
      ctx.add(
        p(penaltyPath, 'sentenceImposed'),
        'An extradition to enforce a sentence must state the sentence imposed (extradition.penalty.sentenceImposed)',
      );
    }
    if (penalty && !present(penalty, 'remainingToServeDays')) {
      ctx.add(
        p(penaltyPath, 'remainingToServeDays'),
        'An extradition to enforce a sentence must state how many days remain to be served (extradition.penalty.remainingToServeDays)',
      );
    }
    const warrant = record(v, 'warrantOrJudgment');
    if (warrant && own(warrant, 'kind') === 'arrest-warrant') {
      ctx.add(
        p(p(path, 'warrantOrJudgment'), 'kind'),
        'An extradition to enforce a sentence must rely on the judgment: set extradition.warrantOrJudgment.kind to judgment',
      );
    }
  }
  if (own(v, 'specialtyRuleAcknowledged') === false) {
    ctx.add(
      p(path, 'specialtyRuleAcknowledged'),
      'The requesting authority must acknowledge the rule of speciality (extradition.specialtyRuleAcknowledged)',
    );
  }
};

const limitationPeriod: NodeRule = (v, path, ctx) => {
  if (!present(v, 'expiryDate') && !present(v, 'statement')) {
    ctx.add(
      p(path, 'statement'),
      'Limitation period: give the date on which it expires (expiryDate) or a statement that it has not expired (statement)',
    );
  }
};

const judgment: NodeRule = (v, path, ctx) => {
  if (own(v, 'final') === false) {
    ctx.add(
      p(path, 'final'),
      'A sentenced person can only be transferred under a final judgment: wait until the judgment is final (transfer.judgment.final)',
    );
  }
};

const sentence: NodeRule = (v, path, ctx) => {
  const length = int(v, 'lengthDays');
  // 'life', or a length the schema already rejected.
  if (length === undefined || length < 1) return;
  const served = int(v, 'timeServedDays');
  const remaining = int(v, 'remainingDays');
  if (!present(v, 'remainingDays')) {
    ctx.add(
      p(path, 'remainingDays'),
      'A fixed-term sentence must state the days remaining to be served (transfer.sentence.remainingDays)',
    );
  } else if (remaining !== undefined && remaining > length) {
    ctx.add(
      p(path, 'remainingDays'),
      'The days remaining cannot exceed the length of the sentence',
    );
  } else if (remaining !== undefined && served !== undefined && served + remaining > length) {
    ctx.add(
      p(path, 'remainingDays'),
      'Time served plus days remaining cannot exceed the length of the sentence',
    );
  }
  if (served !== undefined && served > length) {
    ctx.add(p(path, 'timeServedDays'), 'Time served cannot exceed the length of the sentence');
  }
};

const consent: NodeRule = (v, path, ctx) => {
  if (own(v, 'given') === true && !present(v, 'date')) {
    ctx.add(
      p(path, 'date'),
      'Give the date on which the sentenced person consented (transfer.consent.date)',
    );
  }
};

const asset: NodeRule = (v, path, ctx) => {
  const type = own(v, 'type');
  if (type === 'bank-account' && !present(v, 'account')) {
    ctx.add(
      p(path, 'account'),
      `${labelOf(ctx.root, path)} is a bank account: give the account details (account)`,
    );
  }
  if (typeof type === 'string' && type !== 'bank-account' && present(v, 'account')) {
    ctx.add(
      p(path, 'account'),
      `${labelOf(ctx.root, path)}: account details only apply to assets of type bank-account`,
    );
  }
};

const confiscation: NodeRule = (v, path, ctx) => {
  const orderType = own(v, 'orderType');
  if ((orderType === 'confiscation' || orderType === 'return-of-assets') && !present(v, 'order')) {
    ctx.add(
      p(path, 'order'),
      'A request to enforce confiscation or to return assets needs the court order (confiscation.order)',
    );
  }
};

const answer: NodeRule = (v, _path, ctx) => {
  const from = address(record(v, 'from'));
  if (from !== undefined && from === address(record(v, 'to'))) {
    ctx.add('/to/address', 'The recipient must be another authority than the sender');
  }
};

const partialExecution: NodeRule = (v, path, ctx) => {
  answer(v, path, ctx);
  const execution = record(v, 'execution');
  if (execution && !nonEmptyList(execution, 'remaining')) {
    ctx.add(
      '/execution/remaining',
      'A partial execution must list what has not been executed and why (execution.remaining)',
    );
  }
};

const fullExecution: NodeRule = (v, path, ctx) => {
  answer(v, path, ctx);
  const execution = record(v, 'execution');
  if (execution && nonEmptyList(execution, 'remaining')) {
    ctx.add(
      '/execution/remaining',
      'A full execution cannot list items not executed: send a partial execution instead',
    );
  }
};

// Keyed by the `properties` object, not the schema: `Type.Optional` wraps a
// schema in a shallow copy that shares its properties.
const NODE_RULES = new Map<unknown, NodeRule>([
  [RequestHeaderSchema.properties, header],
  [LegalBasisSchema.properties, legalBasis],
  [OffenceSchema.properties, offence],
  [PersonConcernedSchema.properties, person],
  [RelatedRequestSchema.properties, relatedRequest],
  [BankAccountSchema.properties, bankAccount],
  [MlaPartSchema.properties, mlaPart],
  [MlaRequestContentSchema.properties, mlaRequest],
  [ExtraditionPartSchema.properties, extradition],
  [LimitationPeriodSchema.properties, limitationPeriod],
  [JudgmentSchema.properties, judgment],
  [SentenceSchema.properties, sentence],
  [ConsentSchema.properties, consent],
  [AssetSchema.properties, asset],
  [ConfiscationPartSchema.properties, confiscation],
  [ANSWER_SCHEMAS.acknowledgement.properties, answer],
  [ANSWER_SCHEMAS['request-additional-information'].properties, answer],
  [ANSWER_SCHEMAS.refusal.properties, answer],
  [ANSWER_SCHEMAS.withdrawal.properties, answer],
  [PartialExecutionContentSchema.properties, partialExecution],
  [FullExecutionContentSchema.properties, fullExecution],
]);

/** Checks driven by annotations on scalar schemas: dates against today, country codes, IBANs, attachment indexes. */
function checkScalar(schema: SchemaNode, value: unknown, path: string, ctx: RuleContext): void {
  if (typeof value === 'string') {
    const temporal = own(schema, 'temporal');
    if (ctx.today !== undefined && typeof temporal === 'string' && isCalendarDate(value)) {
      if (temporal === 'not-future' && value > ctx.today) {
        ctx.add(path, `${labelOf(ctx.root, path)} cannot be later than today (${ctx.today})`);
      } else if (temporal === 'not-past' && value < ctx.today) {
        const hint = own(schema, 'temporalHint');
        ctx.add(
          path,
          `${labelOf(ctx.root, path)} is already past (today is ${ctx.today}): ${typeof hint === 'string' ? hint : 'choose a date from today onwards'}`,
        );
      }
    }
    if (
      own(schema, 'country') === true &&
      /^[A-Z]{2}$/.test(value) &&
      !isAssignedCountryCode(value)
    ) {
      ctx.add(
        path,
        `${labelOf(ctx.root, path)} must be an assigned ISO 3166-1 alpha-2 country code (for example GB, not UK)`,
      );
    }
    if (own(schema, 'iban') === true && IBAN_RE.test(value) && !isValidIban(value)) {
      ctx.add(
        path,
        `${labelOf(ctx.root, path)} has wrong check digits: copy the IBAN again from the bank document`,
      );
    }
  } else if (typeof value === 'number' && own(schema, 'attachmentIndex') === true) {
    if (
      ctx.attachmentCount !== undefined &&
      Number.isSafeInteger(value) &&
      value >= ctx.attachmentCount
    ) {
      ctx.add(
        path,
        `${labelOf(ctx.root, path)} refers to an attachment this dossier does not have (it has ${ctx.attachmentCount}, numbered from 0)`,
      );
    }
  }
}

/**
 * Walk the content along its schema and apply the rules a schema cannot
 * express. Tolerates content that failed the schema: every rule checks the
 * type of what it reads, so a drafter sees all problems at once.
 */
export function applyRules(root: SchemaNode, content: unknown, ctx: RuleContext): void {
  walkWithSchema(root, content, '', (schema, value, path) => {
    checkScalar(schema, value, path, ctx);
    if (isRecord(value)) NODE_RULES.get(own(schema, 'properties'))?.(value, path, ctx);
  });
}
