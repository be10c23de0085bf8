import { Type, type Static } from 'typebox';
import {
  BIC_PATTERN,
  CONTENT_LIMITS as L,
  IBAN_PATTERN,
  attachmentRef,
  authorityAddress,
  calendarDate,
  country,
  envelopeId,
  group,
  language,
  line,
  list,
  oneOf,
  text,
} from './primitives.js';

export const URGENCY_LEVELS = ['normal', 'urgent', 'very-urgent'] as const;
export const CONFIDENTIALITY_LEVELS = [
  'standard',
  'confidential',
  'strictly-confidential',
] as const;
export const HANDLING_CODES = ['none', 'restricted', 'witness-protection', 'sealed'] as const;
export const LEGAL_INSTRUMENTS = [
  'untoc',
  'bilateral-treaty',
  'regional-convention',
  'reciprocity',
  'domestic-law',
] as const;
export const PERSON_ROLES = [
  'suspect',
  'accused',
  'convicted',
  'witness',
  'victim',
  'expert',
  'account-holder',
  'other',
] as const;
export const IDENTITY_DOCUMENT_TYPES = [
  'passport',
  'national-id',
  'driving-licence',
  'residence-permit',
  'other',
] as const;

/** An authority taking part in the exchange: its network address, name and country. */
export function authorityParty(title: string) {
  return group(
    {
      address: authorityAddress({
        title: 'Address',
        description: 'the authority address authority@network',
      }),
      name: line({ title: 'Name', description: 'the full official name of the authority' }, L.name),
      country: country({ title: 'Country' }),
    },
    { title },
  );
}
export const AuthorityPartySchema = authorityParty('Authority');
export type AuthorityParty = Static<typeof AuthorityPartySchema>;

export function caseReference(title: string, description: string) {
  return line({ title, description }, L.reference);
}

/** One legal basis of the request. */
export const LegalBasisSchema = group(
  {
    instrument: oneOf(LEGAL_INSTRUMENTS, { title: 'Instrument' }),
    article: Type.Optional(
      line(
        { title: 'Article', description: 'the article relied on, e.g. 18 or 18(3)(b)' },
        L.reference,
      ),
    ),
    title: Type.Optional(
      line({ title: 'Title', description: 'the name of the treaty, convention or law' }, L.line),
    ),
  },
  { title: 'Legal basis', description: 'the treaty, convention or law the request relies on' },
);
export type LegalBasis = Static<typeof LegalBasisSchema>;

export const OffenceSchema = group(
  {
    description: text(
      {
        title: 'Description',
        description: 'describe the offence and how the facts meet its elements',
      },
      L.text,
    ),
    legalProvisions: list(
      line({
        title: 'Legal provision',
        description: 'article and law, e.g. Criminal Code art. 317',
      }),
      {
        title: 'Legal provisions',
        description: 'cite each provision that defines or punishes the offence',
        minItems: 1,
        maxItems: L.legalProvisions,
      },
    ),
    maximumPenalty: line({
      title: 'Maximum penalty',
      description: "state the maximum penalty provided by law, e.g. 12 years' imprisonment",
    }),
    dateOfCommission: Type.Optional(
      calendarDate(
        { title: 'Date of commission', description: 'the date (or first date) of the offence' },
        'not-future',
      ),
    ),
    dateOfCommissionEnd: Type.Optional(
      calendarDate(
        { title: 'End of commission', description: 'the last date, for an offence over a period' },
        'not-future',
      ),
    ),
    placeOfCommission: Type.Optional(line({ title: 'Place of commission' })),
  },
  { title: 'Offence' },
);
export type Offence = Static<typeof OffenceSchema>;

export const IdentityDocumentSchema = group(
  {
    type: oneOf(IDENTITY_DOCUMENT_TYPES, { title: 'Document type' }),
    number: line({ title: 'Document number' }, L.reference),
    issuingCountry: Type.Optional(country({ title: 'Issuing country' })),
    expiryDate: Type.Optional(calendarDate({ title: 'Expiry date' })),
  },
  { title: 'Identity document' },
);
export type IdentityDocument = Static<typeof IdentityDocumentSchema>;

export function aliases() {
  return list(line({ title: 'Alias' }, L.name), { title: 'Aliases', maxItems: L.aliases });
}

export function nationalities(minItems = 0) {
  return list(country({ title: 'Nationality' }), {
    title: 'Nationalities',
    minItems,
    maxItems: L.nationalities,
  });
}

export function identityDocuments() {
  return list(IdentityDocumentSchema, {
    title: 'Identity documents',
    maxItems: L.identityDocuments,
  });
}

