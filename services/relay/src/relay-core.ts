import {
  canonicalBytes,
  decodeCanonical,
  decodeEnvelope,
  envelopeHash,
  fromBase64url,
  Hex256,
  hashOf,
  sha256,
  toHex,
  isProtocolError,
  issueEvidence,
  networkOf,
  parseEnvelope,
  verifyEnvelope,
  verifyEvidence,
  validator,
  withHop,
  type Envelope,
  type Evidence,
  type ErrorCode,
  type EvidenceKind,
  type Reason,
  type SigningKeyPair,
  type TrustStore,
} from '@rogatory/protocol';
import { INLINE_CHUNK_LIMITS } from '@rogatory/client';
import type { BlobStore } from '@rogatory/storage';
import { Type } from 'typebox';
import type { FastifyBaseLogger } from 'fastify';
import type { ForwardOutcome, ForwardTask, RelayBackend, StoredEnvelope } from './backend/types.js';
import type { ChunkPresence } from './chunk-presence.js';
import type { RateWindow } from './context.js';
import { RelayError, fromStorageError, relayCodeFor, type RelayErrorCode } from './errors.js';
import type { RelayMetrics } from './metrics.js';
import type { RelayForwarding, RelayLimits, RelayRetention } from './options.js';
import type { PeerDirectory } from './peers.js';
import { RecentMap } from './recent.js';
import { Router } from './routing.js';

/** Wrappers of the objects peers and nodes send: exactly these keys; the objects inside are checked by the protocol. */
const InlineChunk = Type.Object(
  {
    id: Hex256,
    // base64url without padding of at most INLINE_CHUNK_LIMITS.maxChunkBytes.
    bytes: Type.String({ pattern: '^[A-Za-z0-9_-]*$', maxLength: Math.ceil((INLINE_CHUNK_LIMITS.maxChunkBytes * 4) / 3) }),
  },
  { additionalProperties: false },
);
const HandOver = validator(
  Type.Object(
    { envelope: Type.Unknown(), recipients: Type.Unknown(), inline: Type.Optional(Type.Array(InlineChunk, { maxItems: INLINE_CHUNK_LIMITS.maxCount })) },
    { additionalProperties: false },
  ),
  'hand-over',
);
const EvidenceWrapper = validator(Type.Object({ evidence: Type.Unknown(), envelope: Type.Unknown() }, { additionalProperties: false }), 'evidence item');

/** Chunk uploads in flight per forwarded envelope. */
const FORWARD_UPLOAD_CONCURRENCY = 4;
/** Envelopes with forwards kept decoded after their acceptance, for the forwarder (most are forwarded within the second). */
const RECENT_ENVELOPES = 4096;
/** Memory those envelopes may take (an envelope may list up to 100,000 chunks). */
const RECENT_ENVELOPE_BYTES = 32 * 1024 * 1024;
/** Rough memory of a decoded envelope: its header plus its chunk list. */
const approximateEnvelopeBytes = (envelope: Envelope): number => 2048 + 200 * envelope.body.chunks.length + 100 * envelope.body.recipients.length;
/** Small objects received inline kept for passing them on: at most this many bytes. */
const RECENT_OBJECT_BYTES = 16 * 1024 * 1024;

/**
 * The identity a peer relay uploads chunks as (nodes upload as their
 * address): a relay forwarding an envelope is the uploader of its chunks on
 * behalf of the sender.
 */
export function peerUploader(relayId: string): string {
  return `relay:${relayId}`;
}

/** An evidence on its way to an envelope's sender, with the envelope that makes it verifiable. */
export interface EvidenceItem {
  readonly evidence: Evidence;
  readonly envelope: Envelope;
}

