/**
 * The scenarios of the test vectors. Imported by generate-vectors.ts after it
 * has made libsodium's randomness deterministic; do not import elsewhere.
 */
import {
  CONTEXTS,
  canonicalBytes,
  certifyEncryptionKey,
  decryptAttachment,
  encryptSignedDossier,
  envelopeHash,
  fromBase64url,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  issueEvidence,
  ready,
  sha256,
  sign,
  signEnvelope,
  signIntroduction,
  signKeyRotation,
  signRevocation,
  toBase64url,
  toHex,
  utf8,
  type AttachmentManifest,
  type Envelope,
  type ErrorCode,
  type Evidence,
  type Manifest,
  type SignedDossier,
} from '../src/index.js';
import { bundleScenarios } from './vectors-bundle.js';
import { codeVectors } from './vectors-codes.js';
import { VECTOR_NOW, trustOf, vector, type TrustSetup, type Vector } from './vectors-common.js';
import {
  buildTestWorld,
  encryptTestAttachment,
  sealTestDossier,
  testSeed,
  type TestWorld,
} from '../src/testing/index.js';

function readerKeys(world: TestWorld, address: string) {
  const a = world.authority(address);
  return {
    address,
    encryptionKeys: [
      {
        kid: a.encryption.kid,
        publicKey: toBase64url(a.encryption.publicKey),
        secretKey: toBase64url(a.encryption.secretKey),
      },
    ],
  };
}

const b64 = (bytes: Uint8Array) => toBase64url(bytes);
const hex = (bytes: Uint8Array) => toHex(sha256(bytes));

function canonicalVectors(): Vector[] {
  const cases: [string, string, ErrorCode | null, string][] = [
    [
      'canonical-valid',
      '{"a":[1,-2,"\\u001f\\"é"],"b":null,"c":{"":true}}',
      null,
      'Canonical JSON: sorted keys, no whitespace, integers, minimal escapes.',
    ],
    [
      'canonical-whitespace',
      '{"a": 1}',
      'ENCODING_INVALID',
      'Whitespace outside strings is not canonical.',
    ],
    [
      'canonical-key-order',
      '{"b":1,"a":2}',
      'ENCODING_INVALID',
      'Keys must be sorted by UTF-16 code units.',
    ],
    [
      'canonical-duplicate-key',
      '{"a":1,"a":1}',
      'ENCODING_INVALID',
      'Duplicate keys are rejected.',
    ],
    [
      'canonical-float',
      '{"a":1.0}',
      'ENCODING_INVALID',
      'Only integers are allowed; 1.0 is not the canonical form of any value.',
    ],
    [
      'canonical-large-integer',
      '{"a":9007199254740993}',
      'ENCODING_INVALID',
      'Integers beyond 2^53-1 are rejected.',
    ],
    [
      'canonical-escape',
      '{"a":"\\u0061"}',
      'ENCODING_INVALID',
      'Characters that need no escape must not be escaped.',
    ],
  ];
  return cases.map(([name, text, code, description]) =>
    vector({
      name,
      kind: 'canonical',
      description,
      code,
      input: { bytes: b64(utf8(text)) },
      result: code === null ? { canonical: b64(utf8(text)) } : null,
    }),
  );
}

