import { Type, type Static } from 'typebox';
import { IntroductionSchema } from '../statements.js';
import { KeyRefSchema } from '../keys.js';
import { caseReference } from './common.js';
import { isRecord, joinPointer, own } from './pointer.js';
import {
  CONTENT_LIMITS as L,
  authorityAddress,
  country,
  envelopeId,
  group,
  language,
  list,
  oneOf,
  text,
} from './primitives.js';
import { REQUEST_TYPES } from './requests.js';

/**
 * The three content kinds of the point-of-contact workflow (docs/protocol.md
 * §10.12): an authority asks its PoC whom to address in a country, a PoC
 * forwards the question to a peer network's PoC, and a PoC answers with
 * signed Introductions (§6.3) or declines.
 */
export const INTRODUCTION_KINDS = [
  'introduction-request',
  'introduction-referral',
  'introduction-answer',
] as const;
export type IntroductionKind = (typeof INTRODUCTION_KINDS)[number];

export const INTRODUCTION_OUTCOMES = ['introduced', 'declined'] as const;

/** Why a point of contact declines to introduce. */
export const INTRODUCTION_DECLINE_REASONS = [
  'no-competent-authority',
  'country-not-covered',
  'request-type-not-covered',
  'insufficient-information',
  'requester-not-eligible',
  'other',
] as const;

/** Limits specific to introductions; the other bounds are those of CONTENT_LIMITS. */
export const INTRODUCTION_LIMITS = {
  /** Languages an officer may ask for. */
  languages: 5,
  /** Introductions one answer carries (one per competent authority). */
  introductions: 4,
} as const;

const from = (description: string) => authorityAddress({ title: 'Sender', description });
const to = (description: string) => authorityAddress({ title: 'Recipient', description });

/** What the requesting authority needs: shared by a request and a referral. */
const inquiryProperties = {
  country: country({
    title: 'Country',
    description: 'the country whose competent authority is sought',
  }),
  requestType: oneOf(REQUEST_TYPES, {
    title: 'Request type',
    description: `the cooperation sought: one of ${REQUEST_TYPES.join(', ')}`,
  }),
  languages: list(language({ title: 'Language' }), {
    title: 'Languages',
    description: 'the languages the request can be written in, preferred first',
    minItems: 1,
    maxItems: INTRODUCTION_LIMITS.languages,
  }),
  note: Type.Optional(
    text(
      { title: 'Note', description: 'what the point of contact needs to know (no personal data)' },
      L.shortText,
    ),
  ),
  caseReference: Type.Optional(
    caseReference('Case reference', "the requesting authority's case reference"),
  ),
};

export const IntroductionInquirySchema = group(inquiryProperties, { title: 'Request' });
export type IntroductionInquiry = Static<typeof IntroductionInquirySchema>;

export const IntroductionRequestContentSchema = group(
  {
    kind: Type.Literal('introduction-request', { title: 'Kind' }),
    from: from('the requesting authority, the sender of the dossier'),
    to: to('the point of contact asked'),
    ...inquiryProperties,
  },
  { title: 'Introduction request' },
);
export type IntroductionRequestContent = Static<typeof IntroductionRequestContentSchema>;

export const IntroductionReferralContentSchema = group(
  {
    kind: Type.Literal('introduction-referral', { title: 'Kind' }),
    from: from('the referring point of contact, the sender of the dossier'),
    to: to("the peer network's point of contact"),
    requestId: envelopeId({
      title: 'Request id',
      description: 'the envelope id of the introduction request being referred',
    }),
    requester: authorityAddress({
      title: 'Requesting authority',
      description: 'the authority that asked; the answer goes to it directly',
    }),
    requesterKey: { ...KeyRefSchema, title: 'Requesting authority key' },
    request: IntroductionInquirySchema,
    remarks: Type.Optional(text({ title: 'Remarks' }, L.shortText)),
  },
  { title: 'Introduction referral' },
);
export type IntroductionReferralContent = Static<typeof IntroductionReferralContentSchema>;

