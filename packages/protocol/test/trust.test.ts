import { beforeAll, describe, expect, it } from 'vitest';
import { ProtocolError } from '../src/errors.js';
import { generateEncryptionKeyPair, generateSigningKeyPair, keyRef } from '../src/keys.js';
import { ready } from '../src/sodium.js';
import { CONTEXTS, sign, signBytes, verifySignature } from '../src/signed.js';
import {
  certifyEncryptionKey,
  signIntroduction,
  signKeyRotation,
  signManifest,
  signRevocation,
  verifyManifest,
  type Manifest,
} from '../src/statements.js';
import { ROTATION_OVERLAP_MAX_MS, TrustStore, verifyStandaloneCertificate } from '../src/trust.js';
import { openDossier } from '../src/dossier.js';
import { utf8 } from '../src/bytes.js';
import {
  buildTestWorld,
  encryptTestAttachment,
  sealTestDossier,
  testSeed,
  type TestWorld,
} from '../src/testing/index.js';
import { codeOf } from './support/code-of.js';

const NOW = Date.UTC(2026, 10, 1);
let world: TestWorld;

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: NOW });
});

describe('signatures', () => {
  it('are domain separated by context', () => {
    const key = generateSigningKeyPair(testSeed('ctx'));
    const body = { type: 'x', n: 1 };
    const sig = signBytes(CONTEXTS.manifest, body, key);
    expect(() => verifySignature(CONTEXTS.manifest, body, sig, key.publicKey)).not.toThrow();
    expect(codeOf(() => verifySignature(CONTEXTS.evidence, body, sig, key.publicKey))).toBe(
      'SIGNATURE_INVALID',
    );
    expect(
      codeOf(() => verifySignature(CONTEXTS.manifest, { ...body, n: 2 }, sig, key.publicKey)),
    ).toBe('SIGNATURE_INVALID');
  });
});

describe('manifests', () => {
  it('verify under the pinned root and not under another', () => {
    const wacap = world.networks['wacap']!;
    expect(verifyManifest(wacap.manifest, wacap.rootRef).body.network).toBe('wacap');
    expect(codeOf(() => verifyManifest(wacap.manifest, world.networks['casc']!.rootRef))).toBe(
      'TRUST_CHAIN_BROKEN',
    );
  });

  it('reject a tampered member list', () => {
    const wacap = world.networks['wacap']!;
    const tampered = structuredClone(wacap.manifest) as {
      body: { authorities: { name: string }[] };
    };
    tampered.body.authorities[0]!.name = 'Someone else';
    expect(codeOf(() => verifyManifest(tampered, wacap.rootRef))).toBe('SIGNATURE_INVALID');
  });

  it('reject an encryption key certified by another identity', () => {
    const wacap = world.networks['wacap']!;
    const m = structuredClone<Manifest>(wacap.manifest);
    const [a, b] = m.body.authorities;
    const swapped = {
      ...m.body,
      authorities: [{ ...a!, encryptionKeys: b!.encryptionKeys }, ...m.body.authorities.slice(1)],
    };
    const resigned = sign(CONTEXTS.manifest, swapped, wacap.root);
    expect(codeOf(() => verifyManifest(resigned, wacap.rootRef))).toBe('SCHEMA_INVALID');
  });

  it('chain versions: succession accepted, rollback and forks refused', () => {
    const wacap = world.networks['wacap']!;
    const { type: _t, version: _v, previous: _p, ...rest } = wacap.manifest.body;
    const v2 = signManifest({ ...rest, issuedAt: NOW }, wacap.root, wacap.manifest);
    const v3 = signManifest({ ...rest, issuedAt: NOW + 1 }, wacap.root, v2);
    const fork2 = signManifest({ ...rest, issuedAt: NOW + 2 }, wacap.root, wacap.manifest);
    const trust = new TrustStore({ pinned: [{ network: 'wacap', root: wacap.rootRef }] });
    expect(trust.addManifest(wacap.manifest)).toBe(true);
    expect(codeOf(() => trust.addManifest(v3))).toBe('MANIFEST_CHAIN_BROKEN');
    expect(trust.addManifest(v2)).toBe(true);
    expect(trust.addManifest(v2)).toBe(false);
    expect(codeOf(() => trust.addManifest(fork2))).toBe('MANIFEST_ROLLBACK');
    expect(codeOf(() => trust.addManifest(wacap.manifest))).toBe('MANIFEST_ROLLBACK');
    expect(trust.addManifest(v3)).toBe(true);
    expect(trust.manifest('wacap')?.body.version).toBe(3);
  });

  it('trust peer networks through anchors of the pinned network only', () => {
    const trust = world.trustFor('wacap');
    expect(trust.networks().sort()).toEqual(['casc', 'global', 'wacap']);
    const isolated = new TrustStore({
      pinned: [{ network: 'wacap', root: world.networks['wacap']!.rootRef }],
    });
    expect(codeOf(() => isolated.addManifest(world.networks['casc']!.manifest))).toBe(
      'TRUST_CHAIN_BROKEN',
    );
  });
});

