import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, sha256, toHex } from '../src/bytes.js';
import { canonicalBytes } from '../src/encoding.js';
import {
  decodeEnvelope,
  encodeEnvelope,
  envelopeHash,
  signEnvelope,
  verifyEnvelope,
  withHop,
  type Envelope,
} from '../src/envelope.js';
import { issueEvidence, reasonFor, verifyEvidenceChain, type Evidence } from '../src/evidence.js';
import { ready } from '../src/sodium.js';
import { buildTestWorld, type TestWorld } from '../src/testing/index.js';
import { codeOf } from './support/code-of.js';

const NOW = Date.UTC(2026, 10, 1);
let world: TestWorld;
let envelope: Envelope;

function makeEnvelope(overrides: Partial<Parameters<typeof signEnvelope>[0]> = {}): Envelope {
  const sn = world.authority('sn-moj@wacap');
  return signEnvelope(
    {
      id: 'AAAAAAAAAAAAAAAAAAAAAA',
      sender: sn.address,
      recipients: ['kz-gpo@casc', 'ng-agf@wacap'],
      createdAt: NOW,
      expiresAt: NOW + 86_400_000,
      maxHops: 4,
      dossier: { id: toHex(sha256(Uint8Array.of(1))), size: 100 },
      chunks: [{ id: toHex(sha256(Uint8Array.of(2))), size: 1_048_593 }],
      ...overrides,
    },
    sn.identity,
  );
}

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: NOW });
  envelope = makeEnvelope();
});

describe('envelope', () => {
  it('carries only routing information', () => {
    expect(Object.keys(envelope.body).sort()).toEqual(
      [
        'chunks',
        'createdAt',
        'dossier',
        'expiresAt',
        'id',
        'maxHops',
        'recipients',
        'sender',
        'totalSize',
        'type',
        'version',
      ].sort(),
    );
    expect(envelope.body.totalSize).toBe(100 + 1_048_593);
  });

  it('decodes received bytes deep-frozen: re-encoding and hashing give the received bytes, a changed copy is verified afresh', () => {
    const trust = world.trustFor('wacap');
    const bytes = encodeEnvelope(envelope);
    const decoded = decodeEnvelope(bytes);
    expect(Object.isFrozen(decoded.body.recipients)).toBe(true);
    expect(() => {
      decoded.body.recipients[0] = 'gh-ago@wacap';
    }).toThrow(TypeError);
    expect(encodeEnvelope(decoded)).toEqual(bytes);
    expect(envelopeHash(decoded)).toBe(envelopeHash(envelope));
    expect(verifyEnvelope(decoded, { trust, now: NOW }).address).toBe('sn-moj@wacap');
    // A copy with one field changed is a new object: schema and signature are checked again.
    const changed = { ...decoded, body: { ...decoded.body, recipients: ['gh-ago@wacap'] } };
    expect(codeOf(() => verifyEnvelope(changed, { trust, now: NOW }))).toBe('SIGNATURE_INVALID');
    const malformed = { ...decoded, body: { ...decoded.body, maxHops: -1 } };
    expect(codeOf(() => verifyEnvelope(malformed, { trust, now: NOW }))).toBe('SCHEMA_INVALID');
  });

  it('verifies, round-trips canonically and detects tampering', () => {
    const trust = world.trustFor('wacap');
    expect(
      verifyEnvelope(decodeEnvelope(encodeEnvelope(envelope)), { trust, now: NOW }).address,
    ).toBe('sn-moj@wacap');
    const tampered = structuredClone(envelope);
    tampered.body.recipients[0] = 'gh-ago@wacap';
    expect(codeOf(() => verifyEnvelope(tampered, { trust, now: NOW }))).toBe('SIGNATURE_INVALID');
  });

  it('rejects expiry, future creation, hop limit and loops', () => {
    const trust = world.trustFor('wacap');
    expect(codeOf(() => verifyEnvelope(envelope, { trust, now: NOW + 86_400_000 }))).toBe(
      'ENVELOPE_EXPIRED',
    );
    expect(codeOf(() => verifyEnvelope(envelope, { trust, now: NOW - 3_600_000 }))).toBe(
      'SCHEMA_INVALID',
    );
    let hopped = withHop(envelope, { relay: 'relay@wacap', receivedAt: NOW });
    expect(codeOf(() => withHop(hopped, { relay: 'relay@wacap', receivedAt: NOW }))).toBe(
      'HOP_LIMIT_EXCEEDED',
    );
    hopped = withHop(hopped, { relay: 'relay@global', receivedAt: NOW });
    hopped = withHop(hopped, { relay: 'relay@casc', receivedAt: NOW });
    hopped = withHop(hopped, { relay: 'relay-b@casc', receivedAt: NOW });
    expect(codeOf(() => withHop(hopped, { relay: 'relay-c@casc', receivedAt: NOW }))).toBe(
      'HOP_LIMIT_EXCEEDED',
    );
    expect(envelopeHash(hopped)).toBe(envelopeHash(envelope));
  });

  it('rejects inconsistent bodies and non-canonical bytes', () => {
    expect(codeOf(() => makeEnvelope({ recipients: ['sn-moj@wacap'] }))).toBe('SCHEMA_INVALID');
    expect(codeOf(() => makeEnvelope({ expiresAt: NOW }))).toBe('SCHEMA_INVALID');
    const dup = { id: toHex(sha256(Uint8Array.of(2))), size: 20 };
    expect(codeOf(() => makeEnvelope({ chunks: [dup, dup] }))).toBe('SCHEMA_INVALID');
    const text = new TextDecoder().decode(encodeEnvelope(envelope));
    expect(
      codeOf(() =>
        decodeEnvelope(new TextEncoder().encode(text.replace('{"body":{', '{"body": {'))),
      ),
    ).toBe('ENCODING_INVALID');
    const extra = { ...envelope, body: { ...envelope.body, subject: 'x' } };
    expect(codeOf(() => decodeEnvelope(canonicalBytes(extra)))).toBe('SCHEMA_INVALID');
  });

  it('rejects a sender that is not a member', () => {
    const casc = world.trustFor('casc');
    const forged = signEnvelope(
      { ...envelope.body },
      { ...world.authority('kz-gpo@casc').identity },
    );
    expect(codeOf(() => verifyEnvelope(forged, { trust: casc, now: NOW }))).toBe('KEY_UNKNOWN');
  });
});

