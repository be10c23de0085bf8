/**
 * JSON pointers (RFC 6901) and the walk from a pointer to the schema that
 * describes the field it designates, so that a message can name the field
 * with its human title instead of its key.
 */

export type SchemaNode = Readonly<Record<string, unknown>>;

export function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own property, never one inherited from Object.prototype (`__proto__`, `constructor`). */
export function own(record: Readonly<Record<string, unknown>>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

export function escapeSegment(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function joinPointer(pointer: string, segment: string | number): string {
  return `${pointer}/${typeof segment === 'number' ? String(segment) : escapeSegment(segment)}`;
}

export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const INDEX = /^(0|[1-9][0-9]*)$/;

/** The schema of `segment` inside `schema`: a property, an array item or a branch of a union. */
export function childSchema(schema: SchemaNode, segment: string): SchemaNode | undefined {
  const properties = own(schema, 'properties');
  if (isRecord(properties)) {
    const child = own(properties, segment);
    if (isRecord(child)) return child;
  }
  const items = own(schema, 'items');
  if (isRecord(items) && INDEX.test(segment)) return items;
  const anyOf = own(schema, 'anyOf');
  if (Array.isArray(anyOf)) {
    for (const branch of anyOf) {
      if (!isRecord(branch)) continue;
      const child = childSchema(branch, segment);
      if (child) return child;
    }
  }
  return undefined;
}

export function schemaAt(root: SchemaNode, pointer: string): SchemaNode | undefined {
  let node: SchemaNode | undefined = root;
  for (const segment of parsePointer(pointer)) {
    if (!node) return undefined;
    node = childSchema(node, segment);
  }
  return node;
}

export function valueAt(root: unknown, pointer: string): unknown {
  let value: unknown = root;
  for (const segment of parsePointer(pointer)) {
    if (Array.isArray(value) && INDEX.test(segment))
      value = (value as readonly unknown[])[Number(segment)];
    else if (isRecord(value)) value = own(value, segment);
    else return undefined;
  }
  return value;
}

function titleOf(schema: SchemaNode | undefined): string | undefined {
  if (!schema) return undefined;
  const title = own(schema, 'title');
  return typeof title === 'string' ? title : undefined;
}

/**
 * Human label of the field at `pointer`, e.g. `/header/persons/2/dateOfBirth`
 * gives "Person concerned 3 › Date of birth". Built from schema titles only,
 * never from values: labels are safe to log.
 */
export function labelOf(root: SchemaNode, pointer: string): string {
  const segments = parsePointer(pointer);
  const parts: string[] = [];
  let node: SchemaNode | undefined = root;
  segments.forEach((segment, i) => {
    const parent = node;
    const child = parent ? childSchema(parent, segment) : undefined;
    const isLast = i === segments.length - 1;
    if (parent && own(parent, 'type') === 'array' && INDEX.test(segment)) {
      // "Offence 2" replaces the list's own title "Offences".
      parts.pop();
      parts.push(`${titleOf(child) ?? 'Entry'} ${Number(segment) + 1}`);
    } else if (child) {
      if (isLast || own(child, 'section') !== true) parts.push(titleOf(child) ?? 'Field');
    } else {
      parts.push('Field');
    }
    node = child;
  });
  return parts.length > 0 ? parts.join(' › ') : 'Dossier content';
}

/**
 * Visit every value of `value` that `schema` describes, depth first, with the
 * schema describing it. Fields the schema does not know are skipped.
 */
export function walkWithSchema(
  schema: SchemaNode,
  value: unknown,
  path: string,
  visit: (schema: SchemaNode, value: unknown, path: string) => void,
): void {
  visit(schema, value, path);
  if (Array.isArray(value)) {
    const items = own(schema, 'items');
    if (isRecord(items)) {
      value.forEach((item: unknown, i) => {
        walkWithSchema(items, item, joinPointer(path, i), visit);
      });
    }
    return;
  }
  if (!isRecord(value)) return;
  const properties = own(schema, 'properties');
  if (!isRecord(properties)) return;
  for (const key of Object.keys(properties)) {
    const child = own(properties, key);
    const item = own(value, key);
    if (isRecord(child) && item !== undefined)
      walkWithSchema(child, item, joinPointer(path, key), visit);
  }
}
