import { join } from 'node:path';
import { backoffDelay } from '@rogatory/client';
import type { TestWorld } from '@rogatory/protocol/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Actor } from '../src/index.js';
import { OUTBOX_BACKOFF } from '../src/sending/outbox.js';
import {
  makeNode,
  mlaRequest,
  offlineWorld,
  randomFile,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';

describe('outbox backoff (relay unreachable)', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n: NodeFixture;
  const now = Date.now();
  let officer: Actor;
  let approver: Actor;

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
    n = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn'), clock: () => now });
    officer = n.user('officer', 'officer', ['restricted']);
    approver = n.user('approver', 'approver', ['restricted']);
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await n.node.close();
    await tmp.remove();
  });

  it('reschedules a transient failure by the shared backoffDelay: 2 s, then doubling, jittered down by up to 30 %', async () => {
    const files = [
      await randomFile(tmp.path, 'a.pdf', 3000),
      await randomFile(tmp.path, 'b.pdf', 4000),
    ];
    const id = await n.node.compose(officer, {
      content: mlaRequest(world, SN, KZ),
      attachments: files.map((f) => ({ path: f.path })),
    });
    n.node.submitForApproval(officer, id);
    await n.node.approve(approver, id);
    vi.spyOn(Math, 'random').mockReturnValue(0.5);

    const first = await n.node.flushOutbox();
    expect(first.deferred).toBe(1);
    expect(first.sent).toEqual([]);
    expect(n.node.status().outbox).toEqual({ pending: 1, failed: 0, nextAttemptAt: now + 1700 });

    const second = await n.node.flushOutbox();
    expect(second.deferred).toBe(1);
    expect(n.node.status().outbox.nextAttemptAt).toBe(now + 3400);
    expect(3400).toBe(backoffDelay(OUTBOX_BACKOFF, 1, () => 0.5));
    expect(OUTBOX_BACKOFF).toMatchObject({ baseMs: 2_000, maxMs: 600_000, jitter: 0.3 });
  });
});
