import { Type, type Static } from 'typebox';
import { fromBase64url } from './bytes.js';
import { ENVELOPE_LIMITS } from './envelope.js';
import { fail } from './errors.js';
import { Base64url, Hex256, validator } from './schema.js';

/** Limits and constants of the attachment format (docs/protocol.md, section 11). */
export const ATTACHMENT_LIMITS = {
  /** Plaintext bytes per chunk when the sender does not choose: 1 MiB. */
  defaultChunkSize: 1024 * 1024,
  /** Smallest allowed chunk size; small sizes exist for test vectors. */
  minChunkSize: 16,
  /** Largest allowed chunk size: 16 MiB, so a ciphertext chunk fits `ENVELOPE_LIMITS.maxChunkBytes`. */
  maxChunkSize: 16 * 1024 * 1024,
  /** Largest plaintext size: 2^50 bytes. */
  maxSize: 2 ** 50,
  /** An envelope lists at most this many chunks over all its attachments, so one attachment cannot have more. */
  maxChunks: ENVELOPE_LIMITS.maxChunks,
  /** Longest file name, in Unicode code points. */
  maxNameLength: 255,
  /** Bytes a ciphertext chunk has beyond its plaintext: crypto_secretstream_xchacha20poly1305_ABYTES. */
  chunkOverhead: 17,
  /** crypto_secretstream_xchacha20poly1305_KEYBYTES. */
  keyBytes: 32,
  /** crypto_secretstream_xchacha20poly1305_HEADERBYTES. */
  headerBytes: 24,
} as const;

/**
 * A file name as the sender's node knows it. Path separators, NUL and the
 * other C0 controls and DEL are excluded, so a recipient can use the name as
 * a single path component; `.` and `..` are excluded by `parseAttachmentManifest`.
 */
export const AttachmentNameSchema = Type.String({
  minLength: 1,
  maxLength: ATTACHMENT_LIMITS.maxNameLength,
  pattern: '^[^/\\\\\\u0000-\\u001f\\u007f]+$',
});

/**
 * A media type `type/subtype` (RFC 6838 restricted names), lowercase, without
 * parameters: lowercase is the one canonical spelling of a case-insensitive value.
 */
export const MediaTypeSchema = Type.String({
  maxLength: 255,
  pattern: '^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$',
});

/**
 * What a dossier says about one attachment: enough to fetch, verify and
 * decrypt its chunks. It travels only inside the signed and encrypted
 * dossier: it holds the attachment key.
 */
export const AttachmentManifestSchema = Type.Object(
  {
    /** File name (no path). */
    name: AttachmentNameSchema,
    /** Media type, `type/subtype`. */
    mediaType: MediaTypeSchema,
    /** Plaintext size in bytes. */
    size: Type.Integer({ minimum: 0, maximum: ATTACHMENT_LIMITS.maxSize }),
    /** Lowercase hex SHA-256 of the whole plaintext. */
    sha256: Hex256,
    /** base64url (no padding) of the 32-byte crypto_secretstream_xchacha20poly1305 key. */
    key: Base64url(ATTACHMENT_LIMITS.keyBytes),
    /** base64url (no padding) of the 24-byte crypto_secretstream_xchacha20poly1305 header. */
    header: Base64url(ATTACHMENT_LIMITS.headerBytes),
    /** Plaintext bytes per chunk; every chunk but the last has exactly this many. */
    chunkSize: Type.Integer({
      minimum: ATTACHMENT_LIMITS.minChunkSize,
      maximum: ATTACHMENT_LIMITS.maxChunkSize,
    }),
    /** Chunk ids (lowercase hex SHA-256 of each ciphertext chunk), in stream order. */
    chunks: Type.Array(Hex256, { minItems: 1, maxItems: ATTACHMENT_LIMITS.maxChunks }),
  },
  { additionalProperties: false },
);

/** An attachment manifest; obtain one from `encryptAttachment` or `parseAttachmentManifest`. */
export type AttachmentManifest = Static<typeof AttachmentManifestSchema>;

const manifestShape = validator(AttachmentManifestSchema, 'attachment manifest');

/** Number of chunks of a plaintext of `size` bytes: ceil(size / chunkSize), and at least 1. Exact integer arithmetic. */
export function attachmentChunkCount(size: number, chunkSize: number): number {
  const rest = size % chunkSize;
  const full = (size - rest) / chunkSize;
  return Math.max(1, full + (rest === 0 ? 0 : 1));
}

/** Plaintext length of chunk `index` of a manifest (the last one may be partial or empty). */
export function attachmentChunkLength(
  manifest: Pick<AttachmentManifest, 'size' | 'chunkSize' | 'chunks'>,
  index: number,
): number {
  const last = manifest.chunks.length - 1;
  if (!Number.isSafeInteger(index) || index < 0 || index > last)
    throw new RangeError('chunk index out of range');
  return index < last ? manifest.chunkSize : manifest.size - manifest.chunkSize * last;
}

function checkName(name: string): void {
  if (name === '.' || name === '..')
    fail('SCHEMA_INVALID', 'attachment manifest: invalid at /name (dot segment)');
}

/**
 * Validate an attachment manifest from untrusted input and return it typed.
 *
 * Rejects with LIMIT_EXCEEDED a size above 2^50 or more chunks than an
 * envelope may carry; with SCHEMA_INVALID anything else that breaks the
 * schema, a name `.` or `..`, a chunk count other than
 * max(1, ceil(size / chunkSize)), or a chunk id listed twice; with
 * ENCODING_INVALID a key or header whose base64url is not canonical.
 * Error messages name the field, never its value.
 */
export function parseAttachmentManifest(value: unknown): AttachmentManifest {
  if (typeof value === 'object' && value !== null) {
    const { size, chunks } = value as { size?: unknown; chunks?: unknown };
    if (typeof size === 'number' && size > ATTACHMENT_LIMITS.maxSize) {
      fail('LIMIT_EXCEEDED', `attachment manifest: size above ${ATTACHMENT_LIMITS.maxSize} bytes`);
    }
    if (Array.isArray(chunks) && chunks.length > ATTACHMENT_LIMITS.maxChunks) {
      fail(
        'LIMIT_EXCEEDED',
        `attachment manifest: more than ${ATTACHMENT_LIMITS.maxChunks} chunks`,
      );
    }
  }
  const manifest = manifestShape.parse(value);
  checkName(manifest.name);
  fromBase64url(manifest.key, 'attachment key');
  fromBase64url(manifest.header, 'attachment header');
  if (manifest.chunks.length !== attachmentChunkCount(manifest.size, manifest.chunkSize)) {
    fail('SCHEMA_INVALID', 'attachment manifest: chunk count does not match size and chunkSize');
  }
  if (new Set(manifest.chunks).size !== manifest.chunks.length) {
    fail('SCHEMA_INVALID', 'attachment manifest: a chunk id is listed twice');
  }
  return manifest;
}

const optionsShape = validator(
  Type.Object({
    name: AttachmentNameSchema,
    mediaType: MediaTypeSchema,
    chunkSize: AttachmentManifestSchema.properties.chunkSize,
  }),
  'attachment options',
);

/** Validate the sender-chosen fields before any work is done (SCHEMA_INVALID). */
export function checkAttachmentOptions(options: {
  name: unknown;
  mediaType: unknown;
  chunkSize: unknown;
}): void {
  const checked = optionsShape.parse({
    name: options.name,
    mediaType: options.mediaType,
    chunkSize: options.chunkSize,
  });
  checkName(checked.name);
}
