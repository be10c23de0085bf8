import { createHash } from 'node:crypto';
import { mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  BUNDLE_ATTACHMENT_DIR,
  BUNDLE_FILE,
  BUNDLE_LIMITS,
  bundleAttachmentFile,
  encodeBundle,
  fail,
  isProtocolError,
  fromBase64url,
  parseSealedDossier,
  ready,
  sodium,
  toBase64url,
  verifyBundle as verifyProtocolBundle,
  type BundleKind,
  type BundleReport,
  type ErrorCode,
  type VerifyBundleOptions,
} from '@rogatory/protocol';
import { audit, type NodeContext } from '../context.js';
import { nodeFail } from '../errors.js';
import { O_NOFOLLOW, READ_ANY } from '../files/file-root.js';
import { writeFileAtomic } from '../files/atomic-write.js';
import type { Actor } from '../administration/users.js';
import { decryptAll, recordOpening } from '../reading/opening.js';
import { readable } from '../reading/summaries.js';

/**
 * Write a bundle of a sent or received dossier into `destDir` (must be absent
 * or empty); docs/protocol.md §17. A full bundle holds the decrypted dossier,
 * its attachments and the content key that proves they are what the envelope
 * sealed, and counts as an opening. A sealed bundle (`sealed: true`) holds no
 * plaintext and no key: it proves the chain of signatures and evidences only.
 */
export async function exportBundle(
  ctx: NodeContext,
  actor: Actor,
  id: string,
  destDir: string,
  options: { readonly sealed?: boolean } = {},
): Promise<{ dir: string; kind: BundleKind; files: string[] }> {
  const { user, row } = readable(ctx, actor, id, 'dossier:export');
  if (row.envelope_id === null || row.dossier_enc === null || row.sealed_id === null)
    nodeFail('INVALID_STATE', `dossier ${id} has not been sealed or verified: nothing to export`);
  const dir = resolve(destDir);
  const existing = await readdir(dir).catch((err: unknown) => {
    if ((err as { code?: unknown }).code === 'ENOENT') return [] as string[];
    return nodeFail('INPUT_INVALID', 'the export path is not a readable directory');
  });
  if (existing.length > 0) nodeFail('INPUT_INVALID', 'the export directory is not empty');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const envelope = ctx.store.envelope(row.envelope_id)!;
  const sealed = await ctx.blobs.getBytes(row.sealed_id);
  const network = ctx.config.network;
  const others = ctx.trust
    .networks()
    .filter((n) => n !== network)
    .sort();
  const common = {
    format: 'rogatory-bundle' as const,
    version: 2 as const,
    exportedAt: ctx.clock(),
    exportedBy: ctx.address,
    trust: {
      pinned: { network, root: ctx.config.pinnedRoot },
      manifests: [network, ...others].map((n) => ctx.trust.manifest(n)!),
    },
    envelope,
    sealed: toBase64url(sealed),
    evidences: ctx.store.evidences(row.envelope_id),
  };
  if (options.sealed === true) {
    await writeFileAtomic(join(dir, BUNDLE_FILE), encodeBundle({ ...common, kind: 'sealed' }), {
      mode: 0o600,
    });
    audit(ctx, user.id, 'dossier.export-sealed', row.id);
    return { dir, kind: 'sealed', files: [BUNDLE_FILE] };
  }
  const contentKey = unwrapContentKey(ctx, sealed);
  if (contentKey === undefined)
    nodeFail(
      'INVALID_STATE',
      `no content key of dossier ${id} opens with this node's keys: only a sealed bundle (--sealed) can be exported`,
    );
  try {
    const dossier = ctx.store.signedDossier(row);
    const saved = await decryptAll(
      ctx,
      dossier.body.attachments,
      join(dir, BUNDLE_ATTACHMENT_DIR),
      {
        names: (index, name) =>
          bundleAttachmentFile(index, name).slice(BUNDLE_ATTACHMENT_DIR.length + 1),
      },
    );
    const attachments = saved.map((s) => ({
      index: s.index,
      file: `${BUNDLE_ATTACHMENT_DIR}/${s.name}`,
    }));
    await writeFileAtomic(
      join(dir, BUNDLE_FILE),
      encodeBundle({
        ...common,
        kind: 'full',
        contentKey: toBase64url(contentKey),
        dossier,
        attachments,
      }),
      { mode: 0o600 },
    );
    recordOpening(ctx, user, row, 'dossier.export');
    return { dir, kind: 'full', files: [BUNDLE_FILE, ...attachments.map((a) => a.file)] };
  } finally {
    sodium().memzero(contentKey);
  }
}