function manifestVectors(world: TestWorld): Vector[] {
  const wacap = world.networks['wacap']!;
  const tampered = structuredClone<Manifest>(wacap.manifest);
  (tampered.body.authorities[0] as { name: string }).name = 'Ministry of Justice (tampered)';
  const input = (manifest: Manifest) => ({ root: wacap.rootRef, manifest });
  // A PoC's encryption-key certificates follow the authorities' rules (MC5, verification step 6).
  const poc = wacap.manifest.body.pocs[0]!;
  const sn = world.authority('sn-moj@wacap');
  const pocCert = (subject: string, identity: typeof sn.identity) =>
    certifyEncryptionKey({
      subject,
      identity,
      encryptionKey: wacap.poc.encryption,
      notBefore: VECTOR_NOW - 1000,
      notAfter: VECTOR_NOW + 365 * 86_400_000,
    });
  const withPocCert = (cert: ReturnType<typeof pocCert>): Manifest =>
    sign(
      CONTEXTS.manifest,
      { ...wacap.manifest.body, pocs: [{ ...poc, encryptionKeys: [cert] }] },
      wacap.root,
    );
  const byAuthority = pocCert(poc.address, sn.identity);
  return [
    vector({
      name: 'manifest-valid',
      kind: 'manifest',
      description:
        'Network manifest of wacap version 1, signed by its root; embedded encryption-key certificates verify.',
      code: null,
      input: input(wacap.manifest),
      result: {
        network: 'wacap',
        version: 1,
        manifestSha256: toHex(sha256(canonicalBytes(wacap.manifest))),
      },
    }),
    vector({
      name: 'manifest-bad-signature',
      kind: 'manifest',
      description: 'An authority name changed after signing.',
      code: 'SIGNATURE_INVALID',
      input: input(tampered),
      result: null,
    }),
    vector({
      name: 'manifest-poc-cert-other-subject',
      kind: 'manifest',
      description:
        "A PoC's encryption-key certificate made by the PoC's identity key for another address (sn-moj@wacap): MC5.",
      code: 'SCHEMA_INVALID',
      input: input(withPocCert(pocCert('sn-moj@wacap', wacap.poc.key))),
      result: null,
    }),
    vector({
      name: 'manifest-poc-cert-wrong-identity-kid',
      kind: 'manifest',
      description:
        "A PoC's certificate for the PoC's address whose identityKid is an authority's identity key (which signed it): MC5.",
      code: 'SCHEMA_INVALID',
      input: input(withPocCert(byAuthority)),
      result: null,
    }),
    vector({
      name: 'manifest-poc-cert-wrong-signer',
      kind: 'manifest',
      description:
        "A PoC's certificate naming the PoC's identity key but signed by an authority's key: passes MC5, fails verification step 6.",
      code: 'KEY_WRONG_ROLE',
      input: input(
        withPocCert({ ...byAuthority, body: { ...byAuthority.body, identityKid: poc.key.kid } }),
      ),
      result: null,
    }),
    vector({
      name: 'manifest-wrong-root',
      kind: 'manifest',
      description: 'The casc manifest checked against the pinned wacap root.',
      code: 'TRUST_CHAIN_BROKEN',
      input: { root: wacap.rootRef, manifest: world.networks['casc']!.manifest },
      result: null,
    }),
  ];
}