export interface RelayCoreOptions {
  readonly relayId: string;
  readonly network: string;
  readonly key: SigningKeyPair;
  readonly trust: TrustStore;
  readonly backend: RelayBackend;
  readonly blobs: BlobStore;
  readonly presence: ChunkPresence;
  readonly clock: () => number;
  readonly limits: RelayLimits;
  readonly retention: RelayRetention;
  readonly forwarding: RelayForwarding;
  readonly peers: PeerDirectory;
  readonly metrics: RelayMetrics;
  readonly rate: RateWindow;
  readonly log: FastifyBaseLogger;
}

/**
 * What a relay does, apart from HTTP: accept envelopes from its nodes and
 * from peer relays, route evidences back to senders, forward to other
 * networks, and turn expiry and exhausted retries into NonDelivery evidences.
 * It never reads content: it verifies signatures on routing headers and
 * evidences only.
 */
export class RelayCore {
  readonly router: Router;
  /** Accepted envelopes to forward, as stored (hops included): the forwarder need not read and decode them back. */
  private readonly recentEnvelopes = new RecentMap<string, Envelope>(RECENT_ENVELOPES, RECENT_ENVELOPE_BYTES, approximateEnvelopeBytes);
  /** Objects just received inline and checked against their ids (content-addressed, so never stale). */
  private readonly recentObjects = new RecentMap<string, Uint8Array>(RECENT_ENVELOPES, RECENT_OBJECT_BYTES, (b) => b.length);

  constructor(private readonly o: RelayCoreOptions) {
    this.router = new Router(o.trust, o.network);
  }

  private evidence(kind: EvidenceKind, envelope: Envelope, extra: { recipient?: string; reason?: Reason } = {}): Evidence {
    this.o.metrics.evidences.inc({ kind });
    return issueEvidence({ kind, envelope, issuer: this.o.relayId, key: this.o.key, issuedAt: this.o.clock(), ...extra });
  }

  /** Parse envelope bytes from a client; anything unparseable is MALFORMED with no evidence (there is no envelope to bind it to). */
  private parse(bytes: Uint8Array): Envelope {
    if (bytes.length > this.o.limits.maxEnvelopeBytes) throw new RelayError('LIMIT_EXCEEDED', 'envelope too large');
    try {
      return decodeEnvelope(bytes);
    } catch (cause) {
      throw new RelayError(isProtocolError(cause, 'LIMIT_EXCEEDED') ? 'LIMIT_EXCEEDED' : 'MALFORMED', 'invalid envelope', { cause });
    }
  }

  private checkLimits(envelope: Envelope): void {
    const { body } = envelope;
    if (body.recipients.length > this.o.limits.maxRecipients) throw new RelayError('LIMIT_EXCEEDED', 'too many recipients');
    if (body.totalSize > this.o.limits.maxTotalBytes) throw new RelayError('LIMIT_EXCEEDED', 'envelope too large in total');
    if (body.chunks.some((c) => c.size > this.o.limits.maxChunkBytes)) throw new RelayError('LIMIT_EXCEEDED', 'chunk too large');
  }

  /**
   * The chunks of an envelope that `uploader` must (re)send: those the relay does not hold, and,
   * whenever some are absent, also those it holds but `uploader` has no upload record of, so that
   * the answer never tells a submitter whether someone else stored a chunk (relay-api.md, Chunks).
   * When everything is held, ownership is checked atomically by accept() instead.
   */
  private async missingChunks(envelope: Envelope, uploader: string): Promise<string[]> {
    const ids = [...new Set([envelope.body.dossier.id, ...envelope.body.chunks.map((c) => c.id)])];
    const absent = await this.o.presence.missing(ids);
    if (absent.length === 0) return absent;
    const gone = new Set(absent);
    const held = ids.filter((id) => !gone.has(id));
    const usage = await Promise.all(held.map((id) => this.o.backend.uploadUsage(uploader, id)));
    const owned = new Set(held.filter((_, i) => usage[i]!.owned));
    return ids.filter((id) => !owned.has(id));
  }

