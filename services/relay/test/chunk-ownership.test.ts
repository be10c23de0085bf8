/**
 * Chunks belong to whoever uploaded them, and each uploader holds at most
 * its quota of bytes: attacks from a member node with a valid session, on
 * both backends, through the HTTP API.
 */
import { randomBytes } from 'node:crypto';
import { RelayClient, RelayPeerClient, isRelayClientError } from '@rogatory/client';
import {
  sha256,
  signEnvelope,
  toHex,
  withHop,
  type ChunkRef,
  type Envelope,
} from '@rogatory/protocol';
import { sealTestDossier, type TestWorld } from '@rogatory/protocol/testing';
import { startRedis, type RedisServer } from '@rogatory/test-services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startTestRelays,
  type BackendKind,
  type TestNetworkOfRelays,
} from '../src/testing/harness.js';
import { nodeClient, sealAndUpload, smallAttachment } from '../src/testing/relay-helpers.js';

const VICTIM = 'sn-moj@wacap';
const RECIPIENT = 'gh-ago@wacap';
const ATTACKER = 'ng-agf@wacap';
/** Small quotas, so that a test reaches them with a few uploads. */
const PENDING_QUOTA = 40_000;
const HELD_QUOTA = 60_000;
/** Less than a sealed dossier: every hand-over with one is over it. */
const PEER_QUOTA = 100;

let redis: RedisServer | undefined;

const BACKENDS: { name: string; backend: () => BackendKind }[] = [
  { name: 'embedded', backend: () => ({ kind: 'embedded' }) },
  { name: 'redis', backend: () => ({ kind: 'redis', url: redis!.url }) },
];

beforeAll(async () => {
  redis = await startRedis();
}, 60_000);

afterAll(async () => {
  await redis?.stop();
});

function randomChunk(size: number): { id: string; bytes: Uint8Array } {
  const bytes = new Uint8Array(randomBytes(size));
  return { id: toHex(sha256(bytes)), bytes };
}

/** An envelope of `from`, signed with its own key, listing the objects given (e.g. another envelope's sealed dossier). */
async function listing(
  world: TestWorld,
  from: string,
  to: string,
  dossier: ChunkRef,
  chunks: readonly ChunkRef[] = [],
): Promise<Envelope> {
  const attachment = await smallAttachment();
  const own = sealTestDossier(world, {
    from,
    to: [to],
    attachments: [attachment.manifest],
    createdAt: Date.now(),
  }).envelope;
  return signEnvelope(
    { ...own.body, dossier, chunks: [...chunks] },
    world.authority(from).identity,
  );
}

