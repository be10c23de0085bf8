import { ENVELOPE_LIMITS } from '@rogatory/protocol';
import { WebSocket, type RawData } from 'ws';
import { RelayClientError, isRelayErrorCode } from './errors.js';
import { abortedError, backoffDelay, type Runtime } from './retry.js';
import { ServerFrameSchema } from '@rogatory/relay-api';
import { parseMailboxItem, wireValidator, type MailboxItem } from './wire.js';

/** Reconnection backoff; `maxAttempts` consecutive failed connections end the subscription. */
export interface ReconnectPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly jitter: number;
  /** Default: unlimited (a node keeps trying). */
  readonly maxAttempts: number;
}

export const DEFAULT_RECONNECT_POLICY: ReconnectPolicy = {
  baseMs: 500,
  maxMs: 30_000,
  jitter: 0.5,
  maxAttempts: Number.POSITIVE_INFINITY,
};
export const DEFAULT_HEARTBEAT_MS = 30_000;

export interface OpenMailboxOptions {
  /** Deliver items with `seq > after`: the highest seq this node has durably stored and acked (0 for all). */
  readonly after: number;
  /**
   * The relay's mailbox epoch `after` belongs to, as the relay gave it
   * (`epoch`, `onEpoch`); undefined when none is known yet. A relay with
   * another epoch serves the subscription from 0.
   */
  readonly epoch?: string;
  /**
   * The relay's mailbox epoch became known (`previous` undefined) or changed.
   * On a change the subscription has already dropped its cursor (to 0) and
   * every ack not confirmed (their promises reject with MAILBOX_RESET): the
   * seqs of the old epoch name other items now. Called in delivery order:
   * every item of the old epoch handed to onItem before has returned, and
   * none of the new one is delivered before it returns.
   */
  readonly onEpoch?: (epoch: string, previous: string | undefined) => void;
  /**
   * Called once per item, in the order received (the relay sends seq
   * order), one at a time: the next item waits for the returned promise.
   * Ack an item (subscription.ack) only after storing it durably; an item
   * not acked is delivered again after a reconnection.
   */
  readonly onItem: (item: MailboxItem) => void | Promise<void>;
  /** Connection failures, malformed frames or items, errors thrown by onItem. The subscription carries on. */
  readonly onError?: (error: unknown) => void;
  /** Interval of WebSocket pings; a link that has not answered by the next ping is dropped. */
  readonly heartbeatMs?: number;
  readonly reconnect?: Partial<ReconnectPolicy>;
}

export interface DisconnectInfo {
  /** WebSocket close code (1006 when the link died without a close frame). */
  readonly code: number;
  readonly willReconnect: boolean;
}

export interface MailboxSubscriptionEvents {
  /** The socket is open and the subscribe frame was sent. */
  connected: [];
  disconnected: [info: DisconnectInfo];
}

/** What the subscription needs from its RelayClient. */
export interface MailboxSessionSource {
  token(): Promise<string>;
  invalidate(token: string): void;
  socketUrl(token: string): URL;
  readonly runtime: Runtime;
  readonly timeoutMs: number;
}

type EntryState = 'queued' | 'delivered' | 'invalid' | 'acking' | 'acked';

interface Entry {
  state: EntryState;
  /** The connection the item last arrived on. */
  epoch: number;
}

interface AckWaiter {
  readonly remaining: Set<number>;
  resolve(): void;
  reject(err: unknown): void;
}

const frameShape = wireValidator(ServerFrameSchema);
/** The relay closes a socket after 10 invalid client frames; we drop one after as many invalid server frames. */
const MAX_INVALID_FRAMES = 10;
const MAX_FRAME_BYTES = ENVELOPE_LIMITS.maxEnvelopeBytes + 64 * 1024;

/**
 * A live mailbox over `GET /v1/mailbox/ws`.
 *
 * Cursor rule: every (re)connection subscribes with `after` = the highest
 * seq below which every item seen has been acked and the ack confirmed by
 * the relay. The relay re-sends every unacked item above it, so nothing is
 * lost across disconnections; items delivered but not acked come again and
 * are delivered again; items acked whose confirmation was lost come again
 * and are re-acked, not delivered twice. Within one connection a seq is
 * delivered at most once.
 */
export class MailboxSubscription {
  private readonly source: MailboxSessionSource;
  private readonly options: OpenMailboxOptions;
  private readonly policy: ReconnectPolicy;
  private readonly heartbeatMs: number;
  private readonly listeners: {
    [E in keyof MailboxSubscriptionEvents]: Set<(...args: MailboxSubscriptionEvents[E]) => void>;
  } = {
    connected: new Set(),
    disconnected: new Set(),
  };

