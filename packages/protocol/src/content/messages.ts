import type { TLocalizedValidationError } from 'typebox/error';
import type { ContentIssue } from '../errors.js';
import { FORBIDDEN_REFUSAL_GROUNDS } from './answers.js';
import { joinPointer, labelOf, own, schemaAt, valueAt, type SchemaNode } from './pointer.js';

function str(schema: SchemaNode | undefined, key: string): string | undefined {
  if (!schema) return undefined;
  const value = own(schema, key);
  return typeof value === 'string' ? value : undefined;
}

function limitOf(params: object): number | undefined {
  const limit: unknown = (params as Readonly<Record<string, unknown>>)['limit'];
  return typeof limit === 'number' ? limit : undefined;
}

function stringList(params: object, key: string): string[] {
  const raw: unknown = (params as Readonly<Record<string, unknown>>)[key];
  return Array.isArray(raw) ? raw.filter((v): v is string => typeof v === 'string') : [];
}

function withHint(message: string, hint: string | undefined): string {
  return hint === undefined ? message : `${message}: ${hint}`;
}

function required(label: string, schema: SchemaNode | undefined): string {
  if (schema && own(schema, 'type') === 'array') {
    const hint = str(schema, 'description');
    return `${label}: at least one entry is required${hint === undefined ? '' : ` (${hint})`}`;
  }
  return withHint(`${label} is required`, str(schema, 'description'));
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'text',
  integer: 'a whole number',
  number: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a group of fields',
  null: 'empty',
};

function expectedType(schema: SchemaNode | undefined, params: object): string {
  const hint = str(schema, 'formatHint');
  if (hint !== undefined) return hint;
  const type: unknown = (params as Readonly<Record<string, unknown>>)['type'];
  const name = typeof type === 'string' ? TYPE_NAMES[type] : undefined;
  return name ?? 'of another type';
}

function unknownField(root: SchemaNode, parent: string): string {
  return `${labelOf(root, parent)} has no such field: remove it or check its spelling`;
}

/**
 * Turn TypeBox's raw errors into one plain-language issue per field. Messages
 * are built from schema annotations (`title`, `description`, `formatHint`)
 * and never quote the offending value: it may be personal data.
 */
export function translateErrors(
  root: SchemaNode,
  content: unknown,
  errors: readonly TLocalizedValidationError[],
): ContentIssue[] {
  const issues: ContentIssue[] = [];
  // The branches of a scalar union (sentence length: days or 'life') each
  // fail; the union's own error speaks for all of them.
  const unions = errors.filter((e) => e.keyword === 'anyOf').map((e) => `${e.schemaPath}/anyOf/`);
  for (const error of errors) {
    if (unions.some((prefix) => error.schemaPath.startsWith(prefix))) continue;
    const path = error.instancePath;
    const schema = schemaAt(root, path);
    const label = labelOf(root, path);
    switch (error.keyword) {
      case 'required':
        for (const name of error.params.requiredProperties) {
          const childPath = joinPointer(path, name);
          issues.push({
            path: childPath,
            message: required(labelOf(root, childPath), schemaAt(root, childPath)),
          });
        }
        break;
      case 'additionalProperties':
        for (const name of stringList(error.params, 'additionalProperties')) {
          issues.push({ path: joinPointer(path, name), message: unknownField(root, path) });
        }
        break;
      case 'boolean': {
        // `additionalProperties: false` rejecting one property.
        const slash = path.lastIndexOf('/');
        issues.push({ path, message: unknownField(root, path.slice(0, Math.max(slash, 0))) });
        break;
      }
      case 'type':
        issues.push({ path, message: `${label} must be ${expectedType(schema, error.params)}` });
        break;
      case 'minLength':
        issues.push({
          path,
          message:
            limitOf(error.params) === 1
              ? required(label, schema)
              : `${label} is too short: at least ${limitOf(error.params) ?? 0} characters`,
        });
        break;
      case 'maxLength':
        issues.push({
          path,
          message: `${label} is too long: at most ${limitOf(error.params) ?? 0} characters`,
        });
        break;
      case 'pattern':
      case 'format':
        issues.push({
          path,
          message: `${label} must be ${str(schema, 'formatHint') ?? 'in the expected format'}`,
        });
        break;
      case 'enum': {
        const value = valueAt(content, path);
        const forbidden =
          typeof value === 'string' && path.endsWith('/ground')
            ? own(FORBIDDEN_REFUSAL_GROUNDS, value)
            : undefined;
        issues.push({
          path,
          message:
            typeof forbidden === 'string'
              ? forbidden
              : `${label} must be one of: ${error.params.allowedValues.map(String).join(', ')}`,
        });
        break;
      }
      case 'const':
        issues.push({ path, message: `${label} must be ${String(error.params.allowedValue)}` });
        break;
      case 'minItems': {
        const limit = limitOf(error.params) ?? 1;
        issues.push({
          path,
          message:
            limit <= 1
              ? required(label, schema)
              : `${label}: at least ${limit} entries are required`,
        });
        break;
      }
      case 'maxItems':
        issues.push({
          path,
          message: `${label} has too many entries: at most ${limitOf(error.params) ?? 0}`,
        });
        break;
      case 'minimum':
        issues.push({ path, message: `${label} must be at least ${String(error.params.limit)}` });
        break;
      case 'maximum':
        issues.push({ path, message: `${label} must be at most ${String(error.params.limit)}` });
        break;
      case 'anyOf':
        issues.push({
          path,
          message: `${label} must be ${str(schema, 'formatHint') ?? 'one of the allowed forms'}`,
        });
        break;
      default:
        issues.push({ path, message: `${label} is not valid` });
    }
  }
  return issues;
}

/** Keep the first issue of each path, preserving order. */
export function dedupeIssues(issues: readonly ContentIssue[]): ContentIssue[] {
  const seen = new Set<string>();
  const out: ContentIssue[] = [];
  for (const issue of issues) {
    if (seen.has(issue.path)) continue;
    seen.add(issue.path);
    out.push(issue);
  }
  return out;
}
