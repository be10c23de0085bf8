import { beforeAll, describe, expect, it } from 'vitest';
import { validateDossierContent } from '../src/content/index.js';
import { checkContentParties, openDossier } from '../src/dossier.js';
import { keyRef } from '../src/keys.js';
import { ready } from '../src/sodium.js';
import { signIntroduction } from '../src/statements.js';
import { buildTestWorld, sealTestDossier, type TestWorld } from '../src/testing/index.js';

const NOW = Date.UTC(2026, 10, 1);
const YEAR = 365 * 24 * 3600 * 1000;
const SN = 'sn-moj@wacap';
let world: TestWorld;

beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: NOW });
});

function pocOf(network: string) {
  return world.networks[network]!.poc;
}

function request(overrides: Record<string, unknown> = {}) {
  return {
    kind: 'introduction-request',
    from: SN,
    to: pocOf('wacap').address,
    country: 'KZ',
    requestType: 'mla',
    languages: ['en', 'ru'],
    note: 'Bank records in Almaty',
    ...overrides,
  };
}

function introduction(issuer = pocOf('casc'), audience = SN) {
  const subject = world.authority('kz-gpo@casc');
  return signIntroduction(
    {
      issuer: issuer.address,
      subject: subject.address,
      subjectKey: keyRef(subject.identity, { notBefore: NOW - YEAR, notAfter: NOW + YEAR }),
      audience,
      competences: ['mla'],
      note: '',
      issuedAt: NOW,
      validUntil: NOW + YEAR,
    },
    issuer.key,
  );
}

function answer(overrides: Record<string, unknown> = {}) {
  return {
    kind: 'introduction-answer',
    from: pocOf('casc').address,
    to: SN,
    answerTo: 'AAAAAAAAAAAAAAAAAAAAAA',
    requester: SN,
    outcome: 'introduced',
    introductions: [introduction()],
    ...overrides,
  };
}

describe('introduction content kinds (§10.12)', () => {
  it('accepts a request, a referral and both kinds of answer', () => {
    expect(validateDossierContent(request())).toEqual([]);
    const requester = world.authority(SN);
    expect(
      validateDossierContent({
        kind: 'introduction-referral',
        from: pocOf('wacap').address,
        to: pocOf('casc').address,
        requestId: 'AAAAAAAAAAAAAAAAAAAAAA',
        requester: SN,
        requesterKey: keyRef(requester.identity, { notBefore: NOW, notAfter: NOW + YEAR }),
        request: { country: 'KZ', requestType: 'mla', languages: ['en'] },
      }),
    ).toEqual([]);
    expect(validateDossierContent(answer())).toEqual([]);
    const { introductions: _i, ...declined } = answer({
      outcome: 'declined',
      reason: 'no-competent-authority',
      text: 'No authority of KZ is a member of casc for this',
    });
    expect(validateDossierContent(declined)).toEqual([]);
  });

  it('reports schema problems with the path of the field', () => {
    const paths = (c: unknown) => validateDossierContent(c).map((i) => i.path);
    expect(paths(request({ country: 'UK' }))).toEqual(['/country']);
    expect(paths(request({ languages: [] }))).toEqual(['/languages']);
    expect(paths(request({ requestType: 'rumour' }))).toEqual(['/requestType']);
    expect(paths(request({ extra: 1 }))).toEqual(['/extra']);
    expect(paths(request({ languages: ['en', 'fr', 'ru', 'es', 'ar', 'zh'] }))).toEqual([
      '/languages',
    ]);
    expect(paths(request({ note: 'x'.repeat(2001) }))).toEqual(['/note']);
  });

  it('applies rules I1-I4 and R1', () => {
    const paths = (c: unknown) => validateDossierContent(c).map((i) => i.path);
    const { introductions: _i, ...noIntroductions } = answer();
    expect(paths(noIntroductions)).toEqual(['/introductions']);
    expect(paths(answer({ outcome: 'declined' }))).toEqual(['/reason', '/introductions']);
    expect(paths(answer({ reason: 'other' }))).toEqual(['/reason']);
    expect(paths(answer({ introductions: [introduction(pocOf('wacap'))] }))).toEqual([
      '/introductions/0/body/issuer',
    ]);
    expect(paths(answer({ introductions: [introduction(pocOf('casc'), 'gh-ago@wacap')] }))).toEqual(
      ['/introductions/0/body/audience'],
    );
    expect(
      paths({
        kind: 'introduction-referral',
        from: pocOf('wacap').address,
        to: 'poc-ng@wacap',
        requestId: 'AAAAAAAAAAAAAAAAAAAAAA',
        requester: SN,
        requesterKey: keyRef(world.authority(SN).identity, { notBefore: NOW, notAfter: NOW + 1 }),
        request: { country: 'KZ', requestType: 'mla', languages: ['en'] },
      }),
    ).toEqual(['/to']);
  });

  it('applies the content-parties rule to from/to', () => {
    const content = request() as Parameters<typeof checkContentParties>[0];
    expect(checkContentParties(content, SN, [pocOf('wacap').address])).toEqual([]);
    expect(
      checkContentParties(content, 'gh-ago@wacap', ['poc-xx@wacap']).map((i) => i.path),
    ).toEqual(['/from', '/to']);
  });

  it('an authority seals a request to its PoC, which opens it (PoCs are dossier parties)', () => {
    const poc = pocOf('wacap');
    const content = request() as Parameters<typeof checkContentParties>[0];
    const sealed = sealTestDossier(world, { from: SN, to: [poc.address], content });
    const opened = openDossier({
      envelope: sealed.envelope,
      sealed: sealed.sealed,
      reader: { address: poc.address, encryptionKeys: [poc.encryption] },
      trust: world.trustFor('wacap'),
    });
    expect(opened.dossier.body.content).toEqual(content);
  });
});
