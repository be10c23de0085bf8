import { Type, type TArray, type TObject, type TProperties, type TSchema } from 'typebox';

/**
 * Upper bounds of the content model. A dossier comes from another authority
 * and is parsed before anyone has read it: every string and every list is
 * bounded so that a malicious or broken dossier cannot exhaust memory or CPU.
 */
export const CONTENT_LIMITS = {
  /** Names of persons, authorities, banks, courts; titles of instruments. */
  name: 200,
  /** Case references, document numbers, article numbers. */
  reference: 100,
  /** Other single-line fields (places, penalties, legal provisions). */
  line: 300,
  /** Short multi-line explanations (reasons, questions, addresses). */
  shortText: 2_000,
  /** Descriptions (offences, measures, assets, results). */
  text: 10_000,
  /** The summary of facts. */
  summary: 20_000,
  legalBasis: 20,
  offences: 100,
  legalProvisions: 50,
  persons: 200,
  aliases: 20,
  nationalities: 5,
  identityDocuments: 20,
  assistanceRequested: 100,
  relatedRequests: 100,
  measures: 200,
  accounts: 500,
  personsToBeHeard: 200,
  questions: 500,
  procedures: 50,
  assurances: 20,
  assets: 500,
  attachmentRefs: 100,
  results: 500,
  remaining: 500,
  grounds: 20,
  /** Largest attachment index (a dossier carries at most 1000 attachments). */
  attachmentIndex: 999,
  /** Largest number of days in a sentence (about 274 years). */
  days: 100_000,
  /**
   * Hard limits checked before schema validation, so that the schema
   * validator itself never walks pathological input. Chosen above every
   * per-field limit.
   */
  hardArrayItems: 1_000,
  hardStringLength: 100_000,
  hardObjectKeys: 100,
  hardTotalNodes: 500_000,
} as const;

/**
 * Annotations every content schema carries, consumed by the message
 * translator: `title` names the field for a drafter, `description` says what
 * to put there, `formatHint` completes "must be ...".
 */
export interface FieldMeta {
  readonly title: string;
  readonly description?: string;
  /** A section (header, type-specific part): named alone, omitted from the labels of its fields. */
  readonly section?: boolean;
}

/** Hint for fields whose value is checked against a date: see rules.ts. */
export type Temporal = 'not-future' | 'not-past';

// Patterns are ECMA-262 with the `u` flag. Each is linear-time: the classes
// on either side of a mandatory position are disjoint, so there is no
// catastrophic backtracking on long hostile input.
/** One line: no control characters (C0, DEL, C1, U+2028/2029), not blank. */
export const LINE_PATTERN =
  '^ *[^\\x00-\\x20\\x7F-\\x9F\\u2028\\u2029][^\\x00-\\x1F\\x7F-\\x9F\\u2028\\u2029]*$';
/** Multi-line text: tab, LF and CR allowed, other control characters not; not blank. */
export const TEXT_PATTERN =
  '^[\\t\\n\\r ]*[^\\x00-\\x20\\x7F-\\x9F][^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]*$';
export const DATE_PATTERN = '^[0-9]{4}-[0-9]{2}-[0-9]{2}$';
export const CONTENT_ADDRESS_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}@[a-z0-9][a-z0-9-]{0,31}$';
export const COUNTRY_PATTERN = '^[A-Z]{2}$';
export const CURRENCY_PATTERN = '^[A-Z]{3}$';
export const AMOUNT_PATTERN = '^(0|[1-9][0-9]{0,17})(\\.[0-9]{1,8})?$';
/** BCP 47 in canonical case: language, optional script, optional region. */
export const LANGUAGE_PATTERN = '^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$';
export const IBAN_PATTERN = '^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$';
export const BIC_PATTERN = '^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$';
/** Envelope id: base64url (no padding) of 16 bytes, as in the envelope. */
export const ENVELOPE_ID_PATTERN = '^[A-Za-z0-9_-]{22}$';

const LINE_HINT =
  'a single line of text that is not blank and has no line breaks or control characters';
const TEXT_HINT =
  'text that is not blank and has no control characters other than tab and line breaks';

/** A required single line of text. */
export function line(meta: FieldMeta, maxLength: number = CONTENT_LIMITS.line) {
  return Type.String({
    ...meta,
    minLength: 1,
    maxLength,
    pattern: LINE_PATTERN,
    formatHint: LINE_HINT,
  });
}