  private stored(envelope: Envelope, acceptance: readonly Evidence[], now: number, bytes = canonicalBytes(envelope)): StoredEnvelope {
    return {
      id: envelope.body.id,
      // The evidences this relay just issued about the envelope carry its hash: no second encoding.
      hash: acceptance[0]?.body.envelopeHash ?? envelopeHash(envelope),
      bytes,
      sender: envelope.body.sender,
      recipients: envelope.body.recipients,
      expiresAt: envelope.body.expiresAt,
      acceptedAt: now,
      chunkIds: [envelope.body.dossier.id, ...envelope.body.chunks.map((c) => c.id)],
      acceptance: canonicalBytes(acceptance),
    };
  }

  private deliverBy(envelope: Envelope, now: number): number {
    return Math.min(envelope.body.expiresAt, now + this.o.retention.mailboxMs);
  }

  /**
   * A node submits an envelope. Returns the SubmissionAcceptance; throws a
   * RelayError carrying a signed SubmissionRejection otherwise.
   */
  async submit(address: string, bytes: Uint8Array): Promise<Evidence> {
    const envelope = this.parse(bytes);
    const now = this.o.clock();
    const reject = (code: RelayErrorCode & Reason['code'], message: string, options: { cause?: unknown; missing?: string[]; detail?: ErrorCode | null } = {}) => {
      this.o.metrics.envelopesIn.inc({ source: 'node', outcome: code });
      const evidence = this.evidence('submission-rejection', envelope, { reason: { code, detail: options.detail ?? null } });
      return new RelayError(code, message, { evidences: [evidence], ...options });
    };
    if (envelope.body.sender !== address) throw new RelayError('FORBIDDEN', 'the envelope sender is not the session authority');
    if (envelope.hops.length > 0) throw reject('MALFORMED', 'a node submits envelopes without hops');
    try {
      verifyEnvelope(envelope, { trust: this.o.trust, now });
    } catch (err) {
      const { code, detail } = relayCodeFor(err);
      throw reject(code === 'INTERNAL' ? 'MALFORMED' : code, 'envelope refused', { cause: err, detail });
    }
    try {
      this.checkLimits(envelope);
    } catch (err) {
      throw reject('LIMIT_EXCEEDED', (err as Error).message);
    }
    let plan;
    try {
      plan = this.router.plan(envelope.body.recipients);
    } catch (err) {
      const code = err instanceof RelayError && (err.code === 'RECIPIENT_UNKNOWN' || err.code === 'RECIPIENT_UNREACHABLE') ? err.code : 'RECIPIENT_UNKNOWN';
      throw reject(code, (err as Error).message);
    }
    // Per instance, in memory: a durable counter would cost a commit per submission.
    if (!this.o.rate.hit(`submit:${address}`, this.o.limits.submitPerMinute)) {
      throw new RelayError('RATE_LIMITED', 'too many submissions', { retryAfterMs: 60_000 - (now % 60_000) });
    }
    // A retry or replay is recognised atomically by accept() below; it is looked up here only when
    // chunks are missing, so that a retry is answered as before even once its chunks were collected.
    const missing = await this.missingChunks(envelope, address);
    if (missing.length > 0) {
      const existing = await this.o.backend.getEnvelope(envelope.body.id);
      if (existing) return this.replayAnswer(existing, envelope, 'node');
      throw reject('CHUNK_MISSING', `${missing.length} chunk(s) missing`, { missing });
    }

    const hopped = withHop(envelope, { relay: this.o.relayId, receivedAt: now });
    const acceptance = this.evidence('submission-acceptance', envelope);
    const result = await this.o.backend.accept({
      envelope: this.stored(hopped, [acceptance], now),
      deliveries: plan.local.map((r) => ({ address: r, deliverBy: this.deliverBy(envelope, now) })),
      forwards: [...plan.forwards].map(([network, recipients]) => ({ network, recipients })),
      retainUntil: envelope.body.expiresAt,
      // Only chunks this node uploaded itself: knowing another envelope's chunk ids gives no access to them.
      uploader: address,
    });
    if (result.status === 'conflict') throw reject('REPLAY', 'envelope id already used by another envelope');
    // Answered as an absent chunk: whether someone else stored these bytes is not the caller's business.
    if (result.status === 'unowned')
      throw reject('CHUNK_MISSING', `${result.chunkIds.length} chunk(s) missing`, {
        missing: [...result.chunkIds],
      });
    if (result.status === 'duplicate') {
      this.o.metrics.envelopesIn.inc({ source: 'node', outcome: 'duplicate' });
      return this.decodeAcceptance(result.acceptance)[0]!;
    }
    this.o.metrics.envelopesIn.inc({ source: 'node', outcome: 'accepted' });
    // Only now: the stored envelope under this id is this one (a conflicting one was refused above).
    if (plan.forwards.size > 0) this.recentEnvelopes.set(hopped.body.id, hopped);
    this.o.metrics.envelopesOut.inc({ kind: 'mailbox', outcome: 'queued' }, plan.local.length);
    this.o.metrics.envelopesOut.inc({ kind: 'forward', outcome: 'queued' }, plan.forwards.size);
    return acceptance;
  }

