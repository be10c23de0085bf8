import { RelayClient, isRelayClientError, type MailboxItem } from '@rogatory/client';
import {
  canonicalBytes,
  issueEvidence,
  signEnvelope,
  utf8,
  verifyEvidence,
  verifyEvidenceChain,
  type Envelope,
  type Evidence,
} from '@rogatory/protocol';
import { encryptTestAttachment, sealTestDossier, type TestWorld } from '@rogatory/protocol/testing';
import { startRedis, startS3 } from '@rogatory/test-services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startTestRelays,
  type BackendKind,
  type TestNetworkOfRelays,
} from '../src/testing/harness.js';

let net: TestNetworkOfRelays;
let world: TestWorld;

function client(address: string): RelayClient {
  const network = address.split('@')[1]!;
  const a = world.authority(address);
  return new RelayClient({
    baseUrl: net.relays[network]!.url,
    address,
    identity: a.identity,
    relayId: `relay@${network}`,
    retry: { retries: 1, baseMs: 10 },
  });
}

async function waitFor<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Seal a dossier with two small attachments and upload every object it needs. */
async function prepare(
  from: string,
  to: string[],
  options: { upload?: boolean; expiresAt?: number } = {},
) {
  const att = [
    await encryptTestAttachment(utf8('scanned warrant'), { name: 'warrant.pdf' }),
    await encryptTestAttachment(new Uint8Array(3000), {
      name: 'records.csv',
      mediaType: 'text/csv',
      chunkSize: 1024,
    }),
  ];
  const sealed = sealTestDossier(world, {
    from,
    to,
    attachments: att.map((a) => a.manifest),
    createdAt: Date.now(),
    ...(options.expiresAt ? { expiresAt: options.expiresAt } : {}),
  });
  const c = client(from);
  if (options.upload !== false) {
    await c.putChunk(sealed.envelope.body.dossier.id, sealed.sealed, sealed.sealed.length);
    for (const a of att)
      for (const ch of a.chunks) await c.putChunk(ch.id, ch.bytes, ch.bytes.length);
  }
  return { sealed, c, chunks: att.flatMap((a) => a.chunks) };
}

const BACKENDS: {
  name: string;
  open: () => Promise<{ backend: BackendKind; stop: () => Promise<void> }>;
}[] = [
  {
    name: 'embedded (SQLite + chunk directory)',
    open: () => Promise.resolve({ backend: { kind: 'embedded' }, stop: () => Promise.resolve() }),
  },
  {
    name: 'production (redis-server + BullMQ, chunks on s3rver)',
    open: async () => {
      const redis = await startRedis();
      const s3 = await startS3();
      return {
        backend: {
          kind: 'redis',
          url: redis.url,
          s3: {
            endPoint: s3.endPoint,
            port: s3.port,
            accessKey: s3.accessKey,
            secretKey: s3.secretKey,
          },
        },
        stop: async () => {
          await s3.stop();
          await redis.stop();
        },
      };
    },
  },
];

