/**
 * Bundle vectors (docs/protocol.md §17): a full and a sealed bundle of one
 * dossier, and one tampering each. Imported by vectors-build.ts; randomness
 * is deterministic there.
 */
import {
  CONTEXTS,
  bundleAttachmentFile,
  canonicalBytes,
  encodeBundle,
  envelopeHash,
  generateSigningKeyPair,
  issueEvidence,
  sign,
  toBase64url,
  utf8,
  sha256,
  type AttachmentManifest,
  type Bundle,
  type ErrorCode,
  type Evidence,
  type FullBundle,
  type Manifest,
} from '../src/index.js';
import { sealTestDossier, testSeed, type TestWorld } from '../src/testing/index.js';

// A type alias, not an interface: vector inputs are records.
export type BundleVectorInput = {
  /** base64url of the bytes of bundle.json. */
  bundleJson: string;
  /** Every entry of the bundle directory, as `BundleFiles.members` lists them (§17.3). */
  members: string[];
  /** Size and SHA-256 of each regular-file member other than bundle.json. */
  files: Record<string, { size: number; sha256: string }>;
  /** The root the verifier trusts, when the scenario sets one. */
  expectedRootKid: string | null;
};

interface Scenario {
  name: string;
  description: string;
  code: ErrorCode | null;
  input: BundleVectorInput;
  result: Record<string, unknown> | null;
}

