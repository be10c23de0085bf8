import type { Envelope } from '@rogatory/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  isRelayClientError,
  type MailboxItem,
  type MailboxSubscription,
  type OpenMailboxOptions,
} from '../src/index.js';
import type { FakeRelay } from './fake-relay.js';
import { PEER, clientFor, makeChunk, makeEnvelope, startRelay } from './helpers.js';

let relay: FakeRelay;
const open: MailboxSubscription[] = [];

beforeEach(async () => {
  relay = await startRelay();
});

afterEach(async () => {
  for (const sub of open.splice(0)) await sub.close();
  await relay.close();
});

const WAIT = { timeout: 10_000, interval: 10 };
const FAST_RECONNECT = { baseMs: 5, maxMs: 50, jitter: 0.5 };

function envelope(): Envelope {
  return makeEnvelope(relay.world, { dossier: makeChunk(64) });
}

function pushEnvelopes(n: number): number[] {
  return Array.from({ length: n }, () =>
    relay.push(PEER, { kind: 'envelope', envelope: envelope() }),
  );
}

interface Harness {
  readonly sub: MailboxSubscription;
  /** Seqs in the order onItem saw them (with repeats, if any). */
  readonly seen: number[];
  readonly errors: unknown[];
  readonly events: string[];
}

/** A subscriber that stores (records) each item and acks it, unless `shouldAck` says not yet. */
function subscribe(
  options: Partial<OpenMailboxOptions> & {
    shouldAck?: (item: MailboxItem, times: number) => boolean;
  } = {},
  clientOptions = {},
): Harness {
  const client = clientFor(relay, { address: PEER, ...clientOptions });
  const seen: number[] = [];
  const errors: unknown[] = [];
  const events: string[] = [];
  const sub = client.openMailbox({
    after: 0,
    reconnect: FAST_RECONNECT,
    onItem: async (item) => {
      seen.push(item.seq);
      const times = seen.filter((s) => s === item.seq).length;
      if (options.shouldAck?.(item, times) ?? true) await sub.ack([item.seq]);
    },
    onError: (err) => errors.push(err),
    ...options,
  });
  sub.on('connected', () => events.push('connected'));
  sub.on('disconnected', () => events.push('disconnected'));
  open.push(sub);
  return { sub, seen, errors, events };
}

