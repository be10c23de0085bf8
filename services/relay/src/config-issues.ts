import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Settings } from 'typebox/system';
import type { SetupIssue } from './setup-errors.js';

/** Issues named at most per configuration file. */
const CONFIG_MAX_ERRORS = 200;

interface SchemaError {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Record<string, unknown>;
  readonly message: string;
}

/** `/trust/manifestFiles/1` -> `trust.manifestFiles[1]`. */
export function dottedPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out;
}

function join(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

/** One sentence per rule broken; never the value (it may be a secret put in the wrong field). */
function sentence(error: SchemaError): string {
  const p = error.params;
  switch (error.keyword) {
    case 'pattern':
      return `must match ${String(p['pattern'])}`;
    case 'type':
      return `must be ${/^[aeiou]/.test(String(p['type'])) ? 'an' : 'a'} ${String(p['type'])}`;
    case 'enum':
      return `must be one of ${(p['allowedValues'] as unknown[]).map(String).join(', ')}`;
    case 'minimum':
      return `must be at least ${String(p['limit'])}`;
    case 'maximum':
      return `must be at most ${String(p['limit'])}`;
    case 'minLength':
      return Number(p['limit']) === 1
        ? 'must not be empty'
        : `must be at least ${String(p['limit'])} characters`;
    case 'maxLength':
      return `must be at most ${String(p['limit'])} characters`;
    case 'minItems':
      return `must list at least ${String(p['limit'])}`;
    case 'maxItems':
      return `must list at most ${String(p['limit'])}`;
    default:
      return error.message;
  }
}

/**
 * Every way `value` breaks `schema`, one issue per field, in the order of
 * the schema's errors. Unions of literals (`backend.kind`) become "must be
 * one of ..."; unknown and missing fields are named one by one.
 */
export function schemaIssues(schema: TSchema, value: unknown): SetupIssue[] {
  const compiled = Compile(schema);
  // TypeBox buffers 8 errors by default (a process-wide guard for untrusted input): a
  // configuration file is the operator's, and every issue should be named at once. The
  // call is synchronous, so the raised limit is restored before anything else validates.
  const limit = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: CONFIG_MAX_ERRORS });
  let errors: SchemaError[];
  try {
    errors = compiled.Errors(value);
  } finally {
    Settings.Set({ maxErrors: limit });
  }
  const issues: SetupIssue[] = [];
  const seen = new Set<string>();
  const add = (field: string, message: string): void => {
    const key = `${field}\u0000${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    issues.push({ field, message });
  };
  // Literal unions report a `const` error per alternative, then `anyOf`: merged into one.
  const consts = new Map<string, unknown[]>();
  for (const error of errors) {
    if (error.keyword === 'const') {
      const list = consts.get(error.instancePath) ?? [];
      list.push(error.params['allowedValue']);
      consts.set(error.instancePath, list);
    }
  }
  for (const error of errors) {
    const field = dottedPath(error.instancePath);
    switch (error.keyword) {
      case 'boolean':
        // `additionalProperties: false` reports each unknown field twice; the other report names it.
        break;
      case 'additionalProperties':
        for (const name of (error.params['additionalProperties'] as unknown[] | undefined) ?? [])
          add(join(field, String(name)), 'unknown field');
        break;
      case 'required':
        for (const name of (error.params['requiredProperties'] as unknown[] | undefined) ?? [])
          add(join(field, String(name)), 'required');
        break;
      case 'const': {
        const allowed = consts.get(error.instancePath) ?? [];
        add(
          field,
          allowed.length > 1
            ? `must be one of ${allowed.map(String).join(', ')}`
            : `must be ${String(allowed[0])}`,
        );
        break;
      }
      case 'anyOf':
        if (!consts.has(error.instancePath)) add(field, 'matches none of the allowed forms');
        break;
      default:
        add(field, sentence(error));
    }
  }
  if (issues.length === 0) issues.push({ field: '', message: 'does not match the schema' });
  return issues;
}