describe('key resolution', () => {
  it('checks role, validity, rotation and revocation at the time of use', () => {
    const trust = world.trustFor('wacap');
    const sn = world.authority('sn-moj@wacap');
    expect(trust.resolveSigningKey(sn.address, sn.identity.kid, NOW).role).toBe('authority');
    expect(codeOf(() => trust.resolveSigningKey(sn.address, sn.identity.kid, NOW, ['relay']))).toBe(
      'KEY_WRONG_ROLE',
    );
    expect(
      codeOf(() => trust.resolveSigningKey(sn.address, sn.identity.kid, sn.identityRef.notAfter)),
    ).toBe('KEY_EXPIRED');
    expect(
      codeOf(() =>
        trust.resolveSigningKey(sn.address, sn.identity.kid, sn.identityRef.notBefore - 1),
      ),
    ).toBe('KEY_NOT_YET_VALID');
    expect(codeOf(() => trust.resolveSigningKey('nobody@wacap', sn.identity.kid, NOW))).toBe(
      'KEY_UNKNOWN',
    );
    expect(codeOf(() => trust.resolveSigningKey(sn.address, 'AAAAAAAAAAAAAAAAAAAAAA', NOW))).toBe(
      'KEY_UNKNOWN',
    );

    const newKey = generateSigningKeyPair(testSeed('sn-moj@wacap/identity/2'));
    const rotation = signKeyRotation({
      subject: sn.address,
      oldKey: sn.identity,
      newKey,
      effectiveAt: NOW + 1000,
      notAfter: NOW + 10 ** 11,
    });
    trust.addKeyRotation(rotation);
    expect(trust.resolveSigningKey(sn.address, sn.identity.kid, NOW).key.kid).toBe(sn.identity.kid);
    expect(codeOf(() => trust.resolveSigningKey(sn.address, sn.identity.kid, NOW + 1000))).toBe(
      'KEY_EXPIRED',
    );
    expect(trust.resolveSigningKey(sn.address, newKey.kid, NOW + 1000).key.kid).toBe(newKey.kid);

    const revocation = signRevocation(
      {
        network: 'wacap',
        subject: sn.address,
        kid: newKey.kid,
        reason: 'key-compromise',
        revokedAt: NOW + 5000,
        issuedAt: NOW + 6000,
      },
      world.networks['wacap']!.root,
    );
    trust.addRevocation(revocation);
    expect(trust.resolveSigningKey(sn.address, newKey.kid, NOW + 4999).key.kid).toBe(newKey.kid);
    expect(codeOf(() => trust.resolveSigningKey(sn.address, newKey.kid, NOW + 5000))).toBe(
      'KEY_REVOKED',
    );
  });

  it('refuses a rotation without a valid possession proof, and revocations by strangers', () => {
    const trust = world.trustFor('wacap');
    const sn = world.authority('sn-moj@wacap');
    const newKey = generateSigningKeyPair(testSeed('x/new'));
    const rotation = signKeyRotation({
      subject: sn.address,
      oldKey: sn.identity,
      newKey,
      effectiveAt: NOW,
      notAfter: NOW + 10 ** 10,
    });
    const forgedProof = { ...rotation.body, proof: rotation.signature.value };
    expect(
      codeOf(() => trust.addKeyRotation(sign(CONTEXTS.keyRotation, forgedProof, sn.identity))),
    ).toBe('SIGNATURE_INVALID');
    const stranger = generateSigningKeyPair(testSeed('stranger'));
    const bogus = signRevocation(
      {
        network: 'wacap',
        subject: sn.address,
        kid: sn.identity.kid,
        reason: 'superseded',
        revokedAt: NOW,
        issuedAt: NOW,
      },
      stranger,
    );
    expect(codeOf(() => trust.addRevocation(bogus))).toBe('KEY_WRONG_ROLE');
    const self = signRevocation(
      {
        network: 'wacap',
        subject: sn.address,
        kid: sn.identity.kid,
        reason: 'key-compromise',
        revokedAt: NOW,
        issuedAt: NOW,
      },
      sn.identity,
    );
    trust.addRevocation(self);
    expect(codeOf(() => trust.resolveSigningKey(sn.address, sn.identity.kid, NOW))).toBe(
      'KEY_REVOKED',
    );
  });

  it('lists usable encryption keys', () => {
    const trust = world.trustFor('casc');
    const kz = world.authority('kz-gpo@casc');
    expect(trust.encryptionKeysFor(kz.address, NOW).map((k) => k.kid)).toEqual([kz.encryption.kid]);
    expect(trust.encryptionKeysFor(kz.address, kz.encryptionRef.notAfter)).toEqual([]);
  });

  it('lists the encryption keys of a point of contact, in its own network and a peer network', () => {
    const casc = world.networks['casc']!;
    for (const trust of [world.trustFor('casc'), world.trustFor('wacap')]) {
      expect(trust.encryptionKeysFor(casc.poc.address, NOW).map((k) => k.kid)).toEqual([
        casc.poc.encryption.kid,
      ]);
      expect(trust.poc(casc.poc.address)?.key.kid).toBe(casc.poc.key.kid);
    }
    expect(codeOf(() => world.trustFor('casc').encryptionKeysFor('nobody@casc', NOW))).toBe(
      'KEY_UNKNOWN',
    );
  });

  it('stops listing a point of contact encryption key its network revoked', () => {
    const wacap = world.networks['wacap']!;
    const revoked = signManifest(
      {
        ...wacap.manifest.body,
        revoked: [{ kid: wacap.poc.encryption.kid, revokedAt: NOW, reason: 'key-compromise' }],
      },
      wacap.root,
      wacap.manifest,
    );
    const trust = world.trustFor('wacap');
    trust.addManifest(revoked);
    expect(trust.encryptionKeysFor(wacap.poc.address, NOW - 1).map((k) => k.kid)).toEqual([
      wacap.poc.encryption.kid,
    ]);
    expect(trust.encryptionKeysFor(wacap.poc.address, NOW)).toEqual([]);
  });

  it('lets an authority of another network seal a dossier to a point of contact, which opens it', async () => {
    const casc = world.networks['casc']!;
    const sender = world.trustFor('wacap');
    // The key the sender wraps to comes from its trust store, as a node picks it.
    expect(sender.encryptionKeysFor(casc.poc.address, NOW)[0]).toEqual(casc.poc.encryptionRef);
    // The example MLA request refers to two attachments.
    const attachments = [
      (await encryptTestAttachment(utf8('warrant'), { name: 'warrant.pdf' })).manifest,
      (await encryptTestAttachment(utf8('records'), { name: 'records.csv', mediaType: 'text/csv' }))
        .manifest,
    ];
    const sealed = sealTestDossier(world, {
      from: 'sn-moj@wacap',
      to: [casc.poc.address],
      attachments,
    });
    const opened = openDossier({
      envelope: sealed.envelope,
      sealed: sealed.sealed,
      reader: { address: casc.poc.address, encryptionKeys: [casc.poc.encryption] },
      trust: world.trustFor('casc'),
    });
    expect(opened.dossier.body.recipients).toEqual([casc.poc.address]);
    expect(opened.sender.address).toBe('sn-moj@wacap');
  });

  it('verifies a standalone certificate of a point of contact, and not of a relay', () => {
    const wacap = world.networks['wacap']!;
    const trust = world.trustFor('wacap');
    const cert = wacap.manifest.body.pocs[0]!.encryptionKeys[0]!;
    expect(verifyStandaloneCertificate(cert, trust, NOW).body.key.kid).toBe(
      wacap.poc.encryption.kid,
    );
    const byRelay = certifyEncryptionKey({
      subject: wacap.relay.id,
      identity: wacap.relay.key,
      encryptionKey: wacap.poc.encryption,
      notBefore: NOW - 1,
      notAfter: NOW + 1000,
    });
    expect(codeOf(() => verifyStandaloneCertificate(byRelay, trust, NOW))).toBe('KEY_WRONG_ROLE');
  });
});