/** Multi-line text. */
export function text(meta: FieldMeta, maxLength: number = CONTENT_LIMITS.text) {
  return Type.String({
    ...meta,
    minLength: 1,
    maxLength,
    pattern: TEXT_PATTERN,
    formatHint: TEXT_HINT,
  });
}

/** A calendar date `YYYY-MM-DD` (a real date: 2023-02-29 is rejected). */
export function calendarDate(meta: FieldMeta, temporal?: Temporal, temporalHint?: string) {
  return Type.String({
    ...meta,
    ...(temporal === undefined ? {} : { temporal }),
    ...(temporalHint === undefined ? {} : { temporalHint }),
    maxLength: 10,
    pattern: DATE_PATTERN,
    format: 'date',
    formatHint: 'a real calendar date written YYYY-MM-DD, e.g. 2025-03-31',
  });
}

export function country(meta: FieldMeta) {
  return Type.String({
    ...meta,
    maxLength: 2,
    pattern: COUNTRY_PATTERN,
    country: true,
    formatHint: 'a two-letter ISO 3166-1 country code in capitals, e.g. NG, FR, KZ (GB, not UK)',
  });
}

export function language(meta: FieldMeta) {
  return Type.String({
    ...meta,
    maxLength: 16,
    pattern: LANGUAGE_PATTERN,
    formatHint: 'a BCP 47 language tag such as en, fr, ru, pt or pt-BR',
  });
}

export function authorityAddress(meta: FieldMeta) {
  return Type.String({
    ...meta,
    maxLength: 96,
    pattern: CONTENT_ADDRESS_PATTERN,
    formatHint:
      'an address authority@network in lowercase letters, digits and hyphens, e.g. ng-moj@wacap',
  });
}

export function envelopeId(meta: FieldMeta) {
  return Type.String({
    ...meta,
    maxLength: 22,
    pattern: ENVELOPE_ID_PATTERN,
    formatHint: 'the 22-character envelope id shown on the earlier dossier',
  });
}

/** A closed list of codes. */
export function oneOf<const V extends string[]>(values: readonly [...V], meta: FieldMeta) {
  return Type.Enum(values, { ...meta });
}

/** A bounded list; `minItems` defaults to 0. */
export function list<T extends TSchema>(
  items: T,
  meta: FieldMeta & { readonly minItems?: number; readonly maxItems: number },
): TArray<T> {
  return Type.Array(items, { ...meta, minItems: meta.minItems ?? 0 });
}

/** A closed object: unknown fields are rejected. */
export function group<P extends TProperties>(properties: P, meta: FieldMeta): TObject<P> {
  return Type.Object(properties, { ...meta, additionalProperties: false });
}

export function days(meta: FieldMeta, minimum = 0) {
  return Type.Integer({
    ...meta,
    minimum,
    maximum: CONTENT_LIMITS.days,
    formatHint: 'a whole number of days',
  });
}

export function yesNo(meta: FieldMeta) {
  return Type.Boolean({ ...meta });
}

/**
 * Reference to an attachment of the same dossier by its index (0-based) in
 * the dossier's attachment list.
 */
export function attachmentRef(meta: FieldMeta) {
  return Type.Object(
    {
      attachment: Type.Integer({
        title: 'Attachment number',
        description: 'the position of the attachment in the dossier, counting from 0',
        minimum: 0,
        maximum: CONTENT_LIMITS.attachmentIndex,
        attachmentIndex: true,
        formatHint: 'the position of an attachment of this dossier, counting from 0',
      }),
    },
    { ...meta, additionalProperties: false },
  );
}

/** An amount of money: decimal string (no floats in canonical JSON) and currency. */
export function money(meta: FieldMeta) {
  return group(
    {
      amount: Type.String({
        title: 'Amount',
        description: 'digits with an optional decimal point, e.g. 125000.50',
        maxLength: 27,
        pattern: AMOUNT_PATTERN,
        formatHint:
          'a decimal amount such as 125000.50 (digits, at most one decimal point, no thousands separators)',
      }),
      currency: Type.String({
        title: 'Currency',
        description: 'three-letter ISO 4217 code such as USD, EUR, XOF',
        maxLength: 3,
        pattern: CURRENCY_PATTERN,
        formatHint: 'a three-letter ISO 4217 currency code in capitals, e.g. USD, EUR, XOF',
      }),
    },
    meta,
  );
}
