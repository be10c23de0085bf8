import { Type, type Static } from 'typebox';
import {
  BankAccountSchema,
  RequestHeaderSchema,
  aliases,
  attachments,
  caseReference,
  identityDocuments,
  nationalities,
} from './common.js';
import {
  CONTENT_LIMITS as L,
  attachmentRef,
  calendarDate,
  country,
  days,
  group,
  language,
  line,
  list,
  money,
  oneOf,
  text,
  yesNo,
} from './primitives.js';

export const REQUEST_TYPES = [
  'mla',
  'extradition',
  'transfer-of-sentenced-persons',
  'confiscation',
] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

// ---------------------------------------------------------------- MLA (UNTOC art. 18)

export const MLA_MEASURE_TYPES = [
  'take-testimony',
  'service-of-documents',
  'search-and-seizure',
  'examine-objects-and-sites',
  'provide-information-evidence',
  'provide-documents-records',
  'identify-trace-proceeds',
  'freeze',
  'facilitate-appearance',
  'other',
] as const;
export const HEARING_CAPACITIES = ['witness', 'suspect', 'expert'] as const;
export const PROCEDURE_TYPES = [
  'presence-of-officials',
  'oath-or-affirmation',
  'video-link',
  'chain-of-custody',
  'certification-of-records',
  'verbatim-record',
  'other',
] as const;

export const MlaMeasureSchema = group(
  {
    type: oneOf(MLA_MEASURE_TYPES, { title: 'Type of measure' }),
    description: text(
      {
        title: 'Description',
        description: 'say exactly what is to be done, where, and what evidence it should produce',
      },
      L.text,
    ),
    attachments: Type.Optional(attachments()),
  },
  { title: 'Measure' },
);
export type MlaMeasure = Static<typeof MlaMeasureSchema>;

export const PersonToBeHeardSchema = group(
  {
    name: line({ title: 'Name' }, L.name),
    capacity: oneOf(HEARING_CAPACITIES, {
      title: 'Capacity',
      description: 'witness, suspect or expert',
    }),
    questions: list(text({ title: 'Question' }, L.shortText), {
      title: 'Questions',
      description: 'list the questions to put to the person',
      minItems: 1,
      maxItems: L.questions,
    }),
    language: Type.Optional(language({ title: 'Language of the hearing' })),
  },
  { title: 'Person to be heard' },
);
export type PersonToBeHeard = Static<typeof PersonToBeHeardSchema>;

export const ProcedureSchema = group(
  {
    type: oneOf(PROCEDURE_TYPES, { title: 'Type of procedure' }),
    description: text(
      { title: 'Description', description: 'describe the procedure and why your law requires it' },
      L.shortText,
    ),
  },
  { title: 'Procedure' },
);
export type Procedure = Static<typeof ProcedureSchema>;

export const MlaPartSchema = group(
  {
    measures: list(MlaMeasureSchema, {
      title: 'Measures sought',
      description: 'list each piece of evidence or measure sought',
      minItems: 1,
      maxItems: L.measures,
    }),
    accounts: Type.Optional(
      list(BankAccountSchema, { title: 'Bank accounts', maxItems: L.accounts }),
    ),
    personsToBeHeard: Type.Optional(
      list(PersonToBeHeardSchema, { title: 'Persons to be heard', maxItems: L.personsToBeHeard }),
    ),
    procedures: Type.Optional(
      list(ProcedureSchema, { title: 'Procedures to follow', maxItems: L.procedures }),
    ),
    confidentialityExplanation: Type.Optional(
      text(
        {
          title: 'Confidentiality explanation',
          description:
            'why the request and its content must be kept confidential (UNTOC art. 18(20))',
        },
        L.shortText,
      ),
    ),
  },
  { title: 'Mutual legal assistance', section: true },
);
export type MlaPart = Static<typeof MlaPartSchema>;

// ---------------------------------------------------------------- Extradition (art. 16)

export const EXTRADITION_PURPOSES = ['prosecution', 'enforcement-of-sentence'] as const;
export const WARRANT_KINDS = ['arrest-warrant', 'judgment'] as const;
export const LOCATION_CERTAINTY = ['known', 'probable'] as const;
export const ASSURANCE_TYPES = [
  'no-death-penalty',
  'fair-trial',
  'no-torture',
  'detention-conditions',
  'other',
] as const;

