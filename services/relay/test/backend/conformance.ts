/**
 * The RelayBackend conformance suite: the embedded and the Redis backend run
 * these same tests.
 *
 *   runBackendConformance('embedded', async () => harness);
 *
 * Call it at the top level of a `*.test.ts` file. The factory runs before
 * every test and returns a harness on a fresh, isolated store (its own file
 * or its own Redis prefix) whose backends read time from `harness.clock`.
 *
 * Time: the test clock is real time plus an offset the tests push forward,
 * so deadlines, deliverBy, windows and TTLs are crossed by `advance()`
 * instead of sleeping, while the real delays BullMQ needs (backoff, delayed
 * jobs) stay a few milliseconds. Every wait is bounded and waits for an
 * observable event, never for a duration; "never happens" is checked after
 * a later event that must come after it (a barrier) or after stopWorkers.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBackendError } from '../../src/backend/errors.js';
import type {
  AcceptInput,
  BackoffPolicy,
  ForwardOutcome,
  ForwardTask,
  RelayBackend,
  StoredEnvelope,
  WorkerHandlers,
} from '../../src/backend/types.js';

export interface TestClock {
  readonly now: () => number;
  /** Moves the clock forward by `ms`; real time keeps moving it too. */
  readonly advance: (ms: number) => void;
}

/** Real time plus an offset: never goes backwards, and tests can jump it forward. */
export function createTestClock(): TestClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (ms) => {
      offset += ms;
    },
  };
}

export interface BackendHarness {
  readonly clock: TestClock;
  /**
   * Opens a backend on this harness's store, reading `clock`. Call it again
   * for a second relay instance sharing the store, or to reopen after close().
   */
  open(): Promise<RelayBackend>;
  /** Closes every backend open() returned and removes the store. */
  dispose(): Promise<void>;
}

export type BackendFactory = () => Promise<BackendHarness>;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WAIT_TIMEOUT_MS = 20_000;
/** Fast enough that retries happen within a test, with jitter on so it is exercised. */
const BACKOFF: BackoffPolicy = { baseMs: 5, maxMs: 40, jitter: 0.5 };
/** Retries that would not come due within a test's wait. */
const SLOW_BACKOFF: BackoffPolicy = { baseMs: 600_000, maxMs: 600_000, jitter: 0 };

const SENDER = 'ng-moj@wacap';
const ALICE = 'sn-moj@wacap';
const BOB = 'gh-ago@wacap';
const CAROL = 'ci-moj@wacap';
const REMOTE = 'kz-gp@casc';
const PEER = 'relay:relay@casc';
/** An upload record of SENDER, where a test needs one but not its owner. */
const upload = { identity: SENDER, size: 1 } as const;

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function randomChunkId(): string {
  return sha256Hex(randomBytes(16));
}

/** Every byte value, NULs and invalid UTF-8 included: what a backend must hand back unchanged. */
function awkwardBytes(): Uint8Array {
  const bytes = new Uint8Array(512);
  for (let index = 0; index < bytes.length; index++) bytes[index] = index % 256;
  bytes.set([0xff, 0xfe, 0x00, 0xc3, 0x28], 256);
  return bytes;
}

function randomPayload(size = 48): Uint8Array {
  return new Uint8Array(randomBytes(size));
}

