import { Type, type TSchema } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';
import { Settings } from 'typebox/system';
import { MAX_DEPTH } from '../encoding.js';
import { fail, ProtocolError, type ContentIssue } from '../errors.js';
import { ANSWER_SCHEMAS, ANSWER_TYPES, answerCommonProperties } from './answers.js';
import { RequestHeaderSchema } from './common.js';
import type { DossierContent } from './dossier-content.js';
import {
  INTRODUCTION_KINDS,
  INTRODUCTION_SCHEMAS,
  applyIntroductionRules,
  isIntroductionKind,
} from './introductions.js';
import { dedupeIssues, translateErrors } from './messages.js';
import { isRecord, joinPointer, labelOf, own, walkWithSchema, type SchemaNode } from './pointer.js';
import { CONTENT_LIMITS, oneOf } from './primitives.js';
import { REQUEST_SCHEMAS, REQUEST_TYPES } from './requests.js';
import { applyRules, isCalendarDate } from './rules.js';

/** Options of {@link validateDossierContent}. */
export interface ContentValidationOptions {
  /**
   * Number of attachments the dossier carries. When given, every attachment
   * reference must be below it.
   */
  readonly attachmentCount?: number;
  /**
   * Today's date `YYYY-MM-DD` in the drafter's calendar. When given, dates
   * of past events must not be later than today and deadlines must not be
   * earlier. Give it when drafting, not when opening a received dossier: a
   * deadline that has passed since sending does not make a dossier invalid.
   */
  readonly today?: string;
}

/** At most this many issues are returned; a drafter fixes them and validates again. */
export const MAX_CONTENT_ISSUES = 200;

const REQUEST_FALLBACK = Type.Object({
  kind: Type.Literal('request', { title: 'Kind' }),
  requestType: oneOf(REQUEST_TYPES, {
    title: 'Request type',
    description: `one of ${REQUEST_TYPES.join(', ')}`,
  }),
  header: RequestHeaderSchema,
});

const ANSWER_FALLBACK = Type.Object({
  ...answerCommonProperties,
  answerType: oneOf(ANSWER_TYPES, {
    title: 'Answer type',
    description: `one of ${ANSWER_TYPES.join(', ')}`,
  }),
});

const KIND_LIST = ['request', 'answer', ...INTRODUCTION_KINDS].map((k) => `"${k}"`).join(', ');

const compiled = new Map<TSchema, Validator>();

function validatorFor(schema: TSchema): Validator {
  let v = compiled.get(schema);
  if (!v) {
    v = Compile(schema);
    compiled.set(schema, v);
  }
  return v;
}

/** The schema that describes `content` (by its kind and type), for presenting it; undefined for an unknown kind. */
export function contentSchemaOf(content: unknown): TSchema | undefined {
  return isRecord(content) ? rootSchemaFor(content) : undefined;
}

function rootSchemaFor(content: Readonly<Record<string, unknown>>): TSchema | undefined {
  const kind = own(content, 'kind');
  if (kind === 'request') {
    const type = own(content, 'requestType');
    return typeof type === 'string'
      ? ((own(REQUEST_SCHEMAS, type) as TSchema | undefined) ?? REQUEST_FALLBACK)
      : REQUEST_FALLBACK;
  }
  if (kind === 'answer') {
    const type = own(content, 'answerType');
    return typeof type === 'string'
      ? ((own(ANSWER_SCHEMAS, type) as TSchema | undefined) ?? ANSWER_FALLBACK)
      : ANSWER_FALLBACK;
  }
  if (isIntroductionKind(kind)) return INTRODUCTION_SCHEMAS[kind];
  return undefined;
}

/**
 * Bounds checked before any schema runs: only JSON values, nesting, list
 * lengths, string lengths and total size. Beyond these the schema validator
 * would do work proportional to hostile input, so such content is rejected
 * with these issues only.
 */
function structuralIssues(content: unknown): ContentIssue[] {
  const issues: ContentIssue[] = [];
  const stack: { value: unknown; path: string; depth: number }[] = [
    { value: content, path: '', depth: 0 },
  ];
  let nodes = 0;
  while (stack.length > 0 && issues.length < MAX_CONTENT_ISSUES) {
    const { value, path, depth } = stack.pop()!;
    nodes += 1;
    if (nodes > CONTENT_LIMITS.hardTotalNodes) {
      issues.push({
        path: '',
        message: `The content is too large: more than ${CONTENT_LIMITS.hardTotalNodes} values`,
      });
      break;
    }
    if (value === null || typeof value === 'boolean') continue;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) issues.push({ path, message: 'Numbers must be finite' });
      continue;
    }
    if (typeof value === 'string') {
      if (value.length > CONTENT_LIMITS.hardStringLength) {
        issues.push({
          path,
          message: `Text is far too long: at most ${CONTENT_LIMITS.hardStringLength} characters in any field`,
        });
      }
      continue;
    }
    if (typeof value !== 'object') {
      issues.push({
        path,
        message:
          'This value cannot be represented in a dossier: use text, whole numbers, true/false, lists or groups of fields',
      });
      continue;
    }
    if (depth >= MAX_DEPTH) {
      issues.push({
        path,
        message: `Fields are nested too deeply (more than ${MAX_DEPTH} levels)`,
      });
      continue;
    }
    if (Array.isArray(value)) {
      if (value.length > CONTENT_LIMITS.hardArrayItems) {
        issues.push({
          path,
          message: `This list is far too long: at most ${CONTENT_LIMITS.hardArrayItems} entries in any list`,
        });
        continue;
      }
      for (let i = value.length - 1; i >= 0; i--) {
        stack.push({
          value: (value as readonly unknown[])[i],
          path: joinPointer(path, i),
          depth: depth + 1,
        });
      }
      continue;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      issues.push({
        path,
        message:
          'This value cannot be represented in a dossier: only plain groups of fields are allowed',
      });
      continue;
    }
    const keys = Object.keys(value);
    if (keys.length > CONTENT_LIMITS.hardObjectKeys) {
      issues.push({
        path,
        message: `Too many fields: at most ${CONTENT_LIMITS.hardObjectKeys} in any group`,
      });
      continue;
    }
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const item: unknown = (value as Readonly<Record<string, unknown>>)[key];
      if (item === undefined) {
        issues.push({
          path: joinPointer(path, key),
          message: 'This field has no value: remove it or fill it in',
        });
        continue;
      }
      stack.push({ value: item, path: joinPointer(path, key), depth: depth + 1 });
    }
  }
  return issues;
}

