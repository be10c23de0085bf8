/**
 * A node's mailbox over WSS, as a child process of tls.test.ts: the relay's
 * private CA comes only from NODE_EXTRA_CA_CERTS (no CA in the code), as
 * docs/operations.md tells operators. Prints one JSON line per event
 * (connected, disconnected, item, error) and acks every item.
 *
 * Usage: node --import tsx tls-node.ts <relay https URL> <address>
 */
import { RelayClient } from '@rogatory/client';
import { ready } from '@rogatory/protocol';
import { buildTestWorld } from '@rogatory/protocol/testing';

const [baseUrl, address] = process.argv.slice(2) as [string, string];
const out = (event: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(event)}\n`);
};

await ready();
// Test identities derive from fixed seeds: the same keys as the world the relay was given.
const world = buildTestWorld({ now: Date.now() });
const client = new RelayClient({
  baseUrl,
  address,
  identity: world.authority(address).identity,
  relayId: `relay@${address.split('@')[1]!}`,
  retry: { retries: 0, baseMs: 20, maxMs: 200 },
  timeoutMs: 10_000,
});
const subscription = client.openMailbox({
  after: 0,
  onItem: async (item) => {
    out({
      event: 'item',
      kind: item.kind,
      ...(item.kind === 'envelope' ? { id: item.envelope.body.id } : {}),
    });
    await subscription.ack([item.seq]);
  },
  onError: (err: unknown) => {
    const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
    out({
      event: 'error',
      code: e.code ?? null,
      cause: e.cause?.code ?? null,
      message: String(e.message ?? err),
    });
  },
  reconnect: { baseMs: 100, maxMs: 500, maxAttempts: 3 },
});
subscription.on('connected', () => {
  out({ event: 'connected' });
});
subscription.on('disconnected', (info) => {
  out({ event: 'disconnected', code: info.code });
});
process.on('SIGTERM', () => {
  void subscription.close().finally(() => process.exit(0));
});
