import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RelayClient } from '@rogatory/client';
import {
  CONTEXTS,
  signBytes,
  utf8,
  type Envelope,
  type EnvelopeBody,
  type SigningKeyPair,
} from '@rogatory/protocol';
import { encryptTestAttachment, sealTestDossier, type TestWorld } from '@rogatory/protocol/testing';

/** Shared helpers of the relay fuzz and crash tests: clients, sealed dossiers, hand-signed envelopes. */

export function nodeClient(
  world: TestWorld,
  baseUrl: string,
  address: string,
  retries = 0,
): RelayClient {
  const network = address.split('@')[1]!;
  return new RelayClient({
    baseUrl,
    address,
    identity: world.authority(address).identity,
    relayId: `relay@${network}`,
    retry: { retries, baseMs: 20, maxMs: 200 },
    timeoutMs: 15_000,
  });
}

export interface Prepared {
  readonly envelope: Envelope;
  readonly sealed: Uint8Array;
  readonly chunks: readonly { id: string; bytes: Uint8Array }[];
}

export type TestAttachment = Awaited<ReturnType<typeof encryptTestAttachment>>;

/** A small encrypted attachment (the example request content refers to one). */
export function smallAttachment(): Promise<TestAttachment> {
  return encryptTestAttachment(utf8('scanned request, page 1'), {
    name: 'request.pdf',
    chunkSize: 1024,
  });
}

/**
 * Seal a dossier with one small attachment (a fresh one unless given) and
 * upload every object it needs through `client` (unless `upload` is false).
 */
export async function sealAndUpload(
  world: TestWorld,
  client: RelayClient,
  options: {
    from: string;
    to: readonly string[];
    attachment?: TestAttachment;
    envelopeId?: string;
    upload?: boolean;
  },
): Promise<Prepared> {
  const attachment = options.attachment ?? (await smallAttachment());
  const result = sealTestDossier(world, {
    from: options.from,
    to: options.to,
    attachments: [attachment.manifest],
    createdAt: Date.now(),
    ...(options.envelopeId ? { envelopeId: options.envelopeId } : {}),
  });
  if (options.upload !== false) {
    await client.putChunk(result.envelope.body.dossier.id, result.sealed, result.sealed.length);
    for (const c of attachment.chunks) await client.putChunk(c.id, c.bytes, c.bytes.length);
  }
  return { envelope: result.envelope, sealed: result.sealed, chunks: attachment.chunks };
}

/**
 * Sign an envelope body exactly as given (no consistency checks, unlike
 * signEnvelope), optionally claiming another key id: for inputs the relay
 * must refuse after checking the signature.
 */
export function signAsIs(
  body: EnvelopeBody,
  key: SigningKeyPair,
  options: { kid?: string; hops?: Envelope['hops'] } = {},
): Envelope {
  const signature = signBytes(CONTEXTS.envelope, body, key);
  return {
    body,
    signature: options.kid ? { kid: options.kid, value: signature.value } : signature,
    hops: options.hops ?? [],
  };
}

/** Files below `dir` (recursively); none when it does not exist. */
export async function filesBelow(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesBelow(path)));
    else out.push(path);
  }
  return out;
}

/** Run `fn` over `items` with at most `concurrency` in flight. */
export async function inPool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Poll `fn` until it returns a value (not undefined), at most `ms`. */
export async function waitFor<T>(
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
