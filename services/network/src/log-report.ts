import { resolve } from 'node:path';
import {
  fromBase64,
  hashOf,
  isProtocolError,
  ready,
  toBase64,
  type LogEntryKind,
} from '@rogatory/protocol';
import { networkFail } from './errors.js';
import { readConfig, readEditions } from './folder.js';
import {
  allEntries,
  checkPublicationLocal,
  queueLength,
  readPublications,
  readQueue,
  verifyLogChain,
  withLog,
  type LogVerifyReport,
} from './log.js';
import { normaliseRelayUrl, readPushed } from './push.js';

export interface LogShow {
  readonly network: string;
  readonly size: number;
  readonly rootHash: string;
  readonly entries: { index: number; kind: LogEntryKind; hash: string }[];
  readonly publications: number;
  readonly queued: number;
}

/** `log show`: the log's size, root and entries, and how many statements are queued. */
export async function showLog(dir: string): Promise<LogShow> {
  await ready();
  const abs = resolve(dir);
  const config = await readConfig(abs);
  return withLog(abs, config, async (log) => ({
    network: config.network,
    size: log.size,
    rootHash: toBase64(log.root()),
    entries: allEntries(log).map((e, index) => ({ index, kind: e.kind, hash: e.hash })),
    publications: (await readPublications(abs)).length,
    queued: queueLength(await readQueue(abs)),
  }));
}

/** `log verify`: the tree recomputed from publications/, checked against log.db and editions/. */
export async function verifyLog(dir: string): Promise<LogVerifyReport> {
  await ready();
  const abs = resolve(dir);
  const config = await readConfig(abs);
  return withLog(abs, config, async (log) =>
    verifyLogChain({
      config,
      log,
      publications: await readPublications(abs),
      editions: await readEditions(abs, config),
    }),
  );
}

export interface LogStatus {
  readonly size: number;
  readonly publications: number;
  /** Size of the last publication, or 0. */
  readonly published: number;
  readonly queued: {
    readonly rotations: number;
    readonly revocations: number;
    readonly introductions: number;
  };
  /** Per relay URL (those of the last edition, and any pushed to): size pushed, publications not pushed yet. */
  readonly relays: { url: string; pushed: number; unpushed: number }[];
}

/** The log part of `status`. */
export async function logStatus(dir: string): Promise<LogStatus> {
  await ready();
  const abs = resolve(dir);
  const config = await readConfig(abs);
  return withLog(abs, config, async (log) => {
    const publications = await readPublications(abs);
    const queue = await readQueue(abs);
    const pushed = await readPushed(abs);
    const last = (await readEditions(abs, config)).at(-1);
    const urls = new Set([
      ...(last?.body.relays ?? []).map((r) => relayKey(r.url)),
      ...Object.keys(pushed),
    ]);
    return {
      size: log.size,
      publications: publications.length,
      published: publications.at(-1)?.size ?? 0,
      queued: {
        rotations: queue.rotations.length,
        revocations: queue.revocations.length + queue.revocationRequests.length,
        introductions: queue.introductions.length,
      },
      relays: [...urls].sort().map((url) => ({
        url,
        pushed: pushed[url] ?? 0,
        unpushed: publications.filter((p) => p.size > (pushed[url] ?? 0)).length,
      })),
    };
  });
}

function relayKey(url: string): string {
  try {
    return normaliseRelayUrl(url);
  } catch {
    return url.replace(/\/+$/, '');
  }
}

export interface QueuedSummary {
  readonly kind: LogEntryKind;
  readonly subject: string;
  readonly kid?: string;
}

/** What the next publish logs before the edition, in log order (for `diff`). */
export async function queuedStatements(dir: string): Promise<QueuedSummary[]> {
  const q = await readQueue(resolve(dir));
  return [
    ...q.rotations.map((r) => ({
      kind: 'rotation' as const,
      subject: r.body.subject,
      kid: `${r.body.oldKid} -> ${r.body.newKey.kid}`,
    })),
    ...q.revocations.map((r) => ({
      kind: 'revocation' as const,
      subject: r.body.subject,
      kid: r.body.kid,
    })),
    ...q.revocationRequests.map((r) => ({
      kind: 'revocation' as const,
      subject: r.subject,
      kid: r.kid,
    })),
    ...q.introductions.map((i) => ({ kind: 'introduction' as const, subject: i.body.subject })),
  ];
}

export interface PublicationReport {
  readonly network: string;
  readonly previousSize: number;
  readonly size: number;
  readonly entries: number;
  /** The same file is in this folder's publications/. */
  readonly inChain: boolean;
}

/** `verify <publication file>`: signed by this network's root, proofs hold; is it ours? */
export async function verifyPublicationFile(
  dir: string,
  value: unknown,
  file: string,
): Promise<PublicationReport> {
  await ready();
  const abs = resolve(dir);
  const config = await readConfig(abs);
  const previous = (value as { previous?: { size?: unknown; rootHash?: unknown } | null }).previous;
  let checked;
  try {
    const held =
      previous && typeof previous.size === 'number' && typeof previous.rootHash === 'string'
        ? { size: previous.size, rootHash: fromBase64(previous.rootHash, 'previous root') }
        : null;
    checked = checkPublicationLocal(value, config.root, held);
  } catch (cause) {
    return networkFail(
      'VERIFICATION_FAILED',
      `${file}: ${cause instanceof Error ? cause.message : 'does not verify'}`,
      { cause, ...(isProtocolError(cause) ? { detail: cause.code } : {}) },
    );
  }
  const ours = (await readPublications(abs)).find((p) => p.size === checked.size);
  return {
    network: config.network,
    previousSize: checked.size - checked.entries.length,
    size: checked.size,
    entries: checked.entries.length,
    inChain: ours !== undefined && hashOf(ours.value) === hashOf(value),
  };
}
