import { sha256, utf8 } from '../bytes.js';
import {
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  keyRef,
  type EncryptionKeyPair,
  type KeyRef,
  type SigningKeyPair,
} from '../keys.js';
import type { RequestTypeName } from '../schema.js';
import {
  certifyEncryptionKey,
  signManifest,
  type AuthorityEntry,
  type Manifest,
  type PeerEntry,
} from '../statements.js';
import { TrustStore } from '../trust.js';

/**
 * A deterministic test world: networks, roots, relays, points of contact and
 * authorities with keys derived from fixed seeds. Used by test vectors, unit
 * tests of every package and the demo. Never use these keys for anything real.
 */
export interface TestAuthority {
  readonly address: string;
  readonly identity: SigningKeyPair;
  readonly encryption: EncryptionKeyPair;
  readonly identityRef: KeyRef;
  readonly encryptionRef: KeyRef;
}

export interface TestNetwork {
  readonly network: string;
  readonly root: SigningKeyPair;
  readonly rootRef: KeyRef;
  readonly relay: { readonly id: string; readonly key: SigningKeyPair; readonly url: string };
  readonly poc: {
    readonly address: string;
    readonly key: SigningKeyPair;
    readonly encryption: EncryptionKeyPair;
    readonly encryptionRef: KeyRef;
  };
  readonly authorities: Readonly<Record<string, TestAuthority>>;
  manifest: Manifest;
}

export interface TestWorld {
  readonly now: number;
  readonly networks: Readonly<Record<string, TestNetwork>>;
  authority(address: string): TestAuthority;
  /** A trust store pinned to `network`'s root holding every manifest reachable from it. */
  trustFor(network: string): TrustStore;
}

/** 32-byte seed = SHA-256("rogatory-test-seed/" + label). */
export function testSeed(label: string): Uint8Array {
  return sha256(utf8(`rogatory-test-seed/${label}`));
}

const YEAR = 365 * 24 * 3600 * 1000;

export interface NetworkSpec {
  readonly network: string;
  readonly country: string;
  readonly authorities: readonly {
    local: string;
    name: string;
    country: string;
    competences?: RequestTypeName[];
  }[];
  readonly peers: readonly { network: string; via: string | null }[];
}

export const DEFAULT_WORLD: readonly NetworkSpec[] = [
  {
    network: 'wacap',
    country: 'SN',
    authorities: [
      { local: 'sn-moj', name: 'Ministry of Justice of Senegal (test)', country: 'SN' },
      { local: 'ng-agf', name: 'Federal Ministry of Justice of Nigeria (test)', country: 'NG' },
      { local: 'gh-ago', name: 'Office of the Attorney-General of Ghana (test)', country: 'GH' },
    ],
    peers: [
      { network: 'global', via: null },
      { network: 'casc', via: 'global' },
    ],
  },
  {
    network: 'casc',
    country: 'KZ',
    authorities: [
      { local: 'kz-gpo', name: 'General Prosecutor of Kazakhstan (test)', country: 'KZ' },
      { local: 'ge-pog', name: 'Prosecution Service of Georgia (test)', country: 'GE' },
    ],
    peers: [
      { network: 'global', via: null },
      { network: 'wacap', via: 'global' },
    ],
  },
  {
    network: 'global',
    country: 'AT',
    authorities: [],
    peers: [
      { network: 'wacap', via: null },
      { network: 'casc', via: null },
    ],
  },
];

/**
 * The default world with wacap and casc federating directly (each lists the
 * other as a peer without a transit hub): envelopes between them pass two
 * relays, not three.
 */
export const DIRECT_PEERING_WORLD: readonly NetworkSpec[] = DEFAULT_WORLD.map((spec) => ({
  ...spec,
  peers: spec.peers.map((p) =>
    spec.network !== 'global' && p.network !== 'global' ? { ...p, via: null } : p,
  ),
}));

/**
 * Build the world. `relayUrl(network)` lets tests point relays at real ports.
 */