export const PersonSoughtSchema = group(
  {
    fullName: line(
      { title: 'Full name', description: 'the full name as written in official documents' },
      L.name,
    ),
    aliases: Type.Optional(aliases()),
    dateOfBirth: Type.Optional(calendarDate({ title: 'Date of birth' }, 'not-future')),
    placeOfBirth: Type.Optional(line({ title: 'Place of birth' })),
    nationalities: Type.Optional(nationalities()),
    identityDocuments: Type.Optional(identityDocuments()),
    physicalDescription: Type.Optional(text({ title: 'Physical description' }, L.shortText)),
    photo: Type.Optional(attachmentRef({ title: 'Photograph' })),
    location: Type.Optional(
      group(
        {
          certainty: oneOf(LOCATION_CERTAINTY, {
            title: 'Certainty',
            description: 'known or probable',
          }),
          description: text(
            { title: 'Description', description: 'address or area where the person is' },
            L.shortText,
          ),
        },
        { title: 'Location' },
      ),
    ),
  },
  { title: 'Person sought' },
);
export type PersonSought = Static<typeof PersonSoughtSchema>;

export const WarrantOrJudgmentSchema = group(
  {
    kind: oneOf(WARRANT_KINDS, { title: 'Kind', description: 'arrest-warrant or judgment' }),
    issuingAuthority: line(
      { title: 'Issuing authority', description: 'the court or authority that issued it' },
      L.name,
    ),
    date: calendarDate({ title: 'Date of issue' }, 'not-future'),
    reference: caseReference('Reference', 'the number of the warrant or judgment'),
    attachment: attachmentRef({
      title: 'Copy',
      description: 'attach a copy of the warrant or judgment',
    }),
  },
  { title: 'Warrant or judgment' },
);
export type WarrantOrJudgment = Static<typeof WarrantOrJudgmentSchema>;

export const ExtraditionPenaltySchema = group(
  {
    maximumPenalty: Type.Optional(
      line({
        title: 'Maximum penalty',
        description: 'the maximum penalty for the offence (prosecution)',
      }),
    ),
    sentenceImposed: Type.Optional(
      line({
        title: 'Sentence imposed',
        description: "the sentence imposed, e.g. 8 years' imprisonment",
      }),
    ),
    remainingToServeDays: Type.Optional(days({ title: 'Remaining to serve (days)' })),
  },
  { title: 'Penalty' },
);
export type ExtraditionPenalty = Static<typeof ExtraditionPenaltySchema>;

export const LimitationPeriodSchema = group(
  {
    provision: line({
      title: 'Provision',
      description: 'the provision setting the limitation period',
    }),
    expiryDate: Type.Optional(
      calendarDate(
        { title: 'Expiry date', description: 'the date on which the limitation period ends' },
        'not-past',
        'extradition is normally barred once the limitation period has expired; check the date or explain in the statement',
      ),
    ),
    statement: Type.Optional(
      text(
        { title: 'Statement', description: 'why the limitation period has not expired' },
        L.shortText,
      ),
    ),
  },
  { title: 'Limitation period' },
);
export type LimitationPeriod = Static<typeof LimitationPeriodSchema>;

export const AssuranceSchema = group(
  {
    type: oneOf(ASSURANCE_TYPES, { title: 'Type of assurance' }),
    text: text({ title: 'Text', description: 'the wording of the assurance' }, L.shortText),
  },
  { title: 'Assurance' },
);
export type Assurance = Static<typeof AssuranceSchema>;

export const ExtraditionPartSchema = group(
  {
    personSought: PersonSoughtSchema,
    purpose: oneOf(EXTRADITION_PURPOSES, {
      title: 'Purpose',
      description: 'prosecution or enforcement-of-sentence',
    }),
    warrantOrJudgment: WarrantOrJudgmentSchema,
    penalty: ExtraditionPenaltySchema,
    limitationPeriod: LimitationPeriodSchema,
    provisionalArrestRequested: yesNo({ title: 'Provisional arrest requested' }),
    assurances: Type.Optional(
      list(AssuranceSchema, { title: 'Assurances', maxItems: L.assurances }),
    ),
    specialtyRuleAcknowledged: yesNo({
      title: 'Rule of speciality acknowledged',
      description:
        'the requesting authority undertakes not to prosecute for other offences without consent',
    }),
  },
  { title: 'Extradition', section: true },
);
export type ExtraditionPart = Static<typeof ExtraditionPartSchema>;

