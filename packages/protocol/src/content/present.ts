import { isRecord, own, type SchemaNode } from './pointer.js';
import { contentSchemaOf } from './validate.js';

/**
 * Content for people: a commented template a drafter fills in (JSON with
 * `//` comments, every field with its title, whether it is required and what
 * to put there), and a readable rendering of a dossier's content with the
 * field titles instead of keys. Both come from the schema annotations
 * (FieldMeta), so they never drift from what the validator checks.
 */

function str(schema: SchemaNode | undefined, key: string): string | undefined {
  const v = schema === undefined ? undefined : own(schema, key);
  return typeof v === 'string' ? v : undefined;
}

function propertiesOf(schema: SchemaNode | undefined, value: unknown): SchemaNode | undefined {
  if (!schema) return undefined;
  const direct = own(schema, 'properties');
  if (isRecord(direct)) return schema;
  const anyOf = own(schema, 'anyOf');
  if (!Array.isArray(anyOf) || !isRecord(value)) return undefined;
  // The branch whose properties hold every key of the value and whose constants match.
  for (const branch of anyOf) {
    if (!isRecord(branch)) continue;
    const props = own(branch, 'properties');
    if (!isRecord(props)) continue;
    const fits = Object.keys(value).every((k) => {
      const p = own(props, k);
      if (!isRecord(p)) return false;
      const c = own(p, 'const');
      return c === undefined || c === own(value, k);
    });
    if (fits) return branch;
  }
  return undefined;
}

function childOf(parent: SchemaNode | undefined, key: string): SchemaNode | undefined {
  const props = parent === undefined ? undefined : own(parent, 'properties');
  if (!isRecord(props)) return undefined;
  const child = own(props, key);
  return isRecord(child) ? child : undefined;
}

function requiredOf(parent: SchemaNode | undefined): readonly string[] {
  const r = parent === undefined ? undefined : own(parent, 'required');
  return Array.isArray(r) ? r.filter((k): k is string => typeof k === 'string') : [];
}

/** Wrap `text` into `//` comment lines of at most ~96 columns at `indent`. */
function comment(indent: string, text: string): string[] {
  const words = text.split(/\s+/).filter((w) => w !== '');
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line !== '' && indent.length + 3 + line.length + 1 + w.length > 96) {
      lines.push(`${indent}// ${line}`);
      line = w;
    } else line = line === '' ? w : `${line} ${w}`;
  }
  if (line !== '') lines.push(`${indent}// ${line}`);
  return lines;
}

/** "one of a, b, c" for an enumeration (enum, or a union of constants). */
function choices(schema: SchemaNode | undefined): string | undefined {
  if (!schema) return undefined;
  const e = own(schema, 'enum');
  const anyOf = own(schema, 'anyOf');
  const values = Array.isArray(e)
    ? e
    : Array.isArray(anyOf) && anyOf.every((b) => isRecord(b) && own(b, 'const') !== undefined)
      ? anyOf.map((b) => own(b as SchemaNode, 'const'))
      : undefined;
  return values === undefined ? undefined : `one of ${values.map((v) => String(v)).join(', ')}`;
}

function fieldNote(child: SchemaNode | undefined, key: string, required: boolean): string {
  const title = str(child, 'title') ?? key;
  const description = str(child, 'description') ?? choices(child);
  return `${title} (${required ? 'required' : 'optional'})${description ? `: ${description}` : ''}`;
}

function emit(value: unknown, schema: SchemaNode | undefined, indent: string): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return ['[]'];
    const items = schema === undefined ? undefined : own(schema, 'items');
    const itemSchema = isRecord(items) ? items : undefined;
    const out = ['['];
    value.forEach((item: unknown, i) => {
      const lines = emit(item, itemSchema, `${indent}  `);
      lines[0] = `${indent}  ${lines[0] ?? ''}`;
      if (i < value.length - 1) lines[lines.length - 1] = `${lines[lines.length - 1] ?? ''},`;
      out.push(...lines);
    });
    out.push(`${indent}]`);
    return out;
  }
  if (!isRecord(value)) return [JSON.stringify(value)];
  const parent = propertiesOf(schema, value);
  const required = requiredOf(parent);
  const keys = Object.keys(value);
  const out = ['{'];
  keys.forEach((key, i) => {
    const child = childOf(parent, key);
    out.push(...comment(`${indent}  `, fieldNote(child, key, required.includes(key))));
    const lines = emit(own(value, key), child, `${indent}  `);
    lines[0] = `${indent}  ${JSON.stringify(key)}: ${lines[0] ?? ''}`;
    if (i < keys.length - 1) lines[lines.length - 1] = `${lines[lines.length - 1] ?? ''},`;
    out.push(...lines);
  });
  const props = parent === undefined ? undefined : own(parent, 'properties');
  if (isRecord(props)) {
    const absent = Object.keys(props).filter((k) => !keys.includes(k));
    for (const key of absent)
      out.push(
        ...comment(
          `${indent}  `,
          `may also be given: "${key}" — ${fieldNote(childOf(parent, key), key, required.includes(key))}`,
        ),
      );
  }
  out.push(`${indent}}`);
  return out;
}

/**
 * A commented template of `content` (an example of the kind and type to
 * draft): JSON with a `//` comment above every field, and a comment for
 * each optional field the example leaves out. `rogatory draft check` and
 * `compose` read it as it is (comments allowed).
 */
export function contentTemplate(content: unknown, heading: readonly string[] = []): string {
  const schema = contentSchemaOf(content) as SchemaNode | undefined;
  return `${[...heading.flatMap((h) => comment('', h)), ...emit(content, schema, '')].join('\n')}\n`;
}

function scalar(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

function render(
  value: unknown,
  schema: SchemaNode | undefined,
  indent: string,
  out: string[],
): void {
  const parent = propertiesOf(schema, value);
  if (!isRecord(value)) return;
  for (const key of Object.keys(value)) {
    const child = childOf(parent, key);
    const title = str(child, 'title') ?? key;
    const v = own(value, key);
    if (Array.isArray(v)) {
      if (v.every((x) => !isRecord(x) && !Array.isArray(x))) {
        out.push(`${indent}${title}: ${v.map(scalar).join('; ') || '-'}`);
        continue;
      }
      out.push(`${indent}${title}:`);
      const items = child === undefined ? undefined : own(child, 'items');
      const itemSchema = isRecord(items) ? items : undefined;
      const itemTitle = str(itemSchema, 'title') ?? 'Entry';
      v.forEach((item: unknown, i) => {
        out.push(`${indent}  ${itemTitle} ${String(i + 1)}:`);
        render(item, itemSchema, `${indent}    `, out);
      });
    } else if (isRecord(v)) {
      out.push(`${indent}${title}:`);
      render(v, child, `${indent}  `, out);
    } else {
      const text = scalar(v);
      const [first, ...rest] = text.split(/\r?\n/);
      out.push(`${indent}${title}: ${first ?? ''}`);
      for (const line of rest) out.push(`${indent}  ${line}`);
    }
  }
}

/** The content as text a person reads: field titles, numbered entries, multi-line text indented. */
export function renderContent(content: unknown): string {
  const out: string[] = [];
  render(content, contentSchemaOf(content) as SchemaNode | undefined, '', out);
  return out.join('\n');
}