  private decodeAcceptance(bytes: Uint8Array): Evidence[] {
    return decodeCanonical(bytes) as Evidence[];
  }

  /** A retried submission or forward gets the original answer; another envelope under the same id is a replay. */
  private replayAnswer(existing: StoredEnvelope, envelope: Envelope, source: 'node' | 'peer', handedOver: readonly string[] = []): Evidence {
    if (existing.hash !== envelopeHash(envelope)) {
      this.o.metrics.envelopesIn.inc({ source, outcome: 'REPLAY' });
      const reason: Reason = { code: 'REPLAY', detail: null };
      // A peer gets one RelayRejection per recipient it handed over, as for every other refusal.
      const evidences =
        source === 'node'
          ? [this.evidence('submission-rejection', envelope, { reason })]
          : handedOver.map((recipient) => this.evidence('relay-rejection', envelope, { recipient, reason }));
      throw new RelayError('REPLAY', 'envelope id already used by another envelope', { evidences });
    }
    this.o.metrics.envelopesIn.inc({ source, outcome: 'duplicate' });
    return this.decodeAcceptance(existing.acceptance)[0]!;
  }

  /**
   * A peer relay hands over an envelope for some of its recipients. Returns
   * one RelayAcceptance per recipient; throws with RelayRejections.
   */
  async acceptFromPeer(caller: string, value: unknown): Promise<Evidence[]> {
    if (!HandOver.check(value)) throw new RelayError('MALFORMED', 'expected { envelope, recipients }');
    const req = value;
    let envelope: Envelope;
    try {
      envelope = parseEnvelope(req.envelope);
    } catch (cause) {
      throw new RelayError('MALFORMED', 'invalid envelope', { cause });
    }
    const recipients = req.recipients;
    if (!Array.isArray(recipients) || recipients.length === 0 || recipients.some((r) => typeof r !== 'string' || !envelope.body.recipients.includes(r))) {
      throw new RelayError('MALFORMED', 'recipients must be a non-empty subset of the envelope recipients');
    }
    const handedOver = [...new Set(recipients as string[])];
    const now = this.o.clock();
    const reject = (code: RelayErrorCode & Reason['code'], message: string, options: { cause?: unknown; missing?: string[]; detail?: ErrorCode | null } = {}) => {
      this.o.metrics.envelopesIn.inc({ source: 'peer', outcome: code });
      const evidences = handedOver.map((r) => this.evidence('relay-rejection', envelope, { recipient: r, reason: { code, detail: options.detail ?? null } }));
      return new RelayError(code, message, { evidences, ...options });
    };
    if (envelope.hops.at(-1)?.relay !== caller) throw new RelayError('FORBIDDEN', 'the calling relay must be the last hop');
    try {
      verifyEnvelope(envelope, { trust: this.o.trust, now });
    } catch (err) {
      const { code, detail } = relayCodeFor(err);
      throw reject(code === 'INTERNAL' ? 'MALFORMED' : code, 'envelope refused', { cause: err, detail });
    }
    try {
      this.checkLimits(envelope);
    } catch (err) {
      throw reject('LIMIT_EXCEEDED', (err as Error).message);
    }
    const passed = new Set(envelope.hops.map((h) => networkOf(h.relay)));
    let plan;
    try {
      if (passed.has(this.o.network)) throw new RelayError('HOP_LIMIT', 'routing loop');
      plan = this.router.plan(handedOver, passed);
    } catch (err) {
      const code = err instanceof RelayError && (err.code === 'RECIPIENT_UNKNOWN' || err.code === 'RECIPIENT_UNREACHABLE' || err.code === 'HOP_LIMIT') ? err.code : 'RECIPIENT_UNKNOWN';
      throw reject(code, (err as Error).message);
    }
    let hopped: Envelope;
    try {
      hopped = withHop(envelope, { relay: this.o.relayId, receivedAt: now });
    } catch (err) {
      throw reject('HOP_LIMIT', 'hop limit exceeded', { cause: err });
    }
    // A node's envelope is measured as it arrives (parse); a peer's arrives inside a larger JSON body.
    const bytes = canonicalBytes(hopped);
    if (bytes.length > this.o.limits.maxEnvelopeBytes) throw reject('LIMIT_EXCEEDED', 'envelope too large');
    const existing = await this.o.backend.getEnvelope(envelope.body.id);
    if (existing) {
      this.replayAnswer(existing, envelope, 'peer', handedOver);
      return this.decodeAcceptance(existing.acceptance);
    }
    const uploader = peerUploader(caller);
    if (req.inline !== undefined) await this.storeInline(envelope, req.inline, uploader);
    const missing = await this.missingChunks(envelope, uploader);
    if (missing.length > 0) throw new RelayError('CHUNK_MISSING', `${missing.length} chunk(s) missing`, { missing });
    const acceptances = handedOver.map((r) => this.evidence('relay-acceptance', envelope, { recipient: r }));
    const result = await this.o.backend.accept({
      envelope: this.stored(hopped, acceptances, now, bytes),
      deliveries: plan.local.map((r) => ({ address: r, deliverBy: this.deliverBy(envelope, now) })),
      forwards: [...plan.forwards].map(([network, rs]) => ({ network, recipients: rs })),
      retainUntil: envelope.body.expiresAt,
      uploader,
    });
    if (result.status === 'conflict') throw reject('REPLAY', 'envelope id already used');
    if (result.status === 'unowned')
      throw new RelayError('CHUNK_MISSING', `${result.chunkIds.length} chunk(s) missing`, {
        missing: [...result.chunkIds],
      });
    if (result.status === 'duplicate') return this.decodeAcceptance(result.acceptance);
    this.o.metrics.envelopesIn.inc({ source: 'peer', outcome: 'accepted' });
    if (plan.forwards.size > 0) this.recentEnvelopes.set(hopped.body.id, hopped);
    return acceptances;
  }

