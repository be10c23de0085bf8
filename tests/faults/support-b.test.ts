/**
 * Part B's scenario helpers without processes: the deadline-order measure of
 * peer-down and the waits of the Tally (what the scenarios wait on must
 * agree with what the shared Ledger counts).
 */
import { issueEvidence, ready, type Envelope } from '@rogatory/protocol';
import { buildTestWorld, sealTestDossier, type TestWorld } from '@rogatory/protocol/testing';
import { smallAttachment, type TestAttachment } from '@rogatory/relay/testing/helpers';
import { beforeAll, describe, expect, it } from 'vitest';
import { deadlineInversions } from './support/actors.js';
import { Tally } from './support/tally.js';

const SN = 'sn-moj@wacap';
const NG = 'ng-agf@wacap';
const GH = 'gh-ago@wacap';

let world: TestWorld;
let attachment: TestAttachment;
beforeAll(async () => {
  await ready();
  world = buildTestWorld({ now: Date.now() });
  attachment = await smallAttachment();
});

const seal = (to: string[]) =>
  sealTestDossier(world, { from: SN, to, attachments: [attachment.manifest] }).envelope;

describe('deadlineInversions', () => {
  it('counts no inversion when arrivals follow their deadlines', () => {
    expect(deadlineInversions([{ expiresAt: 1 }, { expiresAt: 2 }, { expiresAt: 3 }])).toEqual({
      inversions: 0,
      pairs: 3,
    });
  });

  it('counts every pair that arrived against its deadlines, and skips equal deadlines', () => {
    expect(deadlineInversions([{ expiresAt: 3 }, { expiresAt: 2 }, { expiresAt: 1 }])).toEqual({
      inversions: 3,
      pairs: 3,
    });
    expect(deadlineInversions([{ expiresAt: 5 }, { expiresAt: 5 }, { expiresAt: 1 }])).toEqual({
      inversions: 2,
      pairs: 2,
    });
  });

  it('does not count pairs that arrived within the simultaneity window', () => {
    const arrivals = [
      { expiresAt: 3, receivedAt: 1_000 },
      { expiresAt: 1, receivedAt: 1_010 },
      { expiresAt: 2, receivedAt: 2_000 },
    ];
    expect(deadlineInversions(arrivals, 50)).toEqual({ inversions: 1, pairs: 2 });
    expect(deadlineInversions(arrivals)).toEqual({ inversions: 2, pairs: 3 });
  });
});

describe('Tally', () => {
  const delivery = (envelope: Envelope, by: string) =>
    issueEvidence({
      kind: 'delivery',
      envelope,
      issuer: by,
      key: world.authority(by).identity,
      issuedAt: Date.now(),
      recipient: by,
    });

  it('is settled and delivered only once every recipient read it and every Delivery came back', () => {
    const t = new Tally();
    const envelope = seal([NG, GH]);
    t.sent(envelope);
    t.accepted(envelope.body.id);
    expect(t.allDelivered()).toBe(false);
    expect(t.settled()).toBe(false);
    t.delivered(NG, envelope, 1);
    expect(t.allDelivered()).toBe(false);
    t.delivered(GH, envelope, 1);
    expect(t.allDelivered()).toBe(true);
    t.evidence(SN, delivery(envelope, NG));
    expect(t.settled()).toBe(false);
    expect(t.hasEvidence(envelope.body.id, 'delivery', NG)).toBe(true);
    t.evidence(SN, delivery(envelope, GH));
    expect(t.settled()).toBe(true);
    expect(t.result()).toMatchObject({ sent: 1, accepted: 1, delivered: 2, lost: 0 });
  });

  it('counts a second read under another seq as a duplicate, a re-read of the same seq not', () => {
    const t = new Tally();
    const envelope = seal([NG]);
    t.sent(envelope);
    t.accepted(envelope.body.id);
    t.delivered(NG, envelope, 4);
    t.delivered(NG, envelope, 4);
    expect(t.deliveryCount(envelope.body.id, NG)).toBe(1);
    expect(t.result().duplicated).toBe(0);
    t.delivered(NG, envelope, 9);
    expect(t.deliveryCount(envelope.body.id, NG)).toBe(2);
    expect(t.result().duplicated).toBe(1);
  });

  it('leaves envelopes named by `except` out of allDelivered, and ignores unaccepted ones', () => {
    const t = new Tally();
    const a = seal([NG]);
    const b = seal([NG]);
    const refused = seal([NG]);
    for (const e of [a, b, refused]) t.sent(e);
    t.accepted(a.body.id);
    t.accepted(b.body.id);
    t.delivered(NG, a, 1);
    expect(t.allDelivered()).toBe(false);
    expect(t.allDelivered((id) => id === b.body.id)).toBe(true);
    expect(t.acceptedCount).toBe(2);
    expect(t.result().lost).toBe(1);
  });
});