describe.each(BACKENDS)('chunk ownership and quotas on $name', ({ backend }) => {
  let net: TestNetworkOfRelays;
  let world: TestWorld;
  let url: string;
  const client = (address: string): RelayClient => nodeClient(world, url, address);

  beforeAll(async () => {
    net = await startTestRelays({
      backend: backend(),
      networks: ['wacap'],
      relayOptions: {
        limits: {
          pendingBytesPerNode: PENDING_QUOTA,
          heldBytesPerNode: HELD_QUOTA,
          pendingBytesPerPeer: PEER_QUOTA,
          heldBytesPerPeer: PEER_QUOTA,
        },
      },
    });
    world = net.world;
    url = net.relays['wacap']!.url;
  }, 60_000);

  afterAll(async () => {
    await net.stop();
  });

  it("refuses an envelope that lists another node's chunk, and never serves that chunk to its sender", async () => {
    const victim = client(VICTIM);
    const sent = await sealAndUpload(world, victim, { from: VICTIM, to: [RECIPIENT] });
    await victim.submit(sent.envelope);
    const dossier = sent.envelope.body.dossier;

    const attacker = client(ATTACKER);
    const forged = await listing(world, ATTACKER, RECIPIENT, dossier);
    const err = await attacker.submit(forged).catch((e: unknown) => e);
    expect(isRelayClientError(err, 'CHUNK_MISSING')).toBe(true);
    expect((err as { missing?: string[] }).missing).toEqual([dossier.id]);
    const read = await attacker.getChunkBytes(dossier.id).catch((e: unknown) => e);
    expect(isRelayClientError(read, 'NOT_FOUND')).toBe(true);

    // The recipient reads it, as before.
    expect(await client(RECIPIENT).getChunkBytes(dossier.id)).toEqual(sent.sealed);

    // Listed beside a chunk nobody holds, the victim's chunk is reported missing all the same:
    // the answer does not depend on whether someone else stored it.
    const nobodys = randomChunk(10);
    const probe = await listing(world, ATTACKER, RECIPIENT, dossier, [
      { id: nobodys.id, size: 10 },
    ]);
    const probed = await attacker.submit(probe).catch((e: unknown) => e);
    expect(isRelayClientError(probed, 'CHUNK_MISSING')).toBe(true);
    expect((probed as { missing?: string[] }).missing).toEqual([dossier.id, nobodys.id]);
  });

  it("tells a node nothing about another node's uploads, and keeps only its own alive", async () => {
    const victim = client(VICTIM);
    const uploaded = randomChunk(1000);
    await victim.putChunk(uploaded.id, uploaded.bytes, uploaded.bytes.length);
    const absent = randomChunk(10).id;

    expect(await client(ATTACKER).missingChunks([uploaded.id, absent])).toEqual([
      uploaded.id,
      absent,
    ]);
    expect(await victim.missingChunks([uploaded.id, absent])).toEqual([absent]);
  });

  it('lets a node that sends the same bytes reference them: possession is proven by the upload', async () => {
    const victim = client(VICTIM);
    const sent = await sealAndUpload(world, victim, { from: VICTIM, to: [RECIPIENT] });
    await victim.submit(sent.envelope);

    const other = client(ATTACKER);
    const copy = await listing(world, ATTACKER, RECIPIENT, sent.envelope.body.dossier);
    // The blob is stored once already; this upload only records the second owner.
    expect(
      await other.putChunk(sent.envelope.body.dossier.id, sent.sealed, sent.sealed.length),
    ).toMatchObject({ created: false });
    await other.submit(copy);
    expect(await other.getChunkBytes(sent.envelope.body.dossier.id)).toEqual(sent.sealed);
  });

  it("deduplicates a node's retries: a re-upload of its own chunk is answered and charged once", async () => {
    const node = client(RECIPIENT);
    const chunk = randomChunk(2000);
    await node.putChunk(chunk.id, chunk.bytes, chunk.bytes.length);
    await node.putChunk(chunk.id, chunk.bytes, chunk.bytes.length);
    expect(await node.missingChunks([chunk.id])).toEqual([]);
    expect(await heldBytes(RECIPIENT, 'pending')).toBe(2000);
  });

  it('charges a retried submission once, also when the retry renewed its chunks first', async () => {
    const node = client(VICTIM);
    const sent = await sealAndUpload(world, node, { from: VICTIM, to: [RECIPIENT] });
    await node.submit(sent.envelope);
    const pending = await heldBytes(VICTIM, 'pending');
    const referenced = await heldBytes(VICTIM, 'referenced');
    // The node lost the answer: it asks what is missing (which renews its records) and submits again.
    const ids = [sent.envelope.body.dossier.id, ...sent.envelope.body.chunks.map((c) => c.id)];
    expect(await node.missingChunks(ids)).toEqual([]);
    await node.submit(sent.envelope);
    expect(await heldBytes(VICTIM, 'pending')).toBe(pending);
    expect(await heldBytes(VICTIM, 'referenced')).toBe(referenced);
  });

  it('refuses uploads past the quota with QUOTA_EXCEEDED, shows the usage in metrics, and releases it when the envelope is delivered', async () => {
    const node = client(ATTACKER);
    const chunks = Array.from({ length: 5 }, () => randomChunk(PENDING_QUOTA / 4));
    for (const chunk of chunks.slice(0, 4))
      await node.putChunk(chunk.id, chunk.bytes, chunk.bytes.length);
    const refused = await node
      .putChunk(chunks[4]!.id, chunks[4]!.bytes, chunks[4]!.bytes.length)
      .catch((e: unknown) => e);
    expect(isRelayClientError(refused, 'QUOTA_EXCEEDED')).toBe(true);
    expect((refused as { status?: number }).status).toBe(507);
    expect(await node.missingChunks([chunks[4]!.id])).toEqual([chunks[4]!.id]);
    // Its own chunk again costs nothing: a retry after a crash still goes through.
    await node.putChunk(chunks[0]!.id, chunks[0]!.bytes, chunks[0]!.bytes.length);
    expect(await heldBytes(ATTACKER, 'pending')).toBe(PENDING_QUOTA);
    expect(
      await metricValue('rogatory_relay_quota_refusals_total{uploader="node"}'),
    ).toBeGreaterThanOrEqual(1);

    // Referenced by an envelope: no longer pending, still held until the recipient has it.
    const [dossier, ...rest] = chunks.slice(0, 4).map((c) => ({ id: c.id, size: c.bytes.length }));
    await node.submit(await listing(world, ATTACKER, RECIPIENT, dossier!, rest));
    expect(await heldBytes(ATTACKER, 'pending')).toBe(0);
    const referenced = (await heldBytes(ATTACKER, 'referenced'))!;
    expect(referenced).toBeGreaterThanOrEqual(PENDING_QUOTA);
    const next = randomChunk(HELD_QUOTA - referenced);
    await node.putChunk(next.id, next.bytes, next.bytes.length);
    const full = await node
      .putChunk(chunks[4]!.id, chunks[4]!.bytes, chunks[4]!.bytes.length)
      .catch((e: unknown) => e);
    expect(isRelayClientError(full, 'QUOTA_EXCEEDED')).toBe(true);

    // Delivered (the recipient acks every envelope it got, these tests' earlier ones too): released.
    const recipient = client(RECIPIENT);
    const items = await recipient.readMailbox(0, 100);
    await recipient.ack(items.filter((item) => item.kind === 'envelope').map((item) => item.seq));
    expect(await heldBytes(ATTACKER, 'referenced')).toBe(0);
    await node.putChunk(chunks[4]!.id, chunks[4]!.bytes, chunks[4]!.bytes.length);
  });

  /** relay@global calling this relay, as when it forwards from casc. */
  function hub(): RelayPeerClient {
    const global = world.networks['global']!;
    return new RelayPeerClient({
      baseUrl: url,
      from: global.relay.id,
      to: 'relay@wacap',
      key: global.relay.key,
      trust: world.trustFor('global'),
    });
  }

  /** As relay@global holds it after receiving it from relay@casc. */
  function handedOverByHub(envelope: Envelope): Envelope {
    const now = Date.now();
    return withHop(withHop(envelope, { relay: 'relay@casc', receivedAt: now }), {
      relay: 'relay@global',
      receivedAt: now,
    });
  }

  it('refuses a hand-over from a peer relay that lists chunks it did not send', async () => {
    const victim = client(VICTIM);
    const sent = await sealAndUpload(world, victim, { from: VICTIM, to: [RECIPIENT] });
    await victim.submit(sent.envelope);
    const dossier = sent.envelope.body.dossier;

    const forged = handedOverByHub(await listing(world, 'kz-gpo@casc', RECIPIENT, dossier));
    const err = await hub()
      .forwardEnvelope(forged, { recipients: [RECIPIENT] })
      .catch((e: unknown) => e);
    expect(isRelayClientError(err, 'CHUNK_MISSING')).toBe(true);
    expect((err as { missing?: string[] }).missing).toEqual([dossier.id]);
    expect(await net.relays['wacap']!.backend.getEnvelope(forged.body.id)).toBeUndefined();
  });

  it('holds a peer relay to its own quota, for uploads and for objects sent inline', async () => {
    const peer = hub();
    const attachment = await smallAttachment();
    const sealed = sealTestDossier(world, {
      from: 'kz-gpo@casc',
      to: [RECIPIENT],
      attachments: [attachment.manifest],
      createdAt: Date.now(),
    });
    const envelope = handedOverByHub(sealed.envelope);
    const inline = [
      { id: sealed.envelope.body.dossier.id, bytes: sealed.sealed },
      ...attachment.chunks,
    ];

    const handOver = await peer
      .forwardEnvelope(envelope, { recipients: [RECIPIENT], inline })
      .catch((e: unknown) => e);
    expect(isRelayClientError(handOver, 'QUOTA_EXCEEDED')).toBe(true);
    const upload = await peer
      .putChunk(sealed.envelope.body.dossier.id, sealed.sealed, sealed.sealed.length)
      .catch((e: unknown) => e);
    expect(isRelayClientError(upload, 'QUOTA_EXCEEDED')).toBe(true);
    expect(await metricValue('rogatory_relay_quota_refusals_total{uploader="peer"}')).toBe(2);
    expect(await net.relays['wacap']!.backend.getEnvelope(envelope.body.id)).toBeUndefined();
  });

  async function metricValue(series: string): Promise<number | undefined> {
    const text = await (await fetch(`${url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  }

  function heldBytes(
    identity: string,
    state: 'pending' | 'referenced',
  ): Promise<number | undefined> {
    return metricValue(`rogatory_relay_chunk_bytes_held{identity="${identity}",state="${state}"}`);
  }
});