  /**
   * Check an evidence with its envelope (self-certifying: no relay state
   * needed) and route it to the envelope's sender. `issuer`, when given, must
   * be the evidence's issuer (a node posting its own Delivery or Retrieval).
   */
  async routeEvidence(value: unknown, options: { issuer?: string } = {}): Promise<void> {
    if (!EvidenceWrapper.check(value)) throw new RelayError('MALFORMED', 'expected { evidence, envelope }');
    const item = value;
    let envelope: Envelope;
    let evidence: Evidence;
    try {
      envelope = parseEnvelope(item.envelope);
      verifyEnvelope(envelope, { trust: this.o.trust, now: this.o.clock(), checkExpiry: false });
      evidence = verifyEvidence(envelope, item.evidence, this.o.trust);
    } catch (err) {
      const { code } = relayCodeFor(err);
      throw new RelayError(code === 'INTERNAL' ? 'MALFORMED' : code, 'evidence refused', { cause: err });
    }
    if (options.issuer !== undefined && evidence.body.issuer !== options.issuer) throw new RelayError('FORBIDDEN', 'a node may only post its own evidences');
    if (options.issuer !== undefined && !['delivery', 'retrieval', 'recipient-rejection'].includes(evidence.body.kind)) {
      throw new RelayError('FORBIDDEN', 'nodes post delivery, retrieval and recipient-rejection evidences only');
    }
    await this.deliverEvidence({ evidence, envelope });
  }