describe.each(BACKENDS)('relay on $name', ({ open }) => {
  let services: { stop: () => Promise<void> };
  beforeAll(async () => {
    const opened = await open();
    services = opened;
    net = await startTestRelays({ backend: opened.backend });
    world = net.world;
  }, 60_000);

  afterAll(async () => {
    await net.stop();
    await services.stop();
  });

  it('delivers within a network over the mailbox WebSocket, and routes the Delivery evidence back', async () => {
    const { sealed, c } = await prepare('sn-moj@wacap', ['ng-agf@wacap']);
    const acceptance = await c.submit(sealed.envelope);
    expect(acceptance.body.kind).toBe('submission-acceptance');
    expect(verifyEvidence(sealed.envelope, acceptance, world.trustFor('wacap')).body.issuer).toBe(
      'relay@wacap',
    );

    const ng = client('ng-agf@wacap');
    const got: MailboxItem[] = [];
    const sub = ng.openMailbox({ after: 0, onItem: (item) => void got.push(item) });
    try {
      const item = await waitFor('envelope', () =>
        got.find((i) => i.kind === 'envelope' && i.envelope.body.id === sealed.envelope.body.id),
      );
      expect(item.kind === 'envelope' && item.envelope.hops.map((h) => h.relay)).toEqual([
        'relay@wacap',
      ]);
      expect(await ng.getChunkBytes(sealed.envelope.body.dossier.id)).toEqual(sealed.sealed);
      await sub.ack([item.seq]);
      const delivery = issueEvidence({
        kind: 'delivery',
        envelope: sealed.envelope,
        issuer: 'ng-agf@wacap',
        key: world.authority('ng-agf@wacap').identity,
        issuedAt: Date.now(),
        recipient: 'ng-agf@wacap',
      });
      await ng.postEvidence(delivery, sealed.envelope);
    } finally {
      void sub.close();
    }
    const senderItems = await waitFor('delivery evidence', async () => {
      const items = await c.readMailbox(0, 100);
      return items.some(
        (i) =>
          i.kind === 'evidence' &&
          i.evidence.body.kind === 'delivery' &&
          i.evidence.body.envelopeId === sealed.envelope.body.id,
      )
        ? items
        : undefined;
    });
    expect(senderItems.length).toBeGreaterThan(0);
    // Acked: gone from the recipient's mailbox.
    expect(
      (await ng.readMailbox(0, 100)).some(
        (i) => i.kind === 'envelope' && i.envelope.body.id === sealed.envelope.body.id,
      ),
    ).toBe(false);
  });

  it('forwards across networks through the hub and brings every evidence back to the sender', async () => {
    const { sealed, c, chunks } = await prepare('sn-moj@wacap', ['kz-gpo@casc']);
    const acceptance = await c.submit(sealed.envelope);
    const kz = client('kz-gpo@casc');
    const envelope = await waitFor('cross-network envelope', async () => {
      const items = await kz.readMailbox(0, 100);
      const hit = items.find(
        (i) => i.kind === 'envelope' && i.envelope.body.id === sealed.envelope.body.id,
      );
      return hit?.kind === 'envelope' ? { seq: hit.seq, envelope: hit.envelope } : undefined;
    });
    expect(envelope.envelope.hops.map((h) => h.relay)).toEqual([
      'relay@wacap',
      'relay@global',
      'relay@casc',
    ]);
    // Only the missing chunks travelled, and every one arrived intact.
    for (const ch of chunks) expect(await kz.getChunkBytes(ch.id)).toEqual(ch.bytes);
    await kz.ack([envelope.seq]);
    const kzKey = world.authority('kz-gpo@casc').identity;
    await kz.postEvidence(
      issueEvidence({
        kind: 'delivery',
        envelope: sealed.envelope,
        issuer: 'kz-gpo@casc',
        key: kzKey,
        issuedAt: Date.now(),
        recipient: 'kz-gpo@casc',
      }),
      sealed.envelope,
    );
    await kz.postEvidence(
      issueEvidence({
        kind: 'retrieval',
        envelope: sealed.envelope,
        issuer: 'kz-gpo@casc',
        key: kzKey,
        issuedAt: Date.now() + 1,
        recipient: 'kz-gpo@casc',
      }),
      sealed.envelope,
    );

    const evidences = await waitFor('all evidences at the sender', async () => {
      const items = await c.readMailbox(0, 1000);
      const mine = items.flatMap((i) =>
        i.kind === 'evidence' && i.evidence.body.envelopeId === sealed.envelope.body.id
          ? [i.evidence]
          : [],
      );
      return mine.length >= 4 ? mine : undefined;
    });
    const chain = verifyEvidenceChain(
      sealed.envelope,
      [acceptance, ...evidences],
      world.trustFor('wacap'),
    );
    expect(chain.ordered.map((e) => `${e.body.kind}:${e.body.issuer}`)).toEqual([
      'submission-acceptance:relay@wacap',
      'relay-acceptance:relay@global',
      'relay-acceptance:relay@casc',
      'delivery:kz-gpo@casc',
      'retrieval:kz-gpo@casc',
    ]);
  });

  it('answers a retried submission with the same acceptance, and refuses a replay under the same id', async () => {
    const { sealed, c } = await prepare('sn-moj@wacap', ['gh-ago@wacap']);
    const first = await c.submit(sealed.envelope);
    const again = await c.submit(sealed.envelope);
    expect(canonicalBytes(again)).toEqual(canonicalBytes(first));
    const { type: _t, version: _v, totalSize: _s, ...body } = sealed.envelope.body;
    const other = signEnvelope(
      { ...body, expiresAt: body.expiresAt - 1 },
      world.authority('sn-moj@wacap').identity,
    );
    const err = await c.submit(other).catch((e: unknown) => e);
    expect(isRelayClientError(err, 'REPLAY')).toBe(true);
  });

  it('refuses with typed codes and signed rejections: missing chunks, unknown recipient, tampering, impersonation', async () => {
    const missing = await prepare('sn-moj@wacap', ['gh-ago@wacap'], { upload: false });
    const err = await missing.c.submit(missing.sealed.envelope).catch((e: unknown) => e);
    expect(isRelayClientError(err, 'CHUNK_MISSING')).toBe(true);
    const rejection = (err as { evidence?: Evidence }).evidence;
    expect(rejection?.body.kind).toBe('submission-rejection');
    expect(rejection?.body.reason?.code).toBe('CHUNK_MISSING');
    expect((err as { missing?: string[] }).missing).toContain(
      missing.sealed.envelope.body.dossier.id,
    );

    const { sealed, c } = await prepare('sn-moj@wacap', ['gh-ago@wacap']);
    const { type: _t, version: _v, totalSize: _s, ...body } = sealed.envelope.body;
    const unknown = signEnvelope(
      { ...body, id: 'UNKNOWNrecipient00000A', recipients: ['nobody@wacap'] },
      world.authority('sn-moj@wacap').identity,
    );
    expect(
      isRelayClientError(await c.submit(unknown).catch((e: unknown) => e), 'RECIPIENT_UNKNOWN'),
    ).toBe(true);

    const tampered: Envelope = {
      ...sealed.envelope,
      body: { ...sealed.envelope.body, expiresAt: sealed.envelope.body.expiresAt + 1 },
    };
    expect(
      isRelayClientError(await c.submit(tampered).catch((e: unknown) => e), 'SIGNATURE_INVALID'),
    ).toBe(true);

    const impostor = client('gh-ago@wacap');
    expect(
      isRelayClientError(
        await impostor.submit(sealed.envelope).catch((e: unknown) => e),
        'FORBIDDEN',
      ),
    ).toBe(true);
  });

  it('routes the evidences of every envelope, not only the first of each kind', async () => {
    const ng = client('ng-agf@wacap');
    const sender = client('gh-ago@wacap');
    const envelopes: Envelope[] = [];
    for (let i = 0; i < 3; i++) {
      const { sealed, c } = await prepare('gh-ago@wacap', ['ng-agf@wacap']);
      await c.submit(sealed.envelope);
      envelopes.push(sealed.envelope);
    }
    for (const envelope of envelopes) {
      const delivery = issueEvidence({
        kind: 'delivery',
        envelope,
        issuer: 'ng-agf@wacap',
        key: world.authority('ng-agf@wacap').identity,
        issuedAt: Date.now(),
        recipient: 'ng-agf@wacap',
      });
      await ng.postEvidence(delivery, envelope);
    }
    const ids = await waitFor('three delivery evidences', async () => {
      const items = await sender.readMailbox(0, 1000);
      const got = new Set(
        items.flatMap((i) =>
          i.kind === 'evidence' && i.evidence.body.kind === 'delivery'
            ? [i.evidence.body.envelopeId]
            : [],
        ),
      );
      return envelopes.every((e) => got.has(e.body.id)) ? got : undefined;
    });
    expect(ids.size).toBeGreaterThanOrEqual(3);
  });

  it('serves chunks only to the sender and recipients of an envelope', async () => {
    const { sealed, c } = await prepare('sn-moj@wacap', ['ng-agf@wacap']);
    await c.submit(sealed.envelope);
    const outsider = client('gh-ago@wacap');
    const err = await outsider
      .getChunkBytes(sealed.envelope.body.dossier.id)
      .catch((e: unknown) => e);
    expect(isRelayClientError(err, 'NOT_FOUND')).toBe(true);
    expect(await client('ng-agf@wacap').getChunkBytes(sealed.envelope.body.dossier.id)).toEqual(
      sealed.sealed,
    );
  });
});
