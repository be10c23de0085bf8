import { BATCH_LIMITS, batchBodySize } from '@rogatory/relay-api';
import {
  RelayClientError,
  type BatchOutcome,
  type HandOverOptions,
  type PreparedEvidence,
  type PreparedHandOver,
  type RelayPeerClient,
} from '@rogatory/client';
import type { Envelope, Evidence } from '@rogatory/protocol';
import { describe, expect, it } from 'vitest';
import { PeerBatcher } from '../src/peer-batcher.js';

const MiB = 1024 * 1024;
/** What a batch body adds around one item: the largest item that still fits alone is maxBytes minus this. */
const BODY_OVERHEAD = batchBodySize([0], []);

/** Opaque envelopes and evidences: the fake client "prepares" them from these fields alone. */
interface FakeItem {
  readonly label: string;
  readonly size: number;
  readonly throws?: Error;
}

function envelope(label: string, size = 100, throws?: Error): Envelope {
  const item: FakeItem = throws === undefined ? { label, size } : { label, size, throws };
  return item as unknown as Envelope;
}

function evidenceItem(label: string, size = 50): { evidence: Evidence; envelope: Envelope } {
  return {
    evidence: { label, size } as unknown as Evidence,
    envelope: envelope(`env-of-${label}`),
  };
}