  /** Put an evidence in the sender's mailbox, or queue it towards the sender's network. */
  async deliverEvidence(item: EvidenceItem): Promise<void> {
    const sender = item.envelope.body.sender;
    const senderNetwork = networkOf(sender);
    const key = `${item.envelope.body.id}|${item.evidence.body.kind}|${item.evidence.body.issuer}|${item.evidence.body.recipient ?? ''}`;
    if (senderNetwork === this.o.network) {
      await this.o.backend.pushEvidence(sender, item.envelope.body.id, key, canonicalBytes(item.evidence));
      return;
    }
    const hop = this.router.nextHop(senderNetwork);
    if (hop === undefined) {
      this.o.log.warn({ envelopeId: item.envelope.body.id, network: senderNetwork }, 'no route for an evidence back to its sender');
      return;
    }
    await this.o.backend.enqueueForward({
      kind: 'evidence',
      id: `ev:${hashOf(item.evidence)}:${hop}`,
      envelopeId: item.envelope.body.id,
      network: hop,
      payload: canonicalBytes(item),
      deadline: this.o.clock() + this.o.forwarding.evidenceDeadlineMs,
    });
  }

  private async envelopeOf(id: string): Promise<Envelope | undefined> {
    const recent = this.recentEnvelopes.get(id);
    if (recent !== undefined) return recent;
    const stored = await this.o.backend.getEnvelope(id);
    return stored ? decodeEnvelope(stored.bytes) : undefined;
  }

  /** NonDelivery evidences from this relay for `recipients`, routed to the sender. */
  private async nonDelivery(envelope: Envelope, recipients: readonly string[], code: Reason['code']): Promise<void> {
    for (const recipient of recipients) {
      const evidence = this.evidence('non-delivery', envelope, { recipient, reason: { code, detail: null } });
      await this.deliverEvidence({ evidence, envelope });
    }
  }

