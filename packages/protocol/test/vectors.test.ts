import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as iso from '../src/index.js';
import * as accelerated from '../src/node/index.js';
import {
  TrustStore,
  canonicalBytes,
  decodeCanonical,
  envelopeHash,
  fromBase64url,
  isProtocolError,
  keyId,
  openDossier,
  outcomeOf,
  ready,
  sha256,
  toBase64url,
  toHex,
  verifyEnvelope,
  verifyEvidenceChain,
  verifyManifest,
  verifyEncryptionKeyCert,
  verifyBundle,
  ProtocolError,
  type EncryptionKeyPair,
  type KeyRef,
} from '../src/index.js';
import type { TrustSetup, Vector } from '../scripts/vectors-build.js';
import type { BundleVectorInput } from '../scripts/vectors-bundle.js';

const dir = join(import.meta.dirname, '..', 'test-vectors');
const vectors: Vector[] = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Vector);

type Decrypt = typeof iso.decryptAttachment;

function trustFrom(setup: TrustSetup): TrustStore {
  const trust = new TrustStore({ pinned: setup.pinned });
  for (const m of setup.manifests) trust.addManifest(m);
  for (const r of setup.revocations) trust.addRevocation(r);
  for (const r of setup.rotations) trust.addKeyRotation(r);
  return trust;
}

/** Run one vector; returns the result object a success yields. */
async function run(v: Vector, decrypt: Decrypt): Promise<Record<string, unknown>> {
  const input = v.input;
  switch (v.kind) {
    case 'canonical': {
      const bytes = fromBase64url(input['bytes'] as string);
      return { canonical: toBase64url(canonicalBytes(decodeCanonical(bytes))) };
    }
    case 'manifest': {
      const m = verifyManifest(input['manifest'], input['root'] as KeyRef);
      return { network: m.body.network, version: m.body.version, manifestSha256: toHex(sha256(canonicalBytes(m))) };
    }
    case 'statement': {
      const trust = trustFrom(input['trust'] as TrustSetup);
      const statement = input['statement'] as { body: Record<string, unknown>; signature: { kid: string } };
      switch (input['statementKind']) {
        case 'introduction':
          return { subject: trust.addIntroduction(statement).body.subject };
        case 'key-rotation':
          return { subject: trust.addKeyRotation(statement).body.subject, newKid: (statement.body['newKey'] as KeyRef).kid };
        case 'revocation': {
          const r = trust.addRevocation(statement);
          return { kid: r.body.kid, revokedAt: r.body.revokedAt };
        }
        case 'encryption-key': {
          const subject = statement.body['subject'] as string;
          const identity = trust.resolveSigningKey(subject, statement.signature.kid, v.now, ['authority']);
          verifyEncryptionKeyCert(statement, identity.key);
          return { kid: (statement.body['key'] as KeyRef).kid };
        }
        default:
          throw new Error('unknown statement kind');
      }
    }
    case 'envelope': {
      const trust = trustFrom(input['trust'] as TrustSetup);
      const envelope = input['envelopeBytes'] ? decodeCanonical(fromBase64url(input['envelopeBytes'] as string)) : input['envelope'];
      const sender = verifyEnvelope(envelope, { trust, now: v.now });
      return { envelopeSha256: envelopeHash(envelope as never), sender: sender.address };
    }
    case 'sealed-dossier': {
      const trust = trustFrom(input['trust'] as TrustSetup);
      const reader = input['reader'] as { address: string; encryptionKeys: { kid: string; publicKey: string; secretKey: string }[] };
      const keys: EncryptionKeyPair[] = reader.encryptionKeys.map((k) => {
        const publicKey = fromBase64url(k.publicKey);
        expect(keyId('x25519', publicKey)).toBe(k.kid);
        return { alg: 'x25519', kid: k.kid, publicKey, secretKey: fromBase64url(k.secretKey) };
      });
      const opened = openDossier({ envelope: input['envelope'], sealed: fromBase64url(input['sealed'] as string), reader: { address: reader.address, encryptionKeys: keys }, trust });
      return {
        sender: opened.dossier.body.sender,
        envelopeId: opened.dossier.body.envelopeId,
        dossierSha256: toHex(sha256(canonicalBytes(opened.dossier))),
        contentSha256: toHex(sha256(canonicalBytes(opened.dossier.body.content))),
      };
    }
    case 'attachment': {
      const pieces: Uint8Array[] = [];
      for await (const piece of decrypt(input['manifest'], (input['chunks'] as string[]).map((c) => fromBase64url(c)))) pieces.push(piece);
      const plain = iso.concatBytes(...pieces);
      return { size: plain.length, plaintextSha256: toHex(sha256(plain)), plaintext: toBase64url(plain) };
    }
    case 'bundle': {
      const b = input as unknown as BundleVectorInput;
      const bytes = fromBase64url(b.bundleJson);
      const report = await verifyBundle(
        bytes,
        {
          members: b.members,
          digest: (m) => {
            const f = b.files[m];
            return f ? Promise.resolve(f) : Promise.reject(new Error(`no file ${m}`));
          },
        },
        { now: v.now, ...(b.expectedRootKid === null ? {} : { expectedRootKid: b.expectedRootKid }) },
      );
      if (!report.ok) throw new ProtocolError(report.code!, 'bundle does not verify');
      return { kind: report.kind, proves: report.proves, envelopeId: report.envelopeId, envelopeSha256: envelopeHash((decodeCanonical(bytes.subarray(0, -1)) as { envelope: never }).envelope), evidence: report.evidence?.ordered };
    }
    case 'evidence-chain': {
      const trust = trustFrom(input['trust'] as TrustSetup);
      const chain = verifyEvidenceChain(input['envelope'] as never, input['evidences'] as unknown[], trust);
      return {
        ordered: chain.ordered.map((e) => `${e.body.kind}:${e.body.issuer}`),
        submission: chain.submission,
        recipients: Object.fromEntries(chain.recipients),
      };
    }
  }
}

