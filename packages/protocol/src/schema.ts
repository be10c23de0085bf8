import { Type, type Static, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { fail } from './errors.js';

/** Field types shared by every protocol object. */
export const Base64url = (bytes?: number) =>
  bytes === undefined
    ? Type.String({ pattern: '^[A-Za-z0-9_-]*$', maxLength: 64 * 1024 * 1024 })
    : Type.String({
        pattern: '^[A-Za-z0-9_-]*$',
        minLength: Math.ceil((bytes * 4) / 3),
        maxLength: Math.ceil((bytes * 4) / 3),
      });

/** Lowercase hex SHA-256 digest, also the form of chunk ids. */
export const Hex256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
/** Key id: base64url of 16 bytes. */
export const KeyIdSchema = Type.String({ pattern: '^[A-Za-z0-9_-]{22}$' });
/** Milliseconds since the Unix epoch, UTC. */
export const Timestamp = Type.Integer({ minimum: 0, maximum: 8_640_000_000_000_000 });
export const AddressSchema = Type.String({
  pattern: '^[a-z0-9][a-z0-9-]{0,62}@[a-z0-9][a-z0-9-]{0,31}$',
  maxLength: 96,
});
export const NetworkIdSchema = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$' });
/** ISO 3166-1 alpha-2 country code. */
export const CountrySchema = Type.String({ pattern: '^[A-Z]{2}$' });
export const RequestTypeSchema = Type.Union([
  Type.Literal('mla'),
  Type.Literal('extradition'),
  Type.Literal('transfer-of-sentenced-persons'),
  Type.Literal('confiscation'),
]);
export type RequestTypeName = Static<typeof RequestTypeSchema>;

export interface Validator<T> {
  check(value: unknown): value is T;
  /** Returns the value typed, or throws SCHEMA_INVALID naming the first offending path. */
  parse(value: unknown): T;
}

/**
 * Compile a schema once. Errors name the JSON pointer of the offending field
 * and the rule it broke, never the value (which may be personal data).
 */
export function validator<S extends TSchema>(schema: S, what: string): Validator<Static<S>> {
  const compiled = Compile(schema);
  return {
    check: (value: unknown): value is Static<S> => compiled.Check(value),
    parse(value: unknown): Static<S> {
      if (compiled.Check(value)) return value;
      const first = compiled.Errors(value)[0];
      const where = first ? `${first.instancePath || '/'} (${first.keyword})` : '/';
      return fail('SCHEMA_INVALID', `${what}: invalid at ${where}`);
    },
  };
}
