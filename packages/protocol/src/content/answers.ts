import { Type, type Static } from 'typebox';
import { CONFIDENTIALITY_LEVELS, attachments, authorityParty, caseReference } from './common.js';
import {
  CONTENT_LIMITS as L,
  calendarDate,
  envelopeId,
  group,
  language,
  line,
  list,
  oneOf,
  text,
  yesNo,
} from './primitives.js';

export const ANSWER_TYPES = [
  'acknowledgement',
  'request-additional-information',
  'partial-execution',
  'full-execution',
  'refusal',
  'withdrawal',
] as const;
export type AnswerType = (typeof ANSWER_TYPES)[number];

/**
 * Grounds on which a request may be refused. Bank secrecy (UNTOC art.
 * 18(8)) and the fiscal nature of the offence (arts. 16(15) and 18(22)) are
 * deliberately absent: the Convention forbids refusing on those grounds.
 */
export const REFUSAL_GROUNDS = [
  'dual-criminality',
  'political-offence',
  'ne-bis-in-idem',
  'insufficient-information',
  'sovereignty-security-public-order',
  'death-penalty',
  'other',
] as const;

/** Grounds a drafter may try to use and that the Convention excludes, with the reason shown. */
export const FORBIDDEN_REFUSAL_GROUNDS: Readonly<Record<string, string>> = {
  'bank-secrecy': 'Bank secrecy is not a ground for refusal under UNTOC art. 18(8)',
  'bank-secrecy-not-a-ground': 'Bank secrecy is not a ground for refusal under UNTOC art. 18(8)',
  'fiscal-offence':
    'That an offence involves fiscal matters is not a ground for refusal under UNTOC art. 18(22) (art. 16(15) for extradition)',
  'fiscal-matters':
    'That an offence involves fiscal matters is not a ground for refusal under UNTOC art. 18(22) (art. 16(15) for extradition)',
  'fiscal-offence-not-a-ground':
    'That an offence involves fiscal matters is not a ground for refusal under UNTOC art. 18(22) (art. 16(15) for extradition)',
};

/** Which request an answer belongs to. */
export const InReplyToSchema = group(
  {
    envelopeId: envelopeId({
      title: 'Envelope id',
      description: 'the envelope id of the request answered',
    }),
    caseReference: caseReference('Case reference', "the requesting authority's case reference"),
    requestedCaseReference: Type.Optional(
      caseReference('Requested case reference', "the requested authority's reference for the case"),
    ),
  },
  { title: 'In reply to', description: 'identify the request this answer belongs to' },
);
export type InReplyTo = Static<typeof InReplyToSchema>;

/** Fields every answer carries, whatever its type. */
export const answerCommonProperties = {
  kind: Type.Literal('answer', { title: 'Kind' }),
  inReplyTo: InReplyToSchema,
  from: authorityParty('Sender'),
  to: authorityParty('Recipient'),
  language: language({ title: 'Language', description: 'the language the answer is written in' }),
  confidentiality: Type.Optional(oneOf(CONFIDENTIALITY_LEVELS, { title: 'Confidentiality' })),
  remarks: Type.Optional(text({ title: 'Remarks' }, L.shortText)),
};

export const AcknowledgementPartSchema = group(
  {
    receivedOn: calendarDate({ title: 'Date received' }, 'not-future'),
    requestedCaseReference: caseReference(
      'Requested case reference',
      'the reference your authority gave the case',
    ),
    assignedOfficer: Type.Optional(
      group(
        {
          name: line({ title: 'Name' }, L.name),
          function: Type.Optional(line({ title: 'Function' }, L.name)),
          contact: Type.Optional(
            line({ title: 'Contact', description: 'telephone or e-mail' }, L.name),
          ),
        },
        { title: 'Assigned officer' },
      ),
    ),
    executingAuthority: Type.Optional(line({ title: 'Executing authority' }, L.name)),
  },
  { title: 'Acknowledgement', section: true },
);
export type AcknowledgementPart = Static<typeof AcknowledgementPartSchema>;

export const AdditionalInformationPartSchema = group(
  {
    items: list(text({ title: 'Question or missing item' }, L.shortText), {
      title: 'Information needed',
      description: 'list each question or missing item',
      minItems: 1,
      maxItems: L.questions,
    }),
    deadline: Type.Optional(
      calendarDate(
        { title: 'Deadline', description: 'the date by which the information is needed' },
        'not-past',
      ),
    ),
  },
  { title: 'Request for additional information', section: true },
);
export type AdditionalInformationPart = Static<typeof AdditionalInformationPartSchema>;

export const ExecutionResultSchema = group(
  {
    description: text(
      { title: 'Description', description: 'what was done and what it produced' },
      L.text,
    ),
    executedOn: Type.Optional(calendarDate({ title: 'Date of execution' }, 'not-future')),
    attachments: Type.Optional(attachments()),
  },
  { title: 'Result' },
);
export type ExecutionResult = Static<typeof ExecutionResultSchema>;

