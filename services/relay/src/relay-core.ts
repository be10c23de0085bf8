import {
  canonicalBytes,
  decodeCanonical,
  decodeEnvelope,
  envelopeHash,
  fromBase64url,
  hashOf,
  sha256,
  toHex,
  isProtocolError,
  issueEvidence,
  networkOf,
  parseEnvelope,
  verifyEnvelope,
  verifyEvidence,
  withHop,
  type Envelope,
  type Evidence,
  type ErrorCode,
  type EvidenceKind,
  type Reason,
  type SigningKeyPair,
  type TrustStore,
} from '@rogatory/protocol';
import {
  INLINE_CHUNK_LIMITS,
  type EvidenceItemSchema,
  type HandOver,
  type RelayErrorCode,
} from '@rogatory/relay-api';
import type { Static } from 'typebox';
import type { BlobStore } from '@rogatory/storage';
import type { FastifyBaseLogger } from 'fastify';
import type { ForwardOutcome, ForwardTask, RelayBackend, StoredEnvelope } from './backend/types.js';
import type { ChunkPresence } from './chunk-presence.js';
import { RelayError, fromStorageError, relayCodeFor } from './errors.js';
import type { RelayMetrics } from './metrics.js';
import type { RelayForwarding, RelayLimits, RelayRetention } from './options.js';
import type { ChunkSource, PeerDirectory } from './peers.js';
import type { RateWindow } from './rate-window.js';
import { RecentMap } from './recent.js';
import { Router } from './routing.js';

/** Envelopes with forwards kept decoded after their acceptance, for the forwarder (most are forwarded within the second). */
const RECENT_ENVELOPES = 4096;
/** Memory those envelopes may take (an envelope may list up to 100,000 chunks). */
const RECENT_ENVELOPE_BYTES = 32 * 1024 * 1024;
/** Rough memory of a decoded envelope: its header plus its chunk list. */
const approximateEnvelopeBytes = (envelope: Envelope): number =>
  2048 + 200 * envelope.body.chunks.length + 100 * envelope.body.recipients.length;
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

/**
 * How an envelope's admission differs by who hands it over (a node
 * submitting, or a peer relay passing it on), as data for RelayCore.admit.
 */
interface AdmitSource {
  /** The metrics label. */
  readonly label: 'node' | 'peer';
  /** Why this caller may not hand this envelope over (FORBIDDEN, nothing signed), if it may not. */
  readonly forbidden: string | undefined;
  /** Why the envelope is malformed for this source (refused with a signed rejection), if it is. */
  readonly malformed: string | undefined;
  /** The recipients this relay takes on: a node's envelope all, a peer's those it hands over. */
  readonly recipients: readonly string[];
  /** Whose upload records the envelope's chunks must be: a node's address, or `relay:<id>` for a peer. */
  readonly uploader: string;
  /** The evidences this relay signs: one for the envelope, or one per recipient taken on. */
  readonly acceptance: {
    readonly kind: EvidenceKind;
    readonly rejection: EvidenceKind;
    readonly perRecipient: boolean;
  };
  /** The submission rate counter, when admission itself is rate limited. */
  readonly rateKey: string | undefined;
  /** Small objects of the envelope sent along with it. */
  readonly inline: readonly InlineObject[];
  /** Check the size of the envelope with this relay's hop added (when its arrival size was not measured). */
  readonly checkHoppedSize: boolean;
  /** Whether missing chunks refuse the envelope with a signed rejection, or only ask for them (the caller uploads and retries). */
  readonly signMissing: boolean;
}

