import { Type, type Static } from 'typebox';
import {
  ANSWER_TYPES,
  AddressSchema,
  AttachmentManifestSchema,
  DossierContentSchema,
  EnvelopeIdSchema,
  EnvelopeSchema,
  EvidenceSchema,
  HANDLING_CODES,
  INTRODUCTION_KINDS,
  REQUEST_TYPES,
  SignedDossierSchema,
  validator,
} from '@rogatory/protocol';

/** Schemas of the records sealed in `_enc` columns: checked again whenever one is decrypted. */

export const HandlingCodeSchema = Type.Enum(HANDLING_CODES);
export type HandlingCode = Static<typeof HandlingCodeSchema>;
export const RequestTypeSchema = Type.Enum(REQUEST_TYPES);
export const AnswerTypeSchema = Type.Enum(ANSWER_TYPES);
const DateSchema = Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' });
const Line = Type.String({ minLength: 1, maxLength: 200 });

/** What officers search and list by: decrypted in memory, filtered there. */
export const DossierMetaSchema = Type.Union([
  Type.Object(
    {
      kind: Type.Literal('request'),
      type: RequestTypeSchema,
      caseReference: Line,
      sender: AddressSchema,
      recipients: Type.Array(AddressSchema, { minItems: 1 }),
      handlingCode: HandlingCodeSchema,
      deadline: Type.Optional(DateSchema),
      urgency: Type.Optional(Type.String({ maxLength: 20 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('answer'),
      type: AnswerTypeSchema,
      caseReference: Line,
      requestedCaseReference: Type.Optional(Line),
      sender: AddressSchema,
      recipients: Type.Array(AddressSchema, { minItems: 1 }),
      handlingCode: HandlingCodeSchema,
      inReplyTo: EnvelopeIdSchema,
      deadline: Type.Optional(DateSchema),
    },
    { additionalProperties: false },
  ),
  /** A dossier of the point-of-contact workflow (docs/protocol.md §10.12). */
  Type.Object(
    {
      kind: Type.Literal('introduction'),
      type: Type.Enum(INTRODUCTION_KINDS),
      caseReference: Line,
      sender: AddressSchema,
      recipients: Type.Array(AddressSchema, { minItems: 1 }),
      handlingCode: HandlingCodeSchema,
      /** The envelope id of the introduction request a referral or an answer is about. */
      requestId: Type.Optional(EnvelopeIdSchema),
    },
    { additionalProperties: false },
  ),
  /** A quarantined dossier: only what the signed envelope says. */
  Type.Object(
    {
      kind: Type.Literal('unknown'),
      sender: AddressSchema,
      recipients: Type.Array(AddressSchema, { minItems: 1 }),
      detail: Type.String({ pattern: '^[A-Z_]{1,40}$' }),
    },
    { additionalProperties: false },
  ),
]);
export type DossierMeta = Static<typeof DossierMetaSchema>;

export const CaseMetaSchema = Type.Object(
  {
    caseReference: Line,
    requestedCaseReference: Type.Optional(Line),
    counterparts: Type.Array(AddressSchema),
    requestType: Type.Optional(RequestTypeSchema),
    handlingCode: HandlingCodeSchema,
  },
  { additionalProperties: false },
);
export type CaseMeta = Static<typeof CaseMetaSchema>;

export const DraftAttachmentsSchema = Type.Array(AttachmentManifestSchema, { maxItems: 1000 });

export const shapes = {
  meta: validator(DossierMetaSchema, 'dossier metadata'),
  caseMeta: validator(CaseMetaSchema, 'case metadata'),
  content: validator(DossierContentSchema, 'draft content'),
  draftAttachments: validator(DraftAttachmentsSchema, 'draft attachments'),
  dossier: validator(SignedDossierSchema, 'signed dossier'),
  envelope: validator(EnvelopeSchema, 'envelope'),
  evidence: validator(EvidenceSchema, 'evidence'),
} as const;
