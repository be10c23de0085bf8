import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as iso from '../src/index.js';
import * as accelerated from '../src/node/index.js';
import {
  ERROR_CODES,
  TrustStore,
  canonicalBytes,
  fail,
  generateSigningKeyPair,
  primitives,
  sealDossier,
  sodium,
  decodeCanonical,
  envelopeHash,
  fromBase64url,
  isProtocolError,
  openDossier,
  ready,
  sha256,
  toBase64url,
  toHex,
  verifyEnvelope,
  verifyEvidenceChain,
  verifyManifest,
  verifyStandaloneCertificate,
  verifyBundle,
  ProtocolError,
  type DossierContent,
  type EncryptionKeyPair,
  type KeyRef,
} from '../src/index.js';
// Helpers the package does not export: the vectors test reaches them in their modules.
import { outcomeOf } from '../src/errors.js';
import { openEncryptionKey, openSigningKey } from '../src/keyfile.js';
import { keyId } from '../src/keys.js';
import {
  referenceInit,
  referencePull,
  referencePush,
  referenceRekey,
} from '../scripts/secretstream-reference.js';
import type { TrustSetup, Vector } from '../scripts/vectors-common.js';
import type { BundleVectorInput } from '../scripts/vectors-bundle.js';
import { runTransparencyVector } from './support/transparency-vectors.js';
import { buildTestWorld } from '../src/testing/index.js';

const dir = join(import.meta.dirname, '..', 'test-vectors');
const vectors: Vector[] = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Vector);

type Decrypt = typeof iso.decryptAttachment;

/** sodium-native's secretstream, to check it agrees with the WebAssembly build on the vectors. */
interface NativeSecretstream {
  crypto_secretstream_xchacha20poly1305_STATEBYTES: number;
  crypto_secretstream_xchacha20poly1305_init_pull(
    state: Uint8Array,
    header: Uint8Array,
    key: Uint8Array,
  ): void;
  crypto_secretstream_xchacha20poly1305_pull(
    state: Uint8Array,
    m: Uint8Array,
    tag: Uint8Array,
    c: Uint8Array,
    ad?: Uint8Array | null,
  ): number;
  crypto_secretstream_xchacha20poly1305_rekey(state: Uint8Array): void;
}
const native = createRequire(import.meta.url)('sodium-native') as NativeSecretstream;

type SecretstreamStep = { ad: string; ciphertext: string } | { rekey: true };

/** Pull every step of a secretstream vector with libsodium (WebAssembly or native); DECRYPT_FAILED on the first refusal. */
function pullSecretstream(
  input: Record<string, unknown>,
  useNative: boolean,
): { message: string; tag: number }[] {
  const key = fromBase64url(input['key'] as string);
  const header = fromBase64url(input['header'] as string);
  const steps = input['steps'] as SecretstreamStep[];
  const out: { message: string; tag: number }[] = [];
  if (useNative) {
    const state = new Uint8Array(native.crypto_secretstream_xchacha20poly1305_STATEBYTES);
    native.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key);
    for (const step of steps) {
      if ('rekey' in step) {
        native.crypto_secretstream_xchacha20poly1305_rekey(state);
        continue;
      }
      const c = fromBase64url(step.ciphertext);
      const ad = fromBase64url(step.ad);
      const m = new Uint8Array(c.length - 17);
      const tag = new Uint8Array(1);
      try {
        native.crypto_secretstream_xchacha20poly1305_pull(
          state,
          m,
          tag,
          c,
          ad.length > 0 ? ad : null,
        );
      } catch (cause) {
        return fail('DECRYPT_FAILED', 'secretstream chunk does not decrypt', { cause });
      }
      out.push({ message: toBase64url(m), tag: tag[0]! });
    }
    return out;
  }
  const s = sodium();
  const state = s.crypto_secretstream_xchacha20poly1305_init_pull(header, key);
  for (const step of steps) {
    if ('rekey' in step) {
      s.crypto_secretstream_xchacha20poly1305_rekey(state);
      continue;
    }
    const ad = fromBase64url(step.ad);
    let r: { message: Uint8Array; tag: number } | false;
    try {
      r = s.crypto_secretstream_xchacha20poly1305_pull(
        state,
        fromBase64url(step.ciphertext),
        ad.length > 0 ? ad : null,
      );
    } catch (cause) {
      return fail('DECRYPT_FAILED', 'secretstream chunk does not decrypt', { cause });
    }
    if (!r) fail('DECRYPT_FAILED', 'secretstream chunk does not decrypt');
    out.push({ message: toBase64url(r.message), tag: r.tag });
  }
  return out;
}