function statementVectors(world: TestWorld): Vector[] {
  const wacap = world.networks['wacap']!;
  const sn = world.authority('sn-moj@wacap');
  const kz = world.authority('kz-gpo@casc');
  const newKey = generateSigningKeyPair(testSeed('vectors/sn-moj@wacap/identity/2'));
  const rotation = signKeyRotation({
    subject: sn.address,
    oldKey: sn.identity,
    newKey,
    effectiveAt: VECTOR_NOW,
    notAfter: VECTOR_NOW + 3 * 365 * 86_400_000,
  });
  const revocation = signRevocation(
    {
      network: 'wacap',
      subject: sn.address,
      kid: sn.identity.kid,
      reason: 'key-compromise',
      revokedAt: VECTOR_NOW - 60_000,
      issuedAt: VECTOR_NOW,
    },
    wacap.root,
  );
  const introduction = signIntroduction(
    {
      issuer: wacap.poc.address,
      subject: kz.address,
      subjectKey: kz.identityRef,
      audience: 'wacap',
      competences: ['mla', 'confiscation'],
      note: 'Central authority for mutual legal assistance and asset recovery',
      issuedAt: VECTOR_NOW - 1000,
      validUntil: VECTOR_NOW + 365 * 86_400_000,
    },
    wacap.poc.key,
  );
  const encKey = generateEncryptionKeyPair(testSeed('vectors/sn-moj@wacap/encryption/2'));
  const cert = certifyEncryptionKey({
    subject: sn.address,
    identity: sn.identity,
    encryptionKey: encKey,
    notBefore: VECTOR_NOW,
    notAfter: VECTOR_NOW + 365 * 86_400_000,
  });
  const forgedIntro = {
    ...introduction,
    body: { ...introduction.body, competences: ['extradition'] },
  };
  return [
    vector({
      name: 'statement-introduction',
      kind: 'statement',
      description: 'A wacap point of contact introduces a casc authority to wacap.',
      code: null,
      input: {
        trust: trustOf(world, 'wacap'),
        statementKind: 'introduction',
        statement: introduction,
      },
      result: { subject: kz.address },
    }),
    vector({
      name: 'statement-introduction-bad-signature',
      kind: 'statement',
      description: 'Competences changed after the PoC signed.',
      code: 'SIGNATURE_INVALID',
      input: {
        trust: trustOf(world, 'wacap'),
        statementKind: 'introduction',
        statement: forgedIntro,
      },
      result: null,
    }),
    vector({
      name: 'statement-key-rotation',
      kind: 'statement',
      description:
        'Identity key rotation signed by the old key with a possession proof by the new key.',
      code: null,
      input: { trust: trustOf(world, 'wacap'), statementKind: 'key-rotation', statement: rotation },
      result: { subject: sn.address, newKid: newKey.kid },
    }),
    vector({
      name: 'statement-revocation',
      kind: 'statement',
      description: 'Revocation of an authority key by the network root (key compromise).',
      code: null,
      input: { trust: trustOf(world, 'wacap'), statementKind: 'revocation', statement: revocation },
      result: { kid: sn.identity.kid, revokedAt: VECTOR_NOW - 60_000 },
    }),
    vector({
      name: 'statement-encryption-key',
      kind: 'statement',
      description: 'An X25519 encryption subkey certified by the identity key.',
      code: null,
      input: { trust: trustOf(world, 'wacap'), statementKind: 'encryption-key', statement: cert },
      result: { kid: encKey.kid },
    }),
    vector({
      name: 'statement-encryption-key-poc',
      kind: 'statement',
      description:
        "A point of contact's X25519 encryption key certificate, as listed in the wacap manifest, verified on its own.",
      code: null,
      input: {
        trust: trustOf(world, 'wacap'),
        statementKind: 'encryption-key',
        statement: wacap.manifest.body.pocs[0]!.encryptionKeys[0]!,
      },
      result: { kid: wacap.poc.encryption.kid },
    }),
  ];
}

async function attachmentVectors(): Promise<{
  vectors: Vector[];
  manifests: AttachmentManifest[];
}> {
  const pattern = (n: number, seed: number) =>
    Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
  const empty = await encryptTestAttachment(new Uint8Array(0), {
    name: 'empty.txt',
    mediaType: 'text/plain',
    chunkSize: 64,
  });
  const one = await encryptTestAttachment(pattern(40, 1), {
    name: 'one-chunk.bin',
    mediaType: 'application/octet-stream',
    chunkSize: 64,
  });
  const several = await encryptTestAttachment(pattern(64 * 3 + 10, 2), {
    name: 'several.pdf',
    mediaType: 'application/pdf',
    chunkSize: 64,
  });
  const exact = await encryptTestAttachment(pattern(64 * 2, 3), {
    name: 'exact.bin',
    mediaType: 'application/octet-stream',
    chunkSize: 64,
  });
  const ok = (name: string, description: string, att: typeof one, plain: Uint8Array) =>
    vector({
      name,
      kind: 'attachment',
      description,
      code: null,
      input: { manifest: att.manifest, chunks: att.chunks.map((c) => b64(c.bytes)) },
      result: { size: plain.length, plaintextSha256: hex(plain), plaintext: b64(plain) },
    });
  const bad = (name: string, description: string, chunks: Uint8Array[], code: ErrorCode) =>
    vector({
      name,
      kind: 'attachment',
      description,
      code,
      input: { manifest: several.manifest, chunks: chunks.map(b64) },
      result: null,
    });
  const c = several.chunks.map((x) => x.bytes);
  const flipped = Uint8Array.from(c[1]!);
  flipped[3]! ^= 0x01;
  return {
    manifests: [several.manifest, one.manifest],
    vectors: [
      ok(
        'attachment-empty',
        'A 0-byte attachment: one chunk of empty plaintext with the final tag (17 bytes).',
        empty,
        new Uint8Array(0),
      ),
      ok(
        'attachment-one-chunk',
        'A 40-byte attachment in one chunk (chunk size 64).',
        one,
        pattern(40, 1),
      ),
      ok(
        'attachment-several-chunks',
        'Four chunks of 64, 64, 64 and 10 plaintext bytes.',
        several,
        pattern(64 * 3 + 10, 2),
      ),
      ok(
        'attachment-exact-multiple',
        'Exactly two full chunks: the second carries the final tag; no empty third chunk.',
        exact,
        pattern(128, 3),
      ),
      bad('attachment-truncated', 'The last chunk is missing.', c.slice(0, 3), 'CHUNK_TRUNCATED'),
      bad(
        'attachment-reordered',
        'Chunks 1 and 2 swapped.',
        [c[0]!, c[2]!, c[1]!, c[3]!],
        'CHUNK_REORDERED',
      ),
      bad(
        'attachment-duplicated',
        'Chunk 1 delivered twice in place of chunk 2.',
        [c[0]!, c[1]!, c[1]!, c[3]!],
        'CHUNK_DUPLICATED',
      ),
      bad(
        'attachment-substituted',
        'Chunk 1 replaced by a valid chunk of another attachment.',
        [c[0]!, one.chunks[0]!.bytes, c[2]!, c[3]!],
        'CHUNK_HASH_MISMATCH',
      ),
      bad(
        'attachment-bit-flip',
        'One bit of chunk 1 flipped.',
        [c[0]!, flipped, c[2]!, c[3]!],
        'CHUNK_HASH_MISMATCH',
      ),
      bad(
        'attachment-extra-chunk',
        'A fifth chunk after the final one.',
        [...c, one.chunks[0]!.bytes],
        'CHUNK_EXTRA',
      ),
    ],
  };
}

