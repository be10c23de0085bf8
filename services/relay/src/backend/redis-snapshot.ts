/**
 * Export and import of the Redis backend's whole state (for
 * `rogatory-relay migrate-backend`, with every relay instance of the prefix
 * stopped), in the key layout of redis-scripts.ts. BullMQ's own keys are not
 * copied: an imported pending forward gets an `unqueued` marker, so the
 * first relay start adds its job; the expiry sweep reads `due`.
 *
 * The import is not one transaction (a store may be larger than one
 * script should take): it checks that the prefix is empty first and writes
 * in pipelined batches; one that fails half-way leaves keys behind, which
 * the operator deletes before running it again (a second run refuses the
 * non-empty prefix).
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { BackendError } from './errors.js';
import { mailboxDedupKey, toBytes } from './shared.js';
import type {
  BackendSnapshot,
  SnapshotEnvelope,
  SnapshotItem,
  SnapshotTask,
  SnapshotUpload,
} from './types.js';

const SCAN_COUNT = 500;
const WRITE_BATCH = 500;

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A glob pattern matching `text` literally. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

async function scanKeys(client: Redis, pattern: string): Promise<string[]> {
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
    cursor = next;
    for (const key of batch) keys.add(key);
  } while (cursor !== '0');
  return [...keys].sort();
}

function text(value: Buffer | undefined): string | undefined {
  return value?.toString('utf8');
}

function integer(value: Buffer | string | undefined | null, what: string): number {
  const parsed = Number(typeof value === 'string' ? value : text(value ?? undefined));
  if (value === undefined || value === null || !Number.isSafeInteger(parsed))
    throw new Error(`redis backend: stored ${what} is not an integer`);
  return parsed;
}

function strings(value: Buffer | undefined, what: string): string[] {
  const parsed: unknown = JSON.parse(text(value) ?? 'null');
  if (!Array.isArray(parsed) || !parsed.every((x): x is string => typeof x === 'string'))
    throw new Error(`redis backend: stored ${what} is not a string list`);
  return parsed;
}

function required(hash: Record<string, Buffer>, field: string): Buffer {
  const value = hash[field];
  if (value === undefined) throw new Error(`redis backend: stored record lacks ${field}`);
  return value;
}

export async function exportRedis(
  client: Redis,
  base: string,
  epoch: string,
): Promise<BackendSnapshot> {
  const prefix = globEscape(base);

  const envelopes: SnapshotEnvelope[] = [];
  const envelopeIds = (await client.smembers(`${base}envs`)).sort();
  for (const id of envelopeIds) {
    const hash = await client.hgetallBuffer(`${base}env:${id}`);
    if (Object.keys(hash).length === 0) continue;
    const uploader = text(hash['uploader']);
    const doneAt = hash['doneAt'];
    const releasedAt = hash['releasedAt'];
    envelopes.push({
      id,
      hash: required(hash, 'hash').toString('utf8'),
      bytes: toBytes(required(hash, 'bytes')),
      sender: required(hash, 'sender').toString('utf8'),
      recipients: strings(hash['recipients'], 'recipients'),
      chunkIds: strings(hash['chunkIds'], 'chunkIds'),
      expiresAt: integer(hash['expiresAt'], 'expiresAt'),
      acceptedAt: integer(hash['acceptedAt'], 'acceptedAt'),
      acceptance: toBytes(required(hash, 'acceptance')),
      retainUntil: integer(hash['retainUntil'], 'retainUntil'),
      heldBytes: hash['heldBytes'] === undefined ? 0 : integer(hash['heldBytes'], 'heldBytes'),
      ...(uploader === undefined ? {} : { uploader }),
      ...(doneAt === undefined ? {} : { doneAt: integer(doneAt, 'doneAt') }),
      ...(releasedAt === undefined ? {} : { releasedAt: integer(releasedAt, 'releasedAt') }),
    });
  }

  const mailboxSeqs: { address: string; lastSeq: number }[] = [];
  for (const key of await scanKeys(client, `${prefix}seq:*`)) {
    mailboxSeqs.push({
      address: key.slice(`${base}seq:`.length),
      lastSeq: integer(await client.get(key), 'mailbox seq'),
    });
  }

  const items: SnapshotItem[] = [];
  for (const key of await scanKeys(client, `${prefix}item:*`)) {
    const rest = key.slice(`${base}item:`.length);
    const colon = rest.lastIndexOf(':');
    const address = rest.slice(0, colon);
    const seq = Number(rest.slice(colon + 1));
    const hash = await client.hgetallBuffer(key);
    const kind = text(hash['kind']);
    if (kind !== 'envelope' && kind !== 'evidence') throw new Error('redis backend: corrupt item');
    const envelopeId = required(hash, 'env').toString('utf8');
    const pending = (await client.zscore(`${base}mb:${address}`, String(seq))) !== null;
    const expiring = text(hash['state']) === 'expiring';
    if (!pending && !expiring) continue; // a leftover of a finished item: nothing to carry
    const dueScore = await client.zscore(`${base}due`, `${seq}:${address}`);
    items.push({
      address,
      seq,
      kind,
      envelopeId,
      dedupKey:
        kind === 'envelope'
          ? mailboxDedupKey('envelope', envelopeId)
          : required(hash, 'key').toString('utf8'),
      state: pending ? 'pending' : 'expiring',
      attempt: hash['attempt'] === undefined ? 0 : integer(hash['attempt'], 'attempt'),
      ...(kind === 'evidence' ? { payload: toBytes(required(hash, 'payload')) } : {}),
      ...(hash['deliverBy'] === undefined
        ? {}
        : { deliverBy: integer(hash['deliverBy'], 'deliverBy') }),
      ...(dueScore === null ? {} : { dueAt: integer(dueScore, 'due time') }),
    });
  }
  // Acked evidences whose dedup key is kept while their envelope record refuses replays.
  for (const key of await scanKeys(client, `${prefix}tombdedup:*`)) {
    const envelopeId = key.slice(`${base}tombdedup:`.length);
    const pairs = await client.lrange(key, 0, -1);
    for (let j = 0; j + 1 < pairs.length; j += 2) {
      const address = pairs[j]!;
      const dedupKey = pairs[j + 1]!;
      const seq = await client.hget(`${base}dedup:${address}`, dedupKey);
      if (seq === null) continue;
      items.push({
        address,
        seq: integer(seq, 'dedup seq'),
        kind: 'evidence',
        envelopeId,
        dedupKey,
        state: 'acked',
        attempt: 0,
      });
    }
  }
  items.sort((a, b) => (a.address === b.address ? a.seq - b.seq : compare(a.address, b.address)));

  const tasks: SnapshotTask[] = [];
  for (const key of await scanKeys(client, `${prefix}task:*`)) {
    const id = key.slice(`${base}task:`.length);
    const hash = await client.hgetallBuffer(key);
    const kind = text(hash['kind']);
    const state = text(hash['state']);
    if (kind !== 'envelope' && kind !== 'evidence') throw new Error('redis backend: corrupt task');
    if (state !== 'pending' && state !== 'done' && state !== 'gave_up')
      throw new Error('redis backend: corrupt task state');
    tasks.push({
      id,
      kind,
      envelopeId: required(hash, 'env').toString('utf8'),
      network: required(hash, 'network').toString('utf8'),
      deadline: integer(hash['deadline'], 'deadline'),
      // BullMQ keeps the attempts and the retry time; the copy starts the task afresh.
      attempt: 0,
      state,
      ...(hash['recipients'] === undefined
        ? {}
        : { recipients: strings(hash['recipients'], 'recipients') }),
      ...(hash['payload'] === undefined ? {} : { payload: toBytes(hash['payload']) }),
    });
  }

  const uploads: SnapshotUpload[] = [];
  const members = await client.zrange(`${base}uploads`, '0', '-1', 'WITHSCORES');
  for (let j = 0; j + 1 < members.length; j += 2) {
    const member = members[j]!;
    const at = integer(members[j + 1], 'upload time');
    const bar = member.indexOf('|');
    if (bar < 0) {
      uploads.push({ chunkId: member, owner: '', size: 0, at, referenced: false });
      continue;
    }
    const chunkId = member.slice(0, bar);
    const owner = member.slice(bar + 1);
    const value = await client.hget(`${base}own:${chunkId}`, owner);
    if (value === null) continue;
    const referenced = value.startsWith('r');
    uploads.push({
      chunkId,
      owner,
      size: integer(referenced ? value.slice(1) : value, 'upload size'),
      at,
      referenced,
    });
  }

  uploads.sort((a, b) =>
    a.chunkId === b.chunkId ? compare(a.owner, b.owner) : compare(a.chunkId, b.chunkId),
  );

  const claims: { key: string; expiresAt: number }[] = [];
  for (const key of await scanKeys(client, `${prefix}claim:*`)) {
    const value = await client.get(key);
    if (value !== null)
      claims.push({ key: key.slice(`${base}claim:`.length), expiresAt: integer(value, 'claim') });
  }

  return { epoch, mailboxSeqs, envelopes, items, tasks, uploads, claims };
}

/** True when the namespace holds nothing but its epoch and BullMQ's queue keys. */
/** Keys a store writes when it opens (layout version, epoch): present in an empty store too. */
const STORE_META_KEYS = new Set(['epoch', 'schema']);