describe('mailbox subscription', () => {
  it('catches up, then receives live items, in seq order, and acks them', async () => {
    const first = pushEnvelopes(3);
    const { sub, seen } = subscribe();
    await vi.waitFor(() => expect(seen).toEqual(first), WAIT);
    const later = pushEnvelopes(2);
    await vi.waitFor(() => expect(seen).toEqual([...first, ...later]), WAIT);
    await vi.waitFor(() => expect(relay.mailbox(PEER)).toEqual([]), WAIT);
    await vi.waitFor(() => expect(sub.cursor).toBe(later[1]), WAIT);
    expect(relay.subscribeAfters).toEqual([0]);
  });

  it('starts after the given cursor', async () => {
    const [a, b, c] = pushEnvelopes(3);
    const { seen } = subscribe({ after: a! });
    await vi.waitFor(() => expect(seen).toEqual([b, c]), WAIT);
    expect(relay.subscribeAfters).toEqual([a]);
  });

  it('reconnects after the relay drops the socket, resubscribes from the acked cursor, loses and duplicates nothing', async () => {
    const first = pushEnvelopes(3);
    const { sub, seen, events } = subscribe();
    await vi.waitFor(() => expect(relay.mailbox(PEER)).toEqual([]), WAIT);
    await vi.waitFor(() => expect(sub.cursor).toBe(first[2]), WAIT);

    relay.dropSockets();
    const whileDown = pushEnvelopes(2);
    await vi.waitFor(() => expect(events.filter((e) => e === 'connected')).toHaveLength(2), WAIT);
    await vi.waitFor(() => expect(seen).toEqual([...first, ...whileDown]), WAIT);
    expect(events).toContain('disconnected');
    expect(relay.subscribeAfters[1]).toBe(first[2]);

    // Drop the socket right after the relay writes an item, before our ack can arrive.
    let dropped = false;
    relay.onItemSent = (_seq, socket) => {
      if (!dropped) {
        dropped = true;
        socket.terminate();
      }
    };
    const racing = pushEnvelopes(2);
    await vi.waitFor(() => expect(relay.mailbox(PEER)).toEqual([]), WAIT);
    await vi.waitFor(() => expect(seen).toEqual([...first, ...whileDown, ...racing]), WAIT);
    expect(dropped).toBe(true);
    expect(relay.connections).toBeGreaterThanOrEqual(3);
  });

  it('delivers again an item delivered but not acked before the disconnection, and only that one', async () => {
    const [a, b] = pushEnvelopes(2);
    const { seen } = subscribe({ shouldAck: (item, times) => item.seq !== a || times > 1 });
    await vi.waitFor(() => expect(seen).toEqual([a, b]), WAIT);
    await vi.waitFor(() => expect(relay.mailbox(PEER).map((i) => i.seq)).toEqual([a]), WAIT);
    relay.dropSockets();
    await vi.waitFor(() => expect(seen).toEqual([a, b, a]), WAIT);
    await vi.waitFor(() => expect(relay.mailbox(PEER)).toEqual([]), WAIT);
    // The cursor stayed below the unacked item, so the relay was asked to send it again.
    expect(relay.subscribeAfters).toEqual([0, 0]);
  });

  it('delivers a seq once per connection even when the relay sends it twice', async () => {
    const [a, b] = pushEnvelopes(2);
    const { seen } = subscribe({ shouldAck: (item) => item.seq !== a });
    await vi.waitFor(() => expect(seen).toEqual([a, b]), WAIT);
    relay.resend(PEER, a!);
    const [c] = pushEnvelopes(1);
    await vi.waitFor(() => expect(seen).toEqual([a, b, c]), WAIT);
  });

  it('re-acks, without delivering again, an item whose ack confirmation was lost', async () => {
    relay.ignoreAcks = true;
    const [a] = pushEnvelopes(1);
    const { sub, seen } = subscribe({ shouldAck: () => false });
    await vi.waitFor(() => expect(seen).toEqual([a]), WAIT);
    const acked = sub.ack([a!]);
    await vi.waitFor(() => expect(relay.ackFrames).toBe(1), WAIT);
    relay.dropSockets();
    // After reconnecting, the relay sends `a` again (it never saw the ack): the client
    // re-sends the pending ack on subscribing and acks `a` again when it arrives.
    await vi.waitFor(() => expect(relay.ackFrames).toBe(3), WAIT);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([a]);
    relay.ignoreAcks = false;
    relay.resend(PEER, a!);
    await acked;
    expect(relay.mailbox(PEER)).toEqual([]);
    const [b] = pushEnvelopes(1);
    await vi.waitFor(() => expect(seen).toEqual([a, b]), WAIT);
    expect(relay.connections).toBe(2);
  });

  it('logs in again when the token has expired and keeps delivering', async () => {
    pushEnvelopes(1);
    const { seen, errors } = subscribe();
    await vi.waitFor(() => expect(seen).toHaveLength(1), WAIT);
    relay.expireTokens();
    relay.dropSockets();
    const later = pushEnvelopes(1);
    await vi.waitFor(() => expect(seen.at(-1)).toBe(later[0]), WAIT);
    expect(relay.logins).toHaveLength(2);
    expect(errors.some((e) => isRelayClientError(e, 'UNAUTHENTICATED'))).toBe(true);
  });

  it('reports a malformed item with its seq, does not deliver it, and goes on', async () => {
    const bad = relay.push(PEER, {
      kind: 'envelope',
      envelope: { body: { type: 'envelope' } } as unknown as Envelope,
    });
    const [good] = pushEnvelopes(1);
    const { seen, errors } = subscribe();
    await vi.waitFor(() => expect(seen).toEqual([good]), WAIT);
    const reported = errors.find((e) => isRelayClientError(e, 'BAD_RESPONSE'));
    expect(isRelayClientError(reported) && reported.seq).toBe(bad);
  });

  it('drops a link that stops answering pings and reconnects', async () => {
    await relay.close();
    relay = await startRelay({ autoPong: false });
    const { events } = subscribe({ heartbeatMs: 30 });
    await vi.waitFor(
      () => expect(events.filter((e) => e === 'connected').length).toBeGreaterThanOrEqual(2),
      WAIT,
    );
    expect(events).toContain('disconnected');
  });

  it('close() stops the subscription and rejects acks still pending', async () => {
    const { sub, events } = subscribe();
    await vi.waitFor(() => expect(sub.connected).toBe(true), WAIT);
    relay.ignoreAcks = true;
    const pending = sub.ack([999]);
    await sub.close();
    // Awaited only now: close() must not leave an unhandled rejection behind.
    await expect(pending).rejects.toSatisfy((e) => isRelayClientError(e, 'ABORTED'));
    expect(sub.closed).toBe(true);
    await expect(sub.ack([1])).rejects.toSatisfy((e) => isRelayClientError(e, 'ABORTED'));
    expect(events.filter((e) => e === 'connected')).toHaveLength(1);
  });

  it('a new mailbox epoch: the cursor and unconfirmed acks of the old one are dropped, the mailbox is read from 0, acks name the new epoch', async () => {
    const ONE = 'epoch-one-0001';
    const TWO = 'epoch-two-0002';
    relay.mailboxEpoch = ONE;
    const first = pushEnvelopes(3);
    const epochs: [string, string | undefined][] = [];
    const { sub, seen } = subscribe({
      onEpoch: (epoch, previous) => epochs.push([epoch, previous]),
    });
    await vi.waitFor(() => expect(sub.cursor).toBe(3), WAIT);
    expect(seen).toEqual(first);
    expect(epochs).toEqual([[ONE, undefined]]);
    expect(sub.currentEpoch).toBe(ONE);

    // The relay comes back on a new store: seqs 1 and 2 again, below the cursor 3.
    relay.resetMailboxes(TWO);
    relay.dropSockets();
    const second = pushEnvelopes(2);
    expect(second).toEqual([1, 2]);
    await vi.waitFor(() => expect(relay.mailbox(PEER)).toEqual([]), WAIT);
    expect(seen).toEqual([...first, ...second]);
    expect(epochs).toEqual([
      [ONE, undefined],
      [TWO, ONE],
    ]);
    expect(sub.currentEpoch).toBe(TWO);
    await vi.waitFor(() => expect(sub.cursor).toBe(2), WAIT);
    // Whether the new items came live or at the resubscription, acks name the epoch of their items.
    const ackEpochs = relay.frameEpochs.filter((f) => f.type === 'ack').map((f) => f.epoch);
    expect(ackEpochs.slice(0, 3)).toEqual([ONE, ONE, ONE]);
    expect(ackEpochs.slice(3).length).toBeGreaterThanOrEqual(2);
    expect(ackEpochs.slice(3).every((e) => e === TWO)).toBe(true);
  });

  it('a relay that gives no epoch is followed as before, and no epoch is sent', async () => {
    const first = pushEnvelopes(2);
    const epochs: string[] = [];
    const { sub, seen } = subscribe({ onEpoch: (epoch) => epochs.push(epoch) });
    await vi.waitFor(() => expect(sub.cursor).toBe(2), WAIT);
    expect(seen).toEqual(first);
    expect(epochs).toEqual([]);
    expect(sub.currentEpoch).toBeUndefined();
    expect(relay.frameEpochs.every((f) => f.epoch === undefined)).toBe(true);
  });

  it('a relay from before the epoch, refusing the field, is subscribed to again without it', async () => {
    relay.refuseEpochFields = true;
    const first = pushEnvelopes(2);
    const { sub, seen } = subscribe({ after: 0, epoch: 'epoch-kept-by-node' });
    await vi.waitFor(() => expect(relay.mailbox(PEER)).toEqual([]), WAIT);
    expect(seen).toEqual(first);
    expect(sub.cursor).toBe(2);
    const subscribes = relay.frameEpochs.filter((f) => f.type === 'subscribe');
    expect(subscribes[0]?.epoch).toBe('epoch-kept-by-node');
    expect(subscribes.slice(1).every((f) => f.epoch === undefined)).toBe(true);
    expect(
      relay.frameEpochs.filter((f) => f.type === 'ack').every((f) => f.epoch === undefined),
    ).toBe(true);
  });
});
