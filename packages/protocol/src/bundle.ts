import { Type, type Static } from 'typebox';
import { parseAttachmentManifest } from './attachment-manifest.js';
import { equalBytes, fromBase64url, sha256, toHex } from './bytes.js';
import {
  checkContentParties,
  attachmentChunkRefs,
  decryptSealedPayload,
  parseSealedDossier,
  SignedDossierSchema,
} from './dossier.js';
import { validateDossierContent } from './content/index.js';
import { canonicalBytes, decodeCanonical } from './encoding.js';
import { EnvelopeSchema, verifyEnvelope } from './envelope.js';
import { fail, isProtocolError, type ErrorCode } from './errors.js';
import { EvidenceSchema, verifyEvidenceChain } from './evidence.js';
import { publicKeyOf, KeyRefSchema } from './keys.js';
import { AddressSchema, Base64url, NetworkIdSchema, Timestamp, validator } from './schema.js';
import { CONTEXTS, verifySignature } from './signed.js';
import { ManifestSchema } from './statements.js';
import { DOSSIER_PARTY_ROLES, TrustStore } from './trust.js';

/** The one JSON member of every bundle, at its root. */
export const BUNDLE_FILE = 'bundle.json';
/** The directory of decrypted attachments in a full bundle. */
export const BUNDLE_ATTACHMENT_DIR = 'attachments';

export const BUNDLE_LIMITS = {
  /** bundle.json: a sealed dossier (8 MiB, base64url) and its plaintext (8 MiB), evidences and manifests. */
  maxBundleJsonBytes: 64 * 1024 * 1024,
  maxManifests: 64,
  maxEvidences: 10_000,
} as const;

/**
 * `attachments/<index>-<name>`: the index of the attachment manifest in the
 * signed dossier, then a name of safe characters that cannot start with a dot
 * or end with a space, so no member name is `.`/`..`, hidden, or a path.
 */
const ATTACHMENT_FILE_PATTERN = `^${BUNDLE_ATTACHMENT_DIR}/(0|[1-9][0-9]{0,2})-[A-Za-z0-9_-](?:[A-Za-z0-9._ -]{0,118}[A-Za-z0-9._-])?$`;

const BundleCommon = {
  format: Type.Literal('rogatory-bundle'),
  version: Type.Literal(2),
  exportedAt: Timestamp,
  exportedBy: AddressSchema,
  trust: Type.Object(
    {
      pinned: Type.Object(
        { network: NetworkIdSchema, root: KeyRefSchema },
        { additionalProperties: false },
      ),
      manifests: Type.Array(ManifestSchema, { minItems: 1, maxItems: BUNDLE_LIMITS.maxManifests }),
    },
    { additionalProperties: false },
  ),
  envelope: EnvelopeSchema,
  /** base64url of the sealed dossier object's bytes, exactly as the envelope names them. */
  sealed: Base64url(),
  evidences: Type.Array(EvidenceSchema, { maxItems: BUNDLE_LIMITS.maxEvidences }),
};

/** A bundle that shows the dossier and its attachments, and proves they are what the envelope sealed. */
export const FullBundleSchema = Type.Object(
  {
    ...BundleCommon,
    kind: Type.Literal('full'),
    /** The content key of the sealed object: opens this dossier only, and matches the object's key commitment. */
    contentKey: Base64url(32),
    dossier: SignedDossierSchema,
    attachments: Type.Array(
      Type.Object(
        {
          index: Type.Integer({ minimum: 0, maximum: 999 }),
          file: Type.String({ pattern: ATTACHMENT_FILE_PATTERN }),
        },
        { additionalProperties: false },
      ),
      { maxItems: 1000 },
    ),
  },
  { additionalProperties: false },
);

/** A bundle with no plaintext and no key: proves signatures and evidences of an envelope, not its content. */
export const SealedBundleSchema = Type.Object(
  { ...BundleCommon, kind: Type.Literal('sealed') },
  { additionalProperties: false },
);

export const BundleSchema = Type.Union([FullBundleSchema, SealedBundleSchema]);
export type FullBundle = Static<typeof FullBundleSchema>;
export type SealedBundle = Static<typeof SealedBundleSchema>;
export type Bundle = Static<typeof BundleSchema>;
export type BundleKind = Bundle['kind'];

const bundleShape = validator(BundleSchema, 'bundle');

/**
 * A file name safe as one path component on every platform, from untrusted
 * display text (§17.3): NFC, characters outside `[A-Za-z0-9._ -]` replaced,
 * no leading dot or space, at most 120 characters, no trailing space.
 */
