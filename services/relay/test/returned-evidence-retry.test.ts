/**
 * The evidences a peer relay returns when it accepts a forwarded envelope
 * (its RelayAcceptance) are owed to the sender. If this relay cannot store
 * one (its backend fails for a moment: a Redis failover), the forward is
 * retried rather than marked done, so the acceptance still reaches the
 * sender, once. A returned evidence that does not verify is dropped.
 */
import { ready } from '@rogatory/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRelays, type TestNetworkOfRelays } from '../src/testing/harness.js';
import { nodeClient, sealAndUpload, waitFor } from '../src/testing/relay-helpers.js';

let net: TestNetworkOfRelays;

beforeAll(async () => {
  await ready();
  net = await startTestRelays({
    backend: { kind: 'embedded' },
    networks: ['wacap', 'global', 'casc'],
  });
});

afterAll(async () => {
  await net.stop();
});

describe('evidences returned by a peer relay', () => {
  it('a backend failure while storing the peer acceptance retries the forward: the sender gets it, once', async () => {
    const wacap = net.relays['wacap']!;
    const backend = wacap.backend;
    const original = backend.pushEvidence.bind(backend);
    let refused = 0;
    let envelopeId = '';
    backend.pushEvidence = async (address, id, key, bytes) => {
      // The first store of relay@global's acceptance for this envelope fails as a lost Redis would.
      if (id === envelopeId && key.includes('relay-acceptance|relay@global') && refused === 0) {
        refused += 1;
        throw new Error('Connection is closed.');
      }
      return original(address, id, key, bytes);
    };
    try {
      const sn = nodeClient(net.world, wacap.url, 'sn-moj@wacap');
      await sn.login();
      const sealed = await sealAndUpload(net.world, sn, {
        from: 'sn-moj@wacap',
        to: ['kz-gpo@casc'],
      });
      envelopeId = sealed.envelope.body.id;
      await sn.submit(sealed.envelope);

      const acceptances = await waitFor('both relay acceptances at the sender', async () => {
        const items = await sn.readMailbox(0, 1000);
        const issuers = items.flatMap((i) =>
          i.kind === 'evidence' &&
          i.evidence.body.envelopeId === envelopeId &&
          i.evidence.body.kind === 'relay-acceptance'
            ? [i.evidence.body.issuer]
            : [],
        );
        return issuers.includes('relay@global') && issuers.includes('relay@casc')
          ? issuers
          : undefined;
      });
      expect(refused).toBe(1);
      expect(acceptances.filter((issuer) => issuer === 'relay@global')).toHaveLength(1);
    } finally {
      backend.pushEvidence = original;
    }
  });
});
