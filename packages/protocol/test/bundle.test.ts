import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { Compile } from 'typebox/compile';
import {
  BUNDLE_FILE,
  FullBundleSchema,
  bundleAttachmentFile,
  canonicalBytes,
  decodeBundle,
  decodeCanonical,
  encodeBundle,
  openDossier,
  ready,
  sha256,
  signEnvelope,
  toBase64url,
  toHex,
  utf8,
  verifyBundle,
  type BundleFiles,
  type AttachmentManifest,
  type Envelope,
  type FullBundle,
} from '../src/index.js';
import { contentKeyCommitment } from '../src/dossier.js';
import {
  buildTestWorld,
  encryptTestAttachment,
  sealTestDossier,
  type TestWorld,
} from '../src/testing/index.js';
import { codeOf } from './support/code-of.js';

const NOW = Date.UTC(2026, 10, 1);
let world: TestWorld;
let attachments: AttachmentManifest[];

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: NOW });
  attachments = [
    (await encryptTestAttachment(utf8('warrant'), { name: 'warrant.pdf' })).manifest,
    (
      await encryptTestAttachment(new Uint8Array(100), {
        name: 'records .csv',
        mediaType: 'text/csv',
        chunkSize: 32,
      })
    ).manifest,
  ];
});

function fullBundle(): FullBundle {
  const fixed = {
    contentKey: sha256(utf8('bundle-test/key')),
    nonce: sha256(utf8('bundle-test/nonce')).subarray(0, 24),
  };
  const r = sealTestDossier(world, {
    from: 'sn-moj@wacap',
    to: ['kz-gpo@casc'],
    attachments,
    testRandomness: fixed,
  });
  const wacap = world.networks['wacap']!;
  return {
    format: 'rogatory-bundle',
    version: 2,
    kind: 'full',
    exportedAt: NOW,
    exportedBy: 'sn-moj@wacap',
    trust: {
      pinned: { network: 'wacap', root: wacap.rootRef },
      manifests: [
        wacap.manifest,
        ...wacap.manifest.body.peers
          .map((p) => p.network)
          .sort()
          .map((n) => world.networks[n]!.manifest),
      ],
    },
    envelope: r.envelope,
    sealed: toBase64url(r.sealed),
    contentKey: toBase64url(fixed.contentKey),
    dossier: r.dossier,
    attachments: attachments.map((a, index) => ({
      index,
      file: bundleAttachmentFile(index, a.name),
    })),
    evidences: [],
  };
}

/** The directory of a full bundle with its attachments intact. */
function filesOf(bundle: FullBundle): BundleFiles {
  const byFile = new Map(bundle.attachments.map((e) => [e.file, attachments[e.index]!]));
  return {
    members: [BUNDLE_FILE, 'attachments/', ...byFile.keys()],
    digest: (m) => {
      const a = byFile.get(m);
      return a
        ? Promise.resolve({ size: a.size, sha256: a.sha256 })
        : Promise.reject(new Error('absent'));
    },
  };
}
const onlyJson: BundleFiles = {
  members: [BUNDLE_FILE],
  digest: () => Promise.reject(new Error('absent')),
};

describe('key commitment of sealed dossiers', () => {
  it('a reader refuses a sealed object whose commitment does not match the wrapped content key', () => {
    const r = sealTestDossier(world, { from: 'sn-moj@wacap', to: ['kz-gpo@casc'], attachments });
    const sealed = decodeCanonical(r.sealed) as Record<string, unknown>;
    const forged = canonicalBytes({
      ...sealed,
      keyCommitment: toBase64url(contentKeyCommitment(sha256(utf8('another key')))),
    });
    const { type: _t, version: _v, totalSize: _s, ...body } = r.envelope.body;
    const envelope: Envelope = signEnvelope(
      { ...body, dossier: { id: toHex(sha256(forged)), size: forged.length } },
      world.authority('sn-moj@wacap').identity,
    );
    const kz = world.authority('kz-gpo@casc');
    const open = () =>
      openDossier({
        envelope,
        sealed: forged,
        reader: { address: kz.address, encryptionKeys: [kz.encryption] },
        trust: world.trustFor('casc'),
      });
    expect(codeOf(open)).toBe('DECRYPT_FAILED');
    // The untouched object opens.
    expect(
      openDossier({
        envelope: r.envelope,
        sealed: r.sealed,
        reader: { address: kz.address, encryptionKeys: [kz.encryption] },
        trust: world.trustFor('casc'),
      }).dossier,
    ).toEqual(r.dossier);
  });
});

