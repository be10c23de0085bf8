import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  issueEvidence,
  parseEnvelope,
  type Evidence,
  type SigningKeyPair,
} from '@rogatory/protocol';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * A relay that lies, for the node's receive-path tests: real HTTP and
 * WebSocket sockets on 127.0.0.1 (node:http + ws), scripted by the test.
 * It serves whatever mailbox items and chunk bytes it is given (forged,
 * re-addressed, replayed), answers any login with a token, and lets a test
 * take over a route to send endless or oversized bodies and frames. It
 * checks nothing: the node under test must.
 */

export type HostileItem =
  | { readonly seq: number; readonly kind: 'envelope'; readonly envelope: unknown }
  | { readonly seq: number; readonly kind: 'evidence'; readonly evidence: unknown };

/** A chunk as served: bytes (true or not), or a handler that writes the response itself. */
export type ChunkResponder = Uint8Array | ((res: ServerResponse, req: IncomingMessage) => void);

export class HostileRelay {
  readonly relayId: string;
  url = '';
  /** The mailbox, in seq order; acked items are removed unless `keepAcked`. */
  items: HostileItem[] = [];
  readonly chunks = new Map<string, ChunkResponder>();
  /** Every seq the node acked, over HTTP or WebSocket, in order. */
  readonly acked: number[] = [];
  /** Evidences the node posted (its Delivery evidences). */
  readonly posted: Evidence[] = [];
  /** Chunk GETs received, by id. */
  readonly chunkGets: string[] = [];
  /** Replay mode: acked items stay in the mailbox and are served again. */
  keepAcked = false;
  /** Takes over `GET /v1/mailbox` (endless or oversized pages). */
  mailboxResponder: ((res: ServerResponse) => void) | undefined;
  /** Takes over a mailbox socket after its subscribe frame (oversized frames). */
  onSubscribe: ((ws: WebSocket, after: number) => void) | undefined;
  /** Mailbox socket connections accepted. */
  connections = 0;

  private nextSeq = 1;
  private readonly server: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Set<Socket>();
  private readonly live = new Set<WebSocket>();

  /** Envelopes the node submitted (accepted with an acceptance signed by `key`). */
  readonly submitted: unknown[] = [];