export const IntroductionAnswerContentSchema = group(
  {
    kind: Type.Literal('introduction-answer', { title: 'Kind' }),
    from: from('the point of contact answering, the sender of the dossier'),
    to: to('the requesting authority, or the authority introduced (its copy)'),
    answerTo: envelopeId({
      title: 'Answer to',
      description: 'the envelope id of the introduction request answered',
    }),
    requester: authorityAddress({
      title: 'Requesting authority',
      description: 'the authority that asked for the introduction',
    }),
    outcome: oneOf(INTRODUCTION_OUTCOMES, { title: 'Outcome' }),
    introductions: Type.Optional(
      list(
        { ...IntroductionSchema, title: 'Introduction' },
        {
          title: 'Introductions',
          description: 'the signed introductions, when the outcome is introduced',
          minItems: 1,
          maxItems: INTRODUCTION_LIMITS.introductions,
        },
      ),
    ),
    reason: Type.Optional(
      oneOf(INTRODUCTION_DECLINE_REASONS, {
        title: 'Reason',
        description: `when declined: one of ${INTRODUCTION_DECLINE_REASONS.join(', ')}`,
      }),
    ),
    text: Type.Optional(text({ title: 'Explanation' }, L.shortText)),
  },
  { title: 'Introduction answer' },
);
export type IntroductionAnswerContent = Static<typeof IntroductionAnswerContentSchema>;

export const INTRODUCTION_SCHEMAS = {
  'introduction-request': IntroductionRequestContentSchema,
  'introduction-referral': IntroductionReferralContentSchema,
  'introduction-answer': IntroductionAnswerContentSchema,
} as const;

export const IntroductionContentSchema = Type.Union([
  IntroductionRequestContentSchema,
  IntroductionReferralContentSchema,
  IntroductionAnswerContentSchema,
]);
export type IntroductionContent = Static<typeof IntroductionContentSchema>;

export function isIntroductionKind(kind: unknown): kind is IntroductionKind {
  return typeof kind === 'string' && (INTRODUCTION_KINDS as readonly string[]).includes(kind);
}

/**
 * Rules a schema cannot express (docs/protocol.md §10.12.4). Tolerates
 * content that failed its schema: each rule checks what it reads.
 */
export function applyIntroductionRules(
  content: Readonly<Record<string, unknown>>,
  add: (path: string, message: string) => void,
): void {
  const kind = own(content, 'kind');
  if (kind === 'introduction-referral') {
    // R1: the referral goes to another network: a PoC does not refer within its own.
    const fromAddress = own(content, 'from');
    const toAddress = own(content, 'to');
    if (
      typeof fromAddress === 'string' &&
      typeof toAddress === 'string' &&
      networkOf(fromAddress) === networkOf(toAddress)
    ) {
      add('/to', "A referral goes to a peer network's point of contact, not to the own network");
    }
    return;
  }
  if (kind !== 'introduction-answer') return;
  const outcome = own(content, 'outcome');
  const introductions = own(content, 'introductions');
  const hasIntroductions = introductions !== undefined;
  const hasReason = own(content, 'reason') !== undefined;
  if (outcome === 'introduced') {
    // I1: an introduction answer carries the introductions and no reason.
    if (!hasIntroductions)
      add('/introductions', 'Introductions: at least one entry is required when introduced');
    if (hasReason) add('/reason', 'Reason is only given when the outcome is declined');
  } else if (outcome === 'declined') {
    // I2: a decline gives a reason and carries no introduction.
    if (!hasReason) add('/reason', 'Reason is required when the outcome is declined');
    if (hasIntroductions)
      add('/introductions', 'Introductions are only carried when the outcome is introduced');
  }
  if (!Array.isArray(introductions)) return;
  const sender = own(content, 'from');
  const requester = own(content, 'requester');
  for (const [i, item] of (introductions as readonly unknown[]).entries()) {
    const body = isRecord(item) ? own(item, 'body') : undefined;
    if (!isRecord(body)) continue;
    const path = joinPointer(joinPointer('/introductions', i), 'body');
    // I3: the sender signs what it carries: each introduction is issued by the sender.
    if (typeof sender === 'string' && own(body, 'issuer') !== sender)
      add(joinPointer(path, 'issuer'), 'Each introduction must be issued by the sender');
    // I4: the introductions are for the requesting authority.
    if (typeof requester === 'string' && own(body, 'audience') !== requester)
      add(
        joinPointer(path, 'audience'),
        'Each introduction must name the requesting authority as its audience',
      );
  }
}

function networkOf(address: string): string {
  return address.slice(address.indexOf('@') + 1);
}
