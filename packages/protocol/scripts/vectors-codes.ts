/**
 * Vectors that pin every error code of docs/protocol.md §14.3, the
 * precedence cases the procedures decide (§3.1, §6.1, §8.1), sealed key
 * files (§13), sealing (§9.7), Ed25519 acceptance (§2.1) and secretstream
 * (§11.13). Imported by vectors-build.ts; draws its random bytes after every
 * older group so that adding it changed none of their files.
 */
import {
  CONTEXTS,
  canonicalBytes,
  encryptSignedDossier,
  fromBase64url,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  issueEvidence,
  openDossier,
  sealSigningKey,
  sha256,
  sign,
  signManifest,
  sodium,
  toBase64url,
  toHex,
  utf8,
  type AttachmentManifest,
  type Envelope,
  type ErrorCode,
  type Manifest,
  type SignedDossier,
  TrustStore,
} from '../src/index.js';
import { sealEncryptionKey } from '../src/keyfile.js';
import { sealTestDossier, testSeed, type TestWorld } from '../src/testing/index.js';
import {
  TAG_FINAL,
  TAG_MESSAGE,
  TAG_PUSH,
  TAG_REKEY,
  referenceInit,
  referencePush,
  referenceRekey,
} from './secretstream-reference.js';
import { VECTOR_NOW, trustOf, vector, type Vector } from './vectors-common.js';

const YEAR = 365 * 86_400_000;
const b64 = (bytes: Uint8Array) => toBase64url(bytes);
const hex = (bytes: Uint8Array) => toHex(sha256(bytes));
/** Fixed bytes derived from a label: SHA-256(UTF-8("rogatory-test-vectors/fixed/" + label)), repeated to length n. */
const fixedBytes = (label: string, n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 32)
    out.set(
      sha256(utf8(`rogatory-test-vectors/fixed/${label}/${i / 32}`)).subarray(
        0,
        Math.min(32, n - i),
      ),
      i,
    );
  return out;
};

function envelopeCodeVectors(world: TestWorld, envelope: Envelope): Vector[] {
  const trust = trustOf(world, 'wacap');
  const sn = world.authority('sn-moj@wacap');
  const wacapRelayOf = world.networks['wacap']!.relay;
  const impostor = generateSigningKeyPair(testSeed('vectors/impostor'));
  const resign = (body: Envelope['body'], key = sn.identity): Envelope => ({
    ...sign(CONTEXTS.envelope, body, key),
    hops: [],
  });
  const { hops: _hops, ...withoutHops } = envelope;
  const hop = (relay: string, dt: number) => ({ relay, receivedAt: envelope.body.createdAt + dt });
  const input = (value: unknown) => ({ trust, envelope: value });
  return [
    vector({
      name: 'envelope-schema-extra-member',
      kind: 'envelope',
      description:
        'An envelope body with a member the schema does not allow (schema, before the signature is looked at).',
      code: 'SCHEMA_INVALID',
      input: input(resign({ ...envelope.body, subject: 'x' } as Envelope['body'])),
      result: null,
    }),
    vector({
      name: 'envelope-hops-missing',
      kind: 'envelope',
      description:
        'Precedence: `hops` is not signed but REQUIRED (an empty array when no relay has accepted it); an envelope without it fails the schema although its signature verifies.',
      code: 'SCHEMA_INVALID',
      input: input(withoutHops),
      result: null,
    }),
    vector({
      name: 'envelope-lifetime-too-long',
      kind: 'envelope',
      description: 'Signed with expiresAt one millisecond beyond createdAt + 90 days (EC3).',
      code: 'LIMIT_EXCEEDED',
      input: input(
        resign({ ...envelope.body, expiresAt: envelope.body.createdAt + 90 * 86_400_000 + 1 }),
      ),
      result: null,
    }),
    vector({
      name: 'envelope-key-unknown',
      kind: 'envelope',
      description:
        'Signed by a key (its own key id) that the manifest does not list for the sender.',
      code: 'KEY_UNKNOWN',
      input: input(resign(envelope.body, impostor)),
      result: null,
    }),
    vector({
      name: 'envelope-key-wrong-role',
      kind: 'envelope',
      description:
        "Sent in the name of wacap's relay with its listed key: a relay key is not the key of a dossier party (an authority or a point of contact).",
      code: 'KEY_WRONG_ROLE',
      input: input(resign({ ...envelope.body, sender: wacapRelayOf.id }, wacapRelayOf.key)),
      result: null,
    }),
    vector({
      name: 'envelope-key-not-yet-valid',
      kind: 'envelope',
      description:
        "Created one second before the sender key's notBefore (and long expired at now: the key check comes first).",
      code: 'KEY_NOT_YET_VALID',
      input: input(
        resign({
          ...envelope.body,
          createdAt: sn.identityRef.notBefore - 1000,
          expiresAt: sn.identityRef.notBefore - 1000 + 7 * 86_400_000,
        }),
      ),
      result: null,
    }),
    vector({
      name: 'envelope-hop-limit',
      kind: 'envelope',
      description: 'Five hops for maxHops 4.',
      code: 'HOP_LIMIT_EXCEEDED',
      input: input({
        ...envelope,
        hops: ['relay@wacap', 'relay@global', 'relay@casc', 'relay@a', 'relay@b'].map((r, i) =>
          hop(r, 100 * (i + 1)),
        ),
      }),
      result: null,
    }),
    vector({
      name: 'envelope-hop-loop',
      kind: 'envelope',
      description: 'A relay twice in the hop path (a routing loop), within maxHops.',
      code: 'HOP_LIMIT_EXCEEDED',
      input: input({
        ...envelope,
        hops: [hop('relay@wacap', 100), hop('relay@global', 200), hop('relay@wacap', 300)],
      }),
      result: null,
    }),
  ];
}