describe('point of contact encryption keys in manifests (MC5, verification step 6)', () => {
  const resign = (w: TestWorld, pocs: Manifest['body']['pocs']) => {
    const wacap = w.networks['wacap']!;
    return sign(CONTEXTS.manifest, { ...wacap.manifest.body, pocs }, wacap.root);
  };

  it('refuse a PoC certificate issued for another subject', () => {
    const wacap = world.networks['wacap']!;
    const poc = wacap.manifest.body.pocs[0]!;
    const other = certifyEncryptionKey({
      subject: 'sn-moj@wacap',
      identity: wacap.poc.key,
      encryptionKey: wacap.poc.encryption,
      notBefore: NOW - 1,
      notAfter: NOW + 1000,
    });
    expect(
      codeOf(() =>
        verifyManifest(resign(world, [{ ...poc, encryptionKeys: [other] }]), wacap.rootRef),
      ),
    ).toBe('SCHEMA_INVALID');
  });

  it('refuse a PoC certificate naming another identity key', () => {
    const wacap = world.networks['wacap']!;
    const poc = wacap.manifest.body.pocs[0]!;
    const sn = world.authority('sn-moj@wacap');
    const wrongKid = certifyEncryptionKey({
      subject: poc.address,
      identity: sn.identity,
      encryptionKey: wacap.poc.encryption,
      notBefore: NOW - 1,
      notAfter: NOW + 1000,
    });
    expect(
      codeOf(() =>
        verifyManifest(resign(world, [{ ...poc, encryptionKeys: [wrongKid] }]), wacap.rootRef),
      ),
    ).toBe('SCHEMA_INVALID');
    // identityKid right, but signed by another key: step 6
    const forged = { ...wrongKid, body: { ...wrongKid.body, identityKid: poc.key.kid } };
    expect(
      codeOf(() =>
        verifyManifest(resign(world, [{ ...poc, encryptionKeys: [forged] }]), wacap.rootRef),
      ),
    ).toBe('KEY_WRONG_ROLE');
  });

  it('refuse a PoC without encryption keys', () => {
    const wacap = world.networks['wacap']!;
    const poc = wacap.manifest.body.pocs[0]!;
    expect(
      codeOf(() => verifyManifest(resign(world, [{ ...poc, encryptionKeys: [] }]), wacap.rootRef)),
    ).toBe('SCHEMA_INVALID');
  });
});