export function buildTestWorld(options: {
  now: number;
  specs?: readonly NetworkSpec[];
  relayUrl?: (network: string) => string;
}): TestWorld {
  const { now } = options;
  const specs = options.specs ?? DEFAULT_WORLD;
  const validity = { notBefore: now - YEAR, notAfter: now + 5 * YEAR };
  const networks: Record<string, TestNetwork> = {};
  for (const spec of specs) {
    const n = spec.network;
    const root = generateSigningKeyPair(testSeed(`${n}/root`));
    const relayKey = generateSigningKeyPair(testSeed(`${n}/relay`));
    const pocKey = generateSigningKeyPair(testSeed(`${n}/poc`));
    const pocEncryption = generateEncryptionKeyPair(testSeed(`${n}/poc/encryption/1`));
    const authorities: Record<string, TestAuthority> = {};
    for (const a of spec.authorities) {
      const address = `${a.local}@${n}`;
      const identity = generateSigningKeyPair(testSeed(`${address}/identity`));
      const encryption = generateEncryptionKeyPair(testSeed(`${address}/encryption/1`));
      authorities[address] = {
        address,
        identity,
        encryption,
        identityRef: keyRef(identity, validity),
        encryptionRef: keyRef(encryption, validity),
      };
    }
    networks[n] = {
      network: n,
      root,
      rootRef: keyRef(root, { notBefore: now - YEAR, notAfter: now + 10 * YEAR }),
      relay: {
        id: `relay@${n}`,
        key: relayKey,
        url: options.relayUrl?.(n) ?? `https://relay.${n}.example`,
      },
      poc: {
        address: `poc-${spec.country.toLowerCase()}@${n}`,
        key: pocKey,
        encryption: pocEncryption,
        encryptionRef: keyRef(pocEncryption, validity),
      },
      authorities,
      manifest: undefined as unknown as Manifest,
    };
  }
  for (const spec of specs) {
    const net = networks[spec.network]!;
    const authorityEntries: AuthorityEntry[] = spec.authorities.map((a) => {
      const t = net.authorities[`${a.local}@${spec.network}`]!;
      return {
        address: t.address,
        name: a.name,
        country: a.country,
        competences: a.competences ?? [
          'mla',
          'extradition',
          'transfer-of-sentenced-persons',
          'confiscation',
        ],
        languages: ['en', 'fr'],
        key: t.identityRef,
        encryptionKeys: [
          certifyEncryptionKey({
            subject: t.address,
            identity: t.identity,
            encryptionKey: t.encryption,
            ...validity,
          }),
        ],
      };
    });
    const peers: PeerEntry[] = spec.peers.map((p) => ({
      network: p.network,
      root: networks[p.network]!.rootRef,
      via: p.via,
    }));
    net.manifest = signManifest(
      {
        network: spec.network,
        issuedAt: now - 1000,
        validUntil: now + YEAR,
        root: net.rootRef,
        relays: [{ id: net.relay.id, url: net.relay.url, key: keyRef(net.relay.key, validity) }],
        pocs: [
          {
            address: net.poc.address,
            name: `Point of contact ${spec.country} (test)`,
            country: spec.country,
            key: keyRef(net.poc.key, validity),
            encryptionKeys: [
              certifyEncryptionKey({
                subject: net.poc.address,
                identity: net.poc.key,
                encryptionKey: net.poc.encryption,
                ...validity,
              }),
            ],
          },
        ],
        authorities: authorityEntries,
        peers,
        revoked: [],
      },
      net.root,
    );
  }
  return {
    now,
    networks,
    authority(address) {
      for (const net of Object.values(networks)) {
        const a = net.authorities[address];
        if (a) return a;
      }
      throw new Error(`no test authority ${address}`);
    },
    trustFor(network) {
      const trust = new TrustStore({ pinned: [{ network, root: networks[network]!.rootRef }] });
      trust.addManifest(networks[network]!.manifest);
      for (const peer of networks[network]!.manifest.body.peers)
        trust.addManifest(networks[peer.network]!.manifest);
      return trust;
    },
  };
}
