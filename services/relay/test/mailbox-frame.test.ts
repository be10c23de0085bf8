import { canonicalBytes } from '@rogatory/protocol';
import { describe, expect, it } from 'vitest';
import type { MailboxItem } from '../src/backend/types.js';
import { itemFrame, wireItem } from '../src/plugins/mailbox.js';

describe('mailbox WebSocket frames', () => {
  it('splice the stored canonical payload into the same frame JSON.stringify would give', () => {
    const payloads = [
      {
        body: {
          id: 'e-1',
          note: 'Zürich → Genève "quoted" \\ back\u2028slash 😀',
          n: [1, -2, 3e3],
        },
        hops: [{ receivedAt: 1_700_000_000_000, relay: 'relay@wacap' }],
      },
      {
        body: { kind: 'delivery', issuer: 'sn-moj@wacap', empty: {}, none: [] },
        signature: { kid: 'k', value: 'AAAA' },
      },
    ];
    const items: MailboxItem[] = [
      {
        seq: 7,
        kind: 'envelope',
        envelopeId: 'e-1',
        payload: canonicalBytes(payloads[0]),
        acceptedAt: 1_700_000_000_000,
      },
      {
        seq: 12_345_678_901,
        kind: 'evidence',
        envelopeId: 'e-1',
        payload: canonicalBytes(payloads[1]),
      },
    ];
    for (const item of items) {
      const frame = itemFrame(item);
      expect(frame).toBe(JSON.stringify({ type: 'item', item: wireItem(item) }));
      expect(JSON.parse(frame)).toEqual({ type: 'item', item: wireItem(item) });
    }
  });
});