  private constructor(
    relayId: string,
    private readonly key: SigningKeyPair | undefined,
  ) {
    this.relayId = relayId;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) json(res, 500, { error: { code: 'UNAVAILABLE', message: 'x' } });
        else res.destroy();
      });
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.accept(ws);
      });
    });
  }

  /** Submissions answered 507 QUOTA_EXCEEDED before the relay accepts again (the sender's earlier envelopes still held). */
  quotaRefusals = 0;

  /** With `key` (the relay's own signing key), it also accepts submissions, as the node's relay would. */
  static async start(relayId: string, key?: SigningKeyPair): Promise<HostileRelay> {
    const relay = new HostileRelay(relayId, key);
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    relay.url = `http://127.0.0.1:${(relay.server.address() as AddressInfo).port}`;
    return relay;
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Append an item (any value: the relay does not check it) and push it to live sockets. */
  push(
    item: { kind: 'envelope'; envelope: unknown } | { kind: 'evidence'; evidence: unknown },
    seq = this.nextSeq,
  ): number {
    this.nextSeq = Math.max(this.nextSeq, seq + 1);
    const stored = { seq, ...item } as HostileItem;
    this.items.push(stored);
    for (const ws of this.live) ws.send(JSON.stringify({ type: 'item', item: stored }));
    return seq;
  }

  /** Serve the mailbox again to every live socket (a replay over the same connection). */
  replay(): void {
    for (const ws of this.live)
      for (const item of this.items) ws.send(JSON.stringify({ type: 'item', item }));
  }

  private ack(seqs: readonly number[]): number {
    this.acked.push(...seqs);
    if (this.keepAcked) return seqs.length;
    const before = this.items.length;
    this.items = this.items.filter((i) => !seqs.includes(i.seq));
    return before - this.items.length;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://relay');
    const method = req.method ?? 'GET';
    const p = url.pathname;
    const body = method === 'GET' ? undefined : await readJson(req);
    if (method === 'POST' && p === '/v1/session/challenge') {
      json(res, 200, {
        challenge: randomBytes(32).toString('base64url'),
        relay: this.relayId,
        expiresAt: Date.now() + 60_000,
      });
      return;
    }
    if (method === 'POST' && p === '/v1/session') {
      const address = (body as { body: { address: string } }).body.address;
      json(res, 200, {
        token: randomBytes(24).toString('base64url'),
        expiresAt: Date.now() + 3_600_000,
        address,
      });
      return;
    }
    if (method === 'GET' && p === '/v1/mailbox') {
      if (this.mailboxResponder) {
        this.mailboxResponder(res);
        return;
      }
      const after = Number(url.searchParams.get('after') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 100);
      json(res, 200, { items: this.items.filter((i) => i.seq > after).slice(0, limit) });
      return;
    }
    if (method === 'POST' && p === '/v1/mailbox/ack') {
      json(res, 200, { acked: this.ack((body as { seqs: number[] }).seqs) });
      return;
    }
    if (method === 'POST' && p === '/v1/evidences') {
      this.posted.push((body as { evidence: Evidence }).evidence);
      json(res, 202, {});
      return;
    }
    if (method === 'POST' && p === '/v1/envelopes' && this.key) {
      if (this.quotaRefusals > 0) {
        this.quotaRefusals--;
        json(res, 507, { error: { code: 'QUOTA_EXCEEDED', message: 'x' } });
        return;
      }
      const envelope = parseEnvelope(body);
      this.submitted.push(envelope);
      const evidence = issueEvidence({
        kind: 'submission-acceptance',
        envelope,
        issuer: this.relayId,
        key: this.key,
        issuedAt: Date.now(),
      });
      json(res, 200, { evidence });
      return;
    }
    if (method === 'POST' && p === '/v1/chunks/missing') {
      json(res, 200, { missing: [] });
      return;
    }
    const chunk = /^\/v1\/chunks\/([0-9a-f]{64})$/.exec(p);
    if (method === 'GET' && chunk) {
      const id = chunk[1]!;
      this.chunkGets.push(id);
      const served = this.chunks.get(id);
      if (served === undefined) json(res, 404, { error: { code: 'NOT_FOUND', message: 'x' } });
      else if (served instanceof Uint8Array) {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': served.length,
        });
        res.end(served);
      } else served(res, req);
      return;
    }
    json(res, 404, { error: { code: 'NOT_FOUND', message: 'x' } });
  }

  private accept(ws: WebSocket): void {
    this.connections++;
    ws.on('close', () => this.live.delete(ws));
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as {
        type: string;
        after?: number;
        seqs?: number[];
      };
      if (frame.type === 'subscribe') {
        const after = frame.after ?? 0;
        if (this.onSubscribe) {
          this.onSubscribe(ws, after);
          return;
        }
        for (const item of this.items)
          if (item.seq > after) ws.send(JSON.stringify({ type: 'item', item }));
        this.live.add(ws);
      } else if (frame.type === 'ack') {
        const seqs = frame.seqs ?? [];
        this.ack(seqs);
        ws.send(JSON.stringify({ type: 'acked', seqs }));
      }
    });
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const part of req as AsyncIterable<Buffer>) parts.push(part);
  const text = Buffer.concat(parts).toString('utf8');
  return text === '' ? {} : (JSON.parse(text) as unknown);
}

/**
 * A response that writes `piece` forever (until the client goes away):
 * an endless body with no Content-Length.
 */
export function endless(piece: Uint8Array | string, contentType: string) {
  return (res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': contentType });
    const pump = (): void => {
      while (!res.destroyed && res.write(piece));
      if (!res.destroyed) res.once('drain', pump);
    };
    res.on('close', () => res.removeAllListeners('drain'));
    pump();
  };
}
