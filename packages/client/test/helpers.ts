import { randomBytes } from 'node:crypto';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import {
  newEnvelopeId,
  ready,
  signEnvelope,
  type Envelope,
  type SigningKeyPair,
} from '@rogatory/protocol';
import { RelayClient, sha256Hex, type RelayClientOptions, type Runtime } from '../src/index.js';
import { FakeRelay } from './fake-relay.js';

export const NODE = 'sn-moj@wacap';
export const PEER = 'ng-agf@wacap';

export interface Chunk {
  readonly id: string;
  readonly bytes: Uint8Array;
}

export function makeChunk(size: number): Chunk {
  const bytes = new Uint8Array(randomBytes(size));
  return { id: sha256Hex(bytes), bytes };
}

let world: TestWorld | undefined;

/** One deterministic world per test file (keys from fixed seeds, valid around now). */
export async function testWorld(): Promise<TestWorld> {
  await ready();
  world ??= buildTestWorld({ now: Date.now() });
  return world;
}

export async function startRelay(
  options: { tokenTtlMs?: number; autoPong?: boolean } = {},
): Promise<FakeRelay> {
  return FakeRelay.start({ world: await testWorld(), ...options });
}

/** Sleeps recorded instead of waited, so retry tests observe the delays chosen and never wait. */
export function recordingRuntime(): { runtime: Partial<Runtime>; delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    runtime: {
      sleep: (ms) => {
        delays.push(ms);
        return Promise.resolve();
      },
    },
  };
}

export function clientFor(
  relay: FakeRelay,
  options: Partial<RelayClientOptions> & { address?: string } = {},
): RelayClient {
  const address = options.address ?? NODE;
  const identity: SigningKeyPair = relay.world.authority(address).identity;
  return new RelayClient({
    baseUrl: relay.url,
    address,
    identity,
    relayId: relay.relayId,
    timeoutMs: 5_000,
    retry: { retries: 3, baseMs: 1, maxMs: 20, jitter: 0.5 },
    ...options,
  });
}

export function makeEnvelope(
  world: TestWorld,
  options: { sender?: string; recipients?: string[]; dossier: Chunk; chunks?: readonly Chunk[] },
): Envelope {
  const sender = options.sender ?? NODE;
  const now = Date.now();
  return signEnvelope(
    {
      id: newEnvelopeId(),
      sender,
      recipients: options.recipients ?? [PEER],
      createdAt: now,
      expiresAt: now + 24 * 3600_000,
      maxHops: 4,
      dossier: { id: options.dossier.id, size: options.dossier.bytes.length },
      chunks: (options.chunks ?? []).map((c) => ({ id: c.id, size: c.bytes.length })),
    },
    world.authority(sender).identity,
  );
}

export async function* streamOf(bytes: Uint8Array, pieceSize: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += pieceSize) {
    await Promise.resolve();
    yield bytes.subarray(offset, Math.min(bytes.length, offset + pieceSize));
  }
}
