import { createHash, randomBytes as nodeRandomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  CONTEXTS,
  decodeEnvelope,
  envelopeHash,
  isProtocolError,
  issueEvidence,
  parseEnvelope,
  publicKeyOf,
  reasonFor,
  verifyEnvelope,
  verifySignature,
  type Envelope,
  type Evidence,
  type Reason,
  type TrustStore,
} from '@rogatory/protocol';
import type { TestWorld } from '@rogatory/protocol/testing';
import { WebSocketServer, type WebSocket } from 'ws';
import { isRelayCallError, relayCallBodySha256, verifyRelayCall } from '@rogatory/relay-api';

/**
 * A small relay speaking docs/relay-api.md, for the client's tests: real
 * HTTP and WebSocket sockets (node:http + ws), real signatures, in-memory
 * state, and hooks to inject faults. Not a reference implementation: it
 * skips limits, rate limiting and routing.
 */

export type StoredItem =
  | { readonly seq: number; readonly kind: 'envelope'; readonly envelope: Envelope }
  | { readonly seq: number; readonly kind: 'evidence'; readonly evidence: Evidence };

export interface Interceptor {
  readonly method: string;
  /** Matches the request path (without query). */
  readonly path: RegExp;
  /** Answer instead of the relay; `req.socket.destroy()` simulates a dropped connection. */
  readonly respond: (res: ServerResponse, req: IncomingMessage) => void;
  /** How many matching requests it answers; then it is removed. */
  remaining: number;
}

export interface FakeRelayOptions {
  readonly world: TestWorld;
  /** Network the relay serves; default wacap. */
  readonly network?: string;
  readonly tokenTtlMs?: number;
  /** Answer WebSocket pings (false simulates a dead link that stays open). */
  readonly autoPong?: boolean;
}

interface Subscriber {
  readonly socket: WebSocket;
  readonly address: string;
  subscribed: boolean;
}

const json = (
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
};

export const sendError = (
  res: ServerResponse,
  status: number,
  code: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): void => {
  json(res, status, { error: { code, message: `fake relay: ${code}` }, ...extra }, headers);
};

async function readBody(req: IncomingMessage, max = 64 * 1024 * 1024): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    length += part.length;
    if (length > max) throw new Error('body too large');
    parts.push(part);
  }
  return new Uint8Array(Buffer.concat(parts));
}

function parseJson(bytes: Uint8Array): unknown {
  return JSON.parse(Buffer.from(bytes).toString('utf8'));
}

const hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export class FakeRelay {
  readonly world: TestWorld;
  readonly network: string;
  readonly relayId: string;
  readonly trust: TrustStore;
  url = '';

  readonly chunks = new Map<string, Uint8Array>();
  /** Successful chunk uploads, in order (node and relay routes). */
  readonly chunkPuts: string[] = [];
  readonly challenges = new Map<string, { address: string; expiresAt: number; used: boolean }>();
  readonly tokens = new Map<string, { address: string; expiresAt: number }>();
  /** Signed session bodies the relay accepted. */
  readonly logins: { body: Record<string, unknown>; signature: { kid: string; value: string } }[] =
    [];
  readonly envelopes = new Map<string, { hash: string; acceptance: Evidence; sender: string }>();
  readonly mailboxes = new Map<string, StoredItem[]>();
  /** Every request as method + path (query stripped) + status. */
  readonly log: { method: string; path: string; status: number }[] = [];
  /** Answer without the HTTP Date header (a relay or proxy that sends none). */
  stripDate = false;
  /** Relay-call headers verified (peer routes). */
  readonly relayCalls: { from: string; path: string }[] = [];
  /** Called after an item frame is written to a socket (tests drop the socket here). */
  onItemSent: ((seq: number, socket: WebSocket) => void) | undefined;
  /** Leave ack frames unanswered (acks lost in transit). */
  ignoreAcks = false;
  /** Ack frames received, answered or not. */
  ackFrames = 0;
  /** Mailbox socket connections accepted. */
  connections = 0;
  /** TCP connections accepted, HTTP and WebSocket. */
  tcpConnections = 0;
  /** The `after` of every subscribe frame received, in order. */
  readonly subscribeAfters: number[] = [];
  /** The mailbox epoch item frames carry (none when undefined, as relays before it). */
  mailboxEpoch: string | undefined;
  /** Refuse frames naming an epoch as MALFORMED, as relays from before the epoch do. */
  refuseEpochFields = false;
  /** The `epoch` of every subscribe and ack frame received, in order (undefined: none given). */
  readonly frameEpochs: { type: string; epoch: unknown }[] = [];

  private readonly interceptors: Interceptor[] = [];
  private readonly subscribers = new Set<Subscriber>();
  private nextSeq = 1;
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<Socket>();
  private readonly tokenTtlMs: number;

  private constructor(options: FakeRelayOptions) {
    this.world = options.world;
    this.network = options.network ?? 'wacap';
    this.relayId = `relay@${this.network}`;
    this.trust = options.world.trustFor(this.network);
    this.tokenTtlMs = options.tokenTtlMs ?? 3600_000;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendError(res, 500, 'UNAVAILABLE');
        else res.destroy(err instanceof Error ? err : undefined);
      });
    });
    this.server.on('connection', (socket) => {
      this.tcpConnections++;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.wss = new WebSocketServer({ noServer: true, autoPong: options.autoPong ?? true });
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.upgrade(req, socket, head);
    });
  }

  static async start(options: FakeRelayOptions): Promise<FakeRelay> {
    const relay = new FakeRelay(options);
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    relay.url = `http://127.0.0.1:${(relay.server.address() as AddressInfo).port}`;
    return relay;
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Answer the next `times` requests matching method and path with `respond`. */
  intercept(method: string, path: RegExp, respond: Interceptor['respond'], times = 1): void {
    this.interceptors.push({ method, path, respond, remaining: times });
  }

  /** Forget every session token (as if they all expired). */
  expireTokens(): void {
    this.tokens.clear();
  }

  /** Close every mailbox socket abruptly (no close frame). */
  dropSockets(): void {
    for (const s of this.subscribers) s.socket.terminate();
  }

  count(method: string, path: RegExp, status?: number): number {
    return this.log.filter(
      (e) =>
        e.method === method && path.test(e.path) && (status === undefined || e.status === status),
    ).length;
  }

  /** A new mailbox store: another epoch, every mailbox empty, seqs from 1 again. */
  resetMailboxes(epoch: string): void {
    this.mailboxEpoch = epoch;
    this.mailboxes.clear();
    this.nextSeq = 1;
  }

  /** Append an item to a mailbox and push it to live subscribers. */
  push(
    address: string,
    item: { kind: 'envelope'; envelope: Envelope } | { kind: 'evidence'; evidence: Evidence },
  ): number {
    const stored = { seq: this.nextSeq++, ...item } as StoredItem;
    const box = this.mailboxes.get(address) ?? [];
    box.push(stored);
    this.mailboxes.set(address, box);
    for (const s of this.subscribers)
      if (s.subscribed && s.address === address) this.sendItem(s.socket, stored);
    return stored.seq;
  }

  /** Send a stored item again to every live subscriber of its mailbox (a duplicate frame). */
  resend(address: string, seq: number): void {
    const item = this.mailbox(address).find((i) => i.seq === seq);
    if (!item) throw new Error(`no item ${seq}`);
    for (const s of this.subscribers)
      if (s.subscribed && s.address === address) this.sendItem(s.socket, item);
  }

  mailbox(address: string): StoredItem[] {
    return this.mailboxes.get(address) ?? [];
  }

  // --------------------------------------------------------------- HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://relay');
    const method = req.method ?? 'GET';
    res.sendDate = !this.stripDate;
    res.on('finish', () => this.log.push({ method, path: url.pathname, status: res.statusCode }));
    const hook = this.interceptors.find((i) => i.method === method && i.path.test(url.pathname));
    if (hook) {
      hook.remaining -= 1;
      if (hook.remaining <= 0) this.interceptors.splice(this.interceptors.indexOf(hook), 1);
      hook.respond(res, req);
      return;
    }
    const p = url.pathname;
    if (p.startsWith('/v1/relay/')) {
      await this.handlePeer(req, res, method, url);
      return;
    }
    if (method === 'POST' && p === '/v1/session/challenge') {
      const body = parseJson(await readBody(req)) as { address: string };
      if (typeof body.address !== 'string') {
        sendError(res, 400, 'MALFORMED');
        return;
      }
      const challenge = nodeRandomBytes(32).toString('base64url');
      const expiresAt = Date.now() + 60_000;
      this.challenges.set(challenge, { address: body.address, expiresAt, used: false });
      json(res, 200, { challenge, relay: this.relayId, expiresAt });
      return;
    }
    if (method === 'POST' && p === '/v1/session') {
      await this.login(req, res);
      return;
    }

    const address = this.authenticate(req);
    if (address === undefined) {
      sendError(res, 401, 'UNAUTHENTICATED');
      return;
    }
    const chunk = /^\/v1\/chunks\/([^/]+)$/.exec(p);
    if (method === 'POST' && p === '/v1/chunks/missing') {
      const { ids } = parseJson(await readBody(req)) as { ids: string[] };
      json(res, 200, { missing: ids.filter((id) => !this.chunks.has(id)) });
      return;
    }
    if (method === 'PUT' && chunk) {
      await this.putChunk(req, res, chunk[1]!);
      return;
    }
    if (method === 'GET' && chunk) {
      const bytes = this.chunks.get(chunk[1]!);
      if (!bytes) {
        sendError(res, 404, 'NOT_FOUND');
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': bytes.length,
      });
      res.end(bytes);
      return;
    }
    if (method === 'POST' && p === '/v1/envelopes') {
      await this.submit(req, res, address);
      return;
    }
    if (method === 'POST' && p === '/v1/evidences') {
      const { evidence } = parseJson(await readBody(req)) as { evidence: Evidence };
      const about = this.envelopes.get(evidence.body.envelopeId);
      if (!about) {
        sendError(res, 404, 'NOT_FOUND');
        return;
      }
      this.push(about.sender, { kind: 'evidence', evidence });
      json(res, 202, {});
      return;
    }
    if (method === 'GET' && p === '/v1/mailbox') {
      const after = Number(url.searchParams.get('after') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 100);
      json(res, 200, {
        items: this.mailbox(address)
          .filter((i) => i.seq > after)
          .slice(0, limit),
      });
      return;
    }
    if (method === 'POST' && p === '/v1/mailbox/ack') {
      const { seqs } = parseJson(await readBody(req)) as { seqs: number[] };
      json(res, 200, { acked: this.ack(address, seqs) });
      return;
    }
    sendError(res, 404, 'NOT_FOUND');
  }

  private authenticate(req: IncomingMessage): string | undefined {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    return this.tokenAddress(token);
  }

  private tokenAddress(token: string): string | undefined {
    const session = this.tokens.get(token);
    return session && session.expiresAt > Date.now() ? session.address : undefined;
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { body, signature } = parseJson(await readBody(req)) as {
      body: Record<string, unknown>;
      signature: { kid: string; value: string };
    };
    const challenge = this.challenges.get(String(body['challenge']));
    if (
      !challenge ||
      challenge.used ||
      challenge.expiresAt < Date.now() ||
      challenge.address !== body['address']
    ) {
      sendError(res, 401, 'CHALLENGE_INVALID');
      return;
    }
    challenge.used = true;
    if (body['type'] !== 'session' || body['relay'] !== this.relayId) {
      sendError(res, 400, 'MALFORMED');
      return;
    }
    // issuedAt more than 5 minutes from the relay's clock (docs/relay-api.md, sessions).
    if (Math.abs(Number(body['issuedAt']) - Date.now()) > 300_000) {
      sendError(res, 401, 'CHALLENGE_INVALID');
      return;
    }
    try {
      const authority = this.world.authority(challenge.address);
      verifySignature(
        CONTEXTS.sessionChallenge,
        body,
        signature,
        publicKeyOf(authority.identityRef),
      );
    } catch {
      sendError(res, 403, 'SIGNATURE_INVALID');
      return;
    }
    const token = nodeRandomBytes(24).toString('base64url');
    const expiresAt = Date.now() + this.tokenTtlMs;
    this.tokens.set(token, { address: challenge.address, expiresAt });
    this.logins.push({ body, signature });
    json(res, 200, { token, expiresAt, address: challenge.address });
  }

  private async putChunk(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(id)) {
      sendError(res, 400, 'CHUNK_ID_INVALID');
      return;
    }
    const bytes = await readBody(req);
    if (hex(bytes) !== id) {
      sendError(res, 400, 'CHUNK_HASH_MISMATCH');
      return;
    }
    const created = !this.chunks.has(id);
    this.chunks.set(id, bytes);
    this.chunkPuts.push(id);
    json(res, created ? 201 : 200, { id, size: bytes.length });
  }

  private rejectionEvidence(envelope: Envelope, reason: Reason): Evidence {
    return issueEvidence({
      kind: 'submission-rejection',
      envelope,
      issuer: this.relayId,
      key: this.relayKey(),
      issuedAt: Date.now(),
      reason,
    });
  }

  private relayKey() {
    return this.world.networks[this.network]!.relay.key;
  }

  private async submit(req: IncomingMessage, res: ServerResponse, address: string): Promise<void> {
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(await readBody(req));
    } catch {
      sendError(res, 400, 'MALFORMED');
      return;
    }
    if (envelope.body.sender !== address) {
      sendError(res, 403, 'FORBIDDEN');
      return;
    }
    try {
      verifyEnvelope(envelope, { trust: this.trust, now: Date.now() });
    } catch (err) {
      const reason = reasonFor(err);
      sendError(res, isProtocolError(err, 'SIGNATURE_INVALID') ? 403 : 400, reason.code, {
        evidence: this.rejectionEvidence(envelope, reason),
      });
      return;
    }
    const hash = envelopeHash(envelope);
    const previous = this.envelopes.get(envelope.body.id);
    if (previous) {
      if (previous.hash === hash) {
        json(res, 200, { evidence: previous.acceptance });
        return;
      }
      sendError(res, 409, 'REPLAY', {
        evidence: this.rejectionEvidence(envelope, { code: 'REPLAY', detail: null }),
      });
      return;
    }
    const missing = [envelope.body.dossier.id, ...envelope.body.chunks.map((c) => c.id)].filter(
      (id) => !this.chunks.has(id),
    );
    if (missing.length > 0) {
      sendError(res, 422, 'CHUNK_MISSING', {
        evidence: this.rejectionEvidence(envelope, { code: 'CHUNK_MISSING', detail: null }),
        missing,
      });
      return;
    }
    const acceptance = issueEvidence({
      kind: 'submission-acceptance',
      envelope,
      issuer: this.relayId,
      key: this.relayKey(),
      issuedAt: Date.now(),
    });
    this.envelopes.set(envelope.body.id, { hash, acceptance, sender: envelope.body.sender });
    for (const recipient of envelope.body.recipients)
      this.push(recipient, { kind: 'envelope', envelope });
    json(res, 200, { evidence: acceptance });
  }

  private ack(address: string, seqs: readonly number[]): number {
    const box = this.mailbox(address);
    const drop = new Set(seqs);
    const kept = box.filter((i) => !drop.has(i.seq));
    this.mailboxes.set(address, kept);
    return box.length - kept.length;
  }

  // ------------------------------------------------------- relay to relay

  private async handlePeer(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    url: URL,
  ): Promise<void> {
    const target = req.url ?? '/';
    const chunk = /^\/v1\/relay\/chunks\/([0-9a-f]{64})$/.exec(url.pathname);
    // A chunk PUT is verified before its body is read: bodySha256 is the id.
    const body = method === 'PUT' && chunk ? undefined : await readBody(req);
    let caller: string;
    try {
      caller = verifyRelayCall({
        headers: req.headers,
        to: this.relayId,
        method,
        path: target,
        bodySha256: relayCallBodySha256({ method, path: target, body }),
        now: Date.now(),
        resolveKey: ({ relay, kid, timestamp }) =>
          publicKeyOf(this.trust.resolveSigningKey(relay, kid, timestamp, ['relay']).key),
      }).from;
    } catch (err) {
      if (isRelayCallError(err)) {
        sendError(res, err.status, err.code);
        return;
      }
      throw err;
    }
    this.relayCalls.push({ from: caller, path: target });
    if (method === 'POST' && url.pathname === '/v1/relay/chunks/missing') {
      const { ids } = parseJson(body!) as { ids: string[] };
      json(res, 200, { missing: ids.filter((id) => !this.chunks.has(id)) });
      return;
    }
    if (method === 'PUT' && chunk) {
      await this.putChunk(req, res, chunk[1]!);
      return;
    }
    if (method === 'POST' && url.pathname === '/v1/relay/envelopes') {
      const { envelope: value } = parseJson(body!) as { envelope: unknown };
      const envelope = parseEnvelope(value);
      const local = envelope.body.recipients.filter((r) => r.endsWith(`@${this.network}`));
      if (local.length === 0) {
        const evidences = envelope.body.recipients.map((recipient) =>
          issueEvidence({
            kind: 'relay-rejection',
            envelope,
            issuer: this.relayId,
            key: this.relayKey(),
            issuedAt: Date.now(),
            recipient,
            reason: { code: 'RECIPIENT_UNKNOWN', detail: null },
          }),
        );
        sendError(res, 422, 'RECIPIENT_UNKNOWN', { evidences });
        return;
      }
      const evidences = local.map((recipient) =>
        issueEvidence({
          kind: 'relay-acceptance',
          envelope,
          issuer: this.relayId,
          key: this.relayKey(),
          issuedAt: Date.now(),
          recipient,
        }),
      );
      for (const r of local) this.push(r, { kind: 'envelope', envelope });
      json(res, 200, { evidences });
      return;
    }
    if (method === 'POST' && url.pathname === '/v1/relay/evidences') {
      json(res, 202, {});
      return;
    }
    sendError(res, 404, 'NOT_FOUND');
  }

  // ------------------------------------------------------------ WebSocket

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://relay');
    const address =
      url.pathname === '/v1/mailbox/ws'
        ? this.tokenAddress(url.searchParams.get('token') ?? '')
        : undefined;
    if (address === undefined) {
      const text = JSON.stringify({ error: { code: 'UNAUTHENTICATED', message: 'fake relay' } });
      socket.end(
        `HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: ${text.length}\r\nconnection: close\r\n\r\n${text}`,
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.connections += 1;
      const sub: Subscriber = { socket: ws, address, subscribed: false };
      this.subscribers.add(sub);
      ws.on('close', () => this.subscribers.delete(sub));
      ws.on('message', (data: Buffer) => {
        let frame: { type?: unknown; after?: unknown; seqs?: unknown; epoch?: unknown };
        try {
          frame = JSON.parse(data.toString('utf8')) as typeof frame;
        } catch {
          ws.send(JSON.stringify({ type: 'error', code: 'MALFORMED' }));
          return;
        }
        if (typeof frame.type === 'string')
          this.frameEpochs.push({ type: frame.type, epoch: frame.epoch });
        if (this.refuseEpochFields && frame.epoch !== undefined) {
          ws.send(JSON.stringify({ type: 'error', code: 'MALFORMED' }));
          return;
        }
        const staleEpoch = frame.epoch !== undefined && frame.epoch !== this.mailboxEpoch;
        if (frame.type === 'subscribe' && typeof frame.after === 'number') {
          this.subscribeAfters.push(frame.after);
          const after = staleEpoch ? 0 : frame.after;
          for (const item of this.mailbox(address)) if (item.seq > after) this.sendItem(ws, item);
          sub.subscribed = true;
        } else if (frame.type === 'ack' && Array.isArray(frame.seqs)) {
          this.ackFrames += 1;
          if (this.ignoreAcks) return;
          if (staleEpoch) {
            ws.send(JSON.stringify({ type: 'error', code: 'MAILBOX_RESET' }));
            return;
          }
          const seqs = frame.seqs.filter((s): s is number => typeof s === 'number');
          this.ack(address, seqs);
          ws.send(JSON.stringify({ type: 'acked', seqs }));
        } else {
          ws.send(JSON.stringify({ type: 'error', code: 'MALFORMED' }));
        }
      });
    });
  }

  private sendItem(socket: WebSocket, item: StoredItem): void {
    const frame =
      this.mailboxEpoch === undefined
        ? { type: 'item', item }
        : { type: 'item', item, epoch: this.mailboxEpoch };
    socket.send(JSON.stringify(frame), () => this.onItemSent?.(item.seq, socket));
  }
}