  /**
   * Store the small objects a peer sent along with an envelope it hands over,
   * as an upload of each would: only objects of this envelope, of the size it
   * declares, within the inline limits, each checked against its id by the
   * store. A bad one fails the whole hand-over (the peer retries). Each
   * becomes the uploader's (it sent the bytes), already stored or not.
   */
  private async storeInline(
    envelope: Envelope,
    inline: readonly { id: string; bytes: string }[],
    uploader: string,
  ): Promise<void> {
    const declared = new Map([
      [envelope.body.dossier.id, envelope.body.dossier.size],
      ...envelope.body.chunks.map((c) => [c.id, c.size] as const),
    ]);
    // Every object is checked before any is stored: a bad hand-over stores nothing.
    let total = 0;
    const checked: { id: string; bytes: Uint8Array }[] = [];
    for (const item of inline) {
      const size = declared.get(item.id);
      if (size === undefined) throw new RelayError('MALFORMED', 'an inline chunk is not one of the envelope');
      let bytes: Uint8Array;
      try {
        bytes = fromBase64url(item.bytes, 'inline chunk');
      } catch (cause) {
        throw new RelayError('MALFORMED', 'an inline chunk is not base64url', { cause });
      }
      total += bytes.length;
      if (bytes.length !== size) throw new RelayError('MALFORMED', 'an inline chunk has another size than the envelope declares');
      if (size > INLINE_CHUNK_LIMITS.maxChunkBytes || total > INLINE_CHUNK_LIMITS.maxTotalBytes) throw new RelayError('LIMIT_EXCEEDED', 'inline chunks too large');
      if (toHex(sha256(bytes)) !== item.id) throw new RelayError('CHUNK_HASH_MISMATCH', 'an inline chunk does not hash to its id');
      checked.push({ id: item.id, bytes });
    }
    if (checked.length > 0) {
      // As uploads would be (all counted, even one the peer already sent: at most the inline limits).
      const usage = await this.o.backend.uploadUsage(uploader, checked[0]!.id);
      const { pendingBytesPerPeer, heldBytesPerPeer } = this.o.limits;
      if (usage.pendingBytes + total > pendingBytesPerPeer || usage.pendingBytes + usage.referencedBytes + total > heldBytesPerPeer) {
        this.o.metrics.quotaRefusals.inc({ uploader: 'peer' });
        throw new RelayError('QUOTA_EXCEEDED', 'storage quota of this uploader reached');
      }
    }
    for (const { id, bytes } of checked) {
      // Checked above all the same: a bad hand-over is refused whatever this relay holds.
      const stored = this.o.presence.knownPresent(id);
      if (!stored) {
        try {
          await this.o.blobs.put(id, bytes, { maxSize: bytes.length, expectedSize: bytes.length });
        } catch (err) {
          throw fromStorageError(err);
        }
      }
      const notedAt = this.o.clock();
      await this.o.backend.noteUpload(id, notedAt, { identity: uploader, size: bytes.length });
      if (stored) continue;
      this.o.presence.remember(id, notedAt);
      this.recentObjects.set(id, bytes);
      this.o.metrics.bytesIn.inc(bytes.length);
    }
  }

  /** Worker: hand an envelope (after its missing chunks) or evidences to the next network's relay. */
  async forward(task: ForwardTask): Promise<ForwardOutcome> {
    const peer = this.o.peers.client(task.network);
    if (!peer) return { status: 'retry', error: `no relay known for ${task.network}` };
    try {
      if (task.kind === 'evidence') {
        await peer.forwardEvidences([decodeCanonical(task.payload) as EvidenceItem]);
        this.o.metrics.peerUp.set({ network: task.network }, 1);
        return { status: 'done' };
      }
      const envelope = await this.envelopeOf(task.envelopeId);
      if (!envelope) return { status: 'done' };
      const ids = [envelope.body.dossier.id, ...envelope.body.chunks.map((c) => c.id)];
      const sizes = new Map([[envelope.body.dossier.id, envelope.body.dossier.size], ...envelope.body.chunks.map((c) => [c.id, c.size] as const)]);
      // Small objects travel inside the hand-over (no presence query, no upload
      // call each); the others are uploaded first if the peer lacks them.
      const inline: { id: string; bytes: Uint8Array }[] = [];
      const others: string[] = [];
      let inlineBytes = 0;
      for (const id of new Set(ids)) {
        const size = sizes.get(id)!;
        if (size <= INLINE_CHUNK_LIMITS.maxChunkBytes && inline.length < INLINE_CHUNK_LIMITS.maxCount && inlineBytes + size <= INLINE_CHUNK_LIMITS.maxTotalBytes) {
          inline.push({ id, bytes: await this.smallObject(id) });
          inlineBytes += size;
        } else {
          others.push(id);
        }
      }
      // A few uploads in flight: one slow request does not hold the link idle.
      const todo = others.length === 0 ? [] : (await peer.missingChunks(others)).filter((id) => sizes.has(id));
      const upload = async (): Promise<void> => {
        for (let id = todo.shift(); id !== undefined; id = todo.shift()) {
          const size = sizes.get(id)!;
          await peer.putChunk(id, this.o.blobs.get(id), size);
          this.o.metrics.bytesOut.inc(size);
        }
      };
      await Promise.all(Array.from({ length: Math.min(FORWARD_UPLOAD_CONCURRENCY, todo.length) }, upload));
      const evidences = await peer.forwardEnvelope(envelope, task.recipients, inline);
      this.o.metrics.peerUp.set({ network: task.network }, 1);
      this.o.metrics.envelopesOut.inc({ kind: 'forward', outcome: 'accepted' });
      await this.routeReturned(envelope, evidences);
      return { status: 'done' };
    } catch (err) {
      return this.forwardFailed(task, err);
    }
  }

