import { decodeCanonical } from '@rogatory/protocol';
import {
  AckRequestSchema,
  BODY_LIMITS,
  ClientFrameSchema,
  MAILBOX_LIMITS,
  MailboxQuerySchema,
  messageCheck,
} from '@rogatory/relay-api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { MailboxItem } from '../backend/types.js';
import { checkMessage, messageOf, requireSession, verifyToken } from '../context.js';
import { RelayError, isRelayError } from '../errors.js';

/** Items read from the backend at a time for a WebSocket catch-up. */
const PAGE = 200;
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const PING_INTERVAL_MS = 30_000;

const AckRequest = messageCheck(AckRequestSchema);
const Frame = messageCheck(ClientFrameSchema);
const MailboxQuery = messageCheck(MailboxQuerySchema);

/** The wire form of a mailbox item: the payload as the protocol object it is. */
export function wireItem(item: MailboxItem): Record<string, unknown> {
  const payload = decodeCanonical(item.payload);
  return item.kind === 'envelope'
    ? { seq: item.seq, kind: 'envelope', envelope: payload }
    : { seq: item.seq, kind: 'evidence', evidence: payload };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The WebSocket frame of an item, equal to JSON.stringify({ type: 'item', item: wireItem(item) }):
 * the stored payload is canonical JSON this relay encoded itself, so it is spliced in as it
 * is rather than decoded and encoded again for every push.
 */
export function itemFrame(item: MailboxItem, epoch?: string): string {
  const tail = epoch === undefined ? '' : `,"epoch":${JSON.stringify(epoch)}`;
  return `{"type":"item","item":{"seq":${item.seq},"kind":"${item.kind}","${item.kind}":${UTF8.decode(item.payload)}}${tail}}`;
}

/** One node's live mailbox connection: catch-up from its cursor, then pushes on every new item. */
class MailboxConnection {
  private cursor = -1;
  /** The epoch the cursor belongs to: when the store's changes (a lost Redis), the cursor goes back to 0. */
  private epoch: string | undefined;
  private pumping = false;
  private again = false;
  private invalid = 0;
  alive = true;

  constructor(
    private readonly app: FastifyInstance,
    readonly address: string,
    private readonly socket: WebSocket,
  ) {}

  send(frame: unknown): void {
    this.sendText(JSON.stringify(frame));
  }

  sendText(text: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(text);
  }

  async onFrame(data: unknown): Promise<void> {
    let frame;
    try {
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : String(data);
      frame = JSON.parse(text) as unknown;
      if (!Frame.check(frame)) throw new RelayError('MALFORMED', 'invalid mailbox frame');
    } catch {
      this.invalid++;
      this.send({ type: 'error', code: 'MALFORMED' });
      if (this.invalid > MAILBOX_LIMITS.maxInvalidFrames)
        this.socket.close(1008, 'too many invalid frames');
      return;
    }
    if (frame.type === 'subscribe') {
      this.cursor = frame.after;
      this.epoch = frame.epoch;
      await this.pump();
    } else {
      // Called as `void onFrame()`: a failure here must become an answer, never an unhandled rejection (a process crash).
      try {
        // Seqs of another epoch name other items in this one: never ack them.
        if (
          frame.epoch !== undefined &&
          frame.epoch !== (await this.app.relay.backend.mailboxEpoch())
        ) {
          this.send({ type: 'error', code: 'MAILBOX_RESET' });
          return;
        }
        await this.app.relay.backend.ack(this.address, frame.seqs);
      } catch (err) {
        this.app.log.warn(
          { code: isRelayError(err) ? err.code : 'UNAVAILABLE' },
          'mailbox ack failed',
        );
        this.send({ type: 'error', code: isRelayError(err) ? err.code : 'UNAVAILABLE' });
        return;
      }
      this.send({ type: 'acked', seqs: frame.seqs });
    }
  }

  /** Send every unacked item after the cursor; coalesces concurrent wake-ups. */
  async pump(): Promise<void> {
    if (this.cursor < 0 || !this.alive) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    const { relay } = this.app;
    try {
      do {
        this.again = false;
        for (;;) {
          if (this.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
            // The node reads slowly: try again shortly rather than buffer without bound.
            setTimeout(() => void this.pump(), 100).unref();
            return;
          }
          const epoch = await relay.backend.mailboxEpoch();
          // A subscriber's cursor of another epoch (or a store replaced under this connection): from 0.
          if (this.epoch !== undefined && this.epoch !== epoch) this.cursor = 0;
          this.epoch = epoch;
          const items = await relay.backend.readMailbox(this.address, this.cursor, PAGE);
          for (const item of items) {
            if (item.acceptedAt !== undefined) relay.core.observeDelivery(item.acceptedAt);
            this.sendText(itemFrame(item, epoch));
            this.cursor = Math.max(this.cursor, item.seq);
          }
          if (items.length < PAGE) break;
        }
        // `again` and `alive` change while the loop awaits the backend.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
      } while (this.again && this.alive);
    } catch (err) {
      this.app.log.warn({ code: isRelayError(err) ? err.code : 'INTERNAL' }, 'mailbox push failed');
    } finally {
      this.pumping = false;
    }
  }
}

/** The mailbox: HTTP paging and acks, and the live WebSocket (docs/relay-api.md). */
export async function mailboxRoutes(app: FastifyInstance): Promise<void> {
  const { relay } = app;
  const connections = new Map<string, Set<MailboxConnection>>();
  const unsubscribe = await relay.backend.subscribe((address) => {
    for (const conn of connections.get(address) ?? []) void conn.pump();
  });
  app.addHook('onClose', async () => {
    await unsubscribe();
  });

  app.get('/v1/mailbox', { preHandler: requireSession }, async (request) => {
    const query = checkMessage(request.query, MailboxQuery, 'mailbox query');
    const after = Number(query.after ?? 0);
    const limit = Math.min(
      Math.max(Number(query.limit ?? MAILBOX_LIMITS.defaultPage), 1),
      MAILBOX_LIMITS.maxPage,
    );
    const [epoch, items] = await Promise.all([
      relay.backend.mailboxEpoch(),
      relay.backend.readMailbox(request.session!.address, after, limit),
    ]);
    return { items: items.map(wireItem), epoch };
  });

  app.post(
    '/v1/mailbox/ack',
    { bodyLimit: BODY_LIMITS.ack, preHandler: requireSession },
    async (request) => {
      const { seqs, epoch } = messageOf(request.body, AckRequest, 'ack request');
      if (epoch !== undefined && epoch !== (await relay.backend.mailboxEpoch()))
        throw new RelayError(
          'MAILBOX_RESET',
          "the ack names another mailbox epoch than the relay's: read the mailbox again from 0",
        );
      return { acked: await relay.backend.ack(request.session!.address, seqs) };
    },
  );

  // A plain GET (no upgrade) would get @fastify/websocket's empty 404: refuse it in the relay's error shape.
  const upgradeOnly = (
    request: FastifyRequest,
    _reply: unknown,
    done: (err?: Error) => void,
  ): void => {
    done(request.ws ? undefined : new RelayError('MALFORMED', 'a WebSocket upgrade is required'));
  };
  app.get(
    '/v1/mailbox/ws',
    { websocket: true, onRequest: upgradeOnly },
    (socket: WebSocket, request: FastifyRequest) => {
      const token = (request.query as { token?: unknown }).token;
      let address: string;
      try {
        address = verifyToken(
          relay,
          typeof token === 'string' ? token : undefined,
          request.ip,
        ).address;
        const open = connections.get(address)?.size ?? 0;
        if (open >= relay.limits.maxWebSocketsPerNode)
          throw new RelayError('RATE_LIMITED', 'too many mailbox connections');
      } catch (err) {
        const code = isRelayError(err) ? err.code : 'UNAUTHENTICATED';
        relay.metrics.rejectedRequests.inc({ code });
        socket.send(JSON.stringify({ type: 'error', code }));
        socket.close(1008, code === 'UNAUTHENTICATED' ? 'unauthenticated' : 'refused');
        return;
      }
      const conn = new MailboxConnection(app, address, socket);
      const set = connections.get(address) ?? new Set();
      set.add(conn);
      connections.set(address, set);
      relay.metrics.webSockets.inc();
      let pongs = true;
      const ping = setInterval(() => {
        if (!pongs) {
          socket.terminate();
          return;
        }
        pongs = false;
        socket.ping();
      }, PING_INTERVAL_MS).unref();
      socket.on('pong', () => {
        pongs = true;
      });
      socket.on('message', (data) => void conn.onFrame(data));
      socket.on('close', () => {
        conn.alive = false;
        clearInterval(ping);
        set.delete(conn);
        if (set.size === 0) connections.delete(address);
        relay.metrics.webSockets.dec();
      });
      socket.on('error', () => socket.terminate());
    },
  );
}
