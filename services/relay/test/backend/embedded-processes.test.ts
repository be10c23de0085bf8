/**
 * The embedded backend shared by real OS processes: the guarantees that
 * in-process tests cannot show, since better-sqlite3 is synchronous and two
 * backends in one process never interleave inside a transaction.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEmbeddedBackend } from '../../src/backend/embedded.js';
import type { ForwardTaskInput, RelayBackend } from '../../src/backend/types.js';

const CHILD = fileURLToPath(new URL('./fixtures/embedded-worker.ts', import.meta.url));
const BACKOFF = { baseMs: 5, maxMs: 40, jitter: 0.5 };
/** What production uses: far beyond any stall of a loaded test machine. */
const LONG_LEASE_MS = 60_000;
/** For a process that is killed: the survivor takes its task over this soon. */
const SHORT_LEASE_MS = 300;

interface ChildMessage {
  readonly type: 'ready' | 'forward' | 'stopped' | 'error';
  readonly id?: string;
  readonly attempt?: number;
  readonly message?: string;
}

interface Child {
  readonly process: ChildProcess;
  readonly forwards: { id: string; attempt: number }[];
  readonly errors: string[];
  readonly ready: Promise<void>;
}

function startChild(file: string, mode: 'work' | 'hang', leaseMs: number): Child {
  const child = fork(CHILD, [file, mode, String(leaseMs)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const forwards: { id: string; attempt: number }[] = [];
  const errors: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => {
      reject(new Error(`child exited early (${String(code)})`));
    });
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') resolve();
      if (message.type === 'forward')
        forwards.push({ id: message.id ?? '', attempt: message.attempt ?? 0 });
      if (message.type === 'error') errors.push(message.message ?? '');
    });
  });
  return { process: child, forwards, errors, ready };
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const giveUpAt = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function gate(): { readonly promise: Promise<void>; open(): void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

function task(): ForwardTaskInput & { id: string } {
  return {
    kind: 'evidence',
    id: `evidence-${randomUUID()}`,
    envelopeId: `env-${randomUUID()}`,
    network: 'casc',
    payload: new Uint8Array(randomBytes(32)),
    deadline: Date.now() + 3_600_000,
  };
}

describe('embedded backend shared by two processes', () => {
  let dir: string;
  let file: string;
  const children: ChildProcess[] = [];
  const backends: RelayBackend[] = [];
  const errors: string[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rogatory-relay-processes-'));
    file = join(dir, 'relay.db');
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
    await Promise.all(backends.splice(0).map((backend) => backend.close()));
    await rm(dir, { recursive: true, force: true });
    errors.length = 0;
  });

  async function open(leaseMs = LONG_LEASE_MS): Promise<RelayBackend> {
    const backend = await openEmbeddedBackend({
      file,
      pollIntervalMs: 5,
      leaseMs,
      onError: (error) => errors.push(error instanceof Error ? error.message : 'non-error thrown'),
    });
    backends.push(backend);
    return backend;
  }

  it('never runs a forward task twice', async () => {
    const backend = await open();
    const ids: string[] = [];
    const here: string[] = [];
    const started: { child?: ReturnType<typeof startChild> } = {};
    // This process starts working first and holds its tasks until the child has taken one,
    // so both take part whatever the scheduler does.
    await backend.startWorkers(
      {
        forward: async (forwarded) => {
          here.push(forwarded.id);
          await waitFor(
            'the child to take a task',
            () => (started.child?.forwards.length ?? 0) > 0,
          );
          await sleep(Math.floor(Math.random() * 4) + 1);
          return { status: 'done' };
        },
        giveUp: () => Promise.resolve(),
        expired: () => Promise.resolve(),
      },
      { concurrency: 2, backoff: BACKOFF },
    );
    for (let index = 0; index < 60; index++) {
      const next = task();
      ids.push(next.id);
      await backend.enqueueForward(next);
    }
    await waitFor('this process to take a task', () => here.length > 0);
    const child = startChild(file, 'work', LONG_LEASE_MS);
    started.child = child;
    children.push(child.process);
    await child.ready;
    await waitFor('every task', async () => (await backend.stats()).forwardPending === 0);
    await backend.stopWorkers();
    child.process.send('stop');
    await once(child.process, 'exit');

    const all = [...here, ...child.forwards.map((call) => call.id)];
    expect([...all].sort()).toEqual([...ids].sort());
    expect(here.length).toBeGreaterThan(0);
    expect(child.forwards.length).toBeGreaterThan(0);
    expect([...errors, ...child.errors]).toEqual([]);
  });

  it('takes over the task of a process killed mid-forward once its lease runs out', async () => {
    const backend = await open();
    const child = startChild(file, 'hang', SHORT_LEASE_MS);
    children.push(child.process);
    await child.ready;
    const only = task();
    await backend.enqueueForward(only);
    await waitFor('the child to claim the task', () => child.forwards.length === 1);
    child.process.kill('SIGKILL');
    await once(child.process, 'exit');

    const here: { id: string; attempt: number }[] = [];
    await backend.startWorkers(
      {
        forward: (forwarded, attempt) => {
          here.push({ id: forwarded.id, attempt });
          return Promise.resolve({ status: 'done' });
        },
        giveUp: () => Promise.resolve(),
        expired: () => Promise.resolve(),
      },
      { concurrency: 1, backoff: BACKOFF },
    );
    await waitFor('the takeover', async () => (await backend.stats()).forwardPending === 0);
    await backend.stopWorkers();
    expect(child.forwards).toEqual([{ id: only.id, attempt: 1 }]);
    expect(here).toEqual([{ id: only.id, attempt: 2 }]);
    expect([...errors, ...child.errors]).toEqual([]);
  });

  it('renews the lease of a long forward, so no other process takes it over', async () => {
    // Renewed every third of the lease: a stall up to two thirds of it (here 1.3 s) is tolerated.
    const backend = await open(2_000);
    const release = gate();
    const here: string[] = [];
    await backend.startWorkers(
      {
        forward: async (forwarded) => {
          here.push(forwarded.id);
          if (here.length === 1) await release.promise;
          return { status: 'done' };
        },
        giveUp: () => Promise.resolve(),
        expired: () => Promise.resolve(),
      },
      { concurrency: 1, backoff: BACKOFF },
    );
    const long = task();
    await backend.enqueueForward(long);
    await waitFor('this process to claim the task', () => here.length === 1);
    const child = startChild(file, 'work', LONG_LEASE_MS);
    children.push(child.process);
    try {
      await child.ready;
      // The child polls all along; a lapsed lease would hand it the task within this window.
      const sentinel = task();
      await backend.enqueueForward(sentinel);
      await waitFor('the child to work', () => child.forwards.length > 0);
      await sleep(5_000);
    } finally {
      release.open();
    }
    await waitFor('the long forward', async () => (await backend.stats()).forwardPending === 0);
    await backend.stopWorkers();
    expect(child.forwards.map((call) => call.id)).not.toContain(long.id);
    expect(here.filter((id) => id === long.id)).toHaveLength(1);
    expect([...errors, ...child.errors]).toEqual([]);
  });
});