export function safeFileName(name: string, fallback: string): string {
  const cleaned = name
    .normalize('NFC')
    .replace(/[^A-Za-z0-9._ -]/g, '_')
    .replace(/^[.\s]+/, '')
    .slice(0, 120)
    .trimEnd();
  return cleaned === '' ? fallback : cleaned;
}

/** The member name of attachment `index`, from its (untrusted) original name. */
export function bundleAttachmentFile(index: number, name: string): string {
  return `${BUNDLE_ATTACHMENT_DIR}/${index}-${safeFileName(name, 'attachment')}`;
}

/** The bytes of bundle.json: the canonical encoding (§3.1) of the bundle, then one line feed. */
export function encodeBundle(bundle: Bundle): Uint8Array {
  const bytes = canonicalBytes(bundleShape.parse(bundle));
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = 0x0a;
  return out;
}

/** Decode bundle.json: canonical JSON and one line feed (ENCODING_INVALID, LIMIT_EXCEEDED), then the schema (SCHEMA_INVALID). */
export function decodeBundle(bytes: Uint8Array): Bundle {
  if (bytes.length > BUNDLE_LIMITS.maxBundleJsonBytes + 1)
    fail(
      'LIMIT_EXCEEDED',
      `${BUNDLE_FILE} is larger than ${BUNDLE_LIMITS.maxBundleJsonBytes} bytes`,
    );
  if (bytes.length === 0 || bytes[bytes.length - 1] !== 0x0a)
    fail('ENCODING_INVALID', `${BUNDLE_FILE} must end with one line feed`);
  return bundleShape.parse(
    decodeCanonical(bytes.subarray(0, bytes.length - 1), BUNDLE_LIMITS.maxBundleJsonBytes),
  );
}

/** What the verifier can see of the bundle's directory. */
export interface BundleFiles {
  /**
   * Every entry under the bundle's root, as `/`-separated relative paths:
   * regular files as they are, directories with a trailing `/`, and anything
   * else (a symbolic link, a device) with a trailing `@` so that it is refused.
   */
  readonly members: readonly string[];
  /** Size and hex SHA-256 of a regular-file member (the caller streams it; it must not follow links). */
  digest(member: string): Promise<{ readonly size: number; readonly sha256: string }>;
}

export type BundleCheckName =
  | 'format'
  | 'members'
  | 'key-chain'
  | 'envelope-signature'
  | 'sealed-dossier'
  | 'content-key'
  | 'dossier-signature'
  | 'dossier-binding'
  | 'content'
  | 'attachments'
  | 'evidence-chain';

export interface BundleCheck {
  readonly check: BundleCheckName;
  readonly ok: boolean;
  /** What was verified, or the failing code. */
  readonly detail: string;
}

/** What a bundle that verifies proves: its content and the chain, or the chain only. */
export type BundleScope = 'content-and-chain' | 'chain-only';

export interface BundleReport {
  readonly ok: boolean;
  /** The code of the first failing check (§17.5), or null. */
  readonly code: ErrorCode | null;
  readonly kind: BundleKind | null;
  readonly proves: BundleScope | null;
  /** One sentence saying what this bundle can prove; a verifier prints it first. */
  readonly scope: string;
  readonly checks: readonly BundleCheck[];
  readonly envelopeId?: string;
  readonly sender?: string;
  readonly recipients?: readonly string[];
  readonly pinnedRoot?: { readonly network: string; readonly kid: string };
  readonly evidence?: {
    readonly ordered: readonly string[];
    readonly submission: string;
    readonly recipients: Readonly<Record<string, string>>;
  };
}

export interface VerifyBundleOptions {
  /** The key id of the root the verifier trusts; the bundle must pin it (TRUST_CHAIN_BROKEN). */
  readonly expectedRootKid?: string;
  /** Now, for the one time check of §8.6 (envelope created in the future). */
  readonly now?: number;
}

const SCOPES: Record<BundleKind, string> = {
  full: 'FULL BUNDLE: proves that the dossier and attachments it holds are those sealed in the envelope, and the signatures and evidences of that envelope.',
  sealed:
    'SEALED BUNDLE: proves the signatures and evidences of the envelope only; it holds no dossier, attachment or content key, so it does not show or prove what was said.',
};

/**
 * Verify a bundle offline (docs/protocol.md §17.5), against the root it pins.
 * Runs every check it can and reports each; the first failing check decides
 * `code`. Never throws for a bad bundle.
 */