describe('introductions', () => {
  it('are accepted from a point of contact and refused from an authority', () => {
    const trust = world.trustFor('wacap');
    const wacap = world.networks['wacap']!;
    const kz = world.authority('kz-gpo@casc');
    const body = {
      issuer: wacap.poc.address,
      subject: kz.address,
      subjectKey: kz.identityRef,
      audience: 'sn-moj@wacap',
      competences: ['mla' as const, 'extradition' as const],
      note: 'Competent for requests concerning proceeds of corruption',
      issuedAt: NOW,
      validUntil: NOW + 10 ** 9,
    };
    trust.addIntroduction(signIntroduction(body, wacap.poc.key));
    expect(trust.introductionsFor(kz.address, NOW + 1)).toHaveLength(1);
    const fromAuthority = signIntroduction(
      { ...body, issuer: 'sn-moj@wacap' },
      world.authority('sn-moj@wacap').identity,
    );
    expect(codeOf(() => trust.addIntroduction(fromAuthority))).toBe('KEY_WRONG_ROLE');
    const forged = {
      ...signIntroduction(body, wacap.poc.key),
      body: { ...body, type: 'introduction', competences: ['confiscation'] },
    };
    expect(codeOf(() => trust.addIntroduction(forged))).toBe('SIGNATURE_INVALID');
  });
});