/** The bundle scenarios; `now` is the vectors' time. */
export function bundleScenarios(
  world: TestWorld,
  attachments: readonly AttachmentManifest[],
  now: number,
): Scenario[] {
  const sn = world.authority('sn-moj@wacap');
  const kz = world.authority('kz-gpo@casc');
  const fixed = (label: string) => ({
    contentKey: sha256(utf8(`${label}/key`)),
    nonce: sha256(utf8(`${label}/nonce`)).subarray(0, 24),
  });
  const sealed = sealTestDossier(world, {
    from: sn.address,
    to: [kz.address],
    attachments,
    envelopeId: 'vectorBundleDossier00A',
    createdAt: now - 60_000,
    testRandomness: fixed('bundle'),
  });
  const other = sealTestDossier(world, {
    from: sn.address,
    to: [kz.address],
    attachments,
    envelopeId: 'vectorBundleOther0000A',
    createdAt: now - 50_000,
    testRandomness: fixed('bundle-other'),
  });
  const envelope = sealed.envelope;
  const t = envelope.body.createdAt;
  const relay = (n: string) => world.networks[n]!.relay;
  const chainOf = (env: typeof envelope): Evidence[] => [
    issueEvidence({
      kind: 'submission-acceptance',
      envelope: env,
      issuer: relay('wacap').id,
      key: relay('wacap').key,
      issuedAt: t + 100,
    }),
    issueEvidence({
      kind: 'relay-acceptance',
      envelope: env,
      issuer: relay('global').id,
      key: relay('global').key,
      issuedAt: t + 200,
      recipient: kz.address,
    }),
    issueEvidence({
      kind: 'relay-acceptance',
      envelope: env,
      issuer: relay('casc').id,
      key: relay('casc').key,
      issuedAt: t + 300,
      recipient: kz.address,
    }),
    issueEvidence({
      kind: 'delivery',
      envelope: env,
      issuer: kz.address,
      key: kz.identity,
      issuedAt: t + 400,
      recipient: kz.address,
    }),
    issueEvidence({
      kind: 'retrieval',
      envelope: env,
      issuer: kz.address,
      key: kz.identity,
      issuedAt: t + 500,
      recipient: kz.address,
    }),
  ];
  const evidences = chainOf(envelope);
  const casc = world.networks['casc']!;
  const peers = casc.manifest.body.peers.map((p) => p.network).sort();
  const manifests: Manifest[] = [casc.manifest, ...peers.map((n) => world.networks[n]!.manifest)];

  const attachmentEntries = attachments.map((a, index) => ({
    index,
    file: bundleAttachmentFile(index, a.name),
  }));
  const files = Object.fromEntries(
    attachmentEntries.map((e) => [
      e.file,
      { size: attachments[e.index]!.size, sha256: attachments[e.index]!.sha256 },
    ]),
  );
  const fullMembers = ['bundle.json', 'attachments/', ...attachmentEntries.map((e) => e.file)];

  const common = {
    format: 'rogatory-bundle' as const,
    version: 2 as const,
    exportedAt: t + 600,
    exportedBy: kz.address,
    trust: { pinned: { network: 'casc', root: casc.rootRef }, manifests },
    envelope,
    sealed: toBase64url(sealed.sealed),
    evidences,
  };
  const full: FullBundle = {
    ...common,
    kind: 'full',
    contentKey: toBase64url(fixed('bundle').contentKey),
    dossier: sealed.dossier,
    attachments: attachmentEntries,
  };
  const sealedOnly: Bundle = { ...common, kind: 'sealed' };

  const json = (b: unknown): string => toBase64url(encodeBundleUnchecked(b));
  const fullInput = (
    b: unknown = full,
    extra: Partial<BundleVectorInput> = {},
  ): BundleVectorInput => ({
    bundleJson: json(b),
    members: fullMembers,
    files,
    expectedRootKid: null,
    ...extra,
  });
  const sealedInput = (
    b: unknown = sealedOnly,
    extra: Partial<BundleVectorInput> = {},
  ): BundleVectorInput => ({
    bundleJson: json(b),
    members: ['bundle.json'],
    files: {},
    expectedRootKid: null,
    ...extra,
  });
  const ordered = evidences.map((e) => `${e.body.kind}:${e.body.issuer}`);
  const success = (kind: 'full' | 'sealed') => ({
    kind,
    proves: kind === 'full' ? 'content-and-chain' : 'chain-only',
    envelopeId: envelope.body.id,
    envelopeSha256: envelopeHash(envelope),
    evidence: ordered,
  });

  // The issue's attack: the sender re-signs other content under the same envelope id and recipients.
  const content = sealed.dossier.body.content;
  if (content.kind !== 'request') throw new Error('the bundle vectors use a request');
  const resigned = sign(
    CONTEXTS.dossier,
    {
      ...sealed.dossier.body,
      content: { ...content, header: { ...content.header, caseReference: 'SN-PR-2026-9999' } },
    },
    sn.identity,
  );
  const { contentKey: _omitted, ...withoutKey } = full;
  const foreignEvidence = issueEvidence({
    kind: 'delivery',
    envelope: other.envelope,
    issuer: kz.address,
    key: kz.identity,
    issuedAt: t + 400,
    recipient: kz.address,
  });
  const impostor = generateSigningKeyPair(testSeed('vectors/bundle-impostor-root'));
  const forge = (m: Manifest): Manifest =>
    sign(
      CONTEXTS.manifest,
      { ...m.body, validUntil: m.body.validUntil + 1 },
      { ...impostor, kid: m.signature.kid },
    );
  const nonCanonical = utf8(
    new TextDecoder().decode(encodeBundle(full)).replace('{"attachments":', '{ "attachments":'),
  );

  return [
    {
      name: 'bundle-full-valid',
      description:
        'A full bundle exported by the recipient: dossier, two attachments, content key, five evidences, casc pinned.',
      code: null,
      input: fullInput(),
      result: success('full'),
    },
    {
      name: 'bundle-sealed-valid',
      description:
        'The sealed bundle of the same dossier: no plaintext, no key; proves signatures and evidences only.',
      code: null,
      input: sealedInput(),
      result: success('sealed'),
    },
    {
      name: 'bundle-content-resigned',
      description:
        'Dossier content replaced by other content re-signed with the sender key: the content key opens the sealed object to another dossier.',
      code: 'ENVELOPE_MISMATCH',
      input: fullInput({ ...full, dossier: resigned }),
      result: null,
    },
    {
      name: 'bundle-full-without-content-key',
      description:
        'A full bundle whose contentKey was left out: refused by the schema, never reported as verified.',
      code: 'SCHEMA_INVALID',
      input: fullInput(withoutKey),
      result: null,
    },
    {
      name: 'bundle-sealed-with-dossier',
      description: 'A sealed bundle that carries a dossier: refused by the schema.',
      code: 'SCHEMA_INVALID',
      input: sealedInput({ ...sealedOnly, dossier: sealed.dossier }),
      result: null,
    },
    {
      name: 'bundle-wrong-content-key',
      description: 'The content key of another dossier: it does not match the key commitment.',
      code: 'DECRYPT_FAILED',
      input: fullInput({ ...full, contentKey: toBase64url(fixed('bundle-other').contentKey) }),
      result: null,
    },
    {
      name: 'bundle-sealed-object-replaced',
      description: 'The sealed object of another envelope in place of this one.',
      code: 'CHUNK_HASH_MISMATCH',
      input: fullInput({ ...full, sealed: toBase64url(other.sealed) }),
      result: null,
    },
    {
      name: 'bundle-evidence-other-envelope',
      description: 'A valid delivery evidence of another envelope added to the chain.',
      code: 'EVIDENCE_MISMATCH',
      input: fullInput({ ...full, evidences: [...evidences, foreignEvidence] }),
      result: null,
    },
    {
      name: 'bundle-manifests-reordered',
      description: 'The peer manifests in descending network order.',
      code: 'BUNDLE_LAYOUT_INVALID',
      input: fullInput({
        ...full,
        trust: { ...full.trust, manifests: [manifests[0], ...manifests.slice(1).reverse()] },
      }),
      result: null,
    },
    {
      name: 'bundle-manifest-swapped',
      description: 'The pinned network manifest replaced by that of another network.',
      code: 'BUNDLE_LAYOUT_INVALID',
      input: fullInput({
        ...full,
        trust: {
          ...full.trust,
          manifests: [world.networks['wacap']!.manifest, ...manifests.slice(1)],
        },
      }),
      result: null,
    },
    {
      name: 'bundle-manifest-forged',
      description:
        'A peer manifest re-signed by another key claiming the kid of its anchored root.',
      code: 'SIGNATURE_INVALID',
      input: fullInput({
        ...full,
        trust: {
          ...full.trust,
          manifests: manifests.map((m, i) => (i === manifests.length - 1 ? forge(m) : m)),
        },
      }),
      result: null,
    },
    {
      name: 'bundle-other-root',
      description: 'The verifier trusts another root than the one the bundle pins.',
      code: 'TRUST_CHAIN_BROKEN',
      input: fullInput(full, { expectedRootKid: world.networks['wacap']!.rootRef.kid }),
      result: null,
    },
    {
      name: 'bundle-attachment-replaced',
      description: 'Attachment 1 replaced by other bytes.',
      code: 'ATTACHMENT_MISMATCH',
      input: fullInput(full, {
        files: {
          ...files,
          [attachmentEntries[1]!.file]: { size: attachments[1]!.size, sha256: '00'.repeat(32) },
        },
      }),
      result: null,
    },
    {
      name: 'bundle-extra-member',
      description: 'A file the bundle does not list.',
      code: 'BUNDLE_LAYOUT_INVALID',
      input: fullInput(full, { members: [...fullMembers, 'attachments/2-extra.pdf'] }),
      result: null,
    },
    {
      name: 'bundle-missing-member',
      description: 'A listed attachment file is absent.',
      code: 'BUNDLE_LAYOUT_INVALID',
      input: fullInput(full, {
        members: fullMembers.filter((m) => m !== attachmentEntries[0]!.file),
      }),
      result: null,
    },
    {
      name: 'bundle-symlink-member',
      description: 'An attachment member that is a symbolic link (listed with a trailing @).',
      code: 'BUNDLE_LAYOUT_INVALID',
      input: fullInput(full, {
        members: fullMembers.map((m) => (m === attachmentEntries[0]!.file ? `${m}@` : m)),
      }),
      result: null,
    },
    {
      name: 'bundle-dot-dot-name',
      description: 'An attachment file name that climbs out of the bundle.',
      code: 'SCHEMA_INVALID',
      input: fullInput({
        ...full,
        attachments: [{ index: 0, file: 'attachments/../0-x' }, attachmentEntries[1]],
      }),
      result: null,
    },
    {
      name: 'bundle-non-canonical',
      description: 'bundle.json with a space: not canonical.',
      code: 'ENCODING_INVALID',
      input: { ...fullInput(), bundleJson: toBase64url(nonCanonical) },
      result: null,
    },
  ];
}

/** Canonical bytes and a line feed without the schema check: the negative vectors need invalid bundles. */
function encodeBundleUnchecked(value: unknown): Uint8Array {
  const bytes = canonicalBytes(value);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = 0x0a;
  return out;
}