  /** A small object to send inline: from memory when this relay just had it (received, or read for another envelope). */
  private async smallObject(id: string): Promise<Uint8Array> {
    const recent = this.recentObjects.get(id);
    if (recent !== undefined) return recent;
    const bytes = await this.o.blobs.getBytes(id);
    this.recentObjects.set(id, bytes);
    return bytes;
  }

  private async routeReturned(envelope: Envelope, evidences: readonly unknown[]): Promise<void> {
    for (const value of evidences) {
      try {
        const evidence = verifyEvidence(envelope, value, this.o.trust);
        await this.deliverEvidence({ evidence, envelope });
      } catch (err) {
        this.o.log.warn({ envelopeId: envelope.body.id, code: isProtocolError(err) ? err.code : 'INTERNAL' }, 'peer returned an invalid evidence');
      }
    }
  }

  private async forwardFailed(task: ForwardTask, err: unknown): Promise<ForwardOutcome> {
    const failure = this.o.peers.classify(err);
    this.o.metrics.peerUp.set({ network: task.network }, failure.transient ? 0 : 1);
    if (failure.transient) return { status: 'retry', error: failure.code };
    // A permanent refusal: pass the peer's signed rejections on, or say why ourselves.
    this.o.log.warn({ envelopeId: task.envelopeId, network: task.network, code: failure.code }, 'peer refused');
    if (task.kind === 'envelope') {
      this.o.metrics.envelopesOut.inc({ kind: 'forward', outcome: 'rejected' });
      const envelope = await this.envelopeOf(task.envelopeId);
      if (envelope) {
        if (failure.evidences.length > 0) await this.routeReturned(envelope, failure.evidences);
        else await this.nonDelivery(envelope, task.recipients, 'RECIPIENT_UNREACHABLE');
      }
    }
    return { status: 'done' };
  }

  /** Worker: the forwarding deadline passed. */
  async giveUp(task: ForwardTask): Promise<void> {
    if (task.kind !== 'envelope') {
      this.o.log.warn({ envelopeId: task.envelopeId, network: task.network }, 'evidence could not be passed on before its deadline');
      return;
    }
    this.o.metrics.envelopesOut.inc({ kind: 'forward', outcome: 'gave-up' });
    const envelope = await this.envelopeOf(task.envelopeId);
    if (envelope) await this.nonDelivery(envelope, task.recipients, 'DEADLINE_EXPIRED');
  }

  /** Worker: a mailbox item expired unacknowledged. */
  async expired(item: { address: string; envelopeId: string }): Promise<void> {
    this.o.metrics.envelopesOut.inc({ kind: 'mailbox', outcome: 'expired' });
    const envelope = await this.envelopeOf(item.envelopeId);
    if (envelope) await this.nonDelivery(envelope, [item.address], 'RETENTION_EXPIRED');
  }

  /** One garbage collection pass; returns how many chunks were deleted. */
  async collectGarbage(): Promise<number> {
    return this.o.presence.collectGarbage(this.o.clock, this.o.retention);
  }

  /** Latency of a local delivery, for the histogram, from an acked envelope. */
  observeDelivery(acceptedAt: number): void {
    this.o.metrics.deliveryLatency.observe(Math.max(0, this.o.clock() - acceptedAt) / 1000);
  }
}