describe('keys', () => {
  it('are deterministic from seeds and kids match public keys', () => {
    const a = generateSigningKeyPair(testSeed('k'));
    const b = generateSigningKeyPair(testSeed('k'));
    expect(a.kid).toBe(b.kid);
    expect(a.kid).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(() => keyRef(a, { notBefore: 2, notAfter: 1 })).toThrow(ProtocolError);
  });
});

describe('trust store hardening', () => {
  it('lets a network revoke only its own members keys', () => {
    const trust = world.trustFor('wacap');
    const kz = world.authority('kz-gpo@casc');
    const byWacap = signRevocation(
      {
        network: 'wacap',
        subject: 'sn-moj@wacap',
        kid: kz.identity.kid,
        reason: 'key-compromise',
        revokedAt: NOW,
        issuedAt: NOW,
      },
      world.networks['wacap']!.root,
    );
    expect(codeOf(() => trust.addRevocation(byWacap))).toBe('KEY_UNKNOWN');
    expect(trust.resolveSigningKey(kz.address, kz.identity.kid, NOW).address).toBe(kz.address);
  });

  it('voids a rotated-in key when the key that rotated it is revoked afterwards', () => {
    const trust = world.trustFor('wacap');
    const sn = world.authority('sn-moj@wacap');
    const attacker = generateSigningKeyPair(testSeed('attacker'));
    trust.addKeyRotation(
      signKeyRotation({
        subject: sn.address,
        oldKey: sn.identity,
        newKey: attacker,
        effectiveAt: NOW + 10,
        notAfter: NOW + 10 ** 10,
      }),
    );
    expect(trust.resolveSigningKey(sn.address, attacker.kid, NOW + 20).key.kid).toBe(attacker.kid);
    trust.addRevocation(
      signRevocation(
        {
          network: 'wacap',
          subject: sn.address,
          kid: sn.identity.kid,
          reason: 'key-compromise',
          revokedAt: NOW,
          issuedAt: NOW + 30,
        },
        world.networks['wacap']!.root,
      ),
    );
    expect(codeOf(() => trust.resolveSigningKey(sn.address, attacker.kid, NOW + 20))).toBe(
      'KEY_REVOKED',
    );
  });

  it('refuses an expired manifest when the time is given, and peers reached through a non-peer', () => {
    const wacap = world.networks['wacap']!;
    const trust = new TrustStore({ pinned: [{ network: 'wacap', root: wacap.rootRef }] });
    expect(
      codeOf(() => trust.addManifest(wacap.manifest, { now: wacap.manifest.body.validUntil })),
    ).toBe('MANIFEST_EXPIRED');
    expect(trust.addManifest(wacap.manifest, { now: NOW })).toBe(true);
    const { type: _t, version: _v, previous: _p, ...rest } = wacap.manifest.body;
    expect(
      codeOf(() =>
        signManifest({ ...rest, peers: [{ ...rest.peers[1]!, via: 'seajust' }] }, wacap.root),
      ),
    ).toBe('SCHEMA_INVALID');
  });
});