async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  options: { readonly clock?: TestClock; readonly advanceMs?: number } = {},
): Promise<void> {
  const giveUpAt = Date.now() + WAIT_TIMEOUT_MS;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for ${what}`);
    if (options.clock !== undefined && options.advanceMs !== undefined)
      options.clock.advance(options.advanceMs);
    await sleep(5);
  }
}

/** A promise with its resolve function, to hold a handler until the test lets it go. */
function gate(): { readonly promise: Promise<void>; open(): void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

interface ForwardCall {
  readonly task: ForwardTask;
  readonly attempt: number;
}

/** Handlers that record every call; `onForward` decides the outcome (done by default). */
class Recorder implements WorkerHandlers {
  readonly forwards: ForwardCall[] = [];
  readonly giveUps: ForwardTask[] = [];
  readonly expirations: { address: string; envelopeId: string }[] = [];
  onForward: (task: ForwardTask, attempt: number) => Promise<ForwardOutcome> = () =>
    Promise.resolve({ status: 'done' });

  async forward(task: ForwardTask, attempt: number): Promise<ForwardOutcome> {
    this.forwards.push({ task, attempt });
    return this.onForward(task, attempt);
  }

  giveUp(task: ForwardTask): Promise<void> {
    this.giveUps.push(task);
    return Promise.resolve();
  }

  expired(item: { readonly address: string; readonly envelopeId: string }): Promise<void> {
    this.expirations.push({ address: item.address, envelopeId: item.envelopeId });
    return Promise.resolve();
  }

  callsFor(taskId: string): ForwardCall[] {
    return this.forwards.filter((call) => call.task.id === taskId);
  }

  expiredFor(envelopeId: string): number {
    return this.expirations.filter((item) => item.envelopeId === envelopeId).length;
  }
}

export function runBackendConformance(name: string, factory: BackendFactory): void {
  describe(`RelayBackend conformance: ${name}`, () => {
    let harness: BackendHarness;
    let backend: RelayBackend;
    let clock: TestClock;

    beforeEach(async () => {
      harness = await factory();
      clock = harness.clock;
      backend = await harness.open();
    });

    afterEach(async () => {
      await harness.dispose();
    });

    function envelope(overrides: Partial<Omit<StoredEnvelope, 'hash'>> = {}): StoredEnvelope {
      const bytes = overrides.bytes ?? randomPayload(96);
      return {
        id: overrides.id ?? `env-${randomUUID()}`,
        hash: sha256Hex(bytes),
        bytes,
        sender: overrides.sender ?? SENDER,
        recipients: overrides.recipients ?? [ALICE],
        expiresAt: overrides.expiresAt ?? clock.now() + 7 * DAY,
        acceptedAt: overrides.acceptedAt ?? clock.now(),
        chunkIds: overrides.chunkIds ?? [randomChunkId(), randomChunkId()],
        acceptance: overrides.acceptance ?? randomPayload(64),
      };
    }

    function input(
      stored: StoredEnvelope,
      options: {
        readonly deliveries?: AcceptInput['deliveries'];
        readonly forwards?: AcceptInput['forwards'];
        readonly retainUntil?: number;
      } = {},
    ): AcceptInput {
      return {
        envelope: stored,
        deliveries:
          options.deliveries ??
          stored.recipients.map((address) => ({ address, deliverBy: clock.now() + DAY })),
        forwards: options.forwards ?? [],
        retainUntil: options.retainUntil ?? clock.now() + 30 * DAY,
      };
    }

    async function acceptNew(accepted: AcceptInput): Promise<void> {
      expect(await backend.accept(accepted)).toEqual({ status: 'accepted' });
    }

    async function seqsOf(address: string, target = backend): Promise<number[]> {
      return (await target.readMailbox(address, 0, 1000)).map((item) => item.seq);
    }

    function evidenceTask(overrides: Partial<ForwardTask & { kind: 'evidence' }> = {}) {
      return {
        kind: 'evidence' as const,
        id: overrides.id ?? `evidence-${randomUUID()}`,
        envelopeId: overrides.envelopeId ?? `env-${randomUUID()}`,
        network: overrides.network ?? 'casc',
        payload: overrides.payload ?? randomPayload(),
        deadline: overrides.deadline ?? clock.now() + HOUR,
      };
    }

    describe('accept', () => {
      it('stores the envelope and returns its exact bytes', async () => {
        const stored = envelope({
          bytes: awkwardBytes(),
          acceptance: awkwardBytes().reverse(),
          recipients: [ALICE, REMOTE],
          chunkIds: ['c'.repeat(64), 'a'.repeat(64), 'b'.repeat(64)],
        });
        await acceptNew(
          input(stored, { deliveries: [{ address: ALICE, deliverBy: clock.now() + DAY }] }),
        );
        const read = await backend.getEnvelope(stored.id);
        expect(read).toEqual(stored);
        expect(read?.bytes).toBeInstanceOf(Uint8Array);
        expect(Buffer.isBuffer(read?.bytes)).toBe(false);
        expect(await backend.getEnvelope(`env-${randomUUID()}`)).toBeUndefined();
      });

      it('answers a retry with the stored acceptance, byte for byte, and stores nothing twice', async () => {
        const stored = envelope({ recipients: [ALICE, BOB], acceptance: awkwardBytes() });
        const accepted = input(stored, { forwards: [{ network: 'casc', recipients: [REMOTE] }] });
        await acceptNew(accepted);
        const before = await backend.stats();

        const retry = await backend.accept({
          ...accepted,
          envelope: { ...stored, acceptance: randomPayload() },
        });
        expect(retry.status).toBe('duplicate');
        if (retry.status !== 'duplicate') return;
        expect(retry.acceptance).toEqual(awkwardBytes());
        expect(await backend.stats()).toEqual(before);
        expect(await seqsOf(ALICE)).toHaveLength(1);
        expect(await seqsOf(BOB)).toHaveLength(1);
      });

      it('refuses the same id with another hash and leaves the original untouched', async () => {
        const stored = envelope();
        await acceptNew(input(stored));
        const replay = envelope({ id: stored.id, recipients: [BOB] });
        expect(replay.hash).not.toBe(stored.hash);

        expect(await backend.accept(input(replay))).toEqual({ status: 'conflict' });
        expect(await backend.getEnvelope(stored.id)).toEqual(stored);
        expect(await backend.readMailbox(BOB, 0, 10)).toEqual([]);
        expect(await seqsOf(ALICE)).toHaveLength(1);
      });

      it('puts an envelope in a mailbox once even when the address is listed twice', async () => {
        const stored = envelope();
        const deliverBy = clock.now() + DAY;
        await acceptNew(
          input(stored, {
            deliveries: [
              { address: ALICE, deliverBy },
              { address: ALICE, deliverBy },
            ],
          }),
        );
        expect(await seqsOf(ALICE)).toHaveLength(1);
        expect((await backend.stats()).mailboxItems).toBe(1);
      });
    });

    describe('mailbox', () => {
      it('numbers items strictly increasing across kinds and returns them oldest first', async () => {
        const first = envelope({ bytes: awkwardBytes(), acceptedAt: clock.now() - 5 });
        await acceptNew(input(first));
        const evidence = awkwardBytes().reverse();
        expect(await backend.pushEvidence(ALICE, first.id, 'delivery-1', evidence)).toBe(true);
        const second = envelope();
        await acceptNew(input(second));

        const items = await backend.readMailbox(ALICE, 0, 10);
        expect(items.map((item) => [item.kind, item.envelopeId])).toEqual([
          ['envelope', first.id],
          ['evidence', first.id],
          ['envelope', second.id],
        ]);
        const seqs = items.map((item) => item.seq);
        for (let index = 1; index < seqs.length; index++)
          expect(seqs[index]!).toBeGreaterThan(seqs[index - 1]!);
        expect(items[0]?.payload).toEqual(first.bytes);
        expect(items[1]?.payload).toEqual(evidence);
        expect(items[2]?.payload).toEqual(second.bytes);
        // Envelope items say when the envelope was accepted; evidence items do not.
        expect(items.map((item) => item.acceptedAt)).toEqual([
          first.acceptedAt,
          undefined,
          second.acceptedAt,
        ]);
      });

      it('keeps mailboxes apart', async () => {
        const stored = envelope({ recipients: [ALICE] });
        await acceptNew(input(stored));
        await backend.pushEvidence(BOB, stored.id, 'k', randomPayload());
        const aliceSeqs = await seqsOf(ALICE);
        const bobItems = await backend.readMailbox(BOB, 0, 10);

        expect(bobItems.map((item) => item.kind)).toEqual(['evidence']);
        expect(await backend.readMailbox(CAROL, 0, 10)).toEqual([]);
        // Acking Alice's seqs through Bob's mailbox removes nothing of Alice's.
        expect(await backend.ack(CAROL, aliceSeqs)).toBe(0);
        expect(await seqsOf(ALICE)).toEqual(aliceSeqs);
        expect(await backend.readMailbox(BOB, 0, 10)).toEqual(bobItems);
      });

      it('acks only the given seqs, ignores unknown ones and is idempotent', async () => {
        for (let index = 0; index < 4; index++)
          await backend.pushEvidence(ALICE, 'env-x', `k${index}`, randomPayload());
        const [a, b, c, d] = await seqsOf(ALICE);

        expect(await backend.ack(ALICE, [b!, d!, 999_999, -1, 0])).toBe(2);
        expect(await seqsOf(ALICE)).toEqual([a, c]);
        expect(await backend.ack(ALICE, [b!, d!])).toBe(0);
        expect(await backend.ack(ALICE, [])).toBe(0);
        expect(await backend.ack(ALICE, [a!, a!])).toBe(1);
        expect(await seqsOf(ALICE)).toEqual([c]);
      });

      it('pages with after and limit', async () => {
        for (let index = 0; index < 5; index++)
          await backend.pushEvidence(ALICE, 'env-x', `k${index}`, randomPayload());
        const all = await seqsOf(ALICE);
        expect(all).toHaveLength(5);

        const page1 = await backend.readMailbox(ALICE, 0, 2);
        expect(page1.map((item) => item.seq)).toEqual(all.slice(0, 2));
        const page2 = await backend.readMailbox(ALICE, page1.at(-1)!.seq, 2);
        expect(page2.map((item) => item.seq)).toEqual(all.slice(2, 4));
        const page3 = await backend.readMailbox(ALICE, page2.at(-1)!.seq, 2);
        expect(page3.map((item) => item.seq)).toEqual(all.slice(4));
        expect(await backend.readMailbox(ALICE, all.at(-1)!, 2)).toEqual([]);
        expect(await backend.readMailbox(ALICE, 0, 0)).toEqual([]);
        // Acked items leave gaps that paging skips.
        await backend.ack(ALICE, [all[1]!]);
        expect((await backend.readMailbox(ALICE, all[0]!, 2)).map((item) => item.seq)).toEqual([
          all[2],
          all[3],
        ]);
      });

      it('never reuses a seq, even after every item was acked', async () => {
        await backend.pushEvidence(ALICE, 'env-x', 'k1', randomPayload());
        const [first] = await seqsOf(ALICE);
        await backend.ack(ALICE, [first!]);
        await backend.pushEvidence(ALICE, 'env-x', 'k2', randomPayload());
        const [second] = await seqsOf(ALICE);
        expect(second).toBeGreaterThan(first!);
      });

      it('deduplicates evidences by key within a mailbox', async () => {
        const stored = envelope();
        await acceptNew(input(stored, { deliveries: [] }));
        const payload = randomPayload();
        expect(await backend.pushEvidence(SENDER, stored.id, 'delivery/sn-moj', payload)).toBe(
          true,
        );
        expect(
          await backend.pushEvidence(SENDER, stored.id, 'delivery/sn-moj', randomPayload()),
        ).toBe(false);
        expect(
          await backend.pushEvidence(SENDER, stored.id, 'retrieval/sn-moj', randomPayload()),
        ).toBe(true);
        expect(await backend.pushEvidence(BOB, stored.id, 'delivery/sn-moj', randomPayload())).toBe(
          true,
        );

        const items = await backend.readMailbox(SENDER, 0, 10);
        expect(items).toHaveLength(2);
        expect(items[0]?.payload).toEqual(payload);
        // Acked, the key still refuses a resend while the envelope record is kept.
        await backend.ack(SENDER, [items[0]!.seq]);
        expect(
          await backend.pushEvidence(SENDER, stored.id, 'delivery/sn-moj', randomPayload()),
        ).toBe(false);
        expect(await backend.readMailbox(SENDER, 0, 10)).toHaveLength(1);
      });
    });

    describe('chunks', () => {
      it('shows a chunk to the sender and recipients of a live envelope only', async () => {
        const [mine, other] = [randomChunkId(), randomChunkId()];
        const stored = envelope({ recipients: [ALICE, REMOTE], chunkIds: [mine] });
        await acceptNew(
          input(stored, { deliveries: [{ address: ALICE, deliverBy: clock.now() + DAY }] }),
        );

        expect(await backend.chunkVisibleTo(mine, SENDER)).toBe(true);
        expect(await backend.chunkVisibleTo(mine, ALICE)).toBe(true);
        expect(await backend.chunkVisibleTo(mine, REMOTE)).toBe(true);
        expect(await backend.chunkVisibleTo(mine, BOB)).toBe(false);
        expect(await backend.chunkVisibleTo(other, SENDER)).toBe(false);

        // Delivered and acked: the envelope is done, its chunks are no longer served.
        await backend.ack(ALICE, await seqsOf(ALICE));
        expect(await backend.chunkVisibleTo(mine, ALICE)).toBe(false);
        expect(await backend.chunkVisibleTo(mine, SENDER)).toBe(false);
      });

      it('counts a chunk as referenced while an envelope lists it or it was just uploaded', async () => {
        const [listed, uploaded, unknown] = [randomChunkId(), randomChunkId(), randomChunkId()];
        await acceptNew(input(envelope({ chunkIds: [listed] })));
        const now = clock.now();
        await backend.noteUpload(uploaded, now, upload);

        expect(await backend.chunkReferenced(listed, now, MINUTE)).toBe(true);
        expect(await backend.chunkReferenced(uploaded, now + MINUTE - 1, MINUTE)).toBe(true);
        expect(await backend.chunkReferenced(uploaded, now + MINUTE, MINUTE)).toBe(false);
        expect(await backend.chunkReferenced(unknown, now, MINUTE)).toBe(false);
        // A later upload of the same chunk restarts its grace; an older note does not shorten it.
        await backend.noteUpload(uploaded, now + MINUTE, upload);
        await backend.noteUpload(uploaded, now, upload);
        expect(await backend.chunkReferenced(uploaded, now + MINUTE + 1, MINUTE)).toBe(true);
      });
    });

    describe('chunk ownership and quotas', () => {
      const GRACE = { chunkRetentionMs: HOUR, uploadGraceMs: 10 * MINUTE };

      it('accepts an envelope only with chunks its uploader recorded', async () => {
        const [mine, theirs] = [randomChunkId(), randomChunkId()];
        const now = clock.now();
        await backend.noteUpload(mine, now, { identity: SENDER, size: 10 });
        await backend.noteUpload(theirs, now, { identity: ALICE, size: 20 });
        const stored = envelope({ chunkIds: [mine, theirs, mine] });

        // Knowing another uploader's chunk id is not enough: nothing is stored.
        expect(await backend.accept({ ...input(stored), uploader: SENDER })).toEqual({
          status: 'unowned',
          chunkIds: [theirs],
        });
        expect(await backend.getEnvelope(stored.id)).toBeUndefined();
        expect(await seqsOf(ALICE)).toEqual([]);
        expect(await backend.ownedChunks(SENDER, [mine], now)).toEqual([mine]);

        // Sending the bytes makes SENDER an owner too.
        await backend.noteUpload(theirs, now, { identity: SENDER, size: 20 });
        expect(await backend.accept({ ...input(stored), uploader: SENDER })).toEqual({
          status: 'accepted',
        });
        expect(await backend.uploadUsage(SENDER, theirs)).toEqual({
          pendingBytes: 0,
          referencedBytes: 30,
          owned: true,
        });
        expect(await backend.uploadUsage(ALICE, theirs)).toEqual({
          pendingBytes: 20,
          referencedBytes: 0,
          owned: true,
        });
        // Still SENDER's: another envelope may list it (each holds its bytes until done).
        await acceptNew({ ...input(envelope({ chunkIds: [mine] })), uploader: SENDER });
        expect(await backend.uploadUsage(SENDER, mine)).toMatchObject({ referencedBytes: 40 });
        // A retry is recognised before ownership is looked at.
        const retry = await backend.accept({ ...input(stored), uploader: SENDER });
        expect(retry.status).toBe('duplicate');
      });

      it('answers and renews upload records only for their own uploader', async () => {
        const [renewed, foreign, unknown] = [randomChunkId(), randomChunkId(), randomChunkId()];
        const at = clock.now();
        await backend.noteUpload(renewed, at, { identity: SENDER, size: 1 });
        await backend.noteUpload(foreign, at, { identity: SENDER, size: 1 });

        const later = at + 5 * MINUTE;
        expect(await backend.ownedChunks(SENDER, [renewed, unknown, renewed], later)).toEqual([
          renewed,
        ]);
        // Another identity asking about SENDER's chunk learns nothing and keeps nothing alive.
        expect(await backend.ownedChunks(ALICE, [foreign, renewed], later)).toEqual([]);
        expect(await backend.ownedChunks(PEER, [foreign], later)).toEqual([]);

        const collected = await backend.collectGarbage(at + 10 * MINUTE, GRACE);
        expect(collected.orphanChunks).toEqual([foreign]);
        expect(await backend.chunkReferenced(renewed, at + 10 * MINUTE, 10 * MINUTE)).toBe(true);
        expect(await backend.ownedChunks(SENDER, [foreign], at + 10 * MINUTE)).toEqual([]);
      });

      it('counts pending and referenced bytes per uploader until delivery or collection', async () => {
        const [a, b, c] = [randomChunkId(), randomChunkId(), randomChunkId()];
        const at = clock.now();
        await backend.noteUpload(a, at, { identity: SENDER, size: 100 });
        // A repeated upload (a retry after a crash) renews the record and charges nothing more.
        await backend.noteUpload(a, at + 1, { identity: SENDER, size: 100 });
        await backend.noteUpload(b, at, { identity: SENDER, size: 50 });
        await backend.noteUpload(c, at, { identity: PEER, size: 7 });
        await backend.noteUpload(a, at, { identity: PEER, size: 100 });

        expect(await backend.uploadUsage(SENDER, a)).toEqual({
          pendingBytes: 150,
          referencedBytes: 0,
          owned: true,
        });
        expect(await backend.uploadUsage(SENDER, c)).toMatchObject({ owned: false });
        expect(await backend.uploadUsage(BOB, a)).toEqual({
          pendingBytes: 0,
          referencedBytes: 0,
          owned: false,
        });

        const stored = envelope({ chunkIds: [a, b], recipients: [ALICE] });
        await acceptNew({ ...input(stored), uploader: SENDER });
        expect(await backend.uploadUsage(SENDER, a)).toEqual({
          pendingBytes: 0,
          referencedBytes: 150,
          owned: true,
        });

        // Delivered: released. An envelope with nothing left to do is released at once.
        await backend.ack(ALICE, await seqsOf(ALICE));
        await backend.noteUpload(c, at, { identity: SENDER, size: 7 });
        await acceptNew({
          ...input(envelope({ chunkIds: [c] }), { deliveries: [] }),
          uploader: SENDER,
        });
        expect(await backend.uploadUsage(SENDER, a)).toMatchObject({
          pendingBytes: 0,
          referencedBytes: 0,
        });
        const usage = await backend.usage();
        expect(usage.get(SENDER)).toEqual({ pendingBytes: 0, referencedBytes: 0 });
        expect(usage.get(PEER)).toEqual({ pendingBytes: 107, referencedBytes: 0 });
        expect(usage.has(BOB)).toBe(false);

        // Renewed (a node about to list it again): pending again.
        expect(await backend.ownedChunks(SENDER, [a], at + 2)).toEqual([a]);
        expect((await backend.usage()).get(SENDER)).toEqual({
          pendingBytes: 100,
          referencedBytes: 0,
        });

        // Abandoned uploads are released when collected.
        await backend.collectGarbage(at + 10 * MINUTE, GRACE);
        expect((await backend.usage()).get(PEER)).toEqual({ pendingBytes: 0, referencedBytes: 0 });
        expect((await backend.usage()).get(SENDER)).toEqual({
          pendingBytes: 100,
          referencedBytes: 0,
        });
        await backend.collectGarbage(at + 2 + 10 * MINUTE, GRACE);
        expect((await backend.usage()).get(SENDER)).toEqual({
          pendingBytes: 0,
          referencedBytes: 0,
        });
      });

      it('releases referenced bytes once every forward finished', async () => {
        const chunk = randomChunkId();
        await backend.noteUpload(chunk, clock.now(), { identity: PEER, size: 64 });
        const stored = envelope({ chunkIds: [chunk], recipients: [REMOTE] });
        await acceptNew({
          ...input(stored, {
            deliveries: [],
            forwards: [{ network: 'casc', recipients: [REMOTE] }],
          }),
          uploader: PEER,
        });
        expect((await backend.usage()).get(PEER)).toEqual({ pendingBytes: 0, referencedBytes: 64 });
        const recorder = new Recorder();
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        await waitFor('the forward to finish', async () => {
          const held = (await backend.usage()).get(PEER);
          return recorder.forwards.length === 1 && held?.referencedBytes === 0;
        });
        await backend.stopWorkers();
      });
    });

    describe('forwarding', () => {
      it('runs the forward of an accepted envelope once, with its routing data', async () => {
        const recorder = new Recorder();
        const stored = envelope({ recipients: [ALICE, REMOTE, 'tj-gp@casc'] });
        await acceptNew(
          input(stored, {
            deliveries: [{ address: ALICE, deliverBy: clock.now() + DAY }],
            forwards: [{ network: 'casc', recipients: [REMOTE, 'tj-gp@casc'] }],
          }),
        );
        expect((await backend.stats()).forwardPending).toBe(1);
        await backend.startWorkers(recorder, { concurrency: 2, backoff: BACKOFF });
        await waitFor('the forward', async () => (await backend.stats()).forwardPending === 0);
        await backend.stopWorkers();

        expect(recorder.forwards).toHaveLength(1);
        const [call] = recorder.forwards;
        expect(call?.attempt).toBe(1);
        expect(call?.task).toMatchObject({
          kind: 'envelope',
          envelopeId: stored.id,
          network: 'casc',
          recipients: [REMOTE, 'tj-gp@casc'],
          deadline: stored.expiresAt,
        });
        expect(recorder.giveUps).toEqual([]);
      });

      it('retries with backoff until the handler succeeds', async () => {
        const recorder = new Recorder();
        recorder.onForward = (_task, attempt) =>
          Promise.resolve(
            attempt < 3 ? { status: 'retry', error: 'peer unavailable' } : { status: 'done' },
          );
        const task = evidenceTask({ payload: awkwardBytes() });
        await backend.enqueueForward(task);
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        await waitFor('three attempts', async () => (await backend.stats()).forwardPending === 0);
        await backend.stopWorkers();

        expect(recorder.forwards.map((call) => call.attempt)).toEqual([1, 2, 3]);
        expect(recorder.forwards[0]?.task).toEqual(task);
        expect(recorder.giveUps).toEqual([]);
      });

      it("drains a network's backlog as soon as its relay answers again, closest deadline first", async () => {
        const recorder = new Recorder();
        let peerDown = true;
        recorder.onForward = (task) =>
          Promise.resolve(
            peerDown && task.network === 'casc'
              ? { status: 'retry', error: 'peer unavailable' }
              : { status: 'done' },
          );
        const hours = [5, 2, 4, 1, 3];
        const tasks = hours.map((h) => evidenceTask({ deadline: clock.now() + h * HOUR }));
        for (const task of tasks) await backend.enqueueForward(task);
        // A backoff far longer than the test: only the wake-up can run the backlog again.
        await backend.startWorkers(recorder, { concurrency: 1, backoff: SLOW_BACKOFF });
        await waitFor('a failed first attempt of each', () =>
          tasks.every((task) => recorder.callsFor(task.id).length === 1),
        );
        peerDown = false;
        // One success towards the network: its relay is back.
        await backend.enqueueForward(evidenceTask({ deadline: clock.now() + 10 * HOUR }));
        await waitFor(
          'the backlog drained',
          async () => (await backend.stats()).forwardPending === 0,
        );
        await backend.stopWorkers();
        const drained = recorder.forwards.filter((call) => call.attempt === 2);
        expect(drained.map((call) => call.task.deadline)).toEqual(
          tasks.map((task) => task.deadline).sort((a, b) => a - b),
        );
      });

      it('treats a throwing handler as a retry', async () => {
        const recorder = new Recorder();
        recorder.onForward = (_task, attempt) =>
          attempt === 1
            ? Promise.reject(new Error('socket hang up'))
            : Promise.resolve({ status: 'done' });
        await backend.enqueueForward(evidenceTask());
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        await waitFor(
          'the second attempt',
          async () => (await backend.stats()).forwardPending === 0,
        );
        await backend.stopWorkers();
        expect(recorder.forwards.map((call) => call.attempt)).toEqual([1, 2]);
        expect(recorder.giveUps).toEqual([]);
      });

      it('gives up once the deadline has passed, and only once', async () => {
        const recorder = new Recorder();
        recorder.onForward = () => Promise.resolve({ status: 'retry', error: 'peer unavailable' });
        const task = evidenceTask({ deadline: clock.now() + HOUR });
        await backend.enqueueForward(task);
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        await waitFor('a first attempt', () => recorder.forwards.length > 0);
        expect(recorder.giveUps).toEqual([]);

        clock.advance(HOUR);
        await waitFor('giveUp', () => recorder.giveUps.length > 0);
        await waitFor(
          'the task to finish',
          async () => (await backend.stats()).forwardPending === 0,
        );
        const attempts = recorder.forwards.length;
        await backend.stopWorkers();

        expect(recorder.giveUps).toEqual([task]);
        expect(recorder.forwards).toHaveLength(attempts);
      });

      it('gives up without an attempt on a task picked up after its deadline', async () => {
        const recorder = new Recorder();
        const task = evidenceTask({ deadline: clock.now() + MINUTE });
        await backend.enqueueForward(task);
        clock.advance(2 * MINUTE);
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        await waitFor('giveUp', async () => (await backend.stats()).forwardPending === 0);
        await backend.stopWorkers();
        expect(recorder.forwards).toEqual([]);
        expect(recorder.giveUps).toEqual([task]);
      });

      it('keeps trying to give up while giveUp fails', async () => {
        const recorder = new Recorder();
        let failures = 0;
        recorder.giveUp = (task) => {
          recorder.giveUps.push(task);
          if (failures < 2) {
            failures += 1;
            return Promise.reject(new Error('cannot sign the NonDelivery evidence now'));
          }
          return Promise.resolve();
        };
        const task = evidenceTask({ deadline: clock.now() - 1 });
        await backend.enqueueForward(task);
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        await waitFor(
          'a successful giveUp',
          async () => (await backend.stats()).forwardPending === 0,
        );
        await backend.stopWorkers();
        expect(recorder.giveUps).toHaveLength(3);
      });

      it('enqueues idempotently by id', async () => {
        const recorder = new Recorder();
        const stored = envelope();
        await acceptNew(input(stored, { deliveries: [] }));
        const task = evidenceTask({ envelopeId: stored.id });
        await backend.enqueueForward(task);
        await backend.enqueueForward({ ...task, payload: randomPayload() });
        expect((await backend.stats()).forwardPending).toBe(1);

        await backend.startWorkers(recorder, { concurrency: 2, backoff: BACKOFF });
        await waitFor('the forward', async () => (await backend.stats()).forwardPending === 0);
        await backend.stopWorkers();
        expect(recorder.forwards).toHaveLength(1);
        expect(recorder.forwards[0]?.task).toEqual(task);

        // Finished, the id is still remembered while the envelope record is kept.
        await backend.enqueueForward(task);
        expect((await backend.stats()).forwardPending).toBe(0);
      });

      it('assigns an id when none is given', async () => {
        const recorder = new Recorder();
        const { id: _omit, ...withoutId } = evidenceTask();
        await backend.enqueueForward(withoutId);
        await backend.enqueueForward(withoutId);
        await backend.startWorkers(recorder, { concurrency: 2, backoff: BACKOFF });
        await waitFor('both forwards', async () => (await backend.stats()).forwardPending === 0);
        await backend.stopWorkers();
        const ids = recorder.forwards.map((call) => call.task.id);
        expect(ids).toHaveLength(2);
        expect(new Set(ids).size).toBe(2);
      });

      it('runs at most `concurrency` forwards at once', async () => {
        const recorder = new Recorder();
        const release = gate();
        let inFlight = 0;
        let maxInFlight = 0;
        recorder.onForward = async () => {
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await release.promise;
          inFlight -= 1;
          return { status: 'done' };
        };
        for (let index = 0; index < 6; index++) await backend.enqueueForward(evidenceTask());
        await backend.startWorkers(recorder, { concurrency: 2, backoff: BACKOFF });
        try {
          await waitFor('two forwards in flight', () => inFlight >= 2);
          // Give a misbehaving backend every chance to start a third.
          for (let round = 0; round < 10; round++) await sleep(10);
          expect(inFlight).toBe(2);
        } finally {
          release.open();
        }
        await waitFor('all forwards', async () => (await backend.stats()).forwardPending === 0);
        await backend.stopWorkers();
        expect(recorder.forwards).toHaveLength(6);
        expect(maxInFlight).toBe(2);
      });

      it('lets in-flight work finish when workers stop', async () => {
        const recorder = new Recorder();
        const release = gate();
        recorder.onForward = async () => {
          await release.promise;
          return { status: 'done' };
        };
        await backend.enqueueForward(evidenceTask());
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        let stopped = false;
        let stopping: Promise<void> | undefined;
        try {
          await waitFor('the forward to start', () => recorder.forwards.length === 1);
          stopping = backend.stopWorkers().then(() => {
            stopped = true;
          });
          for (let round = 0; round < 5; round++) await sleep(10);
          expect(stopped).toBe(false);
        } finally {
          release.open();
        }
        await stopping;
        expect(stopped).toBe(true);
        expect((await backend.stats()).forwardPending).toBe(0);
      });

      it('refuses a second start, and starts again after a stop', async () => {
        const recorder = new Recorder();
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        await expect(
          backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF }),
        ).rejects.toThrow();
        await backend.stopWorkers();
        await backend.stopWorkers();
        await backend.enqueueForward(evidenceTask());
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        await waitFor('the forward', async () => (await backend.stats()).forwardPending === 0);
        await backend.stopWorkers();
        expect(recorder.forwards).toHaveLength(1);
      });

      it('never runs a task twice across two instances sharing the store', async () => {
        const other = await harness.open();
        const calls = new Map<string, number>();
        const handlers = (): Recorder => {
          const recorder = new Recorder();
          recorder.onForward = async (task) => {
            calls.set(task.id, (calls.get(task.id) ?? 0) + 1);
            await sleep(Math.floor(Math.random() * 5));
            return { status: 'done' };
          };
          return recorder;
        };
        const first = handlers();
        const second = handlers();
        const ids: string[] = [];
        for (let index = 0; index < 30; index++) {
          const task = evidenceTask();
          ids.push(task.id);
          await (index % 2 === 0 ? backend : other).enqueueForward(task);
        }
        await Promise.all([
          backend.startWorkers(first, { concurrency: 3, backoff: BACKOFF }),
          other.startWorkers(second, { concurrency: 3, backoff: BACKOFF }),
        ]);
        await waitFor('every task', async () => (await backend.stats()).forwardPending === 0);
        await Promise.all([backend.stopWorkers(), other.stopWorkers()]);

        expect([...calls.keys()].sort()).toEqual([...ids].sort());
        expect([...calls.values()].every((count) => count === 1)).toBe(true);
        expect(first.forwards.length + second.forwards.length).toBe(30);
      });
    });

    describe('expiry', () => {
      it('removes an unacked item at deliverBy and reports it once; acked items never expire', async () => {
        const recorder = new Recorder();
        const stored = envelope({ recipients: [ALICE, BOB] });
        const now = clock.now();
        await acceptNew(
          input(stored, {
            deliveries: [
              { address: BOB, deliverBy: now + 20 },
              { address: ALICE, deliverBy: now + 40 },
            ],
          }),
        );
        expect(await backend.ack(BOB, await seqsOf(BOB))).toBe(1);
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        clock.advance(MINUTE);
        await waitFor('the expiry', () => recorder.expirations.length > 0);
        await waitFor('the item to go', async () => (await backend.stats()).mailboxItems === 0);
        await backend.stopWorkers();

        expect(recorder.expirations).toEqual([{ address: ALICE, envelopeId: stored.id }]);
        expect(await backend.readMailbox(ALICE, 0, 10)).toEqual([]);
        expect(await backend.ack(ALICE, [1, 2, 3])).toBe(0);
      });

      it('does not expire an item before its deliverBy', async () => {
        const recorder = new Recorder();
        const late = envelope({ recipients: [ALICE] });
        const soon = envelope({ recipients: [BOB] });
        await acceptNew(
          input(late, { deliveries: [{ address: ALICE, deliverBy: clock.now() + HOUR }] }),
        );
        await acceptNew(
          input(soon, { deliveries: [{ address: BOB, deliverBy: clock.now() + 30 }] }),
        );
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        clock.advance(MINUTE);
        await waitFor('the earlier expiry', () => recorder.expiredFor(soon.id) === 1);
        await backend.stopWorkers();

        expect(recorder.expiredFor(late.id)).toBe(0);
        expect((await backend.readMailbox(ALICE, 0, 10)).map((item) => item.envelopeId)).toEqual([
          late.id,
        ]);
      });

      it('reports an expiry again when the handler failed', async () => {
        const recorder = new Recorder();
        let calls = 0;
        recorder.expired = (item) => {
          calls += 1;
          if (calls === 1) return Promise.reject(new Error('evidence signer unavailable'));
          recorder.expirations.push({ address: item.address, envelopeId: item.envelopeId });
          return Promise.resolve();
        };
        const stored = envelope();
        await acceptNew(
          input(stored, { deliveries: [{ address: ALICE, deliverBy: clock.now() + 10 }] }),
        );
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        clock.advance(MINUTE);
        await waitFor('a successful expiry', () => recorder.expirations.length === 1);
        await backend.stopWorkers();
        expect(calls).toBe(2);
        // The item left the mailbox on the first try and did not come back.
        expect(await backend.readMailbox(ALICE, 0, 10)).toEqual([]);
      });
    });

    describe('subscribe', () => {
      it("tells every instance about other instances' mailbox additions", async () => {
        const other = await harness.open();
        const seen: string[] = [];
        const stillListening: string[] = [];
        const unsubscribe = await other.subscribe((address) => seen.push(address));
        await other.subscribe((address) => stillListening.push(address));

        const stored = envelope({ recipients: [ALICE, BOB, REMOTE] });
        await acceptNew(
          input(stored, {
            deliveries: [
              { address: ALICE, deliverBy: clock.now() + DAY },
              { address: BOB, deliverBy: clock.now() + DAY },
            ],
          }),
        );
        await backend.pushEvidence(CAROL, stored.id, 'k', randomPayload());
        await waitFor('three notifications', () => seen.length === 3);
        expect([...seen].sort()).toEqual([ALICE, BOB, CAROL].sort());

        // Nothing new in a mailbox, nothing to tell.
        expect(await backend.accept(input(stored))).toMatchObject({ status: 'duplicate' });
        expect(await backend.pushEvidence(CAROL, stored.id, 'k', randomPayload())).toBe(false);
        await unsubscribe();
        await backend.pushEvidence(SENDER, stored.id, 'k', randomPayload());
        await waitFor('the barrier notification', () => stillListening.includes(SENDER));
        expect(stillListening).toHaveLength(4);
        expect(seen).toHaveLength(3);
      });

      it('tells the instance that made the change too, and survives a throwing listener', async () => {
        const seen: string[] = [];
        await backend.subscribe(() => {
          throw new Error('listener bug');
        });
        await backend.subscribe((address) => seen.push(address));
        expect(await backend.pushEvidence(ALICE, 'env-x', 'k', randomPayload())).toBe(true);
        await waitFor('the notification', () => seen.length === 1);
        expect(seen).toEqual([ALICE]);
      });
    });

    describe('crash safety', () => {
      it('runs the forward and the expiry of an accept made before a restart exactly once', async () => {
        const stored = envelope({ recipients: [ALICE, REMOTE] });
        await acceptNew(
          input(stored, {
            deliveries: [{ address: ALICE, deliverBy: clock.now() + 50 }],
            forwards: [{ network: 'casc', recipients: [REMOTE] }],
          }),
        );
        await backend.close();

        const reopened = await harness.open();
        expect((await reopened.readMailbox(ALICE, 0, 10)).map((item) => item.envelopeId)).toEqual([
          stored.id,
        ]);
        const recorder = new Recorder();
        await reopened.startWorkers(recorder, { concurrency: 2, backoff: BACKOFF });
        clock.advance(MINUTE);
        await waitFor('forward and expiry', async () => {
          const stats = await reopened.stats();
          return (
            stats.forwardPending === 0 &&
            stats.mailboxItems === 0 &&
            recorder.expirations.length > 0
          );
        });
        await reopened.stopWorkers();

        expect(recorder.forwards.map((call) => call.task.envelopeId)).toEqual([stored.id]);
        expect(recorder.expirations).toEqual([{ address: ALICE, envelopeId: stored.id }]);
      });

      it('keeps acks, evidences and enqueued forwards across a restart', async () => {
        const stored = envelope({ recipients: [ALICE, BOB] });
        await acceptNew(input(stored));
        await backend.ack(BOB, await seqsOf(BOB));
        const evidence = awkwardBytes();
        await backend.pushEvidence(SENDER, stored.id, 'delivery', evidence);
        const task = evidenceTask({ envelopeId: stored.id, payload: awkwardBytes() });
        await backend.enqueueForward(task);
        const seqs = await seqsOf(ALICE);
        await backend.close();

        const reopened = await harness.open();
        expect(await seqsOf(ALICE, reopened)).toEqual(seqs);
        expect(await reopened.readMailbox(BOB, 0, 10)).toEqual([]);
        expect((await reopened.readMailbox(SENDER, 0, 10)).map((item) => item.payload)).toEqual([
          evidence,
        ]);
        expect(await reopened.getEnvelope(stored.id)).toEqual(stored);
        const recorder = new Recorder();
        await reopened.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        await waitFor('the forward', async () => (await reopened.stats()).forwardPending === 0);
        await reopened.stopWorkers();
        expect(recorder.forwards.map((call) => call.task)).toEqual([task]);
      });
    });

    describe('claims', () => {
      it('claims a key once until its ttl passes', async () => {
        expect(await backend.claimOnce('challenge:abc', MINUTE)).toBe(true);
        expect(await backend.claimOnce('challenge:abc', MINUTE)).toBe(false);
        expect(await backend.claimOnce('challenge:def', MINUTE)).toBe(true);
        clock.advance(MINUTE - 1_000);
        expect(await backend.claimOnce('challenge:abc', MINUTE)).toBe(false);
        clock.advance(2_000);
        expect(await backend.claimOnce('challenge:abc', MINUTE)).toBe(true);
        expect(await backend.claimOnce('challenge:abc', MINUTE)).toBe(false);
      });

      it('shares claims between instances', async () => {
        const other = await harness.open();
        const results = await Promise.all([
          backend.claimOnce('token:x', MINUTE),
          other.claimOnce('token:x', MINUTE),
        ]);
        expect([...results].sort()).toEqual([false, true]);
      });
    });

    describe('garbage collection', () => {
      const options = { chunkRetentionMs: HOUR, uploadGraceMs: 10 * MINUTE };

      it('releases chunks of a delivered envelope after the retention and forgets it after retainUntil', async () => {
        const stored = envelope();
        const start = clock.now();
        await acceptNew(input(stored, { retainUntil: start + DAY }));
        expect(await backend.collectGarbage(start + 2 * DAY, options)).toEqual({
          envelopes: 0,
          orphanChunks: [],
        });

        await backend.ack(ALICE, await seqsOf(ALICE));
        const doneAt = clock.now();
        expect(await backend.collectGarbage(doneAt + HOUR - 1_000, options)).toEqual({
          envelopes: 0,
          orphanChunks: [],
        });
        const released = await backend.collectGarbage(doneAt + HOUR + 1_000, options);
        expect([...released.orphanChunks].sort()).toEqual([...stored.chunkIds].sort());
        expect(released.envelopes).toBe(0);
        expect(await backend.chunkReferenced(stored.chunkIds[0]!, doneAt + HOUR + 1_000, 0)).toBe(
          false,
        );
        // Still refusing replays until retainUntil.
        expect(await backend.accept(input(stored))).toMatchObject({ status: 'duplicate' });
        expect(await backend.collectGarbage(start + DAY - 1_000, options)).toEqual({
          envelopes: 0,
          orphanChunks: [],
        });

        expect(await backend.collectGarbage(start + DAY, options)).toEqual({
          envelopes: 1,
          orphanChunks: [],
        });
        expect(await backend.getEnvelope(stored.id)).toBeUndefined();
        expect((await backend.stats()).envelopes).toBe(0);
        expect(await backend.collectGarbage(start + 2 * DAY, options)).toEqual({
          envelopes: 0,
          orphanChunks: [],
        });
      });

      it('keeps the record until the chunks are released, even past retainUntil', async () => {
        const stored = envelope();
        await acceptNew(input(stored, { deliveries: [], retainUntil: clock.now() }));
        const result = await backend.collectGarbage(clock.now() + HOUR + 1_000, options);
        expect(result.envelopes).toBe(1);
        expect([...result.orphanChunks].sort()).toEqual([...stored.chunkIds].sort());
      });

      it('never releases a chunk that a live envelope still lists', async () => {
        const [onlyA, shared, onlyB] = [randomChunkId(), randomChunkId(), randomChunkId()];
        const a = envelope({ chunkIds: [onlyA, shared], recipients: [ALICE] });
        const b = envelope({ chunkIds: [shared, onlyB], recipients: [BOB] });
        await acceptNew(input(a));
        await acceptNew(input(b));
        await backend.ack(ALICE, await seqsOf(ALICE));

        const first = await backend.collectGarbage(clock.now() + DAY, options);
        expect(first.orphanChunks).toEqual([onlyA]);
        expect(await backend.chunkVisibleTo(shared, BOB)).toBe(true);
        expect(await backend.chunkReferenced(shared, clock.now(), 0)).toBe(true);

        await backend.ack(BOB, await seqsOf(BOB));
        const second = await backend.collectGarbage(clock.now() + DAY, options);
        expect([...second.orphanChunks].sort()).toEqual([shared, onlyB].sort());
      });

      it('waits for every forward to complete or give up', async () => {
        const stored = envelope({ recipients: [REMOTE, 'uz-gp@glcjn'] });
        await acceptNew(
          input(stored, {
            deliveries: [],
            forwards: [
              { network: 'casc', recipients: [REMOTE] },
              { network: 'glcjn', recipients: ['uz-gp@glcjn'] },
            ],
          }),
        );
        expect((await backend.collectGarbage(clock.now() + DAY, options)).orphanChunks).toEqual([]);

        const recorder = new Recorder();
        recorder.onForward = (task) =>
          Promise.resolve(
            task.network === 'casc' ? { status: 'done' } : { status: 'retry', error: 'no route' },
          );
        await backend.startWorkers(recorder, { concurrency: 2, backoff: BACKOFF });
        await waitFor('the casc forward', () =>
          recorder.forwards.some((call) => call.task.network === 'casc'),
        );
        await waitFor(
          'retries',
          () => recorder.callsFor(`envelope/${stored.id}/glcjn`).length >= 2,
        );
        expect((await backend.collectGarbage(clock.now() + DAY, options)).orphanChunks).toEqual([]);

        clock.advance(8 * DAY);
        await waitFor('giveUp', async () => (await backend.stats()).forwardPending === 0);
        await backend.stopWorkers();
        expect(recorder.giveUps.map((task) => task.network)).toEqual(['glcjn']);
        const released = await backend.collectGarbage(clock.now() + DAY, options);
        expect([...released.orphanChunks].sort()).toEqual([...stored.chunkIds].sort());
      });

      it('counts an expired delivery as finished', async () => {
        const recorder = new Recorder();
        const stored = envelope();
        await acceptNew(
          input(stored, { deliveries: [{ address: ALICE, deliverBy: clock.now() + 10 }] }),
        );
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        clock.advance(MINUTE);
        await waitFor('the expiry', () => recorder.expirations.length === 1);
        await waitFor(
          'the envelope to be done',
          async () => !(await backend.chunkVisibleTo(stored.chunkIds[0]!, SENDER)),
        );
        await backend.stopWorkers();
        const released = await backend.collectGarbage(clock.now() + DAY, options);
        expect([...released.orphanChunks].sort()).toEqual([...stored.chunkIds].sort());
      });

      it('releases unreferenced uploads after the grace period, once', async () => {
        const [abandoned, used] = [randomChunkId(), randomChunkId()];
        const at = clock.now();
        await backend.noteUpload(abandoned, at, upload);
        await backend.noteUpload(used, at, upload);
        await acceptNew(input(envelope({ chunkIds: [used] })));

        expect(await backend.collectGarbage(at + 10 * MINUTE - 1, options)).toEqual({
          envelopes: 0,
          orphanChunks: [],
        });
        expect(await backend.collectGarbage(at + 10 * MINUTE, options)).toEqual({
          envelopes: 0,
          orphanChunks: [abandoned],
        });
        expect(await backend.collectGarbage(at + DAY, options)).toEqual({
          envelopes: 0,
          orphanChunks: [],
        });
      });

      it('spares a released chunk that was uploaded again recently', async () => {
        const stored = envelope();
        await acceptNew(input(stored));
        await backend.ack(ALICE, await seqsOf(ALICE));
        const later = clock.now() + 2 * HOUR;
        await backend.noteUpload(stored.chunkIds[0]!, later, upload);

        const first = await backend.collectGarbage(later, options);
        expect(first.orphanChunks).toEqual([stored.chunkIds[1]]);
        const second = await backend.collectGarbage(later + 10 * MINUTE, options);
        expect(second.orphanChunks).toEqual([stored.chunkIds[0]]);
      });

      it('forgets evidence dedup keys and finished tasks together with the envelope record', async () => {
        const stored = envelope({ recipients: [ALICE] });
        const retainUntil = clock.now() + DAY;
        await acceptNew(input(stored, { retainUntil }));
        await backend.ack(ALICE, await seqsOf(ALICE));
        await backend.pushEvidence(SENDER, stored.id, 'delivery', randomPayload());
        await backend.ack(SENDER, await seqsOf(SENDER));
        expect(await backend.pushEvidence(SENDER, stored.id, 'delivery', randomPayload())).toBe(
          false,
        );

        expect((await backend.collectGarbage(retainUntil + HOUR, options)).envelopes).toBe(1);
        expect(await backend.pushEvidence(SENDER, stored.id, 'delivery', randomPayload())).toBe(
          true,
        );
      });
    });

    describe('stats, ping and close', () => {
      it('counts unacked items, pending forwards and stored envelopes', async () => {
        expect(await backend.stats()).toEqual({ mailboxItems: 0, forwardPending: 0, envelopes: 0 });
        const stored = envelope({ recipients: [ALICE, BOB, REMOTE] });
        await acceptNew(
          input(stored, {
            deliveries: [
              { address: ALICE, deliverBy: clock.now() + DAY },
              { address: BOB, deliverBy: clock.now() + DAY },
            ],
            forwards: [{ network: 'casc', recipients: [REMOTE] }],
          }),
        );
        await backend.pushEvidence(SENDER, stored.id, 'k', randomPayload());
        await backend.enqueueForward(evidenceTask());
        expect(await backend.stats()).toEqual({ mailboxItems: 3, forwardPending: 2, envelopes: 1 });
        await backend.ack(ALICE, await seqsOf(ALICE));
        expect(await backend.stats()).toEqual({ mailboxItems: 2, forwardPending: 2, envelopes: 1 });
      });

      it('pings while open and fails once closed', async () => {
        expect(backend.kind).toMatch(/^(embedded|redis)$/);
        await expect(backend.ping()).resolves.toBeUndefined();
        await backend.close();
        await backend.close();
        await expect(backend.ping()).rejects.toThrow();
      });

      it('rejects misuse instead of storing it', async () => {
        await expect(backend.readMailbox(ALICE, 0, -1)).rejects.toThrow(RangeError);
        await expect(
          backend.startWorkers(new Recorder(), { concurrency: 0, backoff: BACKOFF }),
        ).rejects.toThrow(RangeError);
        await expect(
          backend.startWorkers(new Recorder(), {
            concurrency: 1,
            backoff: { baseMs: 10, maxMs: 5, jitter: 0 },
          }),
        ).rejects.toThrow(RangeError);
        await expect(backend.accept(input(envelope({ id: '' })))).rejects.toThrow(TypeError);
        expect(await backend.stats()).toEqual({ mailboxItems: 0, forwardPending: 0, envelopes: 0 });
      });
    });

    describe('lifecycle and argument checks', () => {
      async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
        try {
          await promise;
        } catch (error) {
          expect(isBackendError(error)).toBe(true);
          return (error as { code?: string }).code;
        }
        return undefined;
      }

      it('refuses every call once closed, with BACKEND_CLOSED; close is idempotent', async () => {
        const first = backend.close();
        expect(backend.close()).toBe(first);
        await first;
        await backend.close();
        const stored = envelope();
        const calls: Promise<unknown>[] = [
          backend.ping(),
          backend.accept(input(stored)),
          backend.getEnvelope(stored.id),
          backend.pushEvidence(ALICE, stored.id, 'k', randomPayload()),
          backend.readMailbox(ALICE, 0, 10),
          backend.ack(ALICE, [1]),
          backend.enqueueForward(evidenceTask()),
          backend.startWorkers(new Recorder(), { concurrency: 1, backoff: BACKOFF }),
          backend.subscribe(() => undefined),
          backend.claimOnce('challenge:x', MINUTE),
          backend.noteUpload(randomChunkId(), clock.now(), upload),
          backend.stats(),
          backend.collectGarbage(clock.now(), { chunkRetentionMs: 0, uploadGraceMs: 0 }),
        ];
        for (const call of calls) expect(await codeOf(call)).toBe('BACKEND_CLOSED');
        await backend.stopWorkers();
        // Nothing was stored by the refused calls.
        const reopened = await harness.open();
        expect(await reopened.getEnvelope(stored.id)).toBeUndefined();
        expect(await reopened.stats()).toEqual({
          mailboxItems: 0,
          forwardPending: 0,
          envelopes: 0,
        });
      });

      it('finishes the calls in flight when closed, and lets running handlers use the backend', async () => {
        const stored = envelope({ recipients: [ALICE, REMOTE] });
        const release = gate();
        const recorder = new Recorder();
        let statsInHandler: unknown;
        recorder.onForward = async () => {
          await release.promise;
          statsInHandler = await backend.stats();
          return { status: 'done' };
        };
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        await backend.enqueueForward(evidenceTask());
        await waitFor('the forward to start', () => recorder.forwards.length === 1);
        const accepting = backend.accept(
          input(stored, { deliveries: [{ address: ALICE, deliverBy: clock.now() + DAY }] }),
        );
        const closing = backend.close();
        expect(await accepting).toEqual({ status: 'accepted' });
        release.open();
        await closing;
        expect(statsInHandler).toMatchObject({ envelopes: 1 });

        const reopened = await harness.open();
        expect(await reopened.getEnvelope(stored.id)).toEqual(stored);
        expect((await reopened.stats()).forwardPending).toBe(0);
      });

      it('refuses a second start with WORKERS_RUNNING; a start during a stop waits for it', async () => {
        const recorder = new Recorder();
        await backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        expect(
          await codeOf(backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF })),
        ).toBe('WORKERS_RUNNING');
        const release = gate();
        recorder.onForward = async () => {
          await release.promise;
          return { status: 'done' };
        };
        await backend.enqueueForward(evidenceTask());
        await waitFor('the forward to start', () => recorder.forwards.length === 1);
        let stopped = false;
        const stopping = backend.stopWorkers().then(() => {
          stopped = true;
        });
        const restarting = backend.startWorkers(recorder, { concurrency: 1, backoff: BACKOFF });
        release.open();
        await restarting;
        expect(stopped).toBe(true);
        await stopping;
        await backend.stopWorkers();
      });

      it('refuses malformed arguments with BACKEND_INPUT_INVALID and stores nothing', async () => {
        const stored = envelope();
        const bad: Promise<unknown>[] = [
          backend.accept(input(envelope({ id: '' }))),
          backend.accept(input({ ...stored, expiresAt: 1.5 })),
          backend.accept(input(stored, { deliveries: [{ address: '', deliverBy: clock.now() }] })),
          backend.accept(input({ ...stored, bytes: 'not bytes' as unknown as Uint8Array })),
          backend.accept({ ...input(stored), uploader: '' }),
          backend.pushEvidence(ALICE, stored.id, 'k', [1, 2] as unknown as Uint8Array),
          backend.pushEvidence(ALICE, '', 'k', randomPayload()),
          backend.readMailbox(ALICE, Number.NaN, 10),
          backend.readMailbox(ALICE, 0, 1.5),
          backend.ack(ALICE, 7 as unknown as number[]),
          backend.enqueueForward({ ...evidenceTask(), id: '' }),
          backend.enqueueForward({ ...evidenceTask(), kind: 'envelope' as 'evidence' }),
          backend.claimOnce('', MINUTE),
          backend.claimOnce('token:x', 0),
          backend.noteUpload('', clock.now(), upload),
          backend.noteUpload(randomChunkId(), clock.now(), { identity: SENDER, size: -1 }),
          backend.ownedChunks('', [randomChunkId()], clock.now()),
          backend.chunkReferenced(randomChunkId(), clock.now(), -1),
          backend.collectGarbage(clock.now(), { chunkRetentionMs: -1, uploadGraceMs: 0 }),
          backend.startWorkers(new Recorder(), { concurrency: 1.5, backoff: BACKOFF }),
        ];
        for (const call of bad) expect(await codeOf(call)).toBe('BACKEND_INPUT_INVALID');
        expect(await backend.getEnvelope(stored.id)).toBeUndefined();
        expect(await backend.readMailbox(ALICE, 0, 10)).toEqual([]);
        expect(await backend.stats()).toEqual({ mailboxItems: 0, forwardPending: 0, envelopes: 0 });
        expect([...(await backend.usage()).keys()]).toEqual([]);
        expect(await backend.claimOnce('token:x', MINUTE)).toBe(true);
        // The checks name the argument, never its value.
        const error = await backend
          .pushEvidence('secret-address@wacap', '', 'k', randomPayload())
          .catch((caught: unknown) => caught);
        expect((error as Error).message).not.toContain('secret-address');
      });
    });
  });
}