function rewrapEnvelope(
  world: TestWorld,
  original: Envelope,
  sealed: Uint8Array,
  overrides: Partial<Envelope['body']> = {},
): Envelope {
  const { type: _t, version: _v, totalSize: _s, ...body } = original.body;
  return signEnvelope(
    { ...body, dossier: { id: hex(sealed), size: sealed.length }, ...overrides },
    world.authority(overrides.sender ?? original.body.sender).identity,
  );
}

function dossierVectors(
  world: TestWorld,
  attachments: AttachmentManifest[],
): { vectors: Vector[]; oneRecipient: Envelope } {
  const fixed = (label: string) => ({
    contentKey: sha256(utf8(`${label}/key`)),
    nonce: sha256(utf8(`${label}/nonce`)).subarray(0, 24),
  });
  const one = sealTestDossier(world, {
    from: 'sn-moj@wacap',
    to: ['kz-gpo@casc'],
    attachments,
    envelopeId: 'vectorDossierOneRcpt0A',
    createdAt: VECTOR_NOW - 60_000,
    testRandomness: fixed('one'),
  });
  const three = sealTestDossier(world, {
    from: 'sn-moj@wacap',
    to: ['kz-gpo@casc', 'ng-agf@wacap', 'ge-pog@casc'],
    type: 'extradition',
    attachments,
    envelopeId: 'vectorDossier3Rcpts00A',
    createdAt: VECTOR_NOW - 60_000,
    testRandomness: fixed('three'),
  });
  const answer = sealTestDossier(world, {
    from: 'kz-gpo@casc',
    to: ['sn-moj@wacap'],
    type: 'full-execution',
    attachments,
    envelopeId: 'vectorDossierAnswer00A',
    createdAt: VECTOR_NOW - 30_000,
    testRandomness: fixed('answer'),
  });

  const opened = (r: { dossier: SignedDossier }) => ({
    sender: r.dossier.body.sender,
    envelopeId: r.dossier.body.envelopeId,
    dossierSha256: hex(canonicalBytes(r.dossier)),
    contentSha256: hex(canonicalBytes(r.dossier.body.content)),
  });
  const input = (
    trustNetwork: string,
    reader: string,
    envelope: unknown,
    sealed: Uint8Array,
    extra: Partial<TrustSetup> = {},
  ) => ({
    trust: trustOf(world, trustNetwork, extra),
    reader: readerKeys(world, reader),
    envelope,
    sealed: b64(sealed),
  });

  const kz = world.authority('kz-gpo@casc');
  const ge = world.authority('ge-pog@casc');
  const sn = world.authority('sn-moj@wacap');
  const readdressed = encryptSignedDossier({
    dossier: one.dossier,
    targets: [{ to: ge.address, key: ge.encryptionRef }],
    testRandomness: fixed('readdressed'),
  });
  const replayedId = 'vectorReplayedEnvelopA';
  const replayed = encryptSignedDossier({
    dossier: one.dossier,
    targets: [{ to: kz.address, key: kz.encryptionRef }],
    envelopeId: replayedId,
    testRandomness: fixed('replayed'),
  });
  const sealedObj = JSON.parse(new TextDecoder().decode(one.sealed)) as { ciphertext: string };
  const ct = fromBase64url(sealedObj.ciphertext);
  ct[10]! ^= 0x80;
  const tamperedSealed = canonicalBytes({ ...sealedObj, ciphertext: toBase64url(ct) });
  // Inner dossier signed with the sender's kid but another secret key.
  const impostor = generateSigningKeyPair(testSeed('vectors/impostor'));
  const badInner = sign(CONTEXTS.dossier, one.dossier.body, { ...impostor, kid: sn.identity.kid });
  const badInnerSealed = encryptSignedDossier({
    dossier: badInner,
    targets: [{ to: kz.address, key: kz.encryptionRef }],
    testRandomness: fixed('bad-inner'),
  });

  // Sender key expired: the envelope and dossier are dated after the key's notAfter.
  const afterExpiry = sn.identityRef.notAfter + 1000;
  const expired = sealTestDossier(world, {
    from: 'sn-moj@wacap',
    to: ['kz-gpo@casc'],
    attachments,
    envelopeId: 'vectorDossierExpired0A',
    createdAt: afterExpiry,
    testRandomness: fixed('expired'),
  });
  const revocation = signRevocation(
    {
      network: 'wacap',
      subject: sn.address,
      kid: sn.identity.kid,
      reason: 'key-compromise',
      revokedAt: VECTOR_NOW - 120_000,
      issuedAt: VECTOR_NOW - 100_000,
    },
    world.networks['wacap']!.root,
  );

  return {
    oneRecipient: one.envelope,
    vectors: [
      vector({
        name: 'dossier-one-recipient',
        kind: 'sealed-dossier',
        description:
          'MLA request from wacap to casc, one recipient, two attachments; opened by the recipient.',
        code: null,
        input: input('casc', kz.address, one.envelope, one.sealed),
        result: opened(one),
      }),
      vector({
        name: 'dossier-sender-archive',
        kind: 'sealed-dossier',
        description: 'The same dossier opened by its sender with the archive wrap.',
        code: null,
        input: input('wacap', sn.address, one.envelope, one.sealed),
        result: opened(one),
      }),
      vector({
        name: 'dossier-three-recipients',
        kind: 'sealed-dossier',
        description:
          'Extradition request to three recipients in two networks; opened by the third.',
        code: null,
        input: input('casc', ge.address, three.envelope, three.sealed),
        result: opened(three),
      }),
      vector({
        name: 'dossier-answer',
        kind: 'sealed-dossier',
        description: 'Full execution answer from casc back to wacap.',
        code: null,
        input: input('wacap', sn.address, answer.envelope, answer.sealed),
        result: opened(answer),
      }),
      vector({
        name: 'dossier-not-addressed',
        kind: 'sealed-dossier',
        description:
          'An authority that is not a recipient tries to open it: not addressed, not tampered.',
        code: 'NOT_ADDRESSED',
        input: input('casc', ge.address, one.envelope, one.sealed),
        result: null,
      }),
      vector({
        name: 'dossier-readdressed',
        kind: 'sealed-dossier',
        description:
          'The signed dossier for kz-gpo re-encrypted to ge-pog under an envelope naming ge-pog.',
        code: 'DOSSIER_READDRESSED',
        input: input(
          'casc',
          ge.address,
          rewrapEnvelope(world, one.envelope, readdressed, { recipients: [ge.address] }),
          readdressed,
        ),
        result: null,
      }),
      vector({
        name: 'dossier-replayed-envelope',
        kind: 'sealed-dossier',
        description: 'The signed dossier replayed under a new envelope id.',
        code: 'ENVELOPE_MISMATCH',
        input: input(
          'casc',
          kz.address,
          rewrapEnvelope(world, one.envelope, replayed, { id: replayedId }),
          replayed,
        ),
        result: null,
      }),
      vector({
        name: 'dossier-tampered-ciphertext',
        kind: 'sealed-dossier',
        description:
          'One ciphertext bit flipped; the envelope re-signed to name the tampered object.',
        code: 'DECRYPT_FAILED',
        input: input(
          'casc',
          kz.address,
          rewrapEnvelope(world, one.envelope, tamperedSealed),
          tamperedSealed,
        ),
        result: null,
      }),
      vector({
        name: 'dossier-bad-inner-signature',
        kind: 'sealed-dossier',
        description: 'Inner dossier signed by another key claiming the sender key id.',
        code: 'SIGNATURE_INVALID',
        input: input(
          'casc',
          kz.address,
          rewrapEnvelope(world, one.envelope, badInnerSealed),
          badInnerSealed,
        ),
        result: null,
      }),
      vector({
        name: 'dossier-bad-envelope-signature',
        kind: 'sealed-dossier',
        description: 'Envelope expiry changed after signing.',
        code: 'SIGNATURE_INVALID',
        input: input(
          'casc',
          kz.address,
          {
            ...one.envelope,
            body: { ...one.envelope.body, expiresAt: one.envelope.body.expiresAt + 1 },
          },
          one.sealed,
        ),
        result: null,
      }),
      vector({
        name: 'dossier-expired-key',
        kind: 'sealed-dossier',
        description: "Dossier created after the end of the sender key's validity.",
        code: 'KEY_EXPIRED',
        now: afterExpiry + 1000,
        input: input('casc', kz.address, expired.envelope, expired.sealed),
        result: null,
      }),
      vector({
        name: 'dossier-revoked-key',
        kind: 'sealed-dossier',
        description: 'Sender key revoked (key compromise) before the dossier was created.',
        code: 'KEY_REVOKED',
        input: input('casc', kz.address, one.envelope, one.sealed, { revocations: [revocation] }),
        result: null,
      }),
    ],
  };
}