beforeAll(async () => {
  await ready();
});

afterAll(async () => {
  await accelerated.terminateHashWorker();
});

describe('test vectors', () => {
  it('cover every required scenario', () => {
    const names = new Set(vectors.map((v) => v.name));
    for (const required of [
      'manifest-valid', 'statement-introduction', 'statement-key-rotation', 'statement-revocation', 'statement-encryption-key',
      'envelope-valid', 'dossier-one-recipient', 'dossier-three-recipients', 'attachment-empty', 'attachment-one-chunk',
      'attachment-several-chunks', 'evidence-chain-complete', 'manifest-bad-signature', 'dossier-not-addressed',
      'attachment-truncated', 'attachment-reordered', 'attachment-duplicated', 'canonical-whitespace', 'dossier-expired-key',
      'dossier-revoked-key', 'dossier-readdressed',
    ]) {
      expect(names, required).toContain(required);
    }
  });

  for (const [label, decrypt] of [
    ['isomorphic', iso.decryptAttachment],
    ['node-accelerated', accelerated.decryptAttachment],
  ] as const) {
    describe(label, () => {
      // The accelerated path: worker hashing for attachments, and natively
      // compiled libsodium for every signature and hash.
      let previous: iso.Primitives | undefined;
      beforeAll(() => {
        if (label !== 'node-accelerated') return;
        const native = accelerated.nativePrimitives();
        expect(native, 'sodium-native loads on this platform').not.toBeNull();
        previous = iso.setPrimitives(native!);
      });
      afterAll(() => {
        if (previous !== undefined) iso.setPrimitives(previous);
      });
      it('runs on the intended primitives', () => {
        expect(iso.primitives().name).toBe(label === 'node-accelerated' ? 'libsodium-native' : 'libsodium-wasm');
      });
      for (const v of vectors) {
        it(`${v.name}: ${v.expect}${v.code ? ` (${v.code})` : ''}`, async () => {
          if (v.code === null) {
            expect(await run(v, decrypt)).toEqual(v.result);
          } else {
            expect(outcomeOf(v.code)).toBe(v.expect);
            const err: unknown = await run(v, decrypt).then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(isProtocolError(err) ? err.code : err).toBe(v.code);
          }
        });
      }
    });
  }
});