function canonicalCodeVectors(): Vector[] {
  const deep = (n: number, inner: string) => `${'['.repeat(n)}${inner}${']'.repeat(n)}`;
  const cases: [string, string, ErrorCode | null, string][] = [
    [
      'canonical-depth-32',
      deep(32, '1'),
      null,
      'The value 1 at depth 32 (32 nested arrays): the deepest value accepted.',
    ],
    ['canonical-too-deep', deep(33, '1'), 'LIMIT_EXCEEDED', 'The value 1 at depth 33.'],
    [
      'canonical-too-deep-and-float',
      `{"a":1.5,"b":${deep(33, '1')}}`,
      'LIMIT_EXCEEDED',
      'Precedence: too deep and non-canonical (a fraction) at once is LIMIT_EXCEEDED, wherever the two faults are.',
    ],
    [
      'canonical-too-deep-and-whitespace',
      `{"a": ${deep(33, '1')}}`,
      'LIMIT_EXCEEDED',
      'Precedence: too deep and non-canonical (whitespace) at once is LIMIT_EXCEEDED.',
    ],
    [
      'canonical-too-deep-in-duplicate',
      `{"a":${deep(33, '1')},"a":1}`,
      'LIMIT_EXCEEDED',
      'Precedence: depth is counted on the text as written, including the value of a duplicate member that a parser would drop.',
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

function statementCodeVectors(world: TestWorld, certificate: Record<string, unknown>): Vector[] {
  const trust = trustOf(world, 'wacap');
  const cert = certificate as { body: Record<string, unknown>; signature: Record<string, unknown> };
  const { body: _b, ...withoutBody } = cert;
  const { kid: _k, ...signatureWithoutKid } = cert.signature;
  const input = (statement: unknown) => ({ trust, statementKind: 'encryption-key', statement });
  return [
    vector({
      name: 'statement-encryption-key-bad-address',
      kind: 'statement',
      description:
        'A standalone certificate whose subject is not a lowercase address: the subject is resolved first (§6.1).',
      code: 'ADDRESS_INVALID',
      input: input({ ...cert, body: { ...cert.body, subject: 'SN-MOJ@wacap' } }),
      result: null,
    }),
    vector({
      name: 'statement-encryption-key-no-body',
      kind: 'statement',
      description:
        'Precedence: a standalone certificate without a body is SCHEMA_INVALID before any key is looked up.',
      code: 'SCHEMA_INVALID',
      input: input(withoutBody),
      result: null,
    }),
    vector({
      name: 'statement-encryption-key-no-kid',
      kind: 'statement',
      description:
        'Precedence: a standalone certificate whose signature has no kid is SCHEMA_INVALID before any key is looked up.',
      code: 'SCHEMA_INVALID',
      input: input({ ...cert, signature: signatureWithoutKid }),
      result: null,
    }),
  ];
}

function manifestUpdateVectors(world: TestWorld): Vector[] {
  const wacap = world.networks['wacap']!;
  const v1 = wacap.manifest;
  const { type: _t, version: _v, previous: _p, ...body } = v1.body;
  const v2 = signManifest(
    { ...body, issuedAt: VECTOR_NOW, validUntil: VECTOR_NOW + YEAR },
    wacap.root,
    v1,
  );
  const v3 = signManifest(
    { ...body, issuedAt: VECTOR_NOW + 1000, validUntil: VECTOR_NOW + YEAR },
    wacap.root,
    v2,
  );
  const forked = sign(
    CONTEXTS.manifest,
    { ...v2.body, previous: toHex(sha256(utf8('not the previous manifest'))) },
    wacap.root,
  ) as Manifest;
  const trust = trustOf(world, 'wacap');
  const pinnedOnly = { ...trust, manifests: [] };
  const ok = (m: Manifest) => ({
    network: m.body.network,
    version: m.body.version,
    manifestSha256: toHex(sha256(canonicalBytes(m))),
  });
  return [
    vector({
      name: 'manifest-update-next-version',
      kind: 'manifest-update',
      description:
        'Version 2 of wacap, signed by its root with previous = hash of version 1, added to a store holding version 1.',
      code: null,
      input: { trust, manifest: v2 },
      result: ok(v2),
    }),
    vector({
      name: 'manifest-update-skipped-version',
      kind: 'manifest-update',
      description: 'Version 3 offered to a store holding version 1.',
      code: 'MANIFEST_CHAIN_BROKEN',
      input: { trust, manifest: v3 },
      result: null,
    }),
    vector({
      name: 'manifest-update-wrong-previous',
      kind: 'manifest-update',
      description:
        'Version 2 whose previous hash is not that of version 1 (a fork), validly signed by the root.',
      code: 'MANIFEST_CHAIN_BROKEN',
      input: { trust, manifest: forked },
      result: null,
    }),
    vector({
      name: 'manifest-update-rollback',
      kind: 'manifest-update',
      description:
        'Version 1 offered again to a store holding version 2 (an older edition put back, or served after a restart).',
      code: 'MANIFEST_ROLLBACK',
      input: { trust: { ...trust, manifests: [...trust.manifests, v2] }, manifest: v1 },
      result: null,
    }),
    vector({
      name: 'manifest-update-same-version-fork',
      kind: 'manifest-update',
      description:
        'Another version 2, validly signed by the root, offered to a store holding version 2.',
      code: 'MANIFEST_ROLLBACK',
      input: { trust: { ...trust, manifests: [...trust.manifests, v2] }, manifest: forked },
      result: null,
    }),
    vector({
      name: 'manifest-update-expired',
      kind: 'manifest-update',
      description: 'Version 1 added at its validUntil.',
      code: 'MANIFEST_EXPIRED',
      now: v1.body.validUntil,
      input: { trust: pinnedOnly, manifest: v1 },
      result: null,
    }),
  ];
}

function dossierCodeVectors(
  world: TestWorld,
  oneRecipient: { envelope: Envelope; dossier: SignedDossier },
): Vector[] {
  const sn = world.authority('sn-moj@wacap');
  const kz = world.authority('kz-gpo@casc');
  const ng = world.authority('ng-agf@wacap');
  const content = oneRecipient.dossier.body.content as { header: Record<string, unknown> };
  const misaddressed = sign(
    CONTEXTS.dossier,
    {
      ...oneRecipient.dossier.body,
      content: {
        ...content,
        header: {
          ...content.header,
          requestedAuthority: {
            address: ng.address,
            name: 'National Agency (test)',
            country: 'NG',
          },
        },
      },
    },
    sn.identity,
  ) as SignedDossier;
  const fixed = {
    contentKey: sha256(utf8('content-invalid/key')),
    nonce: sha256(utf8('content-invalid/nonce')).subarray(0, 24),
  };
  const sealed = encryptSignedDossier({
    dossier: misaddressed,
    targets: [
      { to: kz.address, key: kz.encryptionRef },
      { to: sn.address, key: sn.encryptionRef },
    ],
    testRandomness: fixed,
  });
  const { type: _t, version: _v, totalSize: _s, ...envBody } = oneRecipient.envelope.body;
  const total = sealed.length + envBody.chunks.reduce((n, c) => n + c.size, 0);
  const envelope: Envelope = {
    ...sign(
      CONTEXTS.envelope,
      {
        ...oneRecipient.envelope.body,
        dossier: { id: hex(sealed), size: sealed.length },
        totalSize: total,
      },
      sn.identity,
    ),
    hops: [],
  };
  const trust = trustOf(world, 'casc');
  const a = kz;
  const reader = {
    address: a.address,
    encryptionKeys: [
      {
        kid: a.encryption.kid,
        publicKey: b64(a.encryption.publicKey),
        secretKey: b64(a.encryption.secretKey),
      },
    ],
  };
  return [
    vector({
      name: 'dossier-content-invalid',
      kind: 'sealed-dossier',
      description:
        'Validly signed and sealed, but the request names as requested authority an authority that is not a recipient (content-parties rule, §9.6).',
      code: 'CONTENT_INVALID',
      input: { trust, reader, envelope, sealed: b64(sealed) },
      result: null,
    }),
  ];
}

function attachmentCodeVectors(several: {
  manifest: Record<string, unknown>;
  chunks: string[];
}): Vector[] {
  return [
    vector({
      name: 'attachment-wrong-plaintext-hash',
      kind: 'attachment',
      description: 'Every chunk decrypts, but the manifest gives another plaintext SHA-256.',
      code: 'ATTACHMENT_MISMATCH',
      input: {
        manifest: { ...several.manifest, sha256: toHex(sha256(utf8('another plaintext'))) },
        chunks: several.chunks,
      },
      result: null,
    }),
  ];
}

function evidenceCodeVectors(world: TestWorld, envelope: Envelope, other: Envelope): Vector[] {
  const wacapRelay = world.networks['wacap']!.relay;
  const t = envelope.body.createdAt;
  return [
    vector({
      name: 'evidence-other-envelope',
      kind: 'evidence-chain',
      description: 'A validly signed submission acceptance about another envelope.',
      code: 'EVIDENCE_MISMATCH',
      input: {
        trust: trustOf(world, 'wacap'),
        envelope,
        evidences: [
          issueEvidence({
            kind: 'submission-acceptance',
            envelope: other,
            issuer: wacapRelay.id,
            key: wacapRelay.key,
            issuedAt: t + 100,
          }),
        ],
      },
      result: null,
    }),
  ];
}

function keyFileVectors(): Vector[] {
  const limits = { opslimit: 1, memlimit: 8192 };
  const passphrase = 'correct horse battery staple';
  const identity = generateSigningKeyPair(testSeed('vectors/keyfile/identity'));
  const encryption = generateEncryptionKeyPair(testSeed('vectors/keyfile/encryption'));
  const signingFile = sealSigningKey(identity, {
    passphrase,
    purpose: 'authority-identity',
    limits,
  });
  const encryptionFile = sealEncryptionKey(encryption, {
    passphrase,
    purpose: 'authority-encryption',
    limits,
  });
  const ct = fromBase64url(signingFile.ciphertext);
  ct[0]! ^= 0x01;
  const input = (
    keyFile: unknown,
    extra: { passphrase?: string; purpose?: string; keyKind?: string } = {},
  ) => ({
    keyFile,
    passphrase: extra.passphrase ?? passphrase,
    purpose: extra.purpose ?? 'authority-identity',
    keyKind: extra.keyKind ?? 'signing',
  });
  return [
    vector({
      name: 'keyfile-signing-key',
      kind: 'key-file',
      description:
        'An Ed25519 identity seed sealed under a passphrase (opslimit 1, memlimit 8192: test work factors only).',
      code: null,
      input: input(signingFile),
      result: {
        kid: identity.kid,
        publicKey: b64(identity.publicKey),
        secret: b64(identity.secretKey.subarray(0, 32)),
      },
    }),
    vector({
      name: 'keyfile-encryption-key',
      kind: 'key-file',
      description: 'An X25519 secret key sealed under a passphrase.',
      code: null,
      input: input(encryptionFile, { purpose: 'authority-encryption', keyKind: 'encryption' }),
      result: {
        kid: encryption.kid,
        publicKey: b64(encryption.publicKey),
        secret: b64(encryption.secretKey),
      },
    }),
    vector({
      name: 'keyfile-wrong-passphrase',
      kind: 'key-file',
      description: 'Opened with another passphrase.',
      code: 'PASSPHRASE_INVALID',
      input: input(signingFile, { passphrase: 'correct horse battery stapler' }),
      result: null,
    }),
    vector({
      name: 'keyfile-tampered',
      kind: 'key-file',
      description: 'One ciphertext bit flipped.',
      code: 'PASSPHRASE_INVALID',
      input: input({ ...signingFile, ciphertext: b64(ct) }),
      result: null,
    }),
    vector({
      name: 'keyfile-wrong-purpose',
      kind: 'key-file',
      description:
        'An encryption key file offered as an identity key: refused before any key derivation.',
      code: 'KEY_WRONG_ROLE',
      input: input(encryptionFile),
      result: null,
    }),
    vector({
      name: 'keyfile-work-factor-out-of-range',
      kind: 'key-file',
      description: 'opslimit 0 (the schema allows 1 to 64).',
      code: 'SCHEMA_INVALID',
      input: input({ ...signingFile, opslimit: 0 }),
      result: null,
    }),
  ];
}

/** Dossier sealing with every random value given (§9.7), including the sealed boxes' ephemeral keys. */
function sealVectors(world: TestWorld, attachments: readonly AttachmentManifest[]): Vector[] {
  const sn = world.authority('sn-moj@wacap');
  const kz = world.authority('kz-gpo@casc');
  const randomness = {
    envelopeId: b64(fixedBytes('seal/envelope-id', 16)),
    contentKey: fixedBytes('seal/content-key', 32),
    nonce: fixedBytes('seal/nonce', 24),
    ephemeralSecretKeys: [fixedBytes('seal/ephemeral/0', 32), fixedBytes('seal/ephemeral/1', 32)],
  };
  const createdAt = VECTOR_NOW - 60_000;
  const sealed = sealTestDossier(world, {
    from: sn.address,
    to: [kz.address],
    envelopeId: randomness.envelopeId,
    attachments,
    createdAt,
    testRandomness: {
      contentKey: randomness.contentKey,
      nonce: randomness.nonce,
      ephemeralSecretKeys: randomness.ephemeralSecretKeys,
    },
  });
  return [
    vector({
      name: 'seal-one-recipient',
      kind: 'seal',
      description:
        'sealDossier (§9.7) of an MLA request with two attachments to one recipient, with every random value fixed: the envelope id, content key, payload nonce and the ephemeral X25519 secret key of each sealed box (recipient first, then the archive wrap).',
      code: null,
      input: {
        sender: {
          address: sn.address,
          identitySeed: b64(testSeed(`${sn.address}/identity`)),
          archiveKey: sn.encryptionRef,
        },
        recipients: [{ address: kz.address, encryptionKey: kz.encryptionRef }],
        content: sealed.dossier.body.content,
        attachments,
        createdAt,
        expiresAt: sealed.envelope.body.expiresAt,
        maxHops: sealed.envelope.body.maxHops,
        randomness: {
          envelopeId: randomness.envelopeId,
          contentKey: b64(randomness.contentKey),
          nonce: b64(randomness.nonce),
          ephemeralSecretKeys: randomness.ephemeralSecretKeys.map(b64),
        },
      },
      result: {
        envelope: sealed.envelope,
        sealed: b64(sealed.sealed),
        sealedSha256: hex(sealed.sealed),
        dossierSha256: toHex(sha256(canonicalBytes(sealed.dossier))),
      },
    }),
  ];
}

/**
 * Ed25519 acceptance (§2.1). The cases are built from RFC 8032 test 1 and
 * from the small-order points of edwards25519; each runs through
 * crypto_sign_verify_detached of both libsodium builds.
 */
function signatureVectors(): Vector[] {
  const s = sodium();
  type Case = {
    name: string;
    description: string;
    publicKey: Uint8Array;
    message: Uint8Array;
    signature: Uint8Array;
    code: ErrorCode | null;
  };
  const cases: Case[] = [];
  const add = (
    name: string,
    description: string,
    publicKey: Uint8Array,
    message: Uint8Array,
    signature: Uint8Array,
    code: ErrorCode | null,
  ) => cases.push({ name, description, publicKey, message, signature, code });
  /** h = SHA-512(R ‖ A ‖ M) mod L, little-endian. */
  const hOf = (R: Uint8Array, A: Uint8Array, M: Uint8Array) =>
    s.crypto_core_ed25519_scalar_reduce(s.crypto_hash_sha512(Uint8Array.of(...R, ...A, ...M)));
  /** The first message "message <i>" for which h mod 8 is `residue`. */
  const messageWith = (R: Uint8Array, A: Uint8Array, residue: number) => {
    for (let i = 0; ; i++) {
      const M = utf8(`message ${i}`);
      if ((hOf(R, A, M)[0]! & 7) === residue) return M;
    }
  };

  // RFC 8032 §7.1 TEST 1 (empty message).
  const pk = fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
  const sig = fromHex(
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  );
  const empty = new Uint8Array(0);
  // L, the order of the prime-order subgroup, little-endian.
  const L = fromHex('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');
  const plusL = (scalar: Uint8Array) => {
    const out = new Uint8Array(32);
    let carry = 0;
    for (let i = 0; i < 32; i++) {
      const v = scalar[i]! + L[i]! + carry;
      out[i] = v & 0xff;
      carry = v >> 8;
    }
    return out;
  };
  const withS = (S: Uint8Array) => Uint8Array.of(...sig.subarray(0, 32), ...S);
  add('signature-rfc8032-test1', 'RFC 8032 §7.1 TEST 1: accepted.', pk, empty, sig, null);
  add(
    'signature-s-plus-l',
    'The same signature with S + L (same point, non-canonical scalar): refused.',
    pk,
    empty,
    withS(plusL(sig.subarray(32))),
    'SIGNATURE_INVALID',
  );
  add(
    'signature-s-high-bits',
    'S with its three high bits set (S ≥ 2^253): refused.',
    pk,
    empty,
    withS(Uint8Array.of(...sig.subarray(32, 63), sig[63]! | 0xe0)),
    'SIGNATURE_INVALID',
  );
  add(
    'signature-key-not-on-curve',
    'A public key that does not decode to a curve point (y = 2): refused.',
    fromHex('0200000000000000000000000000000000000000000000000000000000000000'),
    empty,
    sig,
    'SIGNATURE_INVALID',
  );

  // Every encoding of a small-order point (the seven values of §2.1 rule 5, with either sign bit) as
  // the public key, R = identity and S = 0, with a message for which h ≡ 0 (mod 8): then [h]A is the
  // identity and the verification equation holds, so only the small-order rule refuses them.
  const identity = fromHex('0100000000000000000000000000000000000000000000000000000000000000');
  const zeroS = new Uint8Array(32);
  const smallOrder: [string, string, string][] = [
    [
      'signature-identity-key',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'the identity (order 1)',
    ],
    [
      'signature-identity-key-sign-bit',
      '0100000000000000000000000000000000000000000000000000000000000080',
      'the identity with the sign bit set',
    ],
    [
      'signature-non-canonical-key',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'y = p + 1, a non-canonical encoding of the identity',
    ],
    [
      'signature-order2-key',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'the point of order 2 (y = p − 1)',
    ],
    [
      'signature-order4-key',
      '0000000000000000000000000000000000000000000000000000000000000000',
      'a point of order 4 (y = 0)',
    ],
    [
      'signature-order4-key-negative',
      '0000000000000000000000000000000000000000000000000000000000000080',
      'the other point of order 4 (y = 0, sign bit set)',
    ],
    [
      'signature-order4-non-canonical-key',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'y = p, a non-canonical encoding of y = 0 (order 4)',
    ],
    [
      'signature-order8-key',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
      'a point of order 8',
    ],
    [
      'signature-order8-key-negative',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
      'the same y with the sign bit set (order 8)',
    ],
    [
      'signature-order8-other-key',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      'a point of order 8 with y = p − (the y above)',
    ],
    [
      'signature-order8-other-key-negative',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
      'that y with the sign bit set (order 8)',
    ],
  ];
  for (const [name, keyHex, what] of smallOrder) {
    const A = fromHex(keyHex);
    add(
      name,
      `Public key ${what}; R = identity, S = 0 and a message with h ≡ 0 (mod 8), so that the cofactorless equation holds: refused because A has small order.`,
      A,
      messageWith(identity, A, 0),
      Uint8Array.of(...identity, ...zeroS),
      'SIGNATURE_INVALID',
    );
  }

  // A mixed-order public key A' = [a]B + T8 (T8 of order 8) and signatures S = r + h·a: then
  // [S]B − [h]A' = [r]B − [h]T8, equal to R = [r]B exactly when h ≡ 0 (mod 8). The cofactorless
  // equation that libsodium checks holds only then; the cofactored one always holds.
  const scalar = (label: string) =>
    s.crypto_core_ed25519_scalar_reduce(
      s.crypto_hash_sha512(utf8(`rogatory-test-vectors/ed25519/${label}`)),
    );
  const T8 = fromHex(smallOrder[7]![1]);
  const a = scalar('a');
  const mixed = s.crypto_core_ed25519_add(s.crypto_scalarmult_ed25519_base_noclamp(a), T8);
  const r = scalar('r');
  const R = s.crypto_scalarmult_ed25519_base_noclamp(r);
  const signMixed = (residue: number) => {
    const message = messageWith(R, mixed, residue);
    const S = s.crypto_core_ed25519_scalar_add(
      r,
      s.crypto_core_ed25519_scalar_mul(hOf(R, mixed, message), a),
    );
    return { message, signature: Uint8Array.of(...R, ...S) };
  };
  const good = signMixed(0);
  const cofactoredOnly = signMixed(3);
  add(
    'signature-mixed-order-key',
    'A public key of mixed order ([a]B + a point of order 8) and a signature for which the cofactorless equation holds: accepted (libsodium does not check that A is in the prime-order subgroup).',
    mixed,
    good.message,
    good.signature,
    null,
  );
  add(
    'signature-mixed-order-key-cofactored-only',
    'The same mixed-order key and a signature for which only the cofactored equation holds: refused (verification is cofactorless).',
    mixed,
    cofactoredOnly.message,
    cofactoredOnly.signature,
    'SIGNATURE_INVALID',
  );

  // A small-order R with the equation holding: with S = h·a, [S]B − [h]A' = −[h]T8, which is R = T8
  // when h ≡ 7 (mod 8). Only the small-order rule for R refuses it.
  const smallR = (() => {
    const message = messageWith(T8, mixed, 7);
    const S = s.crypto_core_ed25519_scalar_mul(hOf(T8, mixed, message), a);
    return { message, signature: Uint8Array.of(...T8, ...S) };
  })();
  add(
    'signature-small-order-r',
    'The mixed-order key above, R of order 8 and S = h·a, so that [S]B − [h]A = R (the cofactorless equation holds): refused because R has small order.',
    mixed,
    smallR.message,
    smallR.signature,
    'SIGNATURE_INVALID',
  );

  // Self-check: the generator's libsodium agrees with the expected outcomes.
  for (const c of cases) {
    let ok: boolean;
    try {
      ok = s.crypto_sign_verify_detached(c.signature, c.message, c.publicKey);
    } catch {
      ok = false;
    }
    if (ok !== (c.code === null)) throw new Error(`generator self-check failed for ${c.name}`);
  }
  return cases.map((c) =>
    vector({
      name: c.name,
      kind: 'signature',
      description: c.description,
      code: c.code,
      input: { publicKey: b64(c.publicKey), message: b64(c.message), signature: b64(c.signature) },
      result: c.code === null ? { valid: true } : null,
    }),
  );
}

function fromHex(text: string): Uint8Array {
  return Uint8Array.from(text.match(/../g)!, (h) => parseInt(h, 16));
}

/** secretstream known answers (§11.13), built with the written-out construction and checked against libsodium. */
function secretstreamVectors(): Vector[] {
  const s = sodium();
  const key = fixedBytes('secretstream/key', 32);
  const header = fixedBytes('secretstream/header', 24);
  type Step = { message: Uint8Array; ad: Uint8Array; tag: number } | 'rekey';
  const build = (name: string, description: string, steps: Step[]): Vector => {
    const state = referenceInit(key, header);
    const pull = s.crypto_secretstream_xchacha20poly1305_init_pull(header, key);
    const outSteps: Record<string, unknown>[] = [];
    const results: Record<string, unknown>[] = [];
    for (const step of steps) {
      if (step === 'rekey') {
        referenceRekey(state);
        s.crypto_secretstream_xchacha20poly1305_rekey(pull);
        outSteps.push({ rekey: true });
        continue;
      }
      const c = referencePush(state, step.message, step.ad, step.tag);
      // Self-check against libsodium.
      const back = s.crypto_secretstream_xchacha20poly1305_pull(
        pull,
        c,
        step.ad.length > 0 ? step.ad : null,
      );
      if (!back || back.tag !== step.tag || toHex(back.message) !== toHex(step.message))
        throw new Error(`generator self-check failed for ${name}`);
      outSteps.push({ ad: b64(step.ad), ciphertext: b64(c) });
      results.push({ message: b64(step.message), tag: step.tag });
    }
    return vector({
      name,
      kind: 'secretstream',
      description,
      code: null,
      input: { key: b64(key), header: b64(header), steps: outSteps },
      result: { messages: results },
    });
  };
  const m = (n: number, seed: number) =>
    Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
  const none = new Uint8Array(0);
  const vectors = [
    build(
      'secretstream-message-final',
      'Three messages (0, 15 and 64 bytes) with TAG_MESSAGE, then 1 byte with TAG_FINAL: the tags and lengths attachments use.',
      [
        { message: none, ad: none, tag: TAG_MESSAGE },
        { message: m(15, 1), ad: none, tag: TAG_MESSAGE },
        { message: m(64, 2), ad: none, tag: TAG_MESSAGE },
        { message: m(1, 3), ad: none, tag: TAG_FINAL },
      ],
    ),
    build(
      'secretstream-ad-push-rekey',
      'Additional data of 1, 16 and 17 bytes; TAG_PUSH; TAG_REKEY (the state rekeys after the message); an explicit rekey; then TAG_FINAL.',
      [
        { message: m(33, 4), ad: m(1, 5), tag: TAG_MESSAGE },
        { message: m(16, 6), ad: m(16, 7), tag: TAG_PUSH },
        { message: m(100, 8), ad: m(17, 9), tag: TAG_REKEY },
        { message: m(5, 10), ad: none, tag: TAG_MESSAGE },
        'rekey',
        { message: m(48, 11), ad: none, tag: TAG_FINAL },
      ],
    ),
  ];
  const first = vectors[0]!;
  const steps = (first.input['steps'] as { ciphertext: string; ad: string }[]).map((x) => ({
    ...x,
  }));
  const flipped = fromBase64url(steps[1]!.ciphertext);
  flipped[5]! ^= 0x01;
  steps[1]!.ciphertext = b64(flipped);
  vectors.push(
    vector({
      name: 'secretstream-tampered',
      kind: 'secretstream',
      description: 'secretstream-message-final with one bit of the second message flipped.',
      code: 'DECRYPT_FAILED',
      input: { ...first.input, steps },
      result: null,
    }),
  );
  return vectors;
}

/** Every vector of this module, in a fixed order; `built` are the vectors of vectors-build.ts. */
export function codeVectors(world: TestWorld, built: readonly Vector[]): Vector[] {
  const byName = (name: string) => {
    const v = built.find((x) => x.name === name);
    if (!v) throw new Error(`vector ${name} not built`);
    return v;
  };
  const one = byName('dossier-one-recipient');
  const envelope = one.input['envelope'] as Envelope;
  // The signed dossier of dossier-one-recipient, as its recipient opens it.
  const kz = world.authority('kz-gpo@casc');
  const trust = new TrustStore({
    pinned: [{ network: 'casc', root: world.networks['casc']!.rootRef }],
  });
  for (const m of trustOf(world, 'casc').manifests) trust.addManifest(m);
  const { dossier } = openDossier({
    envelope,
    sealed: fromBase64url(one.input['sealed'] as string),
    reader: { address: kz.address, encryptionKeys: [kz.encryption] },
    trust,
  });
  return [
    ...canonicalCodeVectors(),
    ...envelopeCodeVectors(world, envelope),
    ...statementCodeVectors(
      world,
      byName('statement-encryption-key').input['statement'] as Record<string, unknown>,
    ),
    ...manifestUpdateVectors(world),
    ...dossierCodeVectors(world, { envelope, dossier }),
    ...attachmentCodeVectors(
      byName('attachment-several-chunks').input as {
        manifest: Record<string, unknown>;
        chunks: string[];
      },
    ),
    ...evidenceCodeVectors(
      world,
      envelope,
      byName('dossier-three-recipients').input['envelope'] as Envelope,
    ),
    ...keyFileVectors(),
    ...sealVectors(world, dossier.body.attachments),
    ...signatureVectors(),
    ...secretstreamVectors(),
  ];
}