/** The content key of a sealed dossier, from the wrap for one of this node's keys. */
function unwrapContentKey(ctx: NodeContext, sealedBytes: Uint8Array): Uint8Array | undefined {
  const sealed = parseSealedDossier(sealedBytes);
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

/**
 * Verify a bundle directory offline, with no relay and no node
 * (`verifyBundle` of the protocol does every check; this reads the
 * directory without following links). Never throws for a bad bundle.
 */
export async function verifyBundle(
  path: string,
  options: VerifyBundleOptions = {},
): Promise<BundleReport> {
  await ready();
  const dir = resolve(path);
  const notABundle = (code: ErrorCode): BundleReport => ({
    ok: false,
    code,
    kind: null,
    proves: null,
    scope: 'NOT A BUNDLE: nothing is proved.',
    checks: [{ check: 'format', ok: false, detail: code }],
  });
  let members: string[];
  let json: Uint8Array;
  try {
    // Listed first: bundle.json is read only if it is a regular file, never through a link.
    members = await listMembers(dir);
    if (!members.includes(BUNDLE_FILE)) return notABundle('BUNDLE_LAYOUT_INVALID');
    json = await readMember(dir, BUNDLE_FILE, BUNDLE_LIMITS.maxBundleJsonBytes + 1);
  } catch (err) {
    if (isProtocolError(err)) return notABundle(err.code);
    const code = (err as { code?: unknown }).code;
    return notABundle(
      code === 'ENOENT' || code === 'ENOTDIR' ? 'BUNDLE_LAYOUT_INVALID' : 'ENCODING_INVALID',
    );
  }
  return verifyProtocolBundle(json, { members, digest: (m) => hashMember(dir, m) }, options);
}

/**
 * Open a member without following a link in its last component and without
 * blocking on a FIFO; anything but a regular file is a layout failure.
 */
async function openMember(dir: string, member: string): Promise<FileHandle> {
  const handle = await open(join(dir, ...member.split('/')), READ_ANY | O_NOFOLLOW).catch(
    (cause: unknown) => {
      const code = (cause as { code?: unknown }).code;
      if (code === 'ELOOP' || code === 'ENOENT' || code === 'ENXIO')
        fail('BUNDLE_LAYOUT_INVALID', 'a bundle member is missing or not a regular file', {
          cause,
        });
      throw cause;
    },
  );
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    fail('BUNDLE_LAYOUT_INVALID', 'a bundle member is not a regular file');
  }
  return handle;
}

async function readMember(dir: string, member: string, limit: number): Promise<Uint8Array> {
  const handle = await openMember(dir, member);
  try {
    if ((await handle.stat()).size > limit)
      fail('LIMIT_EXCEEDED', `${member} is larger than the bundle limit`);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** Every entry under `dir`, relative and `/`-separated; directories end in `/`, other non-files in `@`. */
async function listMembers(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = `${prefix}${entry.name}`;
    if (entry.isDirectory()) out.push(`${rel}/`, ...(await listMembers(dir, `${rel}/`)));
    else out.push(entry.isFile() ? rel : `${rel}@`);
  }
  return out;
}

/** Size and SHA-256 of a member, opened without following a link in its last component. */
async function hashMember(dir: string, member: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  const handle = await openMember(dir, member);
  try {
    for await (const piece of handle.createReadStream({
      autoClose: false,
    }) as AsyncIterable<Buffer>) {
      hash.update(piece);
      size += piece.length;
    }
  } finally {
    await handle.close();
  }
  return { size, sha256: hash.digest('hex') };
}