export async function isRedisEmpty(client: Redis, base: string): Promise<boolean> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(
      cursor,
      'MATCH',
      `${globEscape(base)}*`,
      'COUNT',
      SCAN_COUNT,
    );
    cursor = next;
    if (
      keys.some(
        (key) => !STORE_META_KEYS.has(key.slice(base.length)) && !key.startsWith(`${base}bull:`),
      )
    )
      return false;
  } while (cursor !== '0');
  return true;
}

export async function importRedis(
  client: Redis,
  base: string,
  snapshot: BackendSnapshot,
  now: number,
): Promise<void> {
  if (!(await isRedisEmpty(client, base))) throw new BackendError('BACKEND_NOT_EMPTY');
  const writes: ((pipeline: ChainableCommander) => void)[] = [];
  const envelopeIds = new Set(snapshot.envelopes.map((envelope) => envelope.id));

  for (const { address, lastSeq } of snapshot.mailboxSeqs)
    writes.push((p) => p.set(`${base}seq:${address}`, String(lastSeq)));

  for (const envelope of snapshot.envelopes) {
    const key = `${base}env:${envelope.id}`;
    const fields: (string | Buffer)[] = [
      'hash',
      envelope.hash,
      'bytes',
      Buffer.from(envelope.bytes),
      'sender',
      envelope.sender,
      'recipients',
      JSON.stringify(envelope.recipients),
      'chunkIds',
      JSON.stringify(envelope.chunkIds),
      'expiresAt',
      String(envelope.expiresAt),
      'acceptedAt',
      String(envelope.acceptedAt),
      'retainUntil',
      String(envelope.retainUntil),
      'acceptance',
      Buffer.from(envelope.acceptance),
    ];
    if (envelope.uploader !== undefined)
      fields.push('uploader', envelope.uploader, 'heldBytes', String(envelope.heldBytes));
    if (envelope.doneAt !== undefined) fields.push('doneAt', String(envelope.doneAt));
    if (envelope.releasedAt !== undefined) fields.push('releasedAt', String(envelope.releasedAt));
    writes.push((p) => {
      p.hset(key, ...fields);
      p.sadd(`${base}envs`, envelope.id);
      p.sadd(`${base}parties:${envelope.id}`, envelope.sender, ...envelope.recipients);
      if (envelope.releasedAt === undefined)
        for (const chunkId of envelope.chunkIds) p.sadd(`${base}chunk:${chunkId}`, envelope.id);
      if (envelope.releasedAt !== undefined)
        p.zadd(`${base}released`, envelope.retainUntil, envelope.id);
      else if (envelope.doneAt !== undefined) p.zadd(`${base}done`, envelope.doneAt, envelope.id);
      if (envelope.uploader !== undefined && envelope.doneAt === undefined)
        p.hincrby(`${base}usage`, `r:${envelope.uploader}`, envelope.heldBytes);
    });
  }

  for (const item of snapshot.items) {
    const itemKey = `${base}item:${item.address}:${item.seq}`;
    const member = `${item.seq}:${item.address}`;
    if (item.state === 'acked') {
      // A tombstone keeps its dedup key while its envelope record lives (and is forgotten with it).
      if (item.kind !== 'evidence' || !envelopeIds.has(item.envelopeId)) continue;
      writes.push((p) => {
        p.hset(`${base}dedup:${item.address}`, item.dedupKey, String(item.seq));
        p.rpush(`${base}tombdedup:${item.envelopeId}`, item.address, item.dedupKey);
      });
      continue;
    }
    writes.push((p) => {
      if (item.kind === 'evidence') {
        p.hset(
          itemKey,
          'kind',
          'evidence',
          'env',
          item.envelopeId,
          'key',
          item.dedupKey,
          'payload',
          Buffer.from(item.payload ?? new Uint8Array(0)),
        );
        p.hset(`${base}dedup:${item.address}`, item.dedupKey, String(item.seq));
      } else {
        p.hset(itemKey, 'kind', 'envelope', 'env', item.envelopeId);
        if (item.deliverBy !== undefined) p.hset(itemKey, 'deliverBy', String(item.deliverBy));
        p.sadd(`${base}open:${item.envelopeId}`, `d:${item.address}`);
        const dueAt = item.dueAt ?? item.deliverBy;
        if (dueAt !== undefined) p.zadd(`${base}due`, dueAt, member);
      }
      if (item.attempt > 0) p.hset(itemKey, 'attempt', String(item.attempt));
      if (item.state === 'expiring') p.hset(itemKey, 'state', 'expiring');
      else {
        p.zadd(`${base}mb:${item.address}`, item.seq, String(item.seq));
        p.incr(`${base}mbcount`);
      }
    });
  }

  for (const task of snapshot.tasks) {
    const taskKey = `${base}task:${task.id}`;
    if (task.state !== 'pending' && !envelopeIds.has(task.envelopeId)) continue;
    writes.push((p) => {
      p.hset(
        taskKey,
        'kind',
        task.kind,
        'env',
        task.envelopeId,
        'network',
        task.network,
        'deadline',
        String(task.deadline),
        'state',
        task.state,
      );
      if (task.recipients !== undefined)
        p.hset(taskKey, 'recipients', JSON.stringify(task.recipients));
      if (task.state === 'pending') {
        if (task.payload !== undefined) p.hset(taskKey, 'payload', Buffer.from(task.payload));
        p.incr(`${base}forwarding`);
        // The first relay start adds its BullMQ job (recoverJobs).
        p.sadd(`${base}unqueued`, `f:${task.id}`);
        if (task.kind === 'envelope') p.sadd(`${base}open:${task.envelopeId}`, `f:${task.id}`);
      } else {
        p.rpush(`${base}tombtask:${task.envelopeId}`, task.id);
      }
    });
  }

  for (const upload of snapshot.uploads) {
    writes.push((p) => {
      if (upload.owner === '') {
        p.zadd(`${base}uploads`, upload.at, upload.chunkId);
        return;
      }
      p.hset(
        `${base}own:${upload.chunkId}`,
        upload.owner,
        upload.referenced ? `r${upload.size}` : String(upload.size),
      );
      p.zadd(`${base}uploads`, upload.at, `${upload.chunkId}|${upload.owner}`);
      p.hincrby(`${base}usage`, `p:${upload.owner}`, upload.referenced ? 0 : upload.size);
    });
  }

  for (const claim of snapshot.claims) {
    const ttl = claim.expiresAt - now;
    if (ttl > 0)
      writes.push((p) => p.set(`${base}claim:${claim.key}`, String(claim.expiresAt), 'PX', ttl));
  }

  // The epoch last: a partial import is still recognisable (keys without the source's epoch).
  writes.push((p) => p.set(`${base}epoch`, snapshot.epoch));

  for (let start = 0; start < writes.length; start += WRITE_BATCH) {
    const pipeline = client.multi();
    for (const write of writes.slice(start, start + WRITE_BATCH)) write(pipeline);
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error !== null);
    if (results === null || failed !== undefined)
      throw new Error('redis backend: import write failed');
  }
}
