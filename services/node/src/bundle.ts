import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Type, type Static } from 'typebox';
import {
  AddressSchema,
  Base64url,
  CONTEXTS,
  EnvelopeSchema,
  EvidenceSchema,
  KeyRefSchema,
  ManifestSchema,
  NetworkIdSchema,
  SealedDossierSchema,
  SignedDossierSchema,
  Timestamp,
  attachmentChunkRefs,
  canonicalBytes,
  checkContentParties,
  decodeCanonical,
  equalBytes,
  fail,
  fromBase64url,
  isProtocolError,
  payloadAssociatedData,
  publicKeyOf,
  ready,
  sha256,
  sodium,
  toBase64url,
  toHex,
  validateDossierContent,
  validator,
  verifyEnvelope,
  verifyEvidenceChain,
  verifySignature,
  type TrustStore,
} from '@rogatory/protocol';
import type { NodeContext } from './context.js';
import { isNodeError, nodeFail } from './errors.js';
import { safeFileName, writeFileAtomic } from './fs-util.js';
import { buildTrust } from './trust-material.js';
import type { Actor } from './users.js';
import { decryptAll, recordOpening, readable } from './views.js';

export const BUNDLE_FILE = 'bundle.json';
const ATTACHMENT_DIR = 'attachments';

/**
 * A self-contained, offline-verifiable record of one dossier: the signed
 * envelope and sealed object as they travelled, the signed dossier
 * plaintext with its attachment manifests, the content key of the sealed
 * object (it opens only this dossier, whose plaintext the bundle holds
 * anyway, and lets a verifier check that the sealed object really contains
 * it), every evidence, and the key chain (pinned root and manifests).
 * The decrypted attachments sit next to it under `attachments/`.
 */
export const BundleSchema = Type.Object(
  {
    format: Type.Literal('rogatory-bundle'),
    version: Type.Literal(1),
    exportedAt: Timestamp,
    exportedBy: AddressSchema,
    trust: Type.Object(
      {
        pinned: Type.Object(
          { network: NetworkIdSchema, root: KeyRefSchema },
          { additionalProperties: false },
        ),
        manifests: Type.Array(ManifestSchema, { minItems: 1, maxItems: 64 }),
      },
      { additionalProperties: false },
    ),
    envelope: EnvelopeSchema,
    sealed: Base64url(),
    contentKey: Type.Optional(Base64url(32)),
    dossier: SignedDossierSchema,
    evidences: Type.Array(EvidenceSchema, { maxItems: 10_000 }),
    attachments: Type.Array(
      Type.Object(
        {
          index: Type.Integer({ minimum: 0, maximum: 999 }),
          file: Type.String({ pattern: `^${ATTACHMENT_DIR}/[A-Za-z0-9._ -]{1,140}$` }),
        },
        { additionalProperties: false },
      ),
      { maxItems: 1000 },
    ),
  },
  { additionalProperties: false },
);
export type Bundle = Static<typeof BundleSchema>;
const bundleShape = validator(BundleSchema, 'bundle');

/** Write a bundle of a sent or received dossier into `destDir` (must be absent or empty). Counts as an opening. */
export async function exportBundle(
  ctx: NodeContext,
  actor: Actor,
  id: string,
  destDir: string,
): Promise<{ dir: string; files: string[] }> {
  const { user, row } = readable(ctx, actor, id, 'dossier:export');
  if (row.envelope_id === null || row.dossier_enc === null || row.sealed_id === null)
    nodeFail('INVALID_STATE', `dossier ${id} has not been sealed or verified: nothing to export`);
  const dir = resolve(destDir);
  const existing = await readdir(dir).catch(() => [] as string[]);
  if (existing.length > 0) nodeFail('INPUT_INVALID', 'the export directory is not empty');
  const envelope = ctx.store.envelope(row.envelope_id)!;
  const dossier = ctx.store.signedDossier(row);
  const sealed = await ctx.blobs.getBytes(row.sealed_id);
  const contentKey = unwrapContentKey(ctx, sealed);
  const saved = await decryptAll(ctx, dossier.body.attachments, join(dir, ATTACHMENT_DIR), {
    names: (index, name) => `${index}-${safeFileName(name, 'attachment')}`,
  });
  const network = ctx.config.network;
  const manifests = [network, ...ctx.trust.networks().filter((n) => n !== network)].map((n) =>
    ctx.trust.manifest(n)!,
  );
  const bundle: Bundle = {
    format: 'rogatory-bundle',
    version: 1,
    exportedAt: ctx.clock(),
    exportedBy: ctx.address,
    trust: { pinned: { network, root: ctx.config.pinnedRoot }, manifests },
    envelope,
    sealed: toBase64url(sealed),
    ...(contentKey === undefined ? {} : { contentKey: toBase64url(contentKey) }),
    dossier,
    evidences: ctx.store.evidences(row.envelope_id),
    attachments: saved.map((s) => ({ index: s.index, file: `${ATTACHMENT_DIR}/${s.name}` })),
  };
  await writeFileAtomic(
    join(dir, BUNDLE_FILE),
    `${JSON.stringify(bundleShape.parse(bundle), null, 2)}\n`,
    { mode: 0o600 },
  );
  if (contentKey) sodium().memzero(contentKey);
  recordOpening(ctx, user, row, 'dossier.export');
  return { dir, files: [BUNDLE_FILE, ...saved.map((s) => `${ATTACHMENT_DIR}/${s.name}`)] };
}