  private socket: WebSocket | undefined;
  private isClosed = false;
  private isConnected = false;
  private epoch = 0;
  /** The relay's mailbox epoch the floor, entries and acks belong to. */
  private mailboxEpoch: string | undefined;
  /**
   * Whether frames name the epoch: they stop when a relay refuses them as
   * MALFORMED before it ever sent one (a relay from before the epoch, which
   * knows no such field); a relay that sends epochs is never asked without.
   */
  private epochFields = true;
  private relayGivesEpochs = false;
  /** A change of mailbox epoch is queued in the delivery chain: item frames wait for it. */
  private epochChangePending = false;
  private floor: number;
  private failures = 0;
  private readonly entries = new Map<number, Entry>();
  private readonly unconfirmed = new Set<number>();
  private waiters: AckWaiter[] = [];
  private chain: Promise<void> = Promise.resolve();
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;

  /** Use RelayClient.openMailbox. */
  constructor(source: MailboxSessionSource, options: OpenMailboxOptions) {
    if (!Number.isSafeInteger(options.after) || options.after < 0)
      throw new RangeError('after must be a non-negative integer');
    this.source = source;
    this.options = options;
    this.floor = options.after;
    this.mailboxEpoch = options.epoch;
    this.policy = { ...DEFAULT_RECONNECT_POLICY, ...options.reconnect };
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    if (!(this.heartbeatMs > 0)) throw new RangeError('heartbeatMs must be positive');
  }