// ---------------------------------------------------------------- Transfer of sentenced persons (art. 17)

export const SentencedPersonSchema = group(
  {
    name: line({ title: 'Name' }, L.name),
    aliases: Type.Optional(aliases()),
    dateOfBirth: Type.Optional(calendarDate({ title: 'Date of birth' }, 'not-future')),
    nationalities: nationalities(1),
    identityDocuments: Type.Optional(identityDocuments()),
    placeOfDetention: line({
      title: 'Place of detention',
      description: 'the prison or facility where the person is held',
    }),
  },
  { title: 'Sentenced person' },
);
export type SentencedPerson = Static<typeof SentencedPersonSchema>;

export const JudgmentSchema = group(
  {
    court: line({ title: 'Court' }, L.name),
    date: calendarDate({ title: 'Date of judgment' }, 'not-future'),
    reference: caseReference('Reference', 'the number of the judgment'),
    final: yesNo({
      title: 'Final',
      description: 'whether the judgment is final (no further ordinary appeal)',
    }),
    attachment: Type.Optional(
      attachmentRef({ title: 'Copy', description: 'attach a copy of the judgment' }),
    ),
  },
  { title: 'Judgment' },
);
export type Judgment = Static<typeof JudgmentSchema>;

export const SentenceSchema = group(
  {
    lengthDays: Type.Union([days({ title: 'Length (days)' }, 1), Type.Literal('life')], {
      title: 'Length of sentence',
      formatHint: "a whole number of days (at least 1), or 'life'",
    }),
    startDate: calendarDate({ title: 'Start date' }, 'not-future'),
    timeServedDays: days({ title: 'Time served (days)' }),
    remainingDays: Type.Optional(
      days({ title: 'Remaining (days)', description: 'days still to serve' }),
    ),
  },
  { title: 'Sentence' },
);
export type Sentence = Static<typeof SentenceSchema>;

export const ConsentSchema = group(
  {
    given: yesNo({ title: 'Consent given' }),
    date: Type.Optional(calendarDate({ title: 'Date of consent' }, 'not-future')),
    attachment: Type.Optional(attachmentRef({ title: 'Written consent' })),
  },
  { title: 'Consent of the sentenced person' },
);
export type Consent = Static<typeof ConsentSchema>;

export const TransferPartSchema = group(
  {
    sentencedPerson: SentencedPersonSchema,
    judgment: JudgmentSchema,
    sentence: SentenceSchema,
    consent: ConsentSchema,
    administeringState: country({
      title: 'Administering state',
      description: 'the state to which the person is to be transferred to serve the sentence',
    }),
    reasons: text(
      {
        title: 'Reasons',
        description:
          'reasons for the transfer, including humanitarian grounds and social rehabilitation',
      },
      L.text,
    ),
  },
  { title: 'Transfer of sentenced persons', section: true },
);
export type TransferPart = Static<typeof TransferPartSchema>;

// ---------------------------------------------------------------- Confiscation and asset recovery (arts. 12-14)

export const CONFISCATION_ORDER_TYPES = [
  'freezing',
  'seizure',
  'confiscation',
  'return-of-assets',
] as const;
export const ASSET_TYPES = [
  'bank-account',
  'real-estate',
  'vehicle',
  'company-shares',
  'crypto-asset',
  'cash',
  'other',
] as const;

export const AssetSchema = group(
  {
    type: oneOf(ASSET_TYPES, { title: 'Type of asset' }),
    description: text(
      { title: 'Description', description: 'identify the asset precisely' },
      L.text,
    ),
    location: Type.Optional(
      line({ title: 'Location', description: 'where the asset is, e.g. land registry, bank' }),
    ),
    country: Type.Optional(country({ title: 'Country where the asset is' })),
    estimatedValue: Type.Optional(money({ title: 'Estimated value' })),
    account: Type.Optional(BankAccountSchema),
  },
  { title: 'Asset' },
);
export type Asset = Static<typeof AssetSchema>;

