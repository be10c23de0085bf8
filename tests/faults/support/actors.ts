import { randomBytes } from 'node:crypto';
import { RelayClient, type MailboxItem } from '@rogatory/client';
import { issueEvidence, utf8, verifyEvidence, type Envelope } from '@rogatory/protocol';
import { encryptTestAttachment, sealTestDossier, type TestWorld } from '@rogatory/protocol/testing';
import type { Tally } from './tally.js';
import { sleep } from './relays.js';

/** A node's relay client as the fault scenarios use it: few quick retries, evidences checked against `trust`. */
export function actorClient(
  world: TestWorld,
  baseUrl: string,
  address: string,
  options: { retries?: number; timeoutMs?: number } = {},
): RelayClient {
  const network = address.split('@')[1]!;
  return new RelayClient({
    baseUrl,
    address,
    identity: world.authority(address).identity,
    relayId: `relay@${network}`,
    trust: world.trustFor(network),
    retry: { retries: options.retries ?? 2, baseMs: 50, maxMs: 500 },
    timeoutMs: options.timeoutMs ?? 15_000,
  });
}

export interface Sealed {
  readonly envelope: Envelope;
  readonly objects: readonly { id: string; bytes: Uint8Array }[];
}

/** A dossier from `from` to `to` with one small attachment, its envelope expiring at `expiresAt`. */
export async function sealSmall(
  world: TestWorld,
  options: {
    from: string;
    to: readonly string[];
    createdAt?: number;
    expiresAt?: number;
    /** Random attachment bytes instead of a one-line text (in memory: keep it small). */
    attachmentBytes?: number;
  },
): Promise<Sealed> {
  const plain =
    options.attachmentBytes === undefined
      ? utf8(`fault scenario ${String(Math.random())}`)
      : new Uint8Array(randomBytes(options.attachmentBytes));
  const attachment = await encryptTestAttachment(plain, {
    name: 'request.pdf',
    chunkSize: options.attachmentBytes === undefined ? 1024 : 64 * 1024,
  });
  const createdAt = options.createdAt ?? Date.now();
  const sealed = sealTestDossier(world, {
    from: options.from,
    to: options.to,
    attachments: [attachment.manifest],
    createdAt,
    ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
  });
  return {
    envelope: sealed.envelope,
    objects: [{ id: sealed.envelope.body.dossier.id, bytes: sealed.sealed }, ...attachment.chunks],
  };
}

/**
 * Upload and submit as a node does: count it sent, then retry transient
 * failures (relay down, reset) up to `attempts` times; a permanent refusal
 * is returned as its code. Accepted envelopes are recorded in the ledger.
 */
export async function submitSealed(
  client: RelayClient,
  ledger: Tally,
  sealed: Sealed,
  options: { attempts?: number; signal?: AbortSignal } = {},
): Promise<{ accepted: true } | { accepted: false; code: string; stage: 'upload' | 'submit' }> {
  ledger.sent(sealed.envelope);
  const attempts = options.attempts ?? 20;
  let last = 'UNKNOWN';
  let stage: 'upload' | 'submit' = 'upload';
  let unanswered = false;
  for (let i = 0; i < attempts; i++) {
    let submitting = false;
    try {
      await client.uploadChunks(sealed.objects);
      submitting = true;
      const acceptance = await client.submit(sealed.envelope);
      if (acceptance.body.kind === 'submission-acceptance')
        ledger.accepted(sealed.envelope.body.id);
      return { accepted: true };
    } catch (err) {
      last = codeOf(err);
      stage = submitting ? 'submit' : 'upload';
      // The relay may have committed a submission whose answer never came.
      if (submitting && (last === 'NETWORK' || last === 'TIMEOUT')) unanswered = true;
      if (!transient(last)) break;
      if (i + 1 < attempts) await sleep(Math.min(2000, 100 * 2 ** i), options.signal);
    }
  }
  if (unanswered) ledger.cutOff(sealed.envelope.body.id);
  return { accepted: false, code: last, stage };
}