  /** True while a socket is open and subscribed. */
  get connected(): boolean {
    return this.isConnected;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** A call, not a property read, so a check after an await is not narrowed away. */
  private hasClosed(): boolean {
    return this.isClosed;
  }

  /** The cursor the next (re)subscription will use. */
  get cursor(): number {
    return this.floor;
  }

  /** The relay's mailbox epoch the cursor belongs to (undefined until a relay gives one). */
  get currentEpoch(): string | undefined {
    return this.mailboxEpoch;
  }

  on<E extends keyof MailboxSubscriptionEvents>(
    event: E,
    listener: (...args: MailboxSubscriptionEvents[E]) => void,
  ): () => void {
    const set = this.listeners[event] as Set<(...args: MailboxSubscriptionEvents[E]) => void>;
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** @internal Called by RelayClient.openMailbox. */
  start(): void {
    void this.connect();
  }

  /**
   * Acknowledge items. Resolves when the relay has confirmed every seq (an
   * `acked` frame listing it); acks made while disconnected are sent after
   * the next subscription. Rejects with ABORTED if the subscription closes
   * first (a caller that does not await it gets no unhandled rejection).
   */
  ack(seqs: readonly number[]): Promise<void> {
    for (const seq of seqs) {
      if (!Number.isSafeInteger(seq) || seq < 1)
        return Promise.reject(new RangeError('mailbox seqs are positive integers'));
    }
    if (this.isClosed) return Promise.reject(abortedError());
    if (seqs.length === 0) return Promise.resolve();
    const promise = new Promise<void>((resolve, reject) => {
      this.waiters.push({ remaining: new Set(seqs), resolve, reject });
    });
    // Fire-and-forget acks are common; close() must not turn them into unhandled rejections.
    promise.catch(() => undefined);
    for (const seq of seqs) {
      const entry = this.entries.get(seq);
      if (entry) entry.state = 'acking';
      this.unconfirmed.add(seq);
    }
    this.send(this.ackFrame([...new Set(seqs)]));
    return promise;
  }

  /** Stop: no more deliveries or reconnections; pending acks reject with ABORTED. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    this.rejectWaiters(abortedError());
    const socket = this.socket;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        socket.terminate();
      }, this.source.timeoutMs);
      socket.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      socket.close(1000);
    });
  }

  // ------------------------------------------------------------ connection

  private async connect(): Promise<void> {
    this.reconnectTimer = undefined;
    if (this.isClosed) return;
    let token: string;
    try {
      token = await this.source.token();
    } catch (err) {
      this.report(err);
      this.scheduleReconnect();
      return;
    }
    if (this.hasClosed()) return;
    const epoch = ++this.epoch;
    const socket = new WebSocket(this.source.socketUrl(token), {
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: this.source.timeoutMs,
      followRedirects: false,
      perMessageDeflate: false,
    });
    this.socket = socket;
    let healthy = false;
    let invalidFrames = 0;
    let alive = true;
    let refused = false;

    socket.on('unexpected-response', (_req, res) => {
      refused = true;
      const status = res.statusCode ?? 0;
      if (status === 401) this.source.invalidate(token);
      res.resume();
      this.report(
        new RelayClientError(
          status === 401
            ? 'UNAUTHENTICATED'
            : status === 429
              ? 'RATE_LIMITED'
              : status >= 500
                ? 'UNAVAILABLE'
                : 'BAD_RESPONSE',
          `mailbox socket refused with status ${status}`,
          { status },
        ),
      );
      socket.terminate();
    });
    socket.on('error', (err) => {
      // A refused upgrade was reported already; an error after close() is our own doing.
      if (this.socket === socket && !refused && !this.isClosed)
        this.report(
          isProtocolViolation(err)
            ? new RelayClientError(
                'BAD_RESPONSE',
                'mailbox socket: the relay broke the WebSocket protocol or sent a frame over the limit',
                { cause: err },
              )
            : new RelayClientError('NETWORK', 'mailbox socket failed', { cause: err }),
        );
    });
    socket.on('open', () => {
      if (this.isClosed) {
        socket.close(1000);
        return;
      }
      this.isConnected = true;
      socket.send(
        JSON.stringify(
          this.frameEpoch() === undefined
            ? { type: 'subscribe', after: this.floor }
            : { type: 'subscribe', after: this.floor, epoch: this.frameEpoch() },
        ),
      );
      if (this.unconfirmed.size > 0)
        socket.send(JSON.stringify(this.ackFrame([...this.unconfirmed])));
      this.stopHeartbeat();
      this.heartbeatTimer = setInterval(() => {
        if (!alive) {
          // No pong and no frame for a whole interval: the link is dead even if TCP has not noticed.
          socket.terminate();
          return;
        }
        alive = false;
        socket.ping();
      }, this.heartbeatMs);
      this.emit('connected');
    });
    socket.on('pong', () => {
      alive = true;
      healthy = true;
    });
    socket.on('message', (data: RawData, isBinary: boolean) => {
      alive = true;
      if (this.socket !== socket || this.isClosed) return;
      try {
        this.onFrame(data, isBinary, epoch, token);
        healthy = true;
      } catch (err) {
        this.report(err);
        invalidFrames += 1;
        if (invalidFrames > MAX_INVALID_FRAMES) socket.close(1008);
      }
    });
    socket.on('close', (code: number) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.isConnected = false;
      this.stopHeartbeat();
      // A connection that carried valid frames or answered a ping resets the backoff; one that failed at once does not.
      if (healthy) this.failures = 0;
      this.emit('disconnected', { code, willReconnect: !this.isClosed });
      if (!this.isClosed) this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.isClosed) return;
    if (this.failures >= this.policy.maxAttempts) {
      this.report(
        new RelayClientError(
          'NETWORK',
          `mailbox: giving up after ${this.failures} failed connections`,
        ),
      );
      void this.close();
      return;
    }
    const delay = backoffDelay(
      { retries: 0, ...this.policy },
      this.failures,
      this.source.runtime.random,
    );
    this.failures += 1;
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private send(frame: unknown): void {
    const socket = this.socket;
    if (this.isConnected && socket?.readyState === WebSocket.OPEN)
      socket.send(JSON.stringify(frame));
  }

  // ---------------------------------------------------------------- frames

  private onFrame(data: RawData, isBinary: boolean, epoch: number, token: string): void {
    if (isBinary) throw new RelayClientError('BAD_RESPONSE', 'mailbox socket: binary frame');
    let value: unknown;
    try {
      value = JSON.parse(rawText(data));
    } catch (cause) {
      throw new RelayClientError('BAD_RESPONSE', 'mailbox socket: frame is not JSON', { cause });
    }
    const frame = frameShape.parse(value, 'mailbox frame');
    switch (frame.type) {
      case 'item': {
        const mailboxEpoch = frame.epoch;
        if (mailboxEpoch !== undefined) this.relayGivesEpochs = true;
        if (
          this.epochChangePending ||
          (mailboxEpoch !== undefined && mailboxEpoch !== this.mailboxEpoch)
        ) {
          // Items of the old epoch being delivered may still ack: the change waits for them, and this item for it.
          this.epochChangePending = true;
          this.chain = this.chain.then(() => {
            if (this.isClosed) return;
            if (mailboxEpoch !== undefined && mailboxEpoch !== this.mailboxEpoch)
              this.changeEpoch(mailboxEpoch);
            this.epochChangePending = false;
            try {
              this.onItemFrame(frame.item, epoch);
            } catch (err) {
              this.report(err);
            }
          });
          return;
        }
        this.onItemFrame(frame.item, epoch);
        return;
      }
      case 'acked':
        this.confirm(frame.seqs);
        return;
      case 'error':
        // A token the relay no longer knows (it restarted with another session secret): log in again next time.
        if (frame.code === 'UNAUTHENTICATED') this.source.invalidate(token);
        if (
          frame.code === 'MALFORMED' &&
          this.frameEpoch() !== undefined &&
          !this.relayGivesEpochs
        ) {
          // Our frames are well-formed: a relay from before the epoch refused the field. Again without it.
          this.epochFields = false;
          this.socket?.close(1000);
        }
        this.report(
          new RelayClientError(
            isRelayErrorCode(frame.code) ? frame.code : 'BAD_RESPONSE',
            'the relay refused a mailbox frame',
          ),
        );
        return;
    }
  }

  private onItemFrame(value: unknown, epoch: number): void {
    let item: MailboxItem;
    try {
      item = parseMailboxItem(value);
    } catch (err) {
      const seq = err instanceof RelayClientError ? err.seq : undefined;
      if (seq !== undefined && this.isFresh(seq, epoch)) {
        this.entries.set(seq, { state: 'invalid', epoch });
        this.report(err);
        return;
      }
      if (seq === undefined) throw err;
      return;
    }
    if (!this.isFresh(item.seq, epoch)) return;
    this.entries.set(item.seq, { state: 'queued', epoch });
    this.chain = this.chain.then(() => this.deliver(item));
  }

  /**
   * Whether an arriving seq is to be delivered: not when it is already
   * acked (re-ack it instead: the relay did not get our ack), already
   * queued, or already delivered on this same connection.
   */
  private isFresh(seq: number, epoch: number): boolean {
    const entry = this.entries.get(seq);
    if (seq <= this.floor || entry?.state === 'acked' || entry?.state === 'acking') {
      if (entry) entry.state = 'acking';
      this.unconfirmed.add(seq);
      this.send(this.ackFrame([seq]));
      return false;
    }
    if (entry === undefined) return true;
    if (entry.state === 'queued') return false;
    return entry.epoch !== epoch;
  }

  private ackFrame(seqs: readonly number[]): Record<string, unknown> {
    const epoch = this.frameEpoch();
    return epoch === undefined ? { type: 'ack', seqs } : { type: 'ack', seqs, epoch };
  }

  /** The epoch frames name, if any. */
  private frameEpoch(): string | undefined {
    return this.epochFields ? this.mailboxEpoch : undefined;
  }

  /** The relay's mailbox is another store now: forget the cursor and the acks of the old one. */
  private changeEpoch(mailboxEpoch: string): void {
    const previous = this.mailboxEpoch;
    this.mailboxEpoch = mailboxEpoch;
    if (previous !== undefined) {
      this.floor = 0;
      this.entries.clear();
      this.unconfirmed.clear();
      this.rejectWaiters(
        new RelayClientError('MAILBOX_RESET', 'the relay mailbox was reset (a new epoch)'),
      );
    }
    try {
      this.options.onEpoch?.(mailboxEpoch, previous);
    } catch (err) {
      this.report(err);
    }
  }

  private async deliver(item: MailboxItem): Promise<void> {
    const entry = this.entries.get(item.seq);
    if (this.isClosed || entry?.state !== 'queued') return;
    entry.state = 'delivered';
    try {
      await this.options.onItem(item);
    } catch (err) {
      this.report(err);
    }
  }

  private confirm(seqs: readonly number[]): void {
    for (const seq of seqs) {
      this.unconfirmed.delete(seq);
      const entry = this.entries.get(seq);
      if (entry) entry.state = 'acked';
    }
    const done: AckWaiter[] = [];
    this.waiters = this.waiters.filter((waiter) => {
      for (const seq of seqs) waiter.remaining.delete(seq);
      if (waiter.remaining.size > 0) return true;
      done.push(waiter);
      return false;
    });
    for (const waiter of done) waiter.resolve();
    this.advanceFloor();
  }

  /** Move the cursor over the acked prefix and forget it. */
  private advanceFloor(): void {
    const seqs = [...this.entries.keys()].sort((a, b) => a - b);
    for (const seq of seqs) {
      if (this.entries.get(seq)?.state !== 'acked') break;
      this.floor = Math.max(this.floor, seq);
      this.entries.delete(seq);
    }
  }

  private rejectWaiters(err: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(err);
  }

  private emit<E extends keyof MailboxSubscriptionEvents>(
    event: E,
    ...args: MailboxSubscriptionEvents[E]
  ): void {
    for (const listener of [...this.listeners[event]] as ((
      ...a: MailboxSubscriptionEvents[E]
    ) => void)[]) {
      try {
        listener(...args);
      } catch (err) {
        this.report(err);
      }
    }
  }

  private report(err: unknown): void {
    try {
      this.options.onError?.(err);
    } catch {
      // An error handler that throws must not break the subscription.
    }
  }
}

/**
 * Errors `ws` raises for what the server sent (a frame over maxPayload, a
 * bad opcode, an invalid close code...), as opposed to the network failing.
 */
function isProtocolViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('WS_ERR_');
}

function rawText(data: RawData): string {
  const bytes = Array.isArray(data)
    ? Buffer.concat(data)
    : Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}
