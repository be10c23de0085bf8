import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromBase64url, sha256, toBase64url, toHex, utf8 } from '../src/bytes.js';
import { canonicalBytes, decodeCanonical } from '../src/encoding.js';
import { encryptSignedDossier, openDossier, type SealedResult } from '../src/dossier.js';
import { signEnvelope, type Envelope } from '../src/envelope.js';
import { isProtocolError } from '../src/errors.js';
import { ready } from '../src/sodium.js';
import {
  buildTestWorld,
  encryptTestAttachment,
  exampleContentFor,
  sealTestDossier,
  type TestWorld,
} from '../src/testing/index.js';
import type { AttachmentManifest } from '../src/attachment-manifest.js';
import { codeOf } from './support/code-of.js';

const NOW = Date.UTC(2026, 10, 1);
let world: TestWorld;
let attachments: AttachmentManifest[];

function open(
  result: { envelope: unknown; sealed: Uint8Array },
  reader: string,
  trustNetwork = reader.split('@')[1]!,
) {
  const a = world.authority(reader);
  return openDossier({
    envelope: result.envelope,
    sealed: result.sealed,
    reader: { address: reader, encryptionKeys: [a.encryption] },
    trust: world.trustFor(trustNetwork),
  });
}

/** A new envelope by the original sender around hostile sealed bytes. */
function rewrap(
  original: Envelope,
  sealed: Uint8Array,
  overrides: Partial<Envelope['body']> = {},
): Envelope {
  const { type: _t, version: _v, totalSize: _s, ...body } = original.body;
  return signEnvelope(
    { ...body, dossier: { id: toHex(sha256(sealed)), size: sealed.length }, ...overrides },
    world.authority(original.body.sender).identity,
  );
}

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: NOW });
  attachments = [
    (await encryptTestAttachment(utf8('warrant'), { name: 'warrant.pdf' })).manifest,
    (
      await encryptTestAttachment(new Uint8Array(100), {
        name: 'records.csv',
        mediaType: 'text/csv',
        chunkSize: 32,
      })
    ).manifest,
  ];
});