function envelopeVectors(world: TestWorld, envelope: Envelope): Vector[] {
  const trust = trustOf(world, 'wacap');
  return [
    vector({
      name: 'envelope-valid',
      kind: 'envelope',
      description: 'The routing envelope of dossier-one-recipient, verified by the sender relay.',
      code: null,
      input: { trust, envelope },
      result: { envelopeSha256: envelopeHash(envelope), sender: envelope.body.sender },
    }),
    vector({
      name: 'envelope-bad-signature',
      kind: 'envelope',
      description: 'A recipient added after signing.',
      code: 'SIGNATURE_INVALID',
      input: {
        trust,
        envelope: {
          ...envelope,
          body: { ...envelope.body, recipients: [...envelope.body.recipients, 'gh-ago@wacap'] },
        },
      },
      result: null,
    }),
    vector({
      name: 'envelope-expired',
      kind: 'envelope',
      description: 'Verified after its expiry.',
      code: 'ENVELOPE_EXPIRED',
      now: envelope.body.expiresAt,
      input: { trust, envelope },
      result: null,
    }),
    vector({
      name: 'envelope-non-canonical',
      kind: 'envelope',
      description: 'Envelope bytes with a space: must be rejected before anything else.',
      code: 'ENCODING_INVALID',
      input: {
        trust,
        envelopeBytes: b64(
          utf8(
            new TextDecoder().decode(canonicalBytes(envelope)).replace('{"body":{', '{"body": {'),
          ),
        ),
      },
      result: null,
    }),
  ];
}