export const PersonConcernedSchema = group(
  {
    role: oneOf(PERSON_ROLES, { title: 'Role', description: 'the role of the person in the case' }),
    roleDescription: Type.Optional(
      line({
        title: 'Role description',
        description: "explain the person's role when it is 'other'",
      }),
    ),
    name: line(
      { title: 'Name', description: 'the full name as written in official documents' },
      L.name,
    ),
    aliases: Type.Optional(aliases()),
    dateOfBirth: Type.Optional(calendarDate({ title: 'Date of birth' }, 'not-future')),
    placeOfBirth: Type.Optional(line({ title: 'Place of birth' })),
    nationalities: Type.Optional(nationalities()),
    identityDocuments: Type.Optional(identityDocuments()),
    address: Type.Optional(
      text({ title: 'Address', description: 'last known address' }, L.shortText),
    ),
  },
  { title: 'Person concerned' },
);
export type PersonConcerned = Static<typeof PersonConcernedSchema>;

/** Identification of a bank account (MLA bank records, frozen or confiscated accounts). */
export const BankAccountSchema = group(
  {
    bankName: line({ title: 'Bank name' }, L.name),
    accountHolder: line(
      { title: 'Account holder', description: 'the name of the holder of the account' },
      L.name,
    ),
    iban: Type.Optional(
      Type.String({
        title: 'IBAN',
        maxLength: 34,
        pattern: IBAN_PATTERN,
        iban: true,
        formatHint: 'an IBAN in capitals without spaces, e.g. FR7630006000011234567890189',
      }),
    ),
    accountNumber: Type.Optional(
      line(
        {
          title: 'Account number',
          description: 'the domestic account number where there is no IBAN',
        },
        L.reference,
      ),
    ),
    swiftBic: Type.Optional(
      Type.String({
        title: 'SWIFT/BIC',
        maxLength: 11,
        pattern: BIC_PATTERN,
        formatHint: 'an 8- or 11-character SWIFT/BIC code in capitals, e.g. DEUTDEFF',
      }),
    ),
    periodFrom: Type.Optional(
      calendarDate({ title: 'Period from', description: 'first day of the records sought' }),
    ),
    periodTo: Type.Optional(
      calendarDate({ title: 'Period to', description: 'last day of the records sought' }),
    ),
  },
  { title: 'Bank account' },
);
export type BankAccount = Static<typeof BankAccountSchema>;

export const RelatedRequestSchema = group(
  {
    envelopeId: Type.Optional(envelopeId({ title: 'Envelope id' })),
    caseReference: Type.Optional(
      caseReference('Case reference', 'the case reference of the earlier request'),
    ),
    note: Type.Optional(
      line({ title: 'Note', description: 'how the earlier request relates to this one' }),
    ),
  },
  { title: 'Related request' },
);
export type RelatedRequest = Static<typeof RelatedRequestSchema>;

/** Fields every request carries, whatever its type. */
export const RequestHeaderSchema = group(
  {
    requestingAuthority: authorityParty('Requesting authority'),
    requestedAuthority: authorityParty('Requested authority'),
    caseReference: caseReference(
      'Case reference',
      "the requesting authority's own reference for this case",
    ),
    requestedCaseReference: Type.Optional(
      caseReference(
        'Requested case reference',
        "the requested authority's reference, if it has one already",
      ),
    ),
    legalBasis: list(LegalBasisSchema, {
      title: 'Legal basis',
      description: 'cite at least one treaty, convention, reciprocity or domestic law',
      minItems: 1,
      maxItems: L.legalBasis,
    }),
    summaryOfFacts: text(
      {
        title: 'Summary of facts',
        description: 'describe the conduct, when and where it took place',
      },
      L.summary,
    ),
    offences: list(OffenceSchema, {
      title: 'Offences',
      description: 'list each offence with its legal provisions and maximum penalty',
      minItems: 1,
      maxItems: L.offences,
    }),
    persons: Type.Optional(
      list(PersonConcernedSchema, { title: 'Persons concerned', maxItems: L.persons }),
    ),
    assistanceRequested: list(line({ title: 'Assistance requested' }, L.shortText), {
      title: 'Assistance requested',
      description: 'list the assistance or measures you ask for, one per entry',
      minItems: 1,
      maxItems: L.assistanceRequested,
    }),
    urgency: oneOf(URGENCY_LEVELS, { title: 'Urgency' }),
    urgencyReason: Type.Optional(
      text(
        { title: 'Reason for urgency', description: 'why the request cannot wait' },
        L.shortText,
      ),
    ),
    deadline: Type.Optional(
      calendarDate(
        { title: 'Deadline', description: 'the date by which execution is needed' },
        'not-past',
      ),
    ),
    confidentiality: oneOf(CONFIDENTIALITY_LEVELS, { title: 'Confidentiality' }),
    handlingCode: oneOf(HANDLING_CODES, { title: 'Handling code' }),
    language: language({
      title: 'Language',
      description: 'the language the request is written in',
    }),
    relatedRequests: Type.Optional(
      list(RelatedRequestSchema, { title: 'Related requests', maxItems: L.relatedRequests }),
    ),
  },
  { title: 'Header', section: true },
);
export type RequestHeader = Static<typeof RequestHeaderSchema>;

export function attachments(title = 'Attachments') {
  return list(attachmentRef({ title: 'Attachment' }), { title, maxItems: L.attachmentRefs });
}
