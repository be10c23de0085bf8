import { networkOf, type Introduction, type TrustStore } from '@rogatory/protocol';

/** Why the node trusts an entry: a trusted manifest edition, or a verified introduction. */
export type VouchedBy =
  | { readonly kind: 'manifest'; readonly network: string; readonly edition: number }
  | {
      readonly kind: 'introduction';
      /** The point of contact that issued it. */
      readonly issuer: string;
      readonly network: string;
      readonly validUntil: number;
    };

/** One authority or point of contact this node can find (metadata from signed statements only). */
export interface DirectoryEntry {
  readonly address: string;
  readonly role: 'authority' | 'poc';
  /** As the manifest lists it; null for an authority known only through an introduction. */
  readonly name: string | null;
  readonly country: string | null;
  readonly network: string;
  /** Request types it handles (a manifest's `competences`, or what introductions vouch for); empty for a PoC. */
  readonly competences: readonly string[];
  readonly languages: readonly string[];
  readonly vouchedBy: readonly VouchedBy[];
}

export interface DirectoryFilter {
  /** ISO 3166-1 alpha-2, case-insensitive. */
  readonly country?: string;
  readonly network?: string;
  /** A request type the entry must list among its competences. */
  readonly type?: string;
  /** A language (BCP 47); matches an entry language with the same primary subtag. */
  readonly language?: string;
  /** Case-insensitive substring of the name or the address. */
  readonly text?: string;
}

/**
 * Where the directory reads introductions from. The seam the node wires:
 * the node's stored introductions (store/introduction-table.ts,
 * `listIntroductions()`) once they exist; until then the trust store's
 * verified introductions (`trustStoreIntroductions`).
 */
export interface IntroductionSource {
  listIntroductions(): readonly Introduction[];
}

/** Introductions the trust store verified in this process (`TrustStore.addIntroduction`). */
export function trustStoreIntroductions(trust: TrustStore): IntroductionSource {
  return { listIntroductions: () => trust.introductions() };
}

/** The shape of an entry as `vouchedBy` prints it: `manifest wacap edition 3`, `introduced by poc@casc (casc), valid until …`. */
export function describeVouch(v: VouchedBy, formatTime: (ms: number) => string): string {
  return v.kind === 'manifest'
    ? `manifest ${v.network} edition ${v.edition}`
    : `introduced by ${v.issuer} (${v.network}), valid until ${formatTime(v.validUntil)}`;
}

/** Whether two language tags share their primary subtag (`fr` and `fr-BE` do). */
export function sameLanguage(a: string, b: string): boolean {
  return a.split('-')[0]!.toLowerCase() === b.split('-')[0]!.toLowerCase();
}

/**
 * Every authority and point of contact of every trusted manifest, plus the
 * authorities named by introductions valid at `now` and meant for this node
 * (audience: its address or its network), filtered and sorted by country,
 * name, address.
 */
export function buildDirectory(options: {
  trust: TrustStore;
  /** The node's own address: introductions for another audience are not shown. */
  self: string;
  now: number;
  introductions: IntroductionSource;
  filter?: DirectoryFilter;
}): DirectoryEntry[] {
  const { trust, self, now } = options;
  const entries = new Map<string, Mutable>();
  for (const network of trust.networks()) {
    const body = trust.manifest(network)!.body;
    const vouch: VouchedBy = { kind: 'manifest', network, edition: body.version };
    for (const p of body.pocs)
      entries.set(p.address, {
        address: p.address,
        role: 'poc',
        name: p.name,
        country: p.country,
        network,
        competences: [],
        languages: [],
        vouchedBy: [vouch],
      });
    for (const a of body.authorities)
      entries.set(a.address, {
        address: a.address,
        role: 'authority',
        name: a.name,
        country: a.country,
        network,
        competences: [...a.competences],
        languages: [...a.languages],
        vouchedBy: [vouch],
      });
  }
  const audiences = new Set([self, networkOf(self)]);
  for (const intro of options.introductions.listIntroductions()) {
    const b = intro.body;
    if (!audiences.has(b.audience) || now < b.issuedAt || now >= b.validUntil) continue;
    const vouch: VouchedBy = {
      kind: 'introduction',
      issuer: b.issuer,
      network: networkOf(b.issuer),
      validUntil: b.validUntil,
    };
    const known = entries.get(b.subject);
    if (known) {
      known.vouchedBy.push(vouch);
      if (known.role === 'authority')
        for (const c of b.competences)
          if (!known.competences.includes(c)) known.competences.push(c);
    } else {
      entries.set(b.subject, {
        address: b.subject,
        role: 'authority',
        name: null,
        country: null,
        network: networkOf(b.subject),
        competences: [...b.competences],
        languages: [],
        vouchedBy: [vouch],
      });
    }
  }
  const f = options.filter ?? {};
  const text = f.text?.toLowerCase();
  return [...entries.values()]
    .filter(
      (e) =>
        (f.country === undefined || e.country?.toUpperCase() === f.country.toUpperCase()) &&
        (f.network === undefined || e.network === f.network) &&
        (f.type === undefined || e.competences.includes(f.type)) &&
        (f.language === undefined || e.languages.some((l) => sameLanguage(l, f.language!))) &&
        (text === undefined ||
          e.address.toLowerCase().includes(text) ||
          (e.name?.toLowerCase().includes(text) ?? false)),
    )
    .sort(
      (a, b) =>
        (a.country ?? '~').localeCompare(b.country ?? '~') ||
        (a.name ?? '~').localeCompare(b.name ?? '~') ||
        a.address.localeCompare(b.address),
    );
}

type Mutable = {
  -readonly [K in keyof DirectoryEntry]: DirectoryEntry[K] extends readonly (infer T)[]
    ? T[]
    : DirectoryEntry[K];
};