type InlineObject = NonNullable<HandOver['inline']>[number];

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
  private readonly recentEnvelopes = new RecentMap<string, Envelope>(
    RECENT_ENVELOPES,
    RECENT_ENVELOPE_BYTES,
    approximateEnvelopeBytes,
  );
  /** Objects just received inline and checked against their ids (content-addressed, so never stale). */
  private readonly recentObjects = new RecentMap<string, Uint8Array>(
    RECENT_ENVELOPES,
    RECENT_OBJECT_BYTES,
    (b) => b.length,
  );

  constructor(private readonly o: RelayCoreOptions) {
    this.router = new Router(o.trust, o.network);
  }

  private evidence(
    kind: EvidenceKind,
    envelope: Envelope,
    extra: { recipient?: string; reason?: Reason } = {},
  ): Evidence {
    this.o.metrics.evidences.inc({ kind });
    return issueEvidence({
      kind,
      envelope,
      issuer: this.o.relayId,
      key: this.o.key,
      issuedAt: this.o.clock(),
      ...extra,
    });
  }

  /** Parse envelope bytes from a client; anything unparseable is MALFORMED with no evidence (there is no envelope to bind it to). */
  private parse(bytes: Uint8Array): Envelope {
    if (bytes.length > this.o.limits.maxEnvelopeBytes)
      throw new RelayError('LIMIT_EXCEEDED', 'envelope too large');
    try {
      return decodeEnvelope(bytes);
    } catch (cause) {
      throw new RelayError(
        isProtocolError(cause, 'LIMIT_EXCEEDED') ? 'LIMIT_EXCEEDED' : 'MALFORMED',
        'invalid envelope',
        { cause },
      );
    }
  }

  /** Why the envelope is over this relay's limits, if it is. */
  private overLimit(envelope: Envelope): string | undefined {
    const { body } = envelope;
    if (body.recipients.length > this.o.limits.maxRecipients) return 'too many recipients';
    if (body.totalSize > this.o.limits.maxTotalBytes) return 'envelope too large in total';
    if (body.chunks.some((c) => c.size > this.o.limits.maxChunkBytes)) return 'chunk too large';
    return undefined;
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

  private stored(
    envelope: Envelope,
    acceptance: readonly Evidence[],
    now: number,
    bytes = canonicalBytes(envelope),
  ): StoredEnvelope {
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
    const [acceptance] = await this.admit(envelope, this.nodeSource(address, envelope));
    return acceptance!;
  }

  /**
   * A peer relay hands over an envelope for some of its recipients. Returns
   * one RelayAcceptance per recipient; throws with RelayRejections.
   */
  async acceptFromPeer(caller: string, handOver: HandOver): Promise<Evidence[]> {
    let envelope: Envelope;
    try {
      envelope = parseEnvelope(handOver.envelope);
    } catch (cause) {
      throw new RelayError('MALFORMED', 'invalid envelope', { cause });
    }
    if (handOver.recipients.some((r) => !envelope.body.recipients.includes(r))) {
      throw new RelayError(
        'MALFORMED',
        'recipients must be a non-empty subset of the envelope recipients',
      );
    }
    return this.admit(envelope, this.peerSource(caller, handOver, envelope));
  }

  /** What a node submission is held to: it sends its own envelopes, without hops, for all their recipients. */
  private nodeSource(address: string, envelope: Envelope): AdmitSource {
    return {
      label: 'node',
      forbidden:
        envelope.body.sender === address
          ? undefined
          : 'the envelope sender is not the session authority',
      malformed: envelope.hops.length > 0 ? 'a node submits envelopes without hops' : undefined,
      recipients: envelope.body.recipients,
      uploader: address,
      acceptance: {
        kind: 'submission-acceptance',
        rejection: 'submission-rejection',
        perRecipient: false,
      },
      rateKey: `submit:${address}`,
      inline: [],
      checkHoppedSize: false,
      signMissing: true,
    };
  }

  /**
   * What a peer hand-over is held to: the calling relay is the last hop, the
   * envelope has not passed through this network, and the peer answers for
   * the recipients it hands over (one evidence each). Its request rate is
   * limited at the route; chunks it has not sent yet are not a refusal of
   * the envelope (no signed rejection: the peer uploads them and retries).
   */
  private peerSource(caller: string, handOver: HandOver, envelope: Envelope): AdmitSource {
    return {
      label: 'peer',
      forbidden:
        envelope.hops.at(-1)?.relay === caller
          ? undefined
          : 'the calling relay must be the last hop',
      malformed: undefined,
      recipients: [...new Set(handOver.recipients)],
      uploader: peerUploader(caller),
      acceptance: { kind: 'relay-acceptance', rejection: 'relay-rejection', perRecipient: true },
      rateKey: undefined,
      inline: handOver.inline ?? [],
      // A node's envelope is measured as it arrives (parse); a peer's arrives inside a larger JSON body.
      checkHoppedSize: true,
      signMissing: false,
    };
  }

  /**
   * The one admission pipeline of envelopes, from nodes and from peer
   * relays alike: check who hands it over, verify, limits, route, rate,
   * chunks, then accept durably and dedup by id. `source` states how the
   * two differ. Returns the acceptance evidences; a refusal on the
   * envelope's merits throws a RelayError carrying the signed rejections.
   */
  private async admit(envelope: Envelope, source: AdmitSource): Promise<Evidence[]> {
    const now = this.o.clock();
    const { acceptance: kinds } = source;
    const signed = (kind: EvidenceKind, reason?: Reason): Evidence[] =>
      kinds.perRecipient
        ? source.recipients.map((recipient) =>
            this.evidence(kind, envelope, { recipient, ...(reason ? { reason } : {}) }),
          )
        : [this.evidence(kind, envelope, reason ? { reason } : {})];
    const reject = (
      code: RelayErrorCode & Reason['code'],
      message: string,
      options: { cause?: unknown; missing?: string[]; detail?: ErrorCode | null } = {},
    ) => {
      this.o.metrics.envelopesIn.inc({ source: source.label, outcome: code });
      const evidences = signed(kinds.rejection, { code, detail: options.detail ?? null });
      return new RelayError(code, message, { evidences, ...options });
    };
    // Who hands the envelope over: nothing is signed for an impostor.
    if (source.forbidden !== undefined) throw new RelayError('FORBIDDEN', source.forbidden);
    if (source.malformed !== undefined) throw reject('MALFORMED', source.malformed);
    try {
      verifyEnvelope(envelope, { trust: this.o.trust, now });
    } catch (err) {
      const { code, detail } = relayCodeFor(err);
      throw reject(code === 'INTERNAL' ? 'MALFORMED' : code, 'envelope refused', {
        cause: err,
        detail,
      });
    }
    const overLimit = this.overLimit(envelope);
    if (overLimit !== undefined) throw reject('LIMIT_EXCEEDED', overLimit);
    const passed = new Set(envelope.hops.map((h) => networkOf(h.relay)));
    let plan;
    try {
      if (passed.has(this.o.network)) throw new RelayError('HOP_LIMIT', 'routing loop');
      plan = this.router.plan(source.recipients, passed);
    } catch (err) {
      const code =
        err instanceof RelayError &&
        (err.code === 'RECIPIENT_UNKNOWN' ||
          err.code === 'RECIPIENT_UNREACHABLE' ||
          err.code === 'HOP_LIMIT')
          ? err.code
          : 'RECIPIENT_UNKNOWN';
      throw reject(code, (err as Error).message);
    }
    let hopped: Envelope;
    try {
      hopped = withHop(envelope, { relay: this.o.relayId, receivedAt: now });
    } catch (err) {
      throw reject('HOP_LIMIT', 'hop limit exceeded', { cause: err });
    }
    const bytes = canonicalBytes(hopped);
    if (source.checkHoppedSize && bytes.length > this.o.limits.maxEnvelopeBytes)
      throw reject('LIMIT_EXCEEDED', 'envelope too large');
    // Per instance, in memory: a durable counter would cost a commit per submission.
    if (
      source.rateKey !== undefined &&
      !this.o.rate.hit(source.rateKey, this.o.limits.submitPerMinute)
    ) {
      throw new RelayError('RATE_LIMITED', 'too many submissions', {
        retryAfterMs: 60_000 - (now % 60_000),
      });
    }
    // A retry or replay is recognised atomically by accept() below. It is looked up first only when
    // it could be answered otherwise: before storing objects sent along, or when chunks are missing,
    // so that a retry is answered as before even once its chunks were collected.
    if (source.inline.length > 0) {
      const answer = await this.earlierAnswer(envelope, source, signed);
      if (answer) return answer;
      await this.storeInline(envelope, source.inline, source.uploader);
    }
    const missing = await this.missingChunks(envelope, source.uploader);
    if (missing.length > 0) {
      const answer = await this.earlierAnswer(envelope, source, signed);
      if (answer) return answer;
      throw this.chunksMissing(source, missing, reject);
    }
    const acceptance = signed(kinds.kind);
    const result = await this.o.backend.accept({
      envelope: this.stored(hopped, acceptance, now, bytes),
      deliveries: plan.local.map((r) => ({ address: r, deliverBy: this.deliverBy(envelope, now) })),
      forwards: [...plan.forwards].map(([network, recipients]) => ({ network, recipients })),
      retainUntil: envelope.body.expiresAt,
      // Only chunks this uploader sent itself: knowing another envelope's chunk ids gives no access to them.
      uploader: source.uploader,
    });
    if (result.status === 'conflict')
      throw reject('REPLAY', 'envelope id already used by another envelope');
    // Answered as an absent chunk: whether someone else stored these bytes is not the caller's business.
    if (result.status === 'unowned') throw this.chunksMissing(source, [...result.chunkIds], reject);
    if (result.status === 'duplicate') {
      this.o.metrics.envelopesIn.inc({ source: source.label, outcome: 'duplicate' });
      return this.decodeAcceptance(result.acceptance);
    }
    this.o.metrics.envelopesIn.inc({ source: source.label, outcome: 'accepted' });
    // Only now: the stored envelope under this id is this one (a conflicting one was refused above).
    if (plan.forwards.size > 0) this.recentEnvelopes.set(hopped.body.id, hopped);
    this.o.metrics.envelopesOut.inc({ kind: 'mailbox', outcome: 'queued' }, plan.local.length);
    this.o.metrics.envelopesOut.inc({ kind: 'forward', outcome: 'queued' }, plan.forwards.size);
    return acceptance;
  }

  private chunksMissing(
    source: AdmitSource,
    missing: string[],
    reject: (code: 'CHUNK_MISSING', message: string, options: { missing: string[] }) => RelayError,
  ): RelayError {
    const message = `${missing.length} chunk(s) missing`;
    return source.signMissing
      ? reject('CHUNK_MISSING', message, { missing })
      : new RelayError('CHUNK_MISSING', message, { missing });
  }

  private decodeAcceptance(bytes: Uint8Array): Evidence[] {
    return decodeCanonical(bytes) as Evidence[];
  }

  /**
   * The answer to an envelope accepted before under the same id: the
   * original acceptance for a retry, REPLAY (signed) for another envelope.
   * Undefined when there is none.
   */
  private async earlierAnswer(
    envelope: Envelope,
    source: AdmitSource,
    signed: (kind: EvidenceKind, reason?: Reason) => Evidence[],
  ): Promise<Evidence[] | undefined> {
    const existing = await this.o.backend.getEnvelope(envelope.body.id);
    if (!existing) return undefined;
    if (existing.hash !== envelopeHash(envelope)) {
      this.o.metrics.envelopesIn.inc({ source: source.label, outcome: 'REPLAY' });
      const evidences = signed(source.acceptance.rejection, { code: 'REPLAY', detail: null });
      throw new RelayError('REPLAY', 'envelope id already used by another envelope', { evidences });
    }
    this.o.metrics.envelopesIn.inc({ source: source.label, outcome: 'duplicate' });
    return this.decodeAcceptance(existing.acceptance);
  }

  /**
   * Check an evidence with its envelope (self-certifying: no relay state
   * needed) and route it to the envelope's sender. `issuer`, when given, must
   * be the evidence's issuer (a node posting its own Delivery or Retrieval).
   */
  async routeEvidence(
    item: Static<typeof EvidenceItemSchema>,
    options: { issuer?: string } = {},
  ): Promise<void> {
    let envelope: Envelope;
    let evidence: Evidence;
    try {
      envelope = parseEnvelope(item.envelope);
      verifyEnvelope(envelope, { trust: this.o.trust, now: this.o.clock(), checkExpiry: false });
      evidence = verifyEvidence(envelope, item.evidence, this.o.trust);
    } catch (err) {
      const { code } = relayCodeFor(err);
      throw new RelayError(code === 'INTERNAL' ? 'MALFORMED' : code, 'evidence refused', {
        cause: err,
      });
    }
    if (options.issuer !== undefined && evidence.body.issuer !== options.issuer)
      throw new RelayError('FORBIDDEN', 'a node may only post its own evidences');
    if (
      options.issuer !== undefined &&
      !['delivery', 'retrieval', 'recipient-rejection'].includes(evidence.body.kind)
    ) {
      throw new RelayError(
        'FORBIDDEN',
        'nodes post delivery, retrieval and recipient-rejection evidences only',
      );
    }
    await this.deliverEvidence({ evidence, envelope });
  }

  /** Put an evidence in the sender's mailbox, or queue it towards the sender's network. */
  async deliverEvidence(item: EvidenceItem): Promise<void> {
    const sender = item.envelope.body.sender;
    const senderNetwork = networkOf(sender);
    const key = `${item.envelope.body.id}|${item.evidence.body.kind}|${item.evidence.body.issuer}|${item.evidence.body.recipient ?? ''}`;
    if (senderNetwork === this.o.network) {
      await this.o.backend.pushEvidence(
        sender,
        item.envelope.body.id,
        key,
        canonicalBytes(item.evidence),
      );
      return;
    }
    const hop = this.router.nextHop(senderNetwork);
    if (hop === undefined) {
      this.o.log.warn(
        { envelopeId: item.envelope.body.id, network: senderNetwork },
        'no route for an evidence back to its sender',
      );
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
  private async nonDelivery(
    envelope: Envelope,
    recipients: readonly string[],
    code: Reason['code'],
  ): Promise<void> {
    for (const recipient of recipients) {
      const evidence = this.evidence('non-delivery', envelope, {
        recipient,
        reason: { code, detail: null },
      });
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
      if (size === undefined)
        throw new RelayError('MALFORMED', 'an inline chunk is not one of the envelope');
      let bytes: Uint8Array;
      try {
        bytes = fromBase64url(item.bytes, 'inline chunk');
      } catch (cause) {
        throw new RelayError('MALFORMED', 'an inline chunk is not base64url', { cause });
      }
      total += bytes.length;
      if (bytes.length !== size)
        throw new RelayError(
          'MALFORMED',
          'an inline chunk has another size than the envelope declares',
        );
      if (size > INLINE_CHUNK_LIMITS.maxChunkBytes || total > INLINE_CHUNK_LIMITS.maxTotalBytes)
        throw new RelayError('LIMIT_EXCEEDED', 'inline chunks too large');
      if (toHex(sha256(bytes)) !== item.id)
        throw new RelayError('CHUNK_HASH_MISMATCH', 'an inline chunk does not hash to its id');
      checked.push({ id: item.id, bytes });
    }
    if (checked.length > 0) {
      // As uploads would be (all counted, even one the peer already sent: at most the inline limits).
      const usage = await this.o.backend.uploadUsage(uploader, checked[0]!.id);
      const { pendingBytesPerPeer, heldBytesPerPeer } = this.o.limits;
      if (
        usage.pendingBytes + total > pendingBytesPerPeer ||
        usage.pendingBytes + usage.referencedBytes + total > heldBytesPerPeer
      ) {
        this.o.metrics.quotaRefusals.inc({ uploader: 'peer' });
        throw new RelayError('QUOTA_EXCEEDED', 'storage quota of this uploader reached');
      }
    }
    // All at once: the objects are distinct (checked against their ids), so their writes and
    // upload notes overlap (one round trip to Redis, fsyncs side by side). A failure fails the
    // hand-over; what was stored meanwhile stays as an interrupted upload's would (the peer
    // retries the whole hand-over).
    await Promise.all(checked.map((object) => this.storeInlineObject(object, uploader)));
  }

  private async storeInlineObject(
    { id, bytes }: { id: string; bytes: Uint8Array },
    uploader: string,
  ): Promise<void> {
    // Checked by storeInline all the same: a bad hand-over is refused whatever this relay holds.
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
    if (stored) return;
    this.o.presence.remember(id, notedAt);
    this.recentObjects.set(id, bytes);
    this.o.metrics.bytesIn.inc(bytes.length);
  }

  /** Worker: hand an envelope (with its chunks, see peers.ts) or evidences to the next network's relay. */
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
      const evidences = await peer.handOver(envelope, task.recipients, this.chunkSource);
      this.o.metrics.peerUp.set({ network: task.network }, 1);
      this.o.metrics.envelopesOut.inc({ kind: 'forward', outcome: 'accepted' });
      await this.routeReturned(envelope, evidences);
      return { status: 'done' };
    } catch (err) {
      return this.forwardFailed(task, err);
    }
  }

  /**
   * The chunks of the envelopes this relay forwards, for the peer layer. A
   * small object (sent inline) comes from memory when this relay just had
   * it (received, or read for another envelope).
   */
  private readonly chunkSource: ChunkSource = {
    bytes: async (id) => {
      const recent = this.recentObjects.get(id);
      if (recent !== undefined) return recent;
      const bytes = await this.o.blobs.getBytes(id);
      this.recentObjects.set(id, bytes);
      return bytes;
    },
    stream: (id) => this.o.blobs.get(id),
  };

  /**
   * Pass on the evidences a peer returned for a forwarded envelope. An
   * evidence that does not verify is dropped (logged); a failure to store
   * one (the backend unavailable, a Redis failover) is thrown, so the forward
   * is retried: the peer answers the same envelope with the same evidences,
   * and their delivery is deduplicated.
   */
  private async routeReturned(envelope: Envelope, evidences: readonly unknown[]): Promise<void> {
    for (const value of evidences) {
      let evidence: Evidence;
      try {
        evidence = verifyEvidence(envelope, value, this.o.trust);
      } catch (err) {
        this.o.log.warn(
          { envelopeId: envelope.body.id, code: isProtocolError(err) ? err.code : 'INTERNAL' },
          'peer returned an invalid evidence',
        );
        continue;
      }
      await this.deliverEvidence({ evidence, envelope });
    }
  }

  private async forwardFailed(task: ForwardTask, err: unknown): Promise<ForwardOutcome> {
    const failure = this.o.peers.classify(err);
    this.o.metrics.peerUp.set({ network: task.network }, failure.transient ? 0 : 1);
    if (failure.transient) return { status: 'retry', error: failure.code };
    // A permanent refusal: pass the peer's signed rejections on, or say why ourselves.
    this.o.log.warn(
      { envelopeId: task.envelopeId, network: task.network, code: failure.code },
      'peer refused',
    );
    if (task.kind === 'envelope') {
      this.o.metrics.envelopesOut.inc({ kind: 'forward', outcome: 'rejected' });
      const envelope = await this.envelopeOf(task.envelopeId);
      if (envelope) {
        try {
          if (failure.evidences.length > 0) await this.routeReturned(envelope, failure.evidences);
          else await this.nonDelivery(envelope, task.recipients, 'RECIPIENT_UNREACHABLE');
        } catch {
          // Not stored: ask again later rather than lose the sender's evidence.
          return { status: 'retry', error: 'INTERNAL' };
        }
      }
    }
    return { status: 'done' };
  }

  /** Worker: the forwarding deadline passed. */
  async giveUp(task: ForwardTask): Promise<void> {
    if (task.kind !== 'envelope') {
      this.o.log.warn(
        { envelopeId: task.envelopeId, network: task.network },
        'evidence could not be passed on before its deadline',
      );
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