/** The stable code of a client error, or a name for anything else. */
export function codeOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return err.code;
  return 'UNEXPECTED';
}

/** Codes a node's outbox retries later (the relay was unreachable or busy). */
export function transient(code: string): boolean {
  return ['NETWORK', 'TIMEOUT', 'UNAVAILABLE', 'INTERNAL', 'RATE_LIMITED', 'BAD_RESPONSE'].includes(
    code,
  );
}

export interface Arrival {
  readonly envelopeId: string;
  readonly recipient: string;
  readonly expiresAt: number;
  /** When the recipient's relay accepted it (its hop), relay clock. */
  readonly receivedAt: number;
  /** Order in which this scenario's recipients saw envelopes arrive (all recipients together). */
  readonly index: number;
}

/**
 * Recipient nodes, reduced to what the counts need: poll the mailbox, fetch
 * the sealed dossier (it must be there), record the delivery, ack, and send
 * the signed Delivery evidence back (kept and retried while the relay is down).
 */
export class Recipients {
  readonly arrivals: Arrival[] = [];
  errors = 0;
  /** Code and message of the last failed poll (no content: client errors carry codes and routes). */
  lastError = '';
  /** Delivery evidences the relay refused for good (the sender will miss them). */
  evidenceRefused = 0;
  /** Failed polls by code (CHUNK_HASH_MISMATCH would be a half-stored or corrupted chunk). */
  readonly errorCodes = new Map<string, number>();
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly seen = new Set<string>();
  private readonly owedEvidence: { client: RelayClient; address: string; envelope: Envelope }[] =
    [];

  constructor(
    private readonly world: TestWorld,
    private readonly ledger: Tally,
    clients: ReadonlyMap<string, RelayClient>,
    private readonly options: {
      intervalMs?: number;
      fetchDossier?: boolean;
      /** Fetch every chunk of the envelope too (a node downloads them all before it acks). */
      fetchChunks?: boolean;
    } = {},
  ) {
    for (const [address, client] of clients) this.loops.push(this.loop(address, client));
  }

  private async loop(address: string, client: RelayClient): Promise<void> {
    while (this.running) {
      try {
        await this.sendOwed();
        const items = await client.readMailbox(0, 200);
        await this.handle(address, client, items);
      } catch (err) {
        this.errors++;
        const code = codeOf(err);
        this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
        this.lastError = `${code} ${err instanceof Error ? err.message : ''}`;
      }
      await sleep(this.options.intervalMs ?? 100);
    }
  }

  private async handle(
    address: string,
    client: RelayClient,
    items: readonly MailboxItem[],
  ): Promise<void> {
    const acks: number[] = [];
    for (const item of items) {
      const key = `${address} ${String(item.seq)}`;
      if (this.seen.has(key)) {
        acks.push(item.seq);
        continue;
      }
      if (item.kind === 'envelope') {
        const env = item.envelope;
        // A node stores the dossier before it acks: the relay must hold it.
        if (this.options.fetchDossier !== false) await client.getChunkBytes(env.body.dossier.id);
        if (this.options.fetchChunks === true)
          for (const c of env.body.chunks) {
            const bytes = await client.getChunkBytes(c.id);
            if (bytes.length !== c.size)
              throw Object.assign(new Error('a chunk came back with the wrong size'), {
                code: 'CHUNK_SIZE_MISMATCH',
              });
          }
        this.seen.add(key);
        this.ledger.delivered(address, env, item.seq);
        const hop = env.hops.at(-1);
        this.arrivals.push({
          envelopeId: env.body.id,
          recipient: address,
          expiresAt: env.body.expiresAt,
          receivedAt: hop?.receivedAt ?? 0,
          index: this.arrivals.length,
        });
        this.owedEvidence.push({ client, address, envelope: env });
      } else {
        this.seen.add(key);
      }
      acks.push(item.seq);
    }
    if (acks.length > 0) await client.ack(acks);
  }