export const CourtOrderSchema = group(
  {
    issuingCourt: line({ title: 'Issuing court' }, L.name),
    date: calendarDate({ title: 'Date of order' }, 'not-future'),
    reference: caseReference('Reference', 'the number of the order'),
    final: Type.Optional(yesNo({ title: 'Final' })),
    attachment: Type.Optional(
      attachmentRef({ title: 'Copy', description: 'attach a copy of the order' }),
    ),
  },
  { title: 'Order' },
);
export type CourtOrder = Static<typeof CourtOrderSchema>;

export const ConfiscationPartSchema = group(
  {
    orderType: oneOf(CONFISCATION_ORDER_TYPES, { title: 'Type of order sought' }),
    assets: list(AssetSchema, {
      title: 'Assets',
      description: 'list each asset to be frozen, seized, confiscated or returned',
      minItems: 1,
      maxItems: L.assets,
    }),
    order: Type.Optional(CourtOrderSchema),
    linkToOffence: text(
      {
        title: 'Link to the offence',
        description: 'explain how the assets are proceeds or instrumentalities of the offence',
      },
      L.text,
    ),
    thirdPartyInterests: Type.Optional(
      text(
        { title: 'Third-party interests', description: 'known bona fide third-party rights' },
        L.shortText,
      ),
    ),
    assetSharingProposal: Type.Optional(
      text(
        { title: 'Asset sharing or disposal proposal', description: 'UNTOC art. 14' },
        L.shortText,
      ),
    ),
  },
  { title: 'Confiscation', section: true },
);
export type ConfiscationPart = Static<typeof ConfiscationPartSchema>;

// ---------------------------------------------------------------- Request contents

const requestKind = Type.Literal('request', { title: 'Kind' });

export const MlaRequestContentSchema = group(
  {
    kind: requestKind,
    requestType: Type.Literal('mla', { title: 'Request type' }),
    header: RequestHeaderSchema,
    mla: MlaPartSchema,
  },
  { title: 'Mutual legal assistance request' },
);
export type MlaRequestContent = Static<typeof MlaRequestContentSchema>;

export const ExtraditionRequestContentSchema = group(
  {
    kind: requestKind,
    requestType: Type.Literal('extradition', { title: 'Request type' }),
    header: RequestHeaderSchema,
    extradition: ExtraditionPartSchema,
  },
  { title: 'Extradition request' },
);
export type ExtraditionRequestContent = Static<typeof ExtraditionRequestContentSchema>;

export const TransferRequestContentSchema = group(
  {
    kind: requestKind,
    requestType: Type.Literal('transfer-of-sentenced-persons', { title: 'Request type' }),
    header: RequestHeaderSchema,
    transfer: TransferPartSchema,
  },
  { title: 'Request for transfer of a sentenced person' },
);
export type TransferRequestContent = Static<typeof TransferRequestContentSchema>;

export const ConfiscationRequestContentSchema = group(
  {
    kind: requestKind,
    requestType: Type.Literal('confiscation', { title: 'Request type' }),
    header: RequestHeaderSchema,
    confiscation: ConfiscationPartSchema,
  },
  { title: 'Confiscation or asset recovery request' },
);
export type ConfiscationRequestContent = Static<typeof ConfiscationRequestContentSchema>;

/** The schema of each request type, keyed by `requestType`. */
export const REQUEST_SCHEMAS = {
  mla: MlaRequestContentSchema,
  extradition: ExtraditionRequestContentSchema,
  'transfer-of-sentenced-persons': TransferRequestContentSchema,
  confiscation: ConfiscationRequestContentSchema,
} as const;

export const RequestContentSchema = Type.Union([
  MlaRequestContentSchema,
  ExtraditionRequestContentSchema,
  TransferRequestContentSchema,
  ConfiscationRequestContentSchema,
]);
export type RequestContent = Static<typeof RequestContentSchema>;

/** The request content type for a given `requestType`. */
export interface RequestContentByType {
  mla: MlaRequestContent;
  extradition: ExtraditionRequestContent;
  'transfer-of-sentenced-persons': TransferRequestContent;
  confiscation: ConfiscationRequestContent;
}