export async function verifyBundle(
  bundleJson: Uint8Array,
  files: BundleFiles,
  options: VerifyBundleOptions = {},
): Promise<BundleReport> {
  const checks: BundleCheck[] = [];
  const codes: ErrorCode[] = [];
  const run = async (
    check: BundleCheckName,
    fn: () => string | Promise<string>,
  ): Promise<boolean> => {
    try {
      checks.push({ check, ok: true, detail: await fn() });
      return true;
    } catch (err) {
      // Only protocol failures are verdicts; anything else is a bug and must surface.
      if (!isProtocolError(err)) throw err;
      codes.push(err.code);
      checks.push({ check, ok: false, detail: err.code });
      return false;
    }
  };
  const finish = (extra: Partial<BundleReport> & { kind: BundleKind | null }): BundleReport => {
    const ok = codes.length === 0;
    return {
      ok,
      code: codes[0] ?? null,
      proves:
        ok && extra.kind !== null
          ? extra.kind === 'full'
            ? 'content-and-chain'
            : 'chain-only'
          : null,
      scope: extra.kind === null ? 'NOT A BUNDLE: nothing is proved.' : SCOPES[extra.kind],
      checks,
      ...extra,
    };
  };

  // 1. format
  let bundle: Bundle | undefined;
  await run('format', () => {
    bundle = decodeBundle(bundleJson);
    return `${BUNDLE_FILE} is a ${bundle.kind} rogatory-bundle v2`;
  });
  if (!bundle) return finish({ kind: null });
  const b = bundle;
  const env = b.envelope.body;
  const full = b.kind === 'full' ? b : undefined;
  const base = {
    kind: b.kind,
    envelopeId: env.id,
    sender: env.sender,
    recipients: env.recipients,
    pinnedRoot: { network: b.trust.pinned.network, kid: b.trust.pinned.root.kid },
  };

  // 2. members: exactly bundle.json, and in a full bundle attachments/ with one file per signed manifest
  await run('members', () => {
    const expected = new Set([BUNDLE_FILE]);
    if (full) {
      const count = full.dossier.body.attachments.length;
      if (full.attachments.length !== count)
        fail(
          'BUNDLE_LAYOUT_INVALID',
          `${full.attachments.length} attachment member(s) for ${count} signed manifest(s)`,
        );
      full.attachments.forEach((a, i) => {
        if (a.index !== i || !a.file.startsWith(`${BUNDLE_ATTACHMENT_DIR}/${i}-`))
          fail('BUNDLE_LAYOUT_INVALID', `attachment entry ${i} out of order or misnamed`);
        expected.add(a.file);
      });
      if (count > 0) expected.add(`${BUNDLE_ATTACHMENT_DIR}/`);
    }
    const seen = new Set<string>();
    for (const m of files.members) {
      if (seen.has(m) || !expected.has(m))
        fail('BUNDLE_LAYOUT_INVALID', 'the bundle holds a member it does not list');
      seen.add(m);
    }
    if (seen.size !== expected.size)
      fail('BUNDLE_LAYOUT_INVALID', 'a member the bundle lists is missing');
    return `${expected.size} member(s), none missing, none extra`;
  });

  // 3. key-chain: the pinned network's manifest first, then the others by network id
  let trust: TrustStore | undefined;
  await run('key-chain', () => {
    if (
      options.expectedRootKid !== undefined &&
      options.expectedRootKid !== b.trust.pinned.root.kid
    )
      fail('TRUST_CHAIN_BROKEN', 'the bundle pins another root');
    const networks = b.trust.manifests.map((m) => m.body.network);
    if (networks[0] !== b.trust.pinned.network)
      fail('BUNDLE_LAYOUT_INVALID', 'the first manifest is not that of the pinned network');
    for (let i = 2; i < networks.length; i++)
      if (!(networks[i - 1]! < networks[i]!))
        fail(
          'BUNDLE_LAYOUT_INVALID',
          'manifests after the first are not in ascending network order',
        );
    if (networks.slice(1).includes(networks[0]))
      fail('BUNDLE_LAYOUT_INVALID', 'two manifests of the pinned network');
    const store = new TrustStore({ pinned: [b.trust.pinned] });
    for (const m of b.trust.manifests) store.addManifest(m);
    trust = store;
    return `root ${b.trust.pinned.root.kid} of ${b.trust.pinned.network}; manifests ${networks.join(', ')}`;
  });
  if (!trust) return finish(base);
  const t = trust;

  // 4-5. the envelope, and the sealed object it names
  await run('envelope-signature', () => {
    const sender = verifyEnvelope(b.envelope, {
      trust: t,
      now: options.now ?? Date.now(),
      checkExpiry: false,
    });
    return `envelope ${env.id} signed by ${sender.address} (key ${sender.key.kid})`;
  });
  let sealedBytes: Uint8Array | undefined;
  await run('sealed-dossier', () => {
    const bytes = fromBase64url(b.sealed, 'sealed');
    if (bytes.length !== env.dossier.size || toHex(sha256(bytes)) !== env.dossier.id)
      fail('CHUNK_HASH_MISMATCH', 'sealed dossier is not the one the envelope names');
    const sealed = parseSealedDossier(bytes);
    if (sealed.envelopeId !== env.id)
      fail('ENVELOPE_MISMATCH', 'sealed dossier of another envelope');
    sealedBytes = bytes;
    return `sealed object ${env.dossier.id} is the one the envelope names`;
  });

  if (full) {
    const d = full.dossier.body;
    // 6. the content key opens the sealed object, matches its commitment, and yields exactly this signed dossier
    await run('content-key', () => {
      if (!sealedBytes) fail('CHUNK_HASH_MISMATCH', 'no sealed object to open');
      const plaintext = decryptSealedPayload(
        parseSealedDossier(sealedBytes),
        fromBase64url(full.contentKey, 'contentKey'),
      );
      if (!equalBytes(plaintext, canonicalBytes(full.dossier)))
        fail('ENVELOPE_MISMATCH', 'the sealed dossier holds another signed dossier');
      return 'the content key matches the commitment and decrypts the sealed object to exactly this signed dossier';
    });
    await run('dossier-signature', () => {
      if (d.sender !== env.sender) fail('ENVELOPE_MISMATCH', 'dossier signed by another sender');
      const key = t.resolveSigningKey(
        d.sender,
        full.dossier.signature.kid,
        d.createdAt,
        DOSSIER_PARTY_ROLES,
      );
      verifySignature(CONTEXTS.dossier, d, full.dossier.signature, publicKeyOf(key.key));
      return `dossier signed by ${d.sender} (key ${key.key.kid})`;
    });
    await run('dossier-binding', () => {
      if (d.envelopeId !== env.id) fail('ENVELOPE_MISMATCH', 'dossier signed for another envelope');
      const a = [...d.recipients].sort();
      const e = [...env.recipients].sort();
      if (a.length !== e.length || a.some((r, i) => r !== e[i]))
        fail('DOSSIER_READDRESSED', 'recipients differ');
      for (const m of d.attachments) parseAttachmentManifest(m);
      const refs = attachmentChunkRefs(d.attachments);
      if (
        refs.length !== env.chunks.length ||
        refs.some((r, i) => r.id !== env.chunks[i]!.id || r.size !== env.chunks[i]!.size)
      )
        fail('ENVELOPE_MISMATCH', 'attachment chunks differ');
      return `bound to envelope ${env.id}, recipients ${d.recipients.join(', ')}, ${env.chunks.length} chunk(s)`;
    });
    await run('content', () => {
      const issues = validateDossierContent(d.content, { attachmentCount: d.attachments.length });
      if (issues.length === 0)
        issues.push(...checkContentParties(d.content, d.sender, d.recipients));
      if (issues.length > 0) fail('CONTENT_INVALID', `${issues.length} issue(s)`);
      return d.content.kind === 'request'
        ? `valid ${d.content.requestType} request`
        : d.content.kind === 'answer'
          ? `valid ${d.content.answerType} answer`
          : `valid ${d.content.kind}`;
    });
    await run('attachments', async () => {
      for (const [index, manifest] of d.attachments.entries()) {
        const entry = full.attachments[index];
        if (entry?.index !== index)
          fail('BUNDLE_LAYOUT_INVALID', `attachment ${index} missing from the bundle`);
        let digest: { size: number; sha256: string };
        try {
          digest = await files.digest(entry.file);
        } catch (cause) {
          if (isProtocolError(cause)) throw cause;
          return fail('BUNDLE_LAYOUT_INVALID', `attachment ${index} cannot be read`, { cause });
        }
        if (digest.size !== manifest.size || digest.sha256 !== manifest.sha256)
          fail('ATTACHMENT_MISMATCH', `attachment ${index} differs from its signed manifest`);
      }
      return `${d.attachments.length} attachment(s) match the SHA-256 and size in the signed manifests`;
    });
  }

  // the evidences are about this envelope (its hash), in a consistent order
  let evidence: BundleReport['evidence'];
  await run('evidence-chain', () => {
    const chain = verifyEvidenceChain(b.envelope, b.evidences, t);
    evidence = {
      ordered: chain.ordered.map((e) => `${e.body.kind}:${e.body.issuer}`),
      submission: chain.submission,
      recipients: Object.fromEntries(chain.recipients),
    };
    return `${chain.ordered.length} evidence(s): ${evidence.ordered.join(', ')}`;
  });
  return finish({ ...base, ...(evidence ? { evidence } : {}) });
}