function trustFrom(setup: TrustSetup): TrustStore {
  const trust = new TrustStore({ pinned: setup.pinned });
  for (const m of setup.manifests) trust.addManifest(m);
  for (const r of setup.revocations) trust.addRevocation(r);
  for (const r of setup.rotations) trust.addKeyRotation(r);
  return trust;
}

/** Run one vector; returns the result object a success yields. */
async function run(
  v: Vector,
  decrypt: Decrypt,
  useNative: boolean,
): Promise<Record<string, unknown>> {
  const input = v.input;
  switch (v.kind) {
    case 'canonical': {
      const bytes = fromBase64url(input['bytes'] as string);
      return { canonical: toBase64url(canonicalBytes(decodeCanonical(bytes))) };
    }
    case 'manifest': {
      const m = verifyManifest(input['manifest'], input['root'] as KeyRef);
      return {
        network: m.body.network,
        version: m.body.version,
        manifestSha256: toHex(sha256(canonicalBytes(m))),
      };
    }
    case 'statement': {
      const trust = trustFrom(input['trust'] as TrustSetup);
      const statement = input['statement'] as {
        body: Record<string, unknown>;
        signature: { kid: string };
      };
      switch (input['statementKind']) {
        case 'introduction':
          return { subject: trust.addIntroduction(statement).body.subject };
        case 'key-rotation':
          return {
            subject: trust.addKeyRotation(statement).body.subject,
            newKid: (statement.body['newKey'] as KeyRef).kid,
          };
        case 'revocation': {
          const r = trust.addRevocation(statement);
          return { kid: r.body.kid, revokedAt: r.body.revokedAt };
        }
        case 'encryption-key':
          return { kid: verifyStandaloneCertificate(statement, trust, v.now).body.key.kid };
        default:
          throw new Error('unknown statement kind');
      }
    }
    case 'manifest-update': {
      const trust = trustFrom(input['trust'] as TrustSetup);
      const m = input['manifest'] as iso.Manifest;
      trust.addManifest(m, { now: v.now });
      return {
        network: m.body.network,
        version: m.body.version,
        manifestSha256: toHex(sha256(canonicalBytes(m))),
      };
    }
    case 'envelope': {
      const trust = trustFrom(input['trust'] as TrustSetup);
      const envelope = input['envelopeBytes']
        ? decodeCanonical(fromBase64url(input['envelopeBytes'] as string))
        : input['envelope'];
      const sender = verifyEnvelope(envelope, { trust, now: v.now });
      return { envelopeSha256: envelopeHash(envelope as never), sender: sender.address };
    }
    case 'sealed-dossier': {
      const trust = trustFrom(input['trust'] as TrustSetup);
      const reader = input['reader'] as {
        address: string;
        encryptionKeys: { kid: string; publicKey: string; secretKey: string }[];
      };
      const keys: EncryptionKeyPair[] = reader.encryptionKeys.map((k) => {
        const publicKey = fromBase64url(k.publicKey);
        expect(keyId('x25519', publicKey)).toBe(k.kid);
        return { alg: 'x25519', kid: k.kid, publicKey, secretKey: fromBase64url(k.secretKey) };
      });
      const opened = openDossier({
        envelope: input['envelope'],
        sealed: fromBase64url(input['sealed'] as string),
        reader: { address: reader.address, encryptionKeys: keys },
        trust,
      });
      return {
        sender: opened.dossier.body.sender,
        envelopeId: opened.dossier.body.envelopeId,
        dossierSha256: toHex(sha256(canonicalBytes(opened.dossier))),
        contentSha256: toHex(sha256(canonicalBytes(opened.dossier.body.content))),
      };
    }
    case 'seal': {
      const sender = input['sender'] as {
        address: string;
        identitySeed: string;
        archiveKey: KeyRef;
      };
      const randomness = input['randomness'] as {
        envelopeId: string;
        contentKey: string;
        nonce: string;
        ephemeralSecretKeys: string[];
      };
      const sealed = sealDossier({
        sender: {
          address: sender.address,
          identity: generateSigningKeyPair(fromBase64url(sender.identitySeed)),
          archiveKey: sender.archiveKey,
        },
        recipients: input['recipients'] as { address: string; encryptionKey: KeyRef }[],
        content: input['content'] as DossierContent,
        attachments: input['attachments'] as iso.AttachmentManifest[],
        createdAt: input['createdAt'] as number,
        expiresAt: input['expiresAt'] as number,
        maxHops: input['maxHops'] as number,
        envelopeId: randomness.envelopeId,
        testRandomness: {
          contentKey: fromBase64url(randomness.contentKey),
          nonce: fromBase64url(randomness.nonce),
          ephemeralSecretKeys: randomness.ephemeralSecretKeys.map((k) => fromBase64url(k)),
        },
      });
      return {
        envelope: sealed.envelope,
        sealed: toBase64url(sealed.sealed),
        sealedSha256: toHex(sha256(sealed.sealed)),
        dossierSha256: toHex(sha256(canonicalBytes(sealed.dossier))),
      };
    }
    case 'key-file': {
      const options = {
        passphrase: input['passphrase'] as string,
        purpose: input['purpose'] as string,
      };
      if (input['keyKind'] === 'signing') {
        const pair = openSigningKey(input['keyFile'], options);
        return {
          kid: pair.kid,
          publicKey: toBase64url(pair.publicKey),
          secret: toBase64url(pair.secretKey.subarray(0, 32)),
        };
      }
      const pair = openEncryptionKey(input['keyFile'], options);
      return {
        kid: pair.kid,
        publicKey: toBase64url(pair.publicKey),
        secret: toBase64url(pair.secretKey),
      };
    }
    case 'signature': {
      const ok = primitives().verifyDetached(
        fromBase64url(input['signature'] as string),
        fromBase64url(input['message'] as string),
        fromBase64url(input['publicKey'] as string),
      );
      if (!ok) fail('SIGNATURE_INVALID', 'signature does not verify');
      return { valid: true };
    }
    case 'secretstream':
      return { messages: pullSecretstream(input, useNative) };
    case 'attachment': {
      const pieces: Uint8Array[] = [];
      for await (const piece of decrypt(
        input['manifest'],
        (input['chunks'] as string[]).map((c) => fromBase64url(c)),
      ))
        pieces.push(piece);
      const plain = iso.concatBytes(...pieces);
      return {
        size: plain.length,
        plaintextSha256: toHex(sha256(plain)),
        plaintext: toBase64url(plain),
      };
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
        {
          now: v.now,
          ...(b.expectedRootKid === null ? {} : { expectedRootKid: b.expectedRootKid }),
        },
      );
      if (!report.ok) throw new ProtocolError(report.code!, 'bundle does not verify');
      return {
        kind: report.kind,
        proves: report.proves,
        envelopeId: report.envelopeId,
        envelopeSha256: envelopeHash(
          (decodeCanonical(bytes.subarray(0, -1)) as { envelope: never }).envelope,
        ),
        evidence: report.evidence?.ordered,
      };
    }
    case 'evidence-chain': {
      const trust = trustFrom(input['trust'] as TrustSetup);
      const chain = verifyEvidenceChain(
        input['envelope'] as never,
        input['evidences'] as unknown[],
        trust,
      );
      return {
        ordered: chain.ordered.map((e) => `${e.body.kind}:${e.body.issuer}`),
        submission: chain.submission,
        recipients: Object.fromEntries(chain.recipients),
      };
    }
    case 'transparency':
      return runTransparencyVector(input, v.now);
    default:
      throw new Error(`unknown vector kind ${String(v.kind)}`);
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
      'manifest-valid',
      'statement-introduction',
      'statement-key-rotation',
      'statement-revocation',
      'statement-encryption-key',
      'envelope-valid',
      'dossier-one-recipient',
      'dossier-three-recipients',
      'attachment-empty',
      'attachment-one-chunk',
      'attachment-several-chunks',
      'evidence-chain-complete',
      'manifest-bad-signature',
      'dossier-not-addressed',
      'attachment-truncated',
      'attachment-reordered',
      'attachment-duplicated',
      'canonical-whitespace',
      'dossier-expired-key',
      'dossier-revoked-key',
      'dossier-readdressed',
    ]) {
      expect(names, required).toContain(required);
    }
  });

  it('include a failing vector for every error code of docs/protocol.md §14.3', () => {
    const spec = readFileSync(
      join(import.meta.dirname, '..', '..', '..', 'docs', 'protocol.md'),
      'utf8',
    );
    const section = spec.slice(spec.indexOf('### 14.3 Catalogue'), spec.indexOf('### 14.4'));
    const documented = [...section.matchAll(/^\| `([A-Z_]+)`/gm)].map((m) => m[1]);
    expect(new Set(documented)).toEqual(new Set(Object.keys(ERROR_CODES)));
    const covered = new Set(vectors.map((v) => v.code));
    expect(documented.filter((code) => !covered.has(code as iso.ErrorCode))).toEqual([]);
  });

  it('seal vectors: each wrap is a crypto_box_seal box of the content key, made with the given ephemeral key, that libsodium opens (§9.7)', () => {
    const s = sodium();
    for (const v of vectors.filter((x) => x.kind === 'seal')) {
      const world = buildTestWorld({ now: v.now });
      const randomness = v.input['randomness'] as {
        contentKey: string;
        ephemeralSecretKeys: string[];
      };
      const sealed = JSON.parse(iso.fromUtf8(fromBase64url(v.result!['sealed'] as string))) as {
        wraps: { to: string; kid: string; key: string }[];
      };
      expect(sealed.wraps).toHaveLength(randomness.ephemeralSecretKeys.length);
      sealed.wraps.forEach((wrap, i) => {
        const box = fromBase64url(wrap.key);
        expect(toHex(box.subarray(0, 32))).toBe(
          toHex(s.crypto_scalarmult_base(fromBase64url(randomness.ephemeralSecretKeys[i]!))),
        );
        const reader = world.authority(wrap.to).encryption;
        expect(reader.kid).toBe(wrap.kid);
        expect(toBase64url(s.crypto_box_seal_open(box, reader.publicKey, reader.secretKey))).toBe(
          randomness.contentKey,
        );
      });
    }
  });

  it('are each documented in docs/protocol.md (§15.6)', () => {
    const spec = readFileSync(
      join(import.meta.dirname, '..', '..', '..', 'docs', 'protocol.md'),
      'utf8',
    );
    expect(vectors.map((v) => v.name).filter((name) => !spec.includes(`\`${name}\``))).toEqual([]);
  });

  it('secretstream vectors: the construction written out in §11.13 produces the same bytes as libsodium', () => {
    for (const v of vectors.filter((x) => x.kind === 'secretstream' && x.code === null)) {
      const key = fromBase64url(v.input['key'] as string);
      const header = fromBase64url(v.input['header'] as string);
      const steps = v.input['steps'] as SecretstreamStep[];
      const messages = v.result!['messages'] as { message: string; tag: number }[];
      const push = referenceInit(key, header);
      const pull = referenceInit(key, header);
      let i = 0;
      for (const step of steps) {
        if ('rekey' in step) {
          referenceRekey(push);
          referenceRekey(pull);
          continue;
        }
        const m = messages[i++]!;
        const c = referencePush(push, fromBase64url(m.message), fromBase64url(step.ad), m.tag);
        expect(toBase64url(c), `${v.name} step ${i}`).toBe(step.ciphertext);
        const back = referencePull(pull, c, fromBase64url(step.ad));
        expect({ message: toBase64url(back.message), tag: back.tag }).toEqual(m);
      }
    }
  });

  it("key-file vectors: sealing the secret with the file's salt and nonce gives the file's ciphertext (§13.2)", () => {
    const s = sodium();
    for (const v of vectors.filter((x) => x.kind === 'key-file' && x.code === null)) {
      const file = v.input['keyFile'] as {
        purpose: string;
        opslimit: number;
        memlimit: number;
        salt: string;
        nonce: string;
        ciphertext: string;
      };
      const k = s.crypto_pwhash(
        32,
        iso.utf8(v.input['passphrase'] as string),
        fromBase64url(file.salt),
        file.opslimit,
        file.memlimit,
        s.crypto_pwhash_ALG_ARGON2ID13,
      );
      const ad = iso.concatBytes(
        iso.utf8('rogatory/v1/sealed-secret'),
        Uint8Array.of(0),
        iso.utf8(file.purpose),
      );
      const ct = s.crypto_aead_xchacha20poly1305_ietf_encrypt(
        fromBase64url(v.result!['secret'] as string),
        ad,
        null,
        fromBase64url(file.nonce),
        k,
      );
      expect(toBase64url(ct), v.name).toBe(file.ciphertext);
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
        expect(iso.primitives().name).toBe(
          label === 'node-accelerated' ? 'libsodium-native' : 'libsodium-wasm',
        );
      });
      for (const v of vectors) {
        it(`${v.name}: ${v.expect}${v.code ? ` (${v.code})` : ''}`, async () => {
          if (v.code === null) {
            expect(await run(v, decrypt, label === 'node-accelerated')).toEqual(v.result);
          } else {
            expect(outcomeOf(v.code)).toBe(v.expect);
            const err: unknown = await run(v, decrypt, label === 'node-accelerated').then(
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