function evidenceVectors(world: TestWorld, envelope: Envelope): Vector[] {
  const wacapRelay = world.networks['wacap']!.relay;
  const globalRelay = world.networks['global']!.relay;
  const cascRelay = world.networks['casc']!.relay;
  const kz = world.authority('kz-gpo@casc');
  const t = envelope.body.createdAt;
  const chain: Evidence[] = [
    issueEvidence({
      kind: 'submission-acceptance',
      envelope,
      issuer: wacapRelay.id,
      key: wacapRelay.key,
      issuedAt: t + 100,
    }),
    issueEvidence({
      kind: 'relay-acceptance',
      envelope,
      issuer: globalRelay.id,
      key: globalRelay.key,
      issuedAt: t + 200,
      recipient: kz.address,
    }),
    issueEvidence({
      kind: 'relay-acceptance',
      envelope,
      issuer: cascRelay.id,
      key: cascRelay.key,
      issuedAt: t + 300,
      recipient: kz.address,
    }),
    issueEvidence({
      kind: 'delivery',
      envelope,
      issuer: kz.address,
      key: kz.identity,
      issuedAt: t + 400,
      recipient: kz.address,
    }),
    issueEvidence({
      kind: 'retrieval',
      envelope,
      issuer: kz.address,
      key: kz.identity,
      issuedAt: t + 500,
      recipient: kz.address,
    }),
  ];
  const shuffled = [chain[3]!, chain[0]!, chain[4]!, chain[2]!, chain[1]!];
  const trust = trustOf(world, 'wacap');
  const rejection = issueEvidence({
    kind: 'submission-rejection',
    envelope,
    issuer: wacapRelay.id,
    key: wacapRelay.key,
    issuedAt: t + 100,
    reason: { code: 'CHUNK_MISSING', detail: null },
  });
  const forged = { ...chain[3]!, body: { ...chain[3]!.body, issuedAt: t + 401 } };
  return [
    vector({
      name: 'evidence-chain-complete',
      kind: 'evidence-chain',
      description:
        'Submission, two relay acceptances (hub, casc), delivery and retrieval, given out of order.',
      code: null,
      input: { trust, envelope, evidences: shuffled },
      result: {
        ordered: chain.map((e) => `${e.body.kind}:${e.body.issuer}`),
        submission: 'accepted',
        recipients: { [kz.address]: 'retrieved' },
      },
    }),
    vector({
      name: 'evidence-chain-rejected',
      kind: 'evidence-chain',
      description: 'A submission rejection with a stable reason code ends the chain.',
      code: null,
      input: { trust, envelope, evidences: [rejection] },
      result: {
        ordered: [`submission-rejection:${wacapRelay.id}`],
        submission: 'rejected',
        recipients: { [kz.address]: 'rejected' },
      },
    }),
    vector({
      name: 'evidence-chain-retrieval-without-delivery',
      kind: 'evidence-chain',
      description: 'A retrieval with no delivery before it.',
      code: 'EVIDENCE_CHAIN_INVALID',
      input: { trust, envelope, evidences: [chain[0]!, chain[4]!] },
      result: null,
    }),
    vector({
      name: 'evidence-bad-signature',
      kind: 'evidence-chain',
      description: 'Delivery time changed after signing.',
      code: 'SIGNATURE_INVALID',
      input: { trust, envelope, evidences: [chain[0]!, forged] },
      result: null,
    }),
  ];
}