  private async sendOwed(): Promise<void> {
    while (this.owedEvidence.length > 0) {
      const next = this.owedEvidence[0]!;
      const delivery = issueEvidence({
        kind: 'delivery',
        envelope: next.envelope,
        issuer: next.address,
        key: this.world.authority(next.address).identity,
        issuedAt: Date.now(),
        recipient: next.address,
      });
      try {
        await next.client.postEvidence(delivery, next.envelope);
      } catch (err) {
        // Kept for the next poll while the relay is unreachable; a refusal is final (and counted).
        if (transient(codeOf(err))) throw err;
        this.evidenceRefused++;
      }
      this.owedEvidence.shift();
    }
  }

  get pendingEvidence(): number {
    return this.owedEvidence.length;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.allSettled(this.loops);
  }
}

/**
 * Senders' side of the evidences: poll each sender's mailbox, verify every
 * evidence's signature against the sender's trust (relay or recipient key),
 * record it and ack it.
 */
export class SenderEvidence {
  errors = 0;
  lastError = '';
  invalid = 0;
  /** NonDelivery evidences with their reason code, as received. */
  readonly nonDeliveries: { envelopeId: string; recipient: string | null; reason: string }[] = [];
  private running = true;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly world: TestWorld,
    private readonly ledger: Tally,
    clients: ReadonlyMap<string, RelayClient>,
    private readonly intervalMs = 150,
  ) {
    for (const [address, client] of clients) this.loops.push(this.loop(address, client));
  }

  private async loop(address: string, client: RelayClient): Promise<void> {
    const trust = this.world.trustFor(address.split('@')[1]!);
    while (this.running) {
      try {
        const items = await client.readMailbox(0, 200);
        const acks: number[] = [];
        for (const item of items) {
          acks.push(item.seq);
          if (item.kind !== 'evidence') continue;
          const envelope = this.ledger.envelope(item.evidence.body.envelopeId);
          if (!envelope) continue;
          try {
            const ev = verifyEvidence(envelope, item.evidence, trust);
            this.ledger.evidence(address, ev);
            if (ev.body.kind === 'non-delivery')
              this.nonDeliveries.push({
                envelopeId: ev.body.envelopeId,
                recipient: ev.body.recipient,
                reason: ev.body.reason?.code ?? '',
              });
          } catch {
            this.invalid++;
          }
        }
        if (acks.length > 0) await client.ack(acks);
      } catch (err) {
        this.errors++;
        this.lastError = `${codeOf(err)} ${err instanceof Error ? err.message : ''}`;
      }
      await sleep(this.intervalMs);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.allSettled(this.loops);
  }
}

/**
 * Pairs (i < j) of arrivals whose order contradicts their deadlines (j's
 * expiresAt earlier than i's). Pairs that arrived within `simultaneousMs` of
 * each other (forwarded in the same round of concurrent hand-overs, where
 * order means nothing) are not counted as pairs.
 */
export function deadlineInversions(
  arrivals: readonly { expiresAt: number; receivedAt?: number }[],
  simultaneousMs = 0,
): {
  inversions: number;
  pairs: number;
} {
  let inversions = 0;
  let pairs = 0;
  for (let i = 0; i < arrivals.length; i++)
    for (let j = i + 1; j < arrivals.length; j++) {
      const a = arrivals[i]!;
      const b = arrivals[j]!;
      if (a.expiresAt === b.expiresAt) continue;
      if (
        simultaneousMs > 0 &&
        a.receivedAt !== undefined &&
        b.receivedAt !== undefined &&
        Math.abs(b.receivedAt - a.receivedAt) <= simultaneousMs
      )
        continue;
      pairs++;
      if (b.expiresAt < a.expiresAt) inversions++;
    }
  return { inversions, pairs };
}