describe('keys of earlier editions (D6)', () => {
  const SN = 'sn-moj@wacap';
  const GH = 'gh-ago@wacap';

  /** wacap v2 at `issuedAt`: SN gets a new identity and encryption key, GH is removed. */
  function secondEdition(issuedAt: number, newIdentity = generateSigningKeyPair(testSeed('sn/2'))) {
    const wacap = world.networks['wacap']!;
    const newEnc = generateEncryptionKeyPair(testSeed('sn/enc/2'));
    const validity = { notBefore: issuedAt - 1000, notAfter: issuedAt + 10 ** 11 };
    const { type: _t, version: _v, previous: _p, ...rest } = wacap.manifest.body;
    const authorities = rest.authorities
      .filter((a) => a.address !== GH)
      .map((a) =>
        a.address === SN
          ? {
              ...a,
              key: keyRef(newIdentity, validity),
              encryptionKeys: [
                certifyEncryptionKey({
                  subject: SN,
                  identity: newIdentity,
                  encryptionKey: newEnc,
                  ...validity,
                }),
              ],
            }
          : a,
      );
    const v2 = signManifest({ ...rest, authorities, issuedAt }, wacap.root, wacap.manifest);
    return { v2, newIdentity, newEnc };
  }

  it('keeps a replaced or dropped identity key resolvable before the new edition, not after', () => {
    const sn = world.authority(SN);
    const gh = world.authority(GH);
    const issuedAt = NOW + 10_000;
    const { v2, newIdentity } = secondEdition(issuedAt);
    const trust = world.trustFor('wacap');
    expect(trust.addManifest(v2)).toBe(true);
    expect(trust.resolveSigningKey(SN, sn.identity.kid, issuedAt - 1).role).toBe('authority');
    expect(codeOf(() => trust.resolveSigningKey(SN, sn.identity.kid, issuedAt))).toBe(
      'KEY_EXPIRED',
    );
    expect(trust.resolveSigningKey(SN, newIdentity.kid, issuedAt).key.kid).toBe(newIdentity.kid);
    // A member the edition dropped: its archives stay verifiable, nothing new is accepted.
    expect(trust.resolveSigningKey(GH, gh.identity.kid, issuedAt - 1, ['authority']).role).toBe(
      'authority',
    );
    expect(codeOf(() => trust.resolveSigningKey(GH, gh.identity.kid, issuedAt))).toBe(
      'KEY_EXPIRED',
    );
    expect(trust.authority(GH)).toBeUndefined();
    expect(trust.identityKeysOf(SN)).toEqual([
      { key: v2.body.authorities.find((a) => a.address === SN)!.key },
      { key: sn.identityRef, supersededAt: issuedAt },
    ]);
    // A store that only ever saw v2 does not know the old key.
    const fresh = new TrustStore({
      pinned: [{ network: 'wacap', root: world.networks['wacap']!.rootRef }],
    });
    fresh.addManifest(v2);
    expect(codeOf(() => fresh.resolveSigningKey(SN, sn.identity.kid, issuedAt - 1))).toBe(
      'KEY_UNKNOWN',
    );
  });

  it('verifies a dossier the old key signed before the new edition and refuses one signed after', async () => {
    const issuedAt = NOW + 10_000;
    const { v2 } = secondEdition(issuedAt);
    const trust = world.trustFor('wacap');
    trust.addManifest(v2);
    // The example MLA request refers to two attachments.
    const attachments = [
      (await encryptTestAttachment(utf8('warrant'), { name: 'warrant.pdf' })).manifest,
      (await encryptTestAttachment(utf8('records'), { name: 'records.csv' })).manifest,
    ];
    const before = sealTestDossier(world, {
      from: SN,
      to: ['ng-agf@wacap'],
      attachments,
      createdAt: NOW,
    });
    const after = sealTestDossier(world, {
      from: SN,
      to: ['ng-agf@wacap'],
      attachments,
      createdAt: issuedAt + 1,
    });
    const ng = world.authority('ng-agf@wacap');
    const reader = { address: ng.address, encryptionKeys: [ng.encryption] };
    expect(
      openDossier({ envelope: before.envelope, sealed: before.sealed, reader, trust }).dossier.body
        .sender,
    ).toBe(SN);
    expect(
      codeOf(() => openDossier({ envelope: after.envelope, sealed: after.sealed, reader, trust })),
    ).toBe('KEY_EXPIRED');
  });

  it('keeps a dropped encryption key known by kid for reading, never for sealing', () => {
    const sn = world.authority(SN);
    const issuedAt = NOW + 10_000;
    const { v2, newEnc } = secondEdition(issuedAt);
    const trust = world.trustFor('wacap');
    trust.addManifest(v2);
    expect(trust.encryptionKeysFor(SN, issuedAt).map((k) => k.kid)).toEqual([newEnc.kid]);
    expect(trust.encryptionKeyByKid(SN, sn.encryption.kid)?.kid).toBe(sn.encryption.kid);
    expect(trust.encryptionKeyByKid(SN, newEnc.kid)?.kid).toBe(newEnc.kid);
    expect(trust.encryptionKeyByKid(SN, 'AAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
  });

  it('bounds the old key by an earlier rotation rather than the edition that lists the new key', () => {
    const sn = world.authority(SN);
    const newIdentity = generateSigningKeyPair(testSeed('sn/2'));
    const issuedAt = NOW + 10_000;
    const rotation = signKeyRotation({
      subject: SN,
      oldKey: sn.identity,
      newKey: newIdentity,
      effectiveAt: NOW + 5_000,
      notAfter: NOW + 10 ** 11,
    });
    const trust = world.trustFor('wacap');
    trust.addKeyRotation(rotation);
    trust.addManifest(secondEdition(issuedAt, newIdentity).v2);
    expect(trust.resolveSigningKey(SN, sn.identity.kid, NOW + 4_999).key.kid).toBe(sn.identity.kid);
    expect(codeOf(() => trust.resolveSigningKey(SN, sn.identity.kid, NOW + 5_000))).toBe(
      'KEY_EXPIRED',
    );
  });

  it('keeps the old key until a later effectiveAt when the edition confirms the rotation first (no gap)', () => {
    const sn = world.authority(SN);
    const newIdentity = generateSigningKeyPair(testSeed('sn/2'));
    const issuedAt = NOW + 10_000;
    const rotation = signKeyRotation({
      subject: SN,
      oldKey: sn.identity,
      newKey: newIdentity,
      effectiveAt: NOW + 20_000,
      notAfter: NOW + 10 ** 11,
    });
    const trust = world.trustFor('wacap');
    trust.addKeyRotation(rotation);
    trust.addManifest(secondEdition(issuedAt, newIdentity).v2);
    expect(trust.resolveSigningKey(SN, sn.identity.kid, NOW + 19_999).key.kid).toBe(
      sn.identity.kid,
    );
    expect(codeOf(() => trust.resolveSigningKey(SN, sn.identity.kid, NOW + 20_000))).toBe(
      'KEY_EXPIRED',
    );
    expect(trust.resolveSigningKey(SN, newIdentity.kid, NOW + 20_000).key.kid).toBe(
      newIdentity.kid,
    );
  });

  it('bounds a later effectiveAt by ROTATION_OVERLAP_MAX_MS after the confirming edition', () => {
    const sn = world.authority(SN);
    const newIdentity = generateSigningKeyPair(testSeed('sn/2'));
    const issuedAt = NOW + 10_000;
    const rotation = signKeyRotation({
      subject: SN,
      oldKey: sn.identity,
      newKey: newIdentity,
      effectiveAt: issuedAt + ROTATION_OVERLAP_MAX_MS + 1_000,
      notAfter: NOW + 10 ** 11,
    });
    const trust = world.trustFor('wacap');
    trust.addKeyRotation(rotation);
    trust.addManifest(secondEdition(issuedAt, newIdentity).v2);
    const end = issuedAt + ROTATION_OVERLAP_MAX_MS;
    expect(trust.resolveSigningKey(SN, sn.identity.kid, end - 1).key.kid).toBe(sn.identity.kid);
    expect(codeOf(() => trust.resolveSigningKey(SN, sn.identity.kid, end))).toBe('KEY_EXPIRED');
  });

  it('reports the revocation of a key, and keeps refusing it from revokedAt on', () => {
    const sn = world.authority(SN);
    const trust = world.trustFor('wacap');
    expect(trust.revocationOf(sn.identity.kid, 'wacap')).toBeUndefined();
    trust.addRevocation(
      signRevocation(
        {
          network: 'wacap',
          subject: SN,
          kid: sn.identity.kid,
          reason: 'key-compromise',
          revokedAt: NOW + 100,
          issuedAt: NOW + 200,
        },
        world.networks['wacap']!.root,
      ),
    );
    expect(trust.revocationOf(sn.identity.kid, 'wacap')).toEqual({
      revokedAt: NOW + 100,
      reason: 'key-compromise',
    });
    expect(trust.revocationOf(sn.identity.kid, 'casc')).toBeUndefined();
    expect(codeOf(() => trust.resolveSigningKey(SN, sn.identity.kid, NOW + 100))).toBe(
      'KEY_REVOKED',
    );
  });
});