describe('sealed dossier', () => {
  let one: SealedResult;
  beforeAll(() => {
    one = sealTestDossier(world, { from: 'sn-moj@wacap', to: ['kz-gpo@casc'], attachments });
  });

  it('opens for the recipient across networks and for the sender archive', () => {
    const opened = open(one, 'kz-gpo@casc');
    expect(opened.dossier.body.content).toEqual(one.dossier.body.content);
    expect(opened.sender.address).toBe('sn-moj@wacap');
    expect(opened.dossier.body.attachments).toHaveLength(2);
    expect(open(one, 'sn-moj@wacap').dossier.body.envelopeId).toBe(one.envelope.body.id);
  });

  it('lists every attachment chunk in the envelope and nothing of the content', () => {
    expect(one.envelope.body.chunks.map((c) => c.id)).toEqual(attachments.flatMap((a) => a.chunks));
    expect(one.envelope.body.chunks.at(-1)!.size).toBe(100 - 32 * 3 + 17);
    const visible =
      new TextDecoder().decode(canonicalBytes(one.envelope)) + new TextDecoder().decode(one.sealed);
    expect(visible).not.toContain('EXAMPLE');
    expect(visible).not.toContain('warrant');
  });

  it('opens for each of three recipients', () => {
    const three = sealTestDossier(world, {
      from: 'sn-moj@wacap',
      to: ['kz-gpo@casc', 'ng-agf@wacap', 'ge-pog@casc'],
      attachments,
    });
    for (const r of ['kz-gpo@casc', 'ng-agf@wacap', 'ge-pog@casc'])
      expect(open(three, r).dossier.body.recipients).toHaveLength(3);
  });

  it('is not addressed to a non-recipient, distinctly from tampering', () => {
    expect(codeOf(() => open(one, 'ge-pog@casc'))).toBe('NOT_ADDRESSED');
    // A recipient holding only another key.
    const kz = world.authority('kz-gpo@casc');
    const wrongKey = {
      address: kz.address,
      encryptionKeys: [world.authority('ge-pog@casc').encryption],
    };
    expect(
      codeOf(() =>
        openDossier({
          envelope: one.envelope,
          sealed: one.sealed,
          reader: wrongKey,
          trust: world.trustFor('casc'),
        }),
      ),
    ).toBe('NOT_ADDRESSED');
  });

  it('detects a tampered ciphertext, wrap or nonce even when the envelope is re-signed', () => {
    const sealed = decodeCanonical(one.sealed) as Record<string, unknown> & {
      ciphertext: string;
      wraps: { key: string }[];
      nonce: string;
    };
    const flip = (b64: string) => {
      const bytes = fromBase64url(b64);
      bytes[5]! ^= 1;
      return toBase64url(bytes);
    };
    for (const mutate of [
      (s: typeof sealed) => ({ ...s, ciphertext: flip(s.ciphertext) }),
      (s: typeof sealed) => ({ ...s, nonce: flip(s.nonce) }),
      (s: typeof sealed) => ({ ...s, wraps: s.wraps.map((w) => ({ ...w, key: flip(w.key) })) }),
      (s: typeof sealed) => ({ ...s, wraps: [...s.wraps].reverse() }),
    ]) {
      const bytes = canonicalBytes(mutate(sealed));
      expect(
        codeOf(() => open({ envelope: rewrap(one.envelope, bytes), sealed: bytes }, 'kz-gpo@casc')),
      ).toBe('DECRYPT_FAILED');
    }
    expect(
      codeOf(() =>
        open(
          {
            envelope: one.envelope,
            sealed: canonicalBytes({ ...sealed, nonce: flip(sealed.nonce) }),
          },
          'kz-gpo@casc',
        ),
      ),
    ).toBe('CHUNK_HASH_MISMATCH');
  });

  it('refuses a dossier re-addressed or replayed under another envelope', () => {
    const kz = world.authority('kz-gpo@casc');
    const ge = world.authority('ge-pog@casc');
    // The same signed dossier (for kz) encrypted to ge under an envelope naming ge.
    const readdressed = encryptSignedDossier({
      dossier: one.dossier,
      targets: [{ to: ge.address, key: ge.encryptionRef }],
    });
    expect(
      codeOf(() =>
        open(
          {
            envelope: rewrap(one.envelope, readdressed, { recipients: [ge.address] }),
            sealed: readdressed,
          },
          ge.address,
        ),
      ),
    ).toBe('DOSSIER_READDRESSED');
    // Replayed under a new envelope id.
    const replayed = encryptSignedDossier({
      dossier: one.dossier,
      targets: [{ to: kz.address, key: kz.encryptionRef }],
      envelopeId: 'REPLAYREPLAYREPLAYREPw',
    });
    expect(
      codeOf(() =>
        open(
          {
            envelope: rewrap(one.envelope, replayed, { id: 'REPLAYREPLAYREPLAYREPw' }),
            sealed: replayed,
          },
          kz.address,
        ),
      ),
    ).toBe('ENVELOPE_MISMATCH');
    // Forwarded by a recipient under its own envelope.
    const forwarded = encryptSignedDossier({
      dossier: one.dossier,
      targets: [{ to: ge.address, key: ge.encryptionRef }],
    });
    const { type: _t, version: _v, totalSize: _s, ...body } = one.envelope.body;
    const byKz = signEnvelope(
      {
        ...body,
        sender: kz.address,
        recipients: [ge.address],
        dossier: { id: toHex(sha256(forwarded)), size: forwarded.length },
      },
      kz.identity,
    );
    expect(codeOf(() => open({ envelope: byKz, sealed: forwarded }, ge.address))).toBe(
      'ENVELOPE_MISMATCH',
    );
  });

  it('refuses invalid content before sealing, with issues a drafter can act on', () => {
    const content = exampleContentFor('mla', 'sn-moj@wacap', 'kz-gpo@casc', world) as {
      header: Record<string, unknown>;
    };
    const broken = { ...content, header: { ...content.header, summaryOfFacts: '' } };
    try {
      sealTestDossier(world, {
        from: 'sn-moj@wacap',
        to: ['kz-gpo@casc'],
        attachments,
        content: broken as never,
      });
      expect.unreachable();
    } catch (err) {
      expect(isProtocolError(err, 'CONTENT_INVALID')).toBe(true);
      expect(
        (err as { issues: { path: string }[] }).issues.some((i) =>
          i.path.startsWith('/header/summaryOfFacts'),
        ),
      ).toBe(true);
    }
    const wrongParty = exampleContentFor('mla', 'ng-agf@wacap', 'kz-gpo@casc', world);
    expect(
      codeOf(() =>
        sealTestDossier(world, {
          from: 'sn-moj@wacap',
          to: ['kz-gpo@casc'],
          attachments,
          content: wrongParty,
        }),
      ),
    ).toBe('CONTENT_INVALID');
  });

  it('detects any single bit flip in the envelope or the sealed dossier', () => {
    const envelopeBytes = canonicalBytes(one.envelope);
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (inEnvelope, pos, bit) => {
          const target = Uint8Array.from(inEnvelope ? envelopeBytes : one.sealed);
          const i = pos % target.length;
          target[i]! ^= 1 << bit;
          let envelope: unknown;
          try {
            envelope = inEnvelope ? decodeCanonical(target) : one.envelope;
          } catch (err) {
            expect(isProtocolError(err)).toBe(true);
            return;
          }
          const code = codeOf(() =>
            open({ envelope, sealed: inEnvelope ? one.sealed : target }, 'kz-gpo@casc'),
          );
          expect(code).toBeDefined();
        },
      ),
      { numRuns: 400 },
    );
  });
});