function schemaErrors(schema: TSchema, content: unknown) {
  const v = validatorFor(schema);
  if (v.Check(content)) return [];
  // TypeBox buffers 8 errors by default; a drafter should see every problem
  // at once. The setting is global, so it is restored immediately (the call
  // is synchronous: nothing else runs in between).
  const previous = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: MAX_CONTENT_ISSUES * 2 });
  try {
    return v.Errors(content);
  } finally {
    Settings.Set({ maxErrors: previous });
  }
}

/**
 * Lists longer than their limit, found before the schema errors: those are
 * truncated, and a drafter must learn that a list is over its limit even when
 * its entries have more problems than fit in the issue list.
 */
function oversizedLists(root: SchemaNode, content: unknown): ContentIssue[] {
  const issues: ContentIssue[] = [];
  walkWithSchema(root, content, '', (schema, value, path) => {
    const max = own(schema, 'maxItems');
    if (Array.isArray(value) && typeof max === 'number' && value.length > max) {
      issues.push({ path, message: `${labelOf(root, path)} has too many entries: at most ${max}` });
    }
  });
  return issues;
}

function checkOptions(options: ContentValidationOptions): void {
  const { attachmentCount, today } = options;
  if (
    attachmentCount !== undefined &&
    !(Number.isSafeInteger(attachmentCount) && attachmentCount >= 0)
  ) {
    fail('SCHEMA_INVALID', 'options.attachmentCount must be a non-negative integer');
  }
  if (today !== undefined && !isCalendarDate(today)) {
    fail('SCHEMA_INVALID', 'options.today must be a date YYYY-MM-DD');
  }
}

/**
 * Validate the structured content of a dossier (request or answer).
 *
 * Returns every problem found, each with the JSON pointer of the field and a
 * message addressed to a legal drafter; an empty array means the content is
 * valid. Never throws on content, whatever it is (it throws `SCHEMA_INVALID`
 * only for invalid `options`). Messages name fields by their labels and never
 * repeat field values, so issues can be logged and sent back.
 */
export function validateDossierContent(
  content: unknown,
  options: ContentValidationOptions = {},
): ContentIssue[] {
  checkOptions(options);
  const structural = structuralIssues(content);
  if (structural.length > 0) return structural.slice(0, MAX_CONTENT_ISSUES);
  if (!isRecord(content)) {
    return [
      {
        path: '',
        message: `Dossier content must be a group of fields with kind ${KIND_LIST}`,
      },
    ];
  }
  const schema = rootSchemaFor(content);
  if (!schema) {
    return [
      {
        path: '/kind',
        message: present(content, 'kind')
          ? `Kind must be ${KIND_LIST}`
          : `Kind is required: ${KIND_LIST}`,
      },
    ];
  }
  const root = schema as SchemaNode;
  const issues = [
    ...oversizedLists(root, content),
    ...translateErrors(root, content, schemaErrors(schema, content)),
  ];
  applyIntroductionRules(content, (path, message) => {
    issues.push({ path, message });
  });
  applyRules(root, content, {
    root,
    today: options.today,
    attachmentCount: options.attachmentCount,
    add: (path, message) => {
      issues.push({ path, message });
    },
  });
  return dedupeIssues(issues).slice(0, MAX_CONTENT_ISSUES);
}

function present(record: Readonly<Record<string, unknown>>, key: string): boolean {
  return own(record, key) !== undefined;
}

/**
 * Throw `CONTENT_INVALID` (with `issues`) unless the content is valid. The
 * error message gives only the number of problems, never field values.
 */
export function assertDossierContent(
  content: unknown,
  options: ContentValidationOptions = {},
): asserts content is DossierContent {
  const issues = validateDossierContent(content, options);
  if (issues.length > 0) {
    throw new ProtocolError('CONTENT_INVALID', `dossier content has ${issues.length} problem(s)`, {
      issues,
    });
  }
}

/** Indexes of the attachments the content refers to, ascending, without duplicates. */
export function referencedAttachments(content: DossierContent): number[] {
  const schema = rootSchemaFor(content);
  const found = new Set<number>();
  if (!schema) return [];
  walkWithSchema(schema as SchemaNode, content, '', (node, value) => {
    if (typeof value === 'number' && own(node, 'attachmentIndex') === true) found.add(value);
  });
  return [...found].sort((a, b) => a - b);
}