describe('evidence chain', () => {
  const relayWacap = () => world.networks['wacap']!.relay;
  const relayCasc = () => world.networks['casc']!.relay;

  function fullChain(): Evidence[] {
    const kz = world.authority('kz-gpo@casc');
    const ng = world.authority('ng-agf@wacap');
    return [
      issueEvidence({
        kind: 'retrieval',
        envelope,
        issuer: kz.address,
        key: kz.identity,
        issuedAt: NOW + 50,
        recipient: kz.address,
      }),
      issueEvidence({
        kind: 'delivery',
        envelope,
        issuer: kz.address,
        key: kz.identity,
        issuedAt: NOW + 30,
        recipient: kz.address,
      }),
      issueEvidence({
        kind: 'relay-acceptance',
        envelope,
        issuer: relayCasc().id,
        key: relayCasc().key,
        issuedAt: NOW + 20,
        recipient: kz.address,
      }),
      issueEvidence({
        kind: 'submission-acceptance',
        envelope,
        issuer: relayWacap().id,
        key: relayWacap().key,
        issuedAt: NOW + 10,
      }),
      issueEvidence({
        kind: 'delivery',
        envelope,
        issuer: ng.address,
        key: ng.identity,
        issuedAt: NOW + 15,
        recipient: ng.address,
      }),
    ];
  }

  it('orders a valid chain causally and reports each recipient', () => {
    const chain = verifyEvidenceChain(envelope, fullChain(), world.trustFor('wacap'));
    expect(chain.ordered.map((e) => e.body.kind)).toEqual([
      'submission-acceptance',
      'relay-acceptance',
      'delivery',
      'delivery',
      'retrieval',
    ]);
    expect(chain.submission).toBe('accepted');
    expect(Object.fromEntries(chain.recipients)).toEqual({
      'kz-gpo@casc': 'retrieved',
      'ng-agf@wacap': 'delivered',
    });
  });

  it('rejects missing submission, retrieval without delivery, conflicting outcomes, foreign envelopes and forged issuers', () => {
    const trust = world.trustFor('wacap');
    const chain = fullChain();
    expect(
      codeOf(() =>
        verifyEvidenceChain(
          envelope,
          chain.filter((e) => e.body.kind !== 'submission-acceptance'),
          trust,
        ),
      ),
    ).toBe('EVIDENCE_CHAIN_INVALID');
    expect(
      codeOf(() =>
        verifyEvidenceChain(
          envelope,
          chain.filter((e) => !(e.body.kind === 'delivery' && e.body.recipient === 'kz-gpo@casc')),
          trust,
        ),
      ),
    ).toBe('EVIDENCE_CHAIN_INVALID');
    const nd = issueEvidence({
      kind: 'non-delivery',
      envelope,
      issuer: relayCasc().id,
      key: relayCasc().key,
      issuedAt: NOW + 40,
      recipient: 'kz-gpo@casc',
      reason: { code: 'RETENTION_EXPIRED', detail: null },
    });
    expect(codeOf(() => verifyEvidenceChain(envelope, [...chain, nd], trust))).toBe(
      'EVIDENCE_CHAIN_INVALID',
    );
    const other = makeEnvelope({ id: 'BBBBBBBBBBBBBBBBBBBBBA' });
    const foreign = issueEvidence({
      kind: 'delivery',
      envelope: other,
      issuer: 'gh-ago@wacap',
      key: world.authority('gh-ago@wacap').identity,
      issuedAt: NOW,
      recipient: 'gh-ago@wacap',
    });
    expect(codeOf(() => verifyEvidenceChain(envelope, [...chain, foreign], trust))).toBe(
      'EVIDENCE_MISMATCH',
    );
    const byAuthority = issueEvidence({
      kind: 'submission-acceptance',
      envelope,
      issuer: 'sn-moj@wacap',
      key: world.authority('sn-moj@wacap').identity,
      issuedAt: NOW,
    });
    expect(codeOf(() => verifyEvidenceChain(envelope, [byAuthority], trust))).toBe(
      'KEY_WRONG_ROLE',
    );
    const tampered = structuredClone(chain);
    (tampered[1]!.body as { issuedAt: number }).issuedAt += 1;
    expect(codeOf(() => verifyEvidenceChain(envelope, tampered, trust))).toBe('SIGNATURE_INVALID');
    const stale = issueEvidence({
      kind: 'retrieval',
      envelope,
      issuer: 'kz-gpo@casc',
      key: world.authority('kz-gpo@casc').identity,
      issuedAt: NOW + 29,
      recipient: 'kz-gpo@casc',
    });
    expect(
      codeOf(() =>
        verifyEvidenceChain(
          envelope,
          [...chain.filter((e) => e.body.kind !== 'retrieval'), stale],
          trust,
        ),
      ),
    ).toBe('EVIDENCE_CHAIN_INVALID');
  });

  it('records a recipient refusing a dossier that failed verification, exclusive with delivery', () => {
    const trust = world.trustFor('wacap');
    const kz = world.authority('kz-gpo@casc');
    const submission = issueEvidence({
      kind: 'submission-acceptance',
      envelope,
      issuer: relayWacap().id,
      key: relayWacap().key,
      issuedAt: NOW,
    });
    const refusal = issueEvidence({
      kind: 'recipient-rejection',
      envelope,
      issuer: kz.address,
      key: kz.identity,
      issuedAt: NOW + 5,
      recipient: kz.address,
      reason: { code: 'QUARANTINED', detail: 'DECRYPT_FAILED' },
    });
    expect(
      verifyEvidenceChain(envelope, [submission, refusal], trust).recipients.get(kz.address),
    ).toBe('refused');
    const delivery = issueEvidence({
      kind: 'delivery',
      envelope,
      issuer: kz.address,
      key: kz.identity,
      issuedAt: NOW + 6,
      recipient: kz.address,
    });
    expect(
      codeOf(() => verifyEvidenceChain(envelope, [submission, refusal, delivery], trust)),
    ).toBe('EVIDENCE_CHAIN_INVALID');
    expect(
      codeOf(() =>
        issueEvidence({
          kind: 'recipient-rejection',
          envelope,
          issuer: kz.address,
          key: kz.identity,
          issuedAt: NOW,
          recipient: kz.address,
        }),
      ),
    ).toBe('SCHEMA_INVALID');
  });

  it('ends the chain at a submission rejection', () => {
    const rejection = issueEvidence({
      kind: 'submission-rejection',
      envelope,
      issuer: relayWacap().id,
      key: relayWacap().key,
      issuedAt: NOW,
      reason: { code: 'SIGNATURE_INVALID', detail: 'SIGNATURE_INVALID' },
    });
    const chain = verifyEvidenceChain(envelope, [rejection], world.trustFor('wacap'));
    expect(chain.submission).toBe('rejected');
    const delivery = issueEvidence({
      kind: 'delivery',
      envelope,
      issuer: 'kz-gpo@casc',
      key: world.authority('kz-gpo@casc').identity,
      issuedAt: NOW + 1,
      recipient: 'kz-gpo@casc',
    });
    expect(
      codeOf(() => verifyEvidenceChain(envelope, [rejection, delivery], world.trustFor('wacap'))),
    ).toBe('EVIDENCE_CHAIN_INVALID');
  });

  it('maps protocol errors to stable reason codes', () => {
    const err = (() => {
      try {
        verifyEnvelope(envelope, { trust: world.trustFor('wacap'), now: NOW + 10 ** 12 });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(reasonFor(err)).toEqual({ code: 'EXPIRED', detail: 'ENVELOPE_EXPIRED' });
    expect(reasonFor(new Error('boom'))).toEqual({ code: 'INTERNAL', detail: null });
    expect(randomBytes(4)).toHaveLength(4);
  });
});