describe('bundles', () => {
  it('a full bundle verifies and says first that it proves content and chain; the check order is fixed', async () => {
    const bundle = fullBundle();
    const report = await verifyBundle(encodeBundle(bundle), filesOf(bundle), { now: NOW });
    // No evidence at all is an inconsistent chain (a chain starts with a submission evidence): the only failure.
    expect(report.checks.filter((c) => !c.ok)).toEqual([
      { check: 'evidence-chain', ok: false, detail: 'EVIDENCE_CHAIN_INVALID' },
    ]);
    expect(report.checks.find((c) => c.check === 'attachments')?.detail).toMatch(/^2 attachment/);
    expect(report.checks.map((c) => c.check)).toEqual([
      'format',
      'members',
      'key-chain',
      'envelope-signature',
      'sealed-dossier',
      'content-key',
      'dossier-signature',
      'dossier-binding',
      'content',
      'attachments',
      'evidence-chain',
    ]);
    expect(report.scope).toMatch(/^FULL BUNDLE: proves that the dossier/);
  });

  it('a sealed bundle never claims to prove content', async () => {
    const { contentKey: _k, dossier: _d, attachments: _a, ...rest } = fullBundle();
    const report = await verifyBundle(encodeBundle({ ...rest, kind: 'sealed' }), onlyJson, {
      now: NOW,
    });
    expect(report.checks.map((c) => c.check)).not.toContain('content-key');
    expect(report.scope).toMatch(
      /^SEALED BUNDLE: proves the signatures and evidences of the envelope only/,
    );
    expect(report.proves === 'chain-only' || report.proves === null).toBe(true);
  });

  it('no path reports a bundle as verified when its content key is missing', async () => {
    const { contentKey: _k, ...withoutKey } = fullBundle();
    const bytes = utf8(`${new TextDecoder().decode(canonicalBytes(withoutKey))}\n`);
    const report = await verifyBundle(bytes, filesOf(fullBundle()), { now: NOW });
    expect(report).toMatchObject({ ok: false, code: 'SCHEMA_INVALID', kind: null, proves: null });
  });

  it('bundle.json must be canonical and end with one line feed', () => {
    const bytes = encodeBundle(fullBundle());
    expect(decodeBundle(bytes).kind).toBe('full');
    expect(codeOf(() => decodeBundle(bytes.subarray(0, -1)))).toBe('ENCODING_INVALID');
    expect(codeOf(() => decodeBundle(utf8(`${new TextDecoder().decode(bytes)}\n`)))).toBe(
      'ENCODING_INVALID',
    );
  });

  it('attachment member names are always safe and match the schema, whatever the original name', () => {
    const check = Compile(FullBundleSchema.properties.attachments.items.properties.file);
    for (const hostile of [
      '../../etc/passwd',
      '..',
      '.',
      '.hidden',
      '   ',
      'a/b\\c',
      'é'.repeat(300),
      'x '.repeat(100),
      '',
    ]) {
      const file = bundleAttachmentFile(7, hostile);
      expect(check.Check(file), file).toBe(true);
      expect(file.split('/')).toHaveLength(2);
    }
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 999 }),
        fc.string({ maxLength: 300 }),
        (index, name) => {
          const file = bundleAttachmentFile(index, name);
          return (
            check.Check(file) &&
            file.startsWith(`attachments/${index}-`) &&
            !file.slice(12).includes('/')
          );
        },
      ),
    );
  });
});