/** Every vector, in a fixed order. */
export async function buildVectors(): Promise<Vector[]> {
  await ready();
  const world = buildTestWorld({ now: VECTOR_NOW });
  const attachments = await attachmentVectors();
  const dossiers = dossierVectors(world, attachments.manifests);
  const all = [
    ...canonicalVectors(),
    ...manifestVectors(world),
    ...statementVectors(world),
    ...envelopeVectors(world, dossiers.oneRecipient),
    ...dossiers.vectors,
    ...attachments.vectors,
    ...evidenceVectors(world, dossiers.oneRecipient),
  ];
  // Drawn after every vector above, so that they did not change when these were added.
  all.push(...codeVectors(world, all));
  all.push(
    ...bundleScenarios(world, attachments.manifests, VECTOR_NOW).map((s) =>
      vector({ ...s, kind: 'bundle' }),
    ),
  );
  // Self-check: the generator must agree with the decryptor on the positive attachment vectors.
  for (const v of all.filter((x) => x.kind === 'attachment' && x.code === null)) {
    let size = 0;
    for await (const piece of decryptAttachment(
      v.input['manifest'],
      (v.input['chunks'] as string[]).map((c) => fromBase64url(c)),
    ))
      size += piece.length;
    if (size !== v.result!['size']) throw new Error(`generator self-check failed for ${v.name}`);
  }
  return all;
}