/** What the peer accepts an envelope with: distinct per item, so a mix-up shows. */
function evidencesFor(label: string, route: 'batch' | 'single' = 'batch'): Evidence[] {
  return [{ acceptedBy: 'peer', envelope: label, route } as unknown as Evidence];
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type BatchResult = { envelopes: BatchOutcome<Evidence[]>[]; evidences: BatchOutcome<undefined>[] };

interface BatchCall {
  readonly envelopes: string[];
  readonly evidences: string[];
  readonly bodySize: number;
  readonly answer: Deferred<BatchResult>;
}

/**
 * A peer client that records every call. Each forwardBatch call waits until
 * the test answers it, so the test controls what is in flight.
 */
class FakePeerClient {
  readonly batches: BatchCall[] = [];
  readonly singleEnvelopes: { label: string; options: HandOverOptions }[] = [];
  readonly singleEvidences: string[][] = [];
  readonly #labels = new Map<object, string>();

  prepareHandOver(env: Envelope, _options: HandOverOptions): PreparedHandOver {
    const item = env as unknown as FakeItem;
    if (item.throws !== undefined) throw item.throws;
    const prepared: PreparedHandOver = {
      kind: 'envelope',
      bytes: new Uint8Array(item.size),
      rejection: () => ({}),
      accepted: () => [],
    };
    this.#labels.set(prepared, item.label);
    return prepared;
  }

  prepareEvidence(item: {
    readonly evidence: Evidence;
    readonly envelope: Envelope;
  }): PreparedEvidence {
    const fake = item.evidence as unknown as FakeItem;
    const prepared: PreparedEvidence = { kind: 'evidence', bytes: new Uint8Array(fake.size) };
    this.#labels.set(prepared, fake.label);
    return prepared;
  }

  forwardBatch(
    envelopes: readonly PreparedHandOver[],
    evidences: readonly PreparedEvidence[],
  ): Promise<BatchResult> {
    const answer = deferred<BatchResult>();
    this.batches.push({
      envelopes: envelopes.map((p) => this.#labels.get(p)!),
      evidences: evidences.map((p) => this.#labels.get(p)!),
      bodySize: batchBodySize(
        envelopes.map((p) => p.bytes.length),
        evidences.map((p) => p.bytes.length),
      ),
      answer,
    });
    return answer.promise;
  }

  forwardEnvelope(env: Envelope, options: HandOverOptions): Promise<Evidence[]> {
    const { label } = env as unknown as FakeItem;
    this.singleEnvelopes.push({ label, options });
    return Promise.resolve(evidencesFor(label, 'single'));
  }

  forwardEvidences(
    items: readonly { readonly evidence: Evidence; readonly envelope: Envelope }[],
  ): Promise<void> {
    this.singleEvidences.push(items.map((i) => (i.evidence as unknown as FakeItem).label));
    return Promise.resolve();
  }

  /** Answer a batch call with every item accepted (each envelope with its own evidences). */
  acceptAll(call: BatchCall): void {
    call.answer.resolve({
      envelopes: call.envelopes.map((label) => ({ ok: true, value: evidencesFor(label) })),
      evidences: call.evidences.map(() => ({ ok: true, value: undefined })),
    });
  }

  asClient(): RelayPeerClient {
    return this as unknown as RelayPeerClient;
  }
}

/** Let the batcher's setImmediate run, and every promise settled before it. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Keep a promise from counting as unhandled until the test looks at it. */
function settled<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  return Promise.allSettled([promise]).then(([result]) => result);
}

/** The very error a settled promise was rejected with (toBe, not a look-alike). */
function reasonOf(result: PromiseSettledResult<unknown>): unknown {
  if (result.status === 'fulfilled') throw new Error('expected a rejection, got a value');
  return result.reason;
}

function setUp(maxInFlight = 4) {
  const peer = new FakePeerClient();
  const batcher = new PeerBatcher(peer.asClient(), maxInFlight);
  return { peer, batcher };
}

describe('PeerBatcher', () => {
  it('sends hand-overs and evidences of the same turn in one call, in order, each settling with its own outcome', async () => {
    const { peer, batcher } = setUp();
    const a = batcher.handOver(envelope('a'), {});
    const x = batcher.evidence(evidenceItem('x'));
    const b = batcher.handOver(envelope('b'), {});
    const y = batcher.evidence(evidenceItem('y'));
    expect(batcher.waiting).toBe(4);
    expect(peer.batches).toHaveLength(0);

    await nextTurn();
    expect(peer.batches.map((c) => [c.envelopes, c.evidences])).toEqual([
      [
        ['a', 'b'],
        ['x', 'y'],
      ],
    ]);
    expect(batcher.waiting).toBe(0);
    peer.acceptAll(peer.batches[0]!);

    expect(await a).toEqual(evidencesFor('a'));
    expect(await b).toEqual(evidencesFor('b'));
    await expect(x).resolves.toBeUndefined();
    await expect(y).resolves.toBeUndefined();
    expect(peer.batches).toHaveLength(1);
    expect(peer.singleEnvelopes).toEqual([]);
    expect(peer.singleEvidences).toEqual([]);
  });

  it('rejects only the items the peer refused', async () => {
    const { peer, batcher } = setUp();
    const a = settled(batcher.handOver(envelope('a'), {}));
    const b = settled(batcher.handOver(envelope('b'), {}));
    const c = settled(batcher.handOver(envelope('c'), {}));
    const x = settled(batcher.evidence(evidenceItem('x')));
    const y = settled(batcher.evidence(evidenceItem('y')));
    await nextTurn();
    expect(peer.batches).toHaveLength(1);

    const replay = new RelayClientError('REPLAY', 'x', { status: 409 });
    const gone = new RelayClientError('EXPIRED', 'y', { status: 410 });
    peer.batches[0]!.answer.resolve({
      envelopes: [
        { ok: true, value: evidencesFor('a') },
        { ok: false, error: replay },
        { ok: true, value: evidencesFor('c') },
      ],
      evidences: [
        { ok: false, error: gone },
        { ok: true, value: undefined },
      ],
    });

    expect(await a).toEqual({ status: 'fulfilled', value: evidencesFor('a') });
    expect(reasonOf(await b)).toBe(replay);
    expect(await c).toEqual({ status: 'fulfilled', value: evidencesFor('c') });
    expect(reasonOf(await x)).toBe(gone);
    expect(await y).toEqual({ status: 'fulfilled', value: undefined });
  });

  it('rejects every item of a call that failed as a whole', async () => {
    const { peer, batcher } = setUp();
    const items = [
      settled(batcher.handOver(envelope('a'), {})),
      settled(batcher.evidence(evidenceItem('x'))),
      settled(batcher.handOver(envelope('b'), {})),
    ];
    await nextTurn();
    const network = new RelayClientError('NETWORK', 'connection reset');
    peer.batches[0]!.answer.reject(network);

    for (const result of await Promise.all(items)) expect(reasonOf(result)).toBe(network);
    // A network failure is not a missing route: no single calls.
    expect(peer.singleEnvelopes).toEqual([]);
    expect(peer.singleEvidences).toEqual([]);
  });

  it('runs at most maxInFlight calls and sends what waited meanwhile together in the next one', async () => {
    const { peer, batcher } = setUp(2);
    const a = batcher.handOver(envelope('a'), {});
    await nextTurn();
    const x = batcher.evidence(evidenceItem('x'));
    await nextTurn();
    expect(peer.batches.map((c) => [...c.envelopes, ...c.evidences])).toEqual([['a'], ['x']]);

    // Both calls busy: these wait, across several turns.
    const c = batcher.handOver(envelope('c'), {});
    const d = batcher.handOver(envelope('d'), {});
    await nextTurn();
    const y = batcher.evidence(evidenceItem('y'));
    const e = batcher.handOver(envelope('e'), {});
    await nextTurn();
    expect(peer.batches).toHaveLength(2);
    expect(batcher.waiting).toBe(4);

    peer.acceptAll(peer.batches[0]!);
    expect(await a).toEqual(evidencesFor('a'));
    await nextTurn();
    expect(peer.batches).toHaveLength(3);
    expect(peer.batches[2]!.envelopes).toEqual(['c', 'd', 'e']);
    expect(peer.batches[2]!.evidences).toEqual(['y']);
    expect(batcher.waiting).toBe(0);

    peer.acceptAll(peer.batches[1]!);
    peer.acceptAll(peer.batches[2]!);
    await expect(x).resolves.toBeUndefined();
    expect(await Promise.all([c, d, e])).toEqual([
      evidencesFor('c'),
      evidencesFor('d'),
      evidencesFor('e'),
    ]);
    await expect(y).resolves.toBeUndefined();
    await nextTurn();
    // Nothing left: no empty call.
    expect(peer.batches).toHaveLength(3);
  });

  it('splits more hand-overs than BATCH_LIMITS.maxEnvelopes across calls, keeping their order', async () => {
    const { peer, batcher } = setUp(8);
    const count = 2 * BATCH_LIMITS.maxEnvelopes + 5;
    const labels = Array.from({ length: count }, (_, i) => `e${i}`);
    const results = labels.map((label) => batcher.handOver(envelope(label), {}));
    await nextTurn();

    expect(peer.batches.map((c) => c.envelopes.length)).toEqual([
      BATCH_LIMITS.maxEnvelopes,
      BATCH_LIMITS.maxEnvelopes,
      5,
    ]);
    expect(peer.batches.flatMap((c) => c.envelopes)).toEqual(labels);
    for (const call of peer.batches) peer.acceptAll(call);
    expect(await Promise.all(results)).toEqual(labels.map((label) => evidencesFor(label)));
  });

  it('splits more evidences than BATCH_LIMITS.maxEvidences across calls', async () => {
    const { peer, batcher } = setUp(8);
    const count = BATCH_LIMITS.maxEvidences + 3;
    const labels = Array.from({ length: count }, (_, i) => `v${i}`);
    const results = labels.map((label) => batcher.evidence(evidenceItem(label)));
    await nextTurn();

    expect(peer.batches.map((c) => c.evidences.length)).toEqual([BATCH_LIMITS.maxEvidences, 3]);
    expect(peer.batches.flatMap((c) => c.evidences)).toEqual(labels);
    for (const call of peer.batches) peer.acceptAll(call);
    await Promise.all(results);
  });

  it('keeps every call body within BATCH_LIMITS.maxBytes, hand-overs and evidences together', async () => {
    const { peer, batcher } = setUp(8);
    const envelopeLabels = ['a', 'b', 'c', 'd', 'e'];
    const handOvers = envelopeLabels.map((label) => batcher.handOver(envelope(label, 3 * MiB), {}));
    const evidences = ['x', 'y'].map((label) => batcher.evidence(evidenceItem(label, 3 * MiB)));
    await nextTurn();

    for (const call of peer.batches)
      expect(call.bodySize).toBeLessThanOrEqual(BATCH_LIMITS.maxBytes);
    // Two 3 MiB items fit in 8 MiB, three do not.
    expect(peer.batches.map((c) => c.envelopes.length + c.evidences.length)).toEqual([2, 2, 2, 1]);
    expect(peer.batches.flatMap((c) => c.envelopes)).toEqual(envelopeLabels);
    expect(peer.batches.flatMap((c) => c.evidences)).toEqual(['x', 'y']);
    for (const call of peer.batches) peer.acceptAll(call);
    expect(await Promise.all(handOvers)).toEqual(
      envelopeLabels.map((label) => evidencesFor(label)),
    );
    await Promise.all(evidences);
    expect(peer.singleEnvelopes).toEqual([]);
  });

  it('sends an item that cannot fit any batch through its single route, and one that just fits in a batch', async () => {
    const { peer, batcher } = setUp();
    const largest = BATCH_LIMITS.maxBytes - BODY_OVERHEAD;
    const options: HandOverOptions = { recipients: ['kz-gpo@casc'] };
    const tooLarge = batcher.handOver(envelope('too-large', largest + 1), options);
    const tooLargeEvidence = batcher.evidence(evidenceItem('too-large-evidence', largest + 1));
    const fits = batcher.handOver(envelope('fits', largest), {});
    await nextTurn();

    expect(await tooLarge).toEqual(evidencesFor('too-large', 'single'));
    await expect(tooLargeEvidence).resolves.toBeUndefined();
    expect(peer.singleEnvelopes).toEqual([{ label: 'too-large', options }]);
    expect(peer.singleEnvelopes[0]!.options).toBe(options);
    expect(peer.singleEvidences).toEqual([['too-large-evidence']]);

    expect(peer.batches.map((c) => c.envelopes)).toEqual([['fits']]);
    expect(peer.batches[0]!.bodySize).toBe(BATCH_LIMITS.maxBytes);
    peer.acceptAll(peer.batches[0]!);
    expect(await fits).toEqual(evidencesFor('fits'));
  });

  it('falls back to single calls for a peer without the batch route (404), for that batch and from then on', async () => {
    const { peer, batcher } = setUp(1);
    const options: HandOverOptions = { recipients: ['ng-agf@wacap'] };
    const a = batcher.handOver(envelope('a'), options);
    const x = batcher.evidence(evidenceItem('x'));
    await nextTurn();
    expect(peer.batches).toHaveLength(1);

    peer.batches[0]!.answer.reject(new RelayClientError('NOT_FOUND', 'no route', { status: 404 }));
    expect(await a).toEqual(evidencesFor('a', 'single'));
    await expect(x).resolves.toBeUndefined();
    expect(peer.singleEnvelopes).toEqual([{ label: 'a', options }]);
    expect(peer.singleEnvelopes[0]!.options).toBe(options);
    expect(peer.singleEvidences).toEqual([['x']]);

    const b = batcher.handOver(envelope('b'), {});
    const c = batcher.handOver(envelope('c'), {});
    const y = batcher.evidence(evidenceItem('y'));
    await nextTurn();
    expect(await Promise.all([b, c])).toEqual([
      evidencesFor('b', 'single'),
      evidencesFor('c', 'single'),
    ]);
    await expect(y).resolves.toBeUndefined();

    expect(peer.batches).toHaveLength(1);
    expect(peer.singleEnvelopes.map((s) => s.label)).toEqual(['a', 'b', 'c']);
    expect(peer.singleEvidences).toEqual([['x'], ['y']]);
    expect(batcher.waiting).toBe(0);
  });

  it('sends items that waited behind the call answered 404 through their single routes, not in another batch', async () => {
    const { peer, batcher } = setUp(1);
    const a = batcher.handOver(envelope('a'), {});
    await nextTurn();
    // Queued while the only call is in flight.
    const b = batcher.handOver(envelope('b'), {});
    const x = batcher.evidence(evidenceItem('x'));
    await nextTurn();
    expect(batcher.waiting).toBe(2);

    peer.batches[0]!.answer.reject(new RelayClientError('NOT_FOUND', 'no route', { status: 404 }));
    expect(await a).toEqual(evidencesFor('a', 'single'));
    await nextTurn();
    // Should the batcher send another batch all the same, the peer answers it 404 too, so the test ends.
    for (const call of peer.batches.slice(1))
      call.answer.reject(new RelayClientError('NOT_FOUND', 'no route', { status: 404 }));
    expect(await b).toEqual(evidencesFor('b', 'single'));
    await expect(x).resolves.toBeUndefined();

    // The peer said it has no batch route: nothing more goes that way.
    expect(peer.batches.map((call) => [...call.envelopes, ...call.evidences])).toEqual([['a']]);
    expect(peer.singleEnvelopes.map((s) => s.label)).toEqual(['a', 'b']);
    expect(peer.singleEvidences).toEqual([['x']]);
  });

  it('takes a NOT_FOUND that is not a 404 as a failed call, not as a missing route', async () => {
    const { peer, batcher } = setUp();
    const a = settled(batcher.handOver(envelope('a'), {}));
    await nextTurn();
    const notFound = new RelayClientError('NOT_FOUND', 'unknown envelope', { status: 0 });
    peer.batches[0]!.answer.reject(notFound);
    expect(reasonOf(await a)).toBe(notFound);

    const b = batcher.handOver(envelope('b'), {});
    await nextTurn();
    expect(peer.batches).toHaveLength(2);
    peer.acceptAll(peer.batches[1]!);
    expect(await b).toEqual(evidencesFor('b'));
    expect(peer.singleEnvelopes).toEqual([]);
  });

  it('rejects a hand-over whose preparation throws, without affecting the others', async () => {
    const { peer, batcher } = setUp();
    const malformed = new RelayClientError('MALFORMED', 'envelope is not valid');
    const a = batcher.handOver(envelope('a'), {});
    const bad = settled(batcher.handOver(envelope('bad', 100, malformed), {}));
    const b = batcher.handOver(envelope('b'), {});
    expect(reasonOf(await bad)).toBe(malformed);
    expect(batcher.waiting).toBe(2);

    await nextTurn();
    expect(peer.batches.map((c) => c.envelopes)).toEqual([['a', 'b']]);
    peer.acceptAll(peer.batches[0]!);
    expect(await a).toEqual(evidencesFor('a'));
    expect(await b).toEqual(evidencesFor('b'));
  });
});