export const RemainingItemSchema = group(
  {
    description: text(
      { title: 'Description', description: 'what has not been executed' },
      L.shortText,
    ),
    reason: text(
      { title: 'Reason', description: 'why it has not been executed, and whether it will be' },
      L.shortText,
    ),
  },
  { title: 'Item not executed' },
);
export type RemainingItem = Static<typeof RemainingItemSchema>;

export const ExecutionPartSchema = group(
  {
    results: list(ExecutionResultSchema, {
      title: 'Results',
      description: 'list each measure executed with its result',
      minItems: 1,
      maxItems: L.results,
    }),
    remaining: Type.Optional(
      list(RemainingItemSchema, { title: 'Items not executed', maxItems: L.remaining }),
    ),
  },
  { title: 'Execution', section: true },
);
export type ExecutionPart = Static<typeof ExecutionPartSchema>;

export const RefusalGroundSchema = group(
  {
    ground: oneOf(REFUSAL_GROUNDS, { title: 'Ground' }),
    explanation: text(
      { title: 'Explanation', description: 'give the reasons for the refusal (UNTOC art. 18(23))' },
      L.text,
    ),
    legalProvision: Type.Optional(line({ title: 'Legal provision' })),
  },
  { title: 'Ground for refusal' },
);
export type RefusalGround = Static<typeof RefusalGroundSchema>;

export const RefusalPartSchema = group(
  {
    grounds: list(RefusalGroundSchema, {
      title: 'Grounds for refusal',
      description: 'state each ground and explain it',
      minItems: 1,
      maxItems: L.grounds,
    }),
    consultationHeld: Type.Optional(
      yesNo({
        title: 'Consultation held',
        description: 'whether the requesting state was consulted first (art. 18(26))',
      }),
    ),
  },
  { title: 'Refusal', section: true },
);
export type RefusalPart = Static<typeof RefusalPartSchema>;

export const WithdrawalPartSchema = group(
  {
    reason: text({ title: 'Reason', description: 'why the request is withdrawn' }, L.shortText),
  },
  { title: 'Withdrawal', section: true },
);
export type WithdrawalPart = Static<typeof WithdrawalPartSchema>;

function answerType<T extends AnswerType>(value: T) {
  return Type.Literal(value, { title: 'Answer type' });
}

export const AcknowledgementContentSchema = group(
  {
    ...answerCommonProperties,
    answerType: answerType('acknowledgement'),
    acknowledgement: AcknowledgementPartSchema,
  },
  { title: 'Acknowledgement' },
);
export type AcknowledgementContent = Static<typeof AcknowledgementContentSchema>;

export const AdditionalInformationContentSchema = group(
  {
    ...answerCommonProperties,
    answerType: answerType('request-additional-information'),
    additionalInformation: AdditionalInformationPartSchema,
  },
  { title: 'Request for additional information' },
);
export type AdditionalInformationContent = Static<typeof AdditionalInformationContentSchema>;

export const PartialExecutionContentSchema = group(
  {
    ...answerCommonProperties,
    answerType: answerType('partial-execution'),
    execution: ExecutionPartSchema,
  },
  { title: 'Partial execution' },
);
export type PartialExecutionContent = Static<typeof PartialExecutionContentSchema>;

export const FullExecutionContentSchema = group(
  {
    ...answerCommonProperties,
    answerType: answerType('full-execution'),
    execution: ExecutionPartSchema,
  },
  { title: 'Full execution' },
);
export type FullExecutionContent = Static<typeof FullExecutionContentSchema>;

export const RefusalContentSchema = group(
  { ...answerCommonProperties, answerType: answerType('refusal'), refusal: RefusalPartSchema },
  { title: 'Refusal' },
);
export type RefusalContent = Static<typeof RefusalContentSchema>;

export const WithdrawalContentSchema = group(
  {
    ...answerCommonProperties,
    answerType: answerType('withdrawal'),
    withdrawal: WithdrawalPartSchema,
  },
  { title: 'Withdrawal' },
);
export type WithdrawalContent = Static<typeof WithdrawalContentSchema>;

/** The schema of each answer type, keyed by `answerType`. */
export const ANSWER_SCHEMAS = {
  acknowledgement: AcknowledgementContentSchema,
  'request-additional-information': AdditionalInformationContentSchema,
  'partial-execution': PartialExecutionContentSchema,
  'full-execution': FullExecutionContentSchema,
  refusal: RefusalContentSchema,
  withdrawal: WithdrawalContentSchema,
} as const;

export const AnswerContentSchema = Type.Union([
  AcknowledgementContentSchema,
  AdditionalInformationContentSchema,
  PartialExecutionContentSchema,
  FullExecutionContentSchema,
  RefusalContentSchema,
  WithdrawalContentSchema,
]);
export type AnswerContent = Static<typeof AnswerContentSchema>;

/** The answer content type for a given `answerType`. */
export interface AnswerContentByType {
  acknowledgement: AcknowledgementContent;
  'request-additional-information': AdditionalInformationContent;
  'partial-execution': PartialExecutionContent;
  'full-execution': FullExecutionContent;
  refusal: RefusalContent;
  withdrawal: WithdrawalContent;
}