/** The content key of a sealed dossier, from the wrap for one of this node's keys. */
function unwrapContentKey(ctx: NodeContext, sealedBytes: Uint8Array): Uint8Array | undefined {
  const sealed = validator(SealedDossierSchema, 'sealed dossier').parse(
    decodeCanonical(sealedBytes, 8 * 1024 * 1024),
  );
  for (const wrap of sealed.wraps) {
    if (wrap.to !== ctx.address) continue;
    const pair = ctx.keys.encryption.find((k) => k.kid === wrap.kid);
    if (!pair) continue;
    try {
      return sodium().crypto_box_seal_open(fromBase64url(wrap.key), pair.publicKey, pair.secretKey);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export interface BundleCheck {
  readonly check: string;
  readonly ok: boolean;
  /** What was verified, or the failing code. */
  readonly detail: string;
}

export interface BundleReport {
  readonly ok: boolean;
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

/**
 * Verify a bundle offline, with no relay and no node: every check runs
 * against the pinned root in the bundle (compare `pinnedRoot.kid` with the
 * root you trust, or pass `expectedRootKid`). Never throws for a bad
 * bundle: the report says which check failed and with which code.
 */
export async function verifyBundle(
  path: string,
  options: { expectedRootKid?: string; now?: number } = {},
): Promise<BundleReport> {
  await ready();
  const dir = resolve(path);
  const checks: BundleCheck[] = [];
  const run = async (check: string, fn: () => string | Promise<string>): Promise<boolean> => {
    try {
      checks.push({ check, ok: true, detail: await fn() });
      return true;
    } catch (err) {
      checks.push({ check, ok: false, detail: failureCode(err) });
      return false;
    }
  };

  let bundle: Bundle | undefined;
  await run('format', async () => {
    const text = await readFile(join(dir, BUNDLE_FILE), 'utf8');
    bundle = bundleShape.parse(JSON.parse(text));
    return `${BUNDLE_FILE} is a rogatory-bundle v1`;
  });
  if (!bundle) return { ok: false, checks };
  const b = bundle;
  const report: { -readonly [K in keyof BundleReport]: BundleReport[K] } = {
    ok: false,
    checks,
    envelopeId: b.envelope.body.id,
    sender: b.envelope.body.sender,
    recipients: b.envelope.body.recipients,
    pinnedRoot: { network: b.trust.pinned.network, kid: b.trust.pinned.root.kid },
  };

  let trust: TrustStore | undefined;
  await run('key-chain', () => {
    if (
      options.expectedRootKid !== undefined &&
      options.expectedRootKid !== b.trust.pinned.root.kid
    )
      fail('TRUST_CHAIN_BROKEN', 'the bundle pins another root');
    trust = buildTrust(b.trust.pinned, b.trust.manifests);
    return `root ${b.trust.pinned.root.kid} of ${b.trust.pinned.network}; manifests ${trust.networks().join(', ')}`;
  });
  if (!trust) return { ...report, ok: false };
  const t = trust;
  const env = b.envelope.body;
  const d = b.dossier.body;

  await run('envelope-signature', () => {
    const sender = verifyEnvelope(b.envelope, {
      trust: t,
      now: options.now ?? Date.now(),
      checkExpiry: false,
    });
    return `envelope ${env.id} signed by ${sender.address} (key ${sender.key.kid})`;
  });
  await run('sealed-dossier', () => {
    const bytes = fromBase64url(b.sealed, 'sealed');
    if (bytes.length !== env.dossier.size || toHex(sha256(bytes)) !== env.dossier.id)
      fail('CHUNK_HASH_MISMATCH', 'sealed dossier is not the one the envelope names');
    const sealed = validator(SealedDossierSchema, 'sealed dossier').parse(
      decodeCanonical(bytes, 8 * 1024 * 1024),
    );
    if (sealed.envelopeId !== env.id)
      fail('ENVELOPE_MISMATCH', 'sealed dossier of another envelope');
    if (b.contentKey === undefined)
      return `sealed object ${env.dossier.id} named by the envelope (content not re-decrypted: no content key)`;
    let plaintext: Uint8Array;
    try {
      plaintext = sodium().crypto_aead_xchacha20poly1305_ietf_decrypt(
        null,
        fromBase64url(sealed.ciphertext),
        payloadAssociatedData(sealed.envelopeId, sealed.wraps),
        fromBase64url(sealed.nonce),
        fromBase64url(b.contentKey),
      );
    } catch (cause) {
      return fail('DECRYPT_FAILED', 'sealed dossier does not decrypt with the content key', {
        cause,
      });
    }
    if (!equalBytes(plaintext, canonicalBytes(b.dossier)))
      fail('ENVELOPE_MISMATCH', 'the sealed dossier holds another signed dossier');
    return `sealed object ${env.dossier.id} named by the envelope decrypts to exactly this signed dossier`;
  });
  await run('dossier-signature', () => {
    if (d.sender !== env.sender) fail('ENVELOPE_MISMATCH', 'dossier signed by another sender');
    const key = t.resolveSigningKey(d.sender, b.dossier.signature.kid, d.createdAt, ['authority']);
    verifySignature(CONTEXTS.dossier, d, b.dossier.signature, publicKeyOf(key.key));
    return `dossier signed by ${d.sender} (key ${key.key.kid})`;
  });
  await run('dossier-binding', () => {
    if (d.envelopeId !== env.id) fail('ENVELOPE_MISMATCH', 'dossier signed for another envelope');
    const a = [...d.recipients].sort();
    const e = [...env.recipients].sort();
    if (a.length !== e.length || a.some((r, i) => r !== e[i]))
      fail('DOSSIER_READDRESSED', 'recipients differ');
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
    if (issues.length === 0) issues.push(...checkContentParties(d.content, d.sender, d.recipients));
    if (issues.length > 0) fail('CONTENT_INVALID', `${issues.length} issue(s)`);
    return d.content.kind === 'request'
      ? `valid ${d.content.requestType} request`
      : `valid ${d.content.answerType} answer`;
  });
  await run('attachments', async () => {
    for (const [index, manifest] of d.attachments.entries()) {
      const entry = b.attachments.find((a) => a.index === index);
      if (!entry) fail('ATTACHMENT_MISMATCH', `attachment ${index} missing from the bundle`);
      const file = resolve(dir, entry.file);
      if (!file.startsWith(dir + sep)) fail('SCHEMA_INVALID', 'attachment path outside the bundle');
      const { size, digest } = await hashFile(file);
      if (size !== manifest.size || digest !== manifest.sha256)
        fail('ATTACHMENT_MISMATCH', `attachment ${index} differs from its signed manifest`);
    }
    return `${d.attachments.length} attachment(s) match the SHA-256 and size in the signed manifests`;
  });
  await run('evidence-chain', () => {
    const chain = verifyEvidenceChain(b.envelope, b.evidences, t);
    report.evidence = {
      ordered: chain.ordered.map((e) => `${e.body.kind}:${e.body.issuer}`),
      submission: chain.submission,
      recipients: Object.fromEntries(chain.recipients),
    };
    return `${chain.ordered.length} evidence(s): ${report.evidence.ordered.join(', ')}`;
  });
  return { ...report, ok: checks.every((c) => c.ok) };
}

async function hashFile(path: string): Promise<{ size: number; digest: string }> {
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const piece of createReadStream(path) as AsyncIterable<Buffer>) {
      hash.update(piece);
      size += piece.length;
    }
  } catch (cause) {
    return fail('ATTACHMENT_MISMATCH', 'attachment file unreadable', { cause });
  }
  return { size, digest: hash.digest('hex') };
}

function failureCode(err: unknown): string {
  if (isProtocolError(err)) return err.code;
  if (isNodeError(err)) return err.detail ?? err.code;
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    const code = (err as { code: string }).code;
    return code === 'ENOENT' ? 'FILE_MISSING' : code;
  }
  return err instanceof SyntaxError ? 'ENCODING_INVALID' : 'INTERNAL';
}
