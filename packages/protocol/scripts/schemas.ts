/**
 * The JSON Schemas (draft 2020-12) of docs/schemas/, generated from the
 * TypeBox definitions the implementation validates with: one file per
 * message. generate-vectors.ts writes them, and `--check` fails when a
 * definition changed without the published schema.
 */
import type { TSchema } from 'typebox';
import {
  AttachmentManifestSchema,
  DossierContentSchema,
  EncryptionKeyCertSchema,
  EnvelopeSchema,
  EvidenceSchema,
  IntroductionSchema,
  KeyRefSchema,
  KeyRotationSchema,
  LogEntrySchema,
  PublicationSchema,
  ManifestSchema,
  RevocationSchema,
  SealedDossierSchema,
  SealedSecretSchema,
  SignedDossierSchema,
} from '../src/index.js';

/** Schema ids are URNs: the files live in docs/schemas/, at no fixed web address. */
const BASE = 'urn:rogatory:v1:schema:';

/** [file name without .json, title, section of docs/protocol.md, schema]. */
const SCHEMAS: readonly [string, string, string, TSchema][] = [
  ['key-ref', 'KeyRef', '§4.3', KeyRefSchema],
  [
    'encryption-key-certificate',
    'Encryption-key certificate (Signed<EncryptionKeyBody>)',
    '§6.1',
    EncryptionKeyCertSchema,
  ],
  ['manifest', 'Network manifest (Signed<ManifestBody>)', '§6.2', ManifestSchema],
  ['introduction', 'Introduction (Signed<IntroductionBody>)', '§6.3', IntroductionSchema],
  ['key-rotation', 'Key rotation (Signed<KeyRotationBody>)', '§6.4', KeyRotationSchema],
  ['revocation', 'Revocation (Signed<RevocationBody>)', '§6.5', RevocationSchema],
  ['envelope', 'Envelope', '§8.1', EnvelopeSchema],
  [
    'signed-dossier',
    'Signed dossier (Signed<DossierBody>), content schema included',
    '§9.2',
    SignedDossierSchema,
  ],
  ['sealed-dossier', 'Sealed dossier object', '§9.3', SealedDossierSchema],
  ['dossier-content', 'Dossier content (a request or an answer)', '§10', DossierContentSchema],
  ['attachment-manifest', 'Attachment manifest', '§11.3', AttachmentManifestSchema],
  ['evidence', 'Evidence (Signed<EvidenceBody>)', '§12.3', EvidenceSchema],
  ['sealed-secret', 'Sealed key file (SealedSecret)', '§13.1', SealedSecretSchema],
  ['log-entry', 'Key-transparency log entry', '§18.1', LogEntrySchema],
  ['publication', 'Key-transparency publication', '§18.10', PublicationSchema],
];

/** File name → file text (indented JSON with a final newline). */
export function buildSchemas(): Map<string, string> {
  const files = new Map<string, string>();
  for (const [name, title, section, schema] of SCHEMAS) {
    const body = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
    const document = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: `${BASE}${name}`,
      title: body['title'] ?? title,
      $comment: `Normative (docs/protocol.md ${section}, §3.6). Generated from the TypeBox definitions of packages/protocol by \`pnpm vectors\`; do not edit.`,
      ...body,
    };
    files.set(`${name}.json`, `${JSON.stringify(document, null, 2)}\n`);
  }
  return files;
}
