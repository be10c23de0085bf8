import { randomBytes } from 'node:crypto';
import { buildTestWorld, type TestWorld } from '@rogatory/protocol/testing';
import {
  newEnvelopeId,
  ready,
  signEnvelope,
  type Envelope,
  type SigningKeyPair,
} from '@rogatory/protocol';
import {
  Agent,
  RelayClient,
  sha256Hex,
  type Dispatcher,
  type RelayClientOptions,
  type Runtime,
} from '../src/index.js';
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

export interface InterceptedRequest {
  readonly method: string;
  readonly path: string;
}

/** What happened to a request that went through: its status, or the error it failed with. */
export interface Outcome {
  readonly status?: number;
  readonly error?: Error;
}

export interface InterceptingDispatcher {
  /** The Dispatcher to give a client: a real keep-alive undici Agent behind the hooks. */
  readonly dispatcher: Dispatcher;
  close(): Promise<void>;
}

/**
 * A real undici Agent (the client's production path) with faults injected in
 * front of it: `before` may fail a request before it reaches the network (an
 * Error, as a refused or reset connection does) or hold it back for some ms;
 * `after` sees how each request that was sent ended.
 */
export function interceptingDispatcher(hooks: {
  before?: (request: InterceptedRequest) => Error | number | undefined;
  after?: (request: InterceptedRequest, outcome: Outcome) => void;
}): InterceptingDispatcher {
  const agent = new Agent();
  const dispatcher = agent.compose((dispatch) => (options, handler) => {
    const request = { method: options.method, path: options.path };
    const fault = hooks.before?.(request);
    if (fault instanceof Error) {
      queueMicrotask(() => handler.onError?.(fault));
      return true;
    }
    const forward = (): boolean => dispatch(options, observed(handler, request, hooks.after));
    if (fault === undefined) return forward();
    setTimeout(forward, fault);
    return true;
  });
  return { dispatcher, close: () => agent.close() };
}

function observed(
  handler: Dispatcher.DispatchHandlers,
  request: InterceptedRequest,
  after: ((request: InterceptedRequest, outcome: Outcome) => void) | undefined,
): Dispatcher.DispatchHandlers {
  if (after === undefined) return handler;
  let status: number | undefined;
  return new Proxy(handler, {
    get(target, property, receiver) {
      if (property === 'onHeaders') {
        return (code: number, ...rest: [Buffer[], () => void, string]) => {
          if (code >= 200) status = code;
          return target.onHeaders?.(code, ...rest) ?? true;
        };
      }
      if (property === 'onComplete') {
        return (trailers: string[] | null) => {
          after(request, status === undefined ? {} : { status });
          target.onComplete?.(trailers);
        };
      }
      if (property === 'onError') {
        return (error: Error) => {
          after(request, { error });
          target.onError?.(error);
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function'
        ? (value as (...args: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}

/** A connection reset, as undici reports one. */
export function connectionReset(): Error {
  return Object.assign(new Error('other side closed'), { code: 'ECONNRESET' });
}
