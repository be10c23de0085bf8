import { join } from 'node:path';
import { KDF_LIMITS, primitives, setPrimitives, wasmPrimitives } from '@rogatory/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorityNode, initNode } from '../src/index.js';
import { PASSPHRASE, offlineWorld, tempDir } from './support/fixtures.js';

// Which libsodium build signs and verifies is chosen once by a process's entry
// point (the relay CLI, benchmarks), never as a side effect of a library call.
describe('creating and opening a node', () => {
  let tmp: { path: string; remove: () => Promise<void> };

  beforeAll(async () => {
    tmp = await tempDir();
    setPrimitives(wasmPrimitives);
  });
  afterAll(async () => {
    await tmp.remove();
  });

  it('leaves the process-wide crypto primitives as they were', async () => {
    const world = await offlineWorld();
    const net = world.networks['wacap']!;
    const dir = join(tmp.path, 'node');
    expect(primitives().name).toBe('libsodium-wasm');
    await initNode({
      dir,
      address: 'gh-ago@wacap',
      relayUrl: 'http://127.0.0.1:9',
      relayId: 'relay@wacap',
      passphrase: PASSPHRASE,
      pinnedRoot: net.rootRef,
      manifests: [net.manifest],
      kdf: KDF_LIMITS.interactive,
    });
    expect(primitives().name).toBe('libsodium-wasm');
    const node = await AuthorityNode.open({ dir, passphrase: PASSPHRASE });
    try {
      expect(primitives().name).toBe('libsodium-wasm');
    } finally {
      await node.close();
    }
  });
});
