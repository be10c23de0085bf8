import { Type } from 'typebox';
import { issueEvidence, randomBytes, ready, utf8, validator } from '@rogatory/protocol';
import { buildTestWorld, sealTestDossier } from '@rogatory/protocol/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { isNodeError } from '../src/index.js';
import { LocalCipher } from '../src/store/local-cipher.js';
import { advance, deliveryProgress, statusForAnswer } from '../src/dossier-status.js';
import { stripAttachmentRefs, mlaRequest } from './support/fixtures.js';

beforeAll(async () => {
  await ready();
});

describe('LocalCipher (encryption at rest)', () => {
  it('opens a record only in its own table and row, under its own key', () => {
    const key = randomBytes(32);
    const cipher = new LocalCipher(key);
    const sealed = cipher.seal('dossiers.content', 'd-1', utf8('witness: Jane SPECIMEN'));
    expect(Buffer.from(sealed).includes(Buffer.from('SPECIMEN'))).toBe(false);
    expect(new TextDecoder().decode(cipher.open('dossiers.content', 'd-1', sealed))).toBe(
      'witness: Jane SPECIMEN',
    );
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
        return undefined;
      } catch (err) {
        return isNodeError(err) ? err.code : 'OTHER';
      }
    };
    expect(code(() => cipher.open('dossiers.content', 'd-2', sealed))).toBe('LOCAL_DATA_TAMPERED');
    expect(code(() => cipher.open('cases', 'd-1', sealed))).toBe('LOCAL_DATA_TAMPERED');
    expect(
      code(() => new LocalCipher(randomBytes(32)).open('dossiers.content', 'd-1', sealed)),
    ).toBe('LOCAL_DATA_TAMPERED');
    const flipped = Uint8Array.from(sealed);
    flipped[30] = flipped[30]! ^ 1;
    expect(code(() => cipher.open('dossiers.content', 'd-1', flipped))).toBe('LOCAL_DATA_TAMPERED');
    // A record that decrypts but does not match its schema is refused too.
    const json = cipher.sealJson('cases', 'c-1', { unexpected: true });
    expect(
      code(() =>
        cipher.openJson(
          'cases',
          'c-1',
          json,
          validator(Type.Object({ caseReference: Type.String() }), 'case'),
        ),
      ),
    ).toBe('LOCAL_DATA_TAMPERED');
    expect(cipher.verifyMac(cipher.mac(utf8('head')), utf8('head'))).toBe(true);
    expect(cipher.verifyMac(cipher.mac(utf8('head')), utf8('heae'))).toBe(false);
  });
});

describe('status workflow', () => {
  it('only moves forward, and answers map to request statuses', () => {
    expect(advance('sent', 'delivered')).toBe('delivered');
    expect(advance('executed', 'delivered')).toBe('executed');
    expect(advance('delivered', 'sent')).toBe('delivered');
    expect(statusForAnswer('acknowledgement')).toBe('acknowledged');
    expect(statusForAnswer('partial-execution')).toBe('in-execution');
    expect(statusForAnswer('full-execution')).toBe('executed');
    expect(statusForAnswer('refusal')).toBe('refused');
    expect(statusForAnswer('withdrawal')).toBe('withdrawn');
  });

  it('derives delivery progress per recipient from evidences', () => {
    const world = buildTestWorld({ now: Date.now() });
    const to = ['kz-gpo@casc', 'ge-pog@casc'];
    const { envelope } = sealTestDossier(world, {
      from: 'sn-moj@wacap',
      to,
      content: stripAttachmentRefs(mlaRequest(world, 'sn-moj@wacap', 'kz-gpo@casc')),
    });
    const ev = (kind: 'delivery' | 'retrieval' | 'recipient-rejection', who: string) =>
      issueEvidence({
        kind,
        envelope,
        issuer: who,
        recipient: who,
        key: world.authority(who).identity,
        issuedAt: Date.now(),
        ...(kind === 'recipient-rejection'
          ? { reason: { code: 'QUARANTINED' as const, detail: 'NOT_ADDRESSED' } }
          : {}),
      });
    expect(deliveryProgress(to, []).status).toBe('sent');
    expect(deliveryProgress(to, [ev('delivery', to[0]!)])).toEqual({
      status: 'sent',
      recipients: { [to[0]!]: 'delivered', [to[1]!]: 'pending' },
    });
    expect(
      deliveryProgress(to, [
        ev('delivery', to[0]!),
        ev('retrieval', to[0]!),
        ev('delivery', to[1]!),
      ]).status,
    ).toBe('delivered');
    expect(
      deliveryProgress(to, [ev('delivery', to[0]!), ev('recipient-rejection', to[1]!)]).status,
    ).toBe('rejected');
  });
});
