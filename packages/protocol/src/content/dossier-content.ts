import { Type, type Static } from 'typebox';
import { AnswerContentSchema } from './answers.js';
import { IntroductionContentSchema } from './introductions.js';
import { RequestContentSchema } from './requests.js';

/**
 * The structured plaintext of a dossier: a request of one of four types, an
 * answer to a request, or one of the three introduction kinds of the
 * point-of-contact workflow. Use `validateDossierContent` rather than checking
 * this schema alone: it adds the rules a schema cannot express and explains
 * each problem to the drafter.
 */
export const DossierContentSchema = Type.Union([
  RequestContentSchema,
  AnswerContentSchema,
  IntroductionContentSchema,
]);
export type DossierContent = Static<typeof DossierContentSchema>;
