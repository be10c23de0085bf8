import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RelayClient, isRelayClientError, type Dispatcher } from '@rogatory/client';
import { KDF_LIMITS, issueEvidence, ready, type DossierContent } from '@rogatory/protocol';
import {
  buildTestWorld,
  exampleContentFor,
  sealTestDossier,
  type TestWorld,
} from '@rogatory/protocol/testing';
import { StorageError, type BlobStore } from '@rogatory/storage';
import {
  AuthorityNode,
  initNode,
  type Actor,
  type Clearance,
  type ImportedKeys,
  type Role,
} from '../../src/index.js';

export const PASSPHRASE = 'correct horse battery staple';
export const PASSWORD = 'a long enough password';

export async function tempDir(
  prefix = 'rogatory-node-test-',
): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A file of `size` random bytes; returns its path and bytes. */
export async function randomFile(
  dir: string,
  name: string,
  size: number,
): Promise<{ path: string; bytes: Buffer }> {
  const bytes = randomBytes(size);
  const path = join(dir, name);
  await writeFile(path, bytes);
  return { path, bytes };
}

export interface NodeFixture {
  readonly node: AuthorityNode;
  readonly dir: string;
  readonly admin: Actor;
  /** Create users (role, clearances) and log them in. */
  user(username: string, role: Role, clearances?: Clearance[]): Actor;
}

/**
 * Initialise and open a node for a test-world authority with its
 * deterministic keys, trust pinned to its own network's root with every
 * reachable manifest, and an admin account.
 */
export async function makeNode(options: {
  world: TestWorld;
  address: string;
  dir: string;
  relayUrl?: string;
  wrapBlobStore?: (store: BlobStore) => BlobStore;
  importKeys?: ImportedKeys;
  clock?: () => number;
  dispatcher?: Dispatcher;
}): Promise<NodeFixture> {
  await ready();
  const { world, address } = options;
  const network = address.split('@')[1]!;
  const net = world.networks[network]!;
  const authority = world.authority(address);
  await initNode({
    dir: options.dir,
    address,
    relayUrl: options.relayUrl ?? net.relay.url,
    relayId: net.relay.id,
    passphrase: PASSPHRASE,
    pinnedRoot: net.rootRef,
    manifests: [
      net.manifest,
      ...net.manifest.body.peers.map((p) => world.networks[p.network]!.manifest),
    ],
    kdf: KDF_LIMITS.interactive,
    importKeys: options.importKeys ?? {
      identity: authority.identity,
      encryption: authority.encryption,
    },
    admin: { username: 'admin', password: PASSWORD },
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const node = await AuthorityNode.open({
    dir: options.dir,
    passphrase: PASSPHRASE,
    relay: {
      retry: { retries: 1, baseMs: 20, maxMs: 100 },
      timeoutMs: 10_000,
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    },
    ...(options.wrapBlobStore ? { wrapBlobStore: options.wrapBlobStore } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const admin = node.login('admin', PASSWORD);
  return {
    node,
    dir: options.dir,
    admin,
    user(username, role, clearances = []) {
      node.addUser(admin, { username, password: PASSWORD, role, clearances });
      return node.login(username, PASSWORD);
    },
  };
}

/** A world without relays (workflow tests that never touch the network). */
export async function offlineWorld(): Promise<TestWorld> {
  await ready();
  return buildTestWorld({ now: Date.now(), relayUrl: () => 'http://127.0.0.1:9' });
}

/** An MLA request from `from` to `to` (the example references attachments 0 and 1). */
export function mlaRequest(
  world: TestWorld,
  from: string,
  to: string,
  patch: {
    handlingCode?: 'none' | 'restricted' | 'witness-protection' | 'sealed';
    caseReference?: string;
    deadline?: string;
  } = {},
): DossierContent {
  const content = exampleContentFor('mla', from, to, world);
  if (content.kind !== 'request') throw new Error('not a request');
  return {
    ...content,
    header: {
      ...content.header,
      ...(patch.handlingCode ? { handlingCode: patch.handlingCode } : {}),
      ...(patch.caseReference ? { caseReference: patch.caseReference } : {}),
      ...(patch.deadline ? { deadline: patch.deadline } : {}),
    },
  };
}

/** Poll `fn` until it returns a value, at most `attempts` times (no timing assertion: a bound on the loop). */
export async function eventually<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  attempts = 400,
  intervalMs = 50,
): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await fn();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** A blob store whose writes fail with STORAGE_FULL while `full` is set (a disk that filled up). */
export class FillableBlobStore implements BlobStore {
  full = false;
  /** When set, the disk fills up after this many more puts have been accepted. */
  fullAfter: number | undefined;
  /** Puts started and not yet settled, and the most seen at once. */
  inFlight = 0;
  maxInFlight = 0;
  private readonly inner: BlobStore;
  constructor(inner: BlobStore) {
    this.inner = inner;
  }
  async put(...args: Parameters<BlobStore['put']>): ReturnType<BlobStore['put']> {
    if (this.fullAfter !== undefined) {
      if (this.fullAfter <= 0) this.full = true;
      else this.fullAfter--;
    }
    if (this.full) throw new StorageError('STORAGE_FULL', 'put: out of space');
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      return await this.inner.put(...args);
    } finally {
      this.inFlight--;
    }
  }
  get(id: string): AsyncIterable<Uint8Array> {
    return this.inner.get(id);
  }
  getBytes(id: string): Promise<Uint8Array> {
    return this.inner.getBytes(id);
  }
  has(id: string): Promise<boolean> {
    return this.inner.has(id);
  }
  missing(ids: readonly string[]): Promise<string[]> {
    return this.inner.missing(ids);
  }
  size(id: string): Promise<number> {
    return this.inner.size(id);
  }
  delete(id: string): Promise<void> {
    return this.inner.delete(id);
  }
  list(): AsyncIterable<string> {
    return this.inner.list();
  }
  verify(id: string): Promise<boolean> {
    return this.inner.verify(id);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * Whether @rogatory/client accepts `recipient-rejection` evidences (its wire
 * checks predate the kind): probed offline, a client-side MALFORMED before
 * any network access means it does not yet.
 */
export async function clientAcceptsRecipientRejection(world: TestWorld): Promise<boolean> {
  const sealed = sealTestDossier(world, {
    from: 'ng-agf@wacap',
    to: ['gh-ago@wacap'],
    content: stripAttachmentRefs(mlaRequest(world, 'ng-agf@wacap', 'gh-ago@wacap')),
  });
  const gh = world.authority('gh-ago@wacap');
  const evidence = issueEvidence({
    kind: 'recipient-rejection',
    envelope: sealed.envelope,
    issuer: gh.address,
    key: gh.identity,
    issuedAt: Date.now(),
    recipient: gh.address,
    reason: { code: 'QUARANTINED', detail: 'SIGNATURE_INVALID' },
  });
  const client = new RelayClient({
    baseUrl: 'http://127.0.0.1:9',
    address: gh.address,
    identity: gh.identity,
    retry: { retries: 0 },
  });
  try {
    await client.postEvidence(evidence, sealed.envelope);
    return true;
  } catch (err) {
    return !isRelayClientError(err, 'MALFORMED');
  }
}

/** The example MLA request refers to attachments; without them it must not. */
export function stripAttachmentRefs(content: DossierContent): DossierContent {
  if (content.kind !== 'request' || content.requestType !== 'mla') return content;
  return {
    ...content,
    mla: { ...content.mla, measures: content.mla.measures.map(({ attachments: _a, ...m }) => m) },
  };
}
