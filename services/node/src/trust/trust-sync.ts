import { join } from 'node:path';
import { fetchTrustPublications, type Dispatcher } from '@rogatory/client';
import {
  checkCheckpointsConsistent,
  checkPublicationQuorum,
  fromBase64,
  isProtocolError,
  logOrigin,
  manifestHash,
  publicationWitnesses,
  toBase64,
  verifyPublication,
  type LogState,
  type Manifest,
  type VerifiedPublication,
} from '@rogatory/protocol';
import { DEFAULT_TRUST_POLL_SECONDS, DEFAULT_TRUST_QUORUM } from '../administration/config.js';
import { audit, type NodeContext } from '../context.js';
import { codeOf } from '../errors.js';
import { writeFileAtomic } from '../files/atomic-write.js';
import {
  TrustTable,
  type StoredPublication,
  type TrustAlarm,
  type TrustFetchRow,
} from '../store/trust-table.js';
import { applyStatements, lastEdition } from './apply.js';
import { rebuildTrust } from './trust-state.js';

/** Pages of 100 publications fetched at most per source and poll (a bound, not a limit of the protocol). */
const MAX_PAGES = 50;
const PAGE = 100;

/** What one poll did for one network. Codes only, never content. */
export interface NetworkSyncOutcome {
  readonly network: string;
  /**
   * `applied`: new publications verified, stored and applied; `unchanged`:
   * nothing new; `refused`: a publication was refused (`code`), what the
   * node held stays in force; `unreachable`: the relay could not be asked
   * (`code`); `fork`: LOG_FORK_DETECTED, nothing more of the network is
   * applied until an operator clears the alarm; `skipped`: no trusted root.
   */
  readonly outcome: 'applied' | 'unchanged' | 'refused' | 'unreachable' | 'fork' | 'skipped';
  readonly code?: string;
  /** Log size and highest logged edition held after the poll. */
  readonly size: number;
  readonly edition: number | null;
  /** The second source's outcome: `consistent`, `inconclusive`, `none` (no other relay), or a code. */
  readonly secondSource: string;
}

export interface TrustSyncReport {
  readonly networks: readonly NetworkSyncOutcome[];
}

export interface TrustNetworkStatus {
  readonly network: string;
  /** The manifest version in force (trust folder or log). */
  readonly edition: number | null;
  /** The highest edition accepted from the log. */
  readonly logEdition: number | null;
  readonly logSize: number;
  readonly rootHash: string | null;
  readonly cosigners: readonly string[];
  readonly lastFetch: {
    readonly relay: TrustFetchRow | null;
    readonly second: TrustFetchRow | null;
  };
  readonly alarms: readonly TrustAlarm[];
}

export interface TrustStatus {
  readonly quorum: number;
  readonly pollSeconds: number;
  readonly networks: readonly TrustNetworkStatus[];
  /** Fork alarms not cleared. */
  readonly openAlarms: number;
  /** Every fork alarm raised (the metric `rogatory_node_trust_forks_total`). */
  readonly forksTotal: number;
}

/** One publication of a chain, reduced to what comparing two sources needs. */
interface ChainLink {
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly note: string;
  readonly previousSize: number;
  readonly consistency: readonly Uint8Array[];
}

interface Fetched {
  readonly verified: VerifiedPublication[];
  readonly raw: unknown[];
  /** The code of the first publication refused, and that publication. */
  readonly refused?: { readonly code: string; readonly publication: unknown };
}

class SyncRefusal extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

/**
 * The node's trust synchronisation (design D4). For each trusted network
 * (own and anchored peers) it pulls the log's publications from the node's
 * relay, verifies them against what it holds, requires the witness quorum
 * on the newest checkpoint, checks them against a second source (a relay
 * of that network), and applies them to the live trust store in entry
 * order after storing them in one transaction. A refused publication
 * leaves everything as it was.
 */
export class TrustSync {
  readonly table: TrustTable;
  private readonly ctx: NodeContext;
  private readonly base = new Map<string, Manifest>();
  /** Log size applied to the live trust store, per network (another process may have stored more). */
  private readonly applied = new Map<string, number>();
  private readonly dispatcher: Dispatcher | undefined;
  private readonly timeoutMs: number | undefined;
  private running: Promise<TrustSyncReport> | undefined;

  constructor(
    ctx: NodeContext,
    options: {
      base: readonly Manifest[];
      dispatcher?: Dispatcher | undefined;
      timeoutMs?: number | undefined;
    },
  ) {
    this.ctx = ctx;
    this.table = new TrustTable(ctx.db);
    for (const m of options.base) this.base.set(m.body.network, m);
    for (const row of this.table.networks()) this.applied.set(row.network, row.size);
    this.dispatcher = options.dispatcher;
    this.timeoutMs = options.timeoutMs;
  }

  get quorum(): number {
    return this.ctx.config.trust?.quorum ?? DEFAULT_TRUST_QUORUM;
  }

  get pollSeconds(): number {
    return this.ctx.config.trust?.pollSeconds ?? DEFAULT_TRUST_POLL_SECONDS;
  }

  /** The networks whose logs the node follows: its own and the peers its manifest anchors. */
  trustedNetworks(): string[] {
    const own = this.ctx.config.network;
    const peers = this.ctx.trust.manifest(own)?.body.peers.map((p) => p.network) ?? [];
    return [own, ...peers].filter(
      (n, i, all) => all.indexOf(n) === i && this.ctx.trust.rootOf(n) !== undefined,
    );
  }

  /** Poll every trusted network once (a poll already running is joined, not doubled). */
  syncOnce(): Promise<TrustSyncReport> {
    this.running ??= this.pollAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Wait for a poll in progress (if any) to finish. */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /**
   * Apply what another process of this node (the CLI beside `serve`) stored
   * since this one last looked: the live store then refuses what the new
   * editions revoked without waiting for the next poll.
   */
  catchUp(): void {
    for (const row of this.table.networks()) {
      const held = this.applied.get(row.network) ?? 0;
      if (row.size <= held) continue;
      const chain = this.table.publications(row.network);
      const newer = chain.filter((p) => p.size > held);
      const root = this.ctx.trust.rootOf(row.network);
      if (!root) continue;
      const start = chain.filter((p) => p.size <= held).at(-1);
      let state: LogState | null = start
        ? { size: start.size, rootHash: fromBase64(start.rootHash, 'root hash') }
        : null;
      for (const p of newer) {
        const v = verifyPublication({ publication: p.publication, root, held: state });
        applyStatements(this.ctx.trust, row.network, v.statements, { history: true });
        this.noteEdition(row.network, v);
        state = { size: v.size, rootHash: v.rootHash };
      }
      this.applied.set(row.network, row.size);
    }
  }

  /** Per network: editions, log size, cosigners, last fetches, alarms. */
  status(): TrustStatus {
    const networks = this.trustedNetworks().map((network): TrustNetworkStatus => {
      const row = this.table.network(network);
      const fetches = this.table.fetches(network);
      return {
        network,
        edition: this.ctx.trust.manifest(network)?.body.version ?? null,
        logEdition: row?.edition ?? null,
        logSize: row?.size ?? 0,
        rootHash: row?.rootHash ?? null,
        cosigners: row?.cosigners ?? [],
        lastFetch: {
          relay: fetches.find((f) => f.source === 'relay') ?? null,
          second: fetches.find((f) => f.source === 'second') ?? null,
        },
        alarms: this.table.openAlarms(network),
      };
    });
    return {
      quorum: this.quorum,
      pollSeconds: this.pollSeconds,
      networks,
      openAlarms: this.table.openAlarms().length,
      forksTotal: this.table.alarmCount(),
    };
  }

  /** An operator clears the fork alarms of a network (after investigating): its log is followed again. */
  clearAlarms(network: string, by: string): number {
    return this.ctx.db.transaction(() => {
      const n = this.table.clearAlarms(network, this.ctx.clock(), by);
      if (n > 0) audit(this.ctx, by, 'trust.fork-cleared', network, String(n));
      return n;
    });
  }

  private async pollAll(): Promise<TrustSyncReport> {
    this.catchUp();
    const networks: NetworkSyncOutcome[] = [];
    for (const network of this.trustedNetworks()) networks.push(await this.syncNetwork(network));
    return { networks };
  }

  private outcome(
    network: string,
    outcome: NetworkSyncOutcome['outcome'],
    secondSource: string,
    code?: string,
  ): NetworkSyncOutcome {
    const row = this.table.network(network);
    return {
      network,
      outcome,
      ...(code === undefined ? {} : { code }),
      size: row?.size ?? 0,
      edition: row?.edition ?? null,
      secondSource,
    };
  }

  private async syncNetwork(network: string): Promise<NetworkSyncOutcome> {
    const { ctx } = this;
    if (this.table.openAlarms(network).length > 0)
      return this.outcome(network, 'fork', 'not asked', 'LOG_FORK_DETECTED');
    const root = ctx.trust.rootOf(network);
    if (!root) return this.outcome(network, 'skipped', 'not asked');
    const row = this.table.network(network);
    const held: LogState | null = row
      ? { size: row.size, rootHash: fromBase64(row.rootHash, 'root hash') }
      : null;
    const relayUrl = ctx.config.relay.url;

    let fetched: Fetched;
    try {
      fetched = await this.fetchChain(relayUrl, network, held);
    } catch (err) {
      const code = codeOf(err);
      this.recordFetch(network, 'relay', relayUrl, code);
      return this.outcome(network, 'unreachable', 'not asked', code);
    }

    let refusal = fetched.refused?.code;
    if (fetched.refused?.code === 'LOG_FORK_DETECTED' && row) {
      // The root signed two trees of one size: both notes are the proof.
      this.raiseAlarm(
        network,
        `relay ${relayUrl}`,
        row.checkpoint,
        `relay ${relayUrl}`,
        noteOf(fetched.refused.publication),
      );
      return this.outcome(network, 'fork', 'not asked', 'LOG_FORK_DETECTED');
    }

    let verified = fetched.verified;
    let raw = fetched.raw;
    let cosigners: string[] = [];
    if (verified.length > 0) {
      try {
        cosigners = this.checkQuorum(network, verified.at(-1)!.note);
        this.dryRun(network, verified);
      } catch (err) {
        refusal = err instanceof SyncRefusal ? err.code : codeOf(err);
        verified = [];
        raw = [];
      }
    }

    const stored = this.table.publications(network);
    const chain: ChainLink[] = [
      ...stored.map((p) => linkOf(p.publication, p.size, fromBase64(p.rootHash, 'root hash'))),
      ...verified.map((v, i) => linkOf(raw[i], v.size, v.rootHash)),
    ];
    const second = await this.checkSecondSource(network, chain);
    if (second === 'fork')
      return this.outcome(network, 'fork', 'LOG_FORK_DETECTED', 'LOG_FORK_DETECTED');

    if (verified.length > 0) this.commit(network, verified, raw, cosigners);
    if (refusal !== undefined) {
      this.refuse(network, relayUrl, refusal);
      return this.outcome(network, 'refused', second, refusal);
    }
    this.recordFetch(network, 'relay', relayUrl, verified.length > 0 ? 'ok' : 'unchanged');
    return this.outcome(network, verified.length > 0 ? 'applied' : 'unchanged', second);
  }

  /** Every publication after `held` from one relay, verified in order up to the first refused one. */
  private async fetchChain(url: string, network: string, held: LogState | null): Promise<Fetched> {
    const root = this.ctx.trust.rootOf(network)!;
    const verified: VerifiedPublication[] = [];
    const raw: unknown[] = [];
    let state = held;
    for (let page = 0; page < MAX_PAGES; page++) {
      const list = await fetchTrustPublications({
        baseUrl: url,
        network,
        after: state?.size ?? 0,
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
        ...(this.timeoutMs === undefined ? {} : { timeoutMs: this.timeoutMs }),
      });
      for (const publication of list) {
        try {
          const v = verifyPublication({ publication, root, held: state });
          if (v.network !== network) throw new SyncRefusal('SCHEMA_INVALID');
          verified.push(v);
          raw.push(publication);
          state = { size: v.size, rootHash: v.rootHash };
        } catch (err) {
          const code = err instanceof SyncRefusal ? err.code : codeOf(err);
          if (!(err instanceof SyncRefusal) && !isProtocolError(err)) throw err;
          return { verified, raw, refused: { code, publication } };
        }
      }
      if (list.length < PAGE) break;
    }
    return { verified, raw };
  }

  /** The witness quorum on the newest checkpoint: the names of the witnesses that counted. */
  private checkQuorum(network: string, note: string): string[] {
    const root = this.ctx.trust.rootOf(network)!;
    const cosigned = checkPublicationQuorum({
      note,
      network,
      root,
      witnesses: publicationWitnesses(this.ctx.trust, network),
      quorum: this.quorum,
    });
    return cosigned.cosigners.map((c) => c.name);
  }

  /** Apply to a copy of the trust store first: a refusal must leave the live one untouched. */
  private dryRun(network: string, verified: readonly VerifiedPublication[]): void {
    const chains = new Map<string, StoredPublication[]>();
    for (const row of this.table.networks())
      chains.set(row.network, this.table.publications(row.network));
    const scratch = rebuildTrust(
      { network: this.ctx.config.network, root: this.ctx.config.pinnedRoot },
      [...this.base.values()],
      chains,
    );
    applyStatements(
      scratch,
      network,
      verified.flatMap((v) => v.statements),
      { now: this.ctx.clock() },
    );
  }

  private commit(
    network: string,
    verified: readonly VerifiedPublication[],
    raw: readonly unknown[],
    cosigners: readonly string[],
  ): void {
    const { ctx } = this;
    const now = ctx.clock();
    const prior = this.table.network(network);
    const newest = verified.at(-1)!;
    let edition = prior?.edition ?? null;
    for (const v of verified) edition = lastEdition(v.statements) ?? edition;
    ctx.db.transaction(() => {
      verified.forEach((v, i) => {
        this.table.insertPublication({
          network,
          size: v.size,
          rootHash: toBase64(v.rootHash),
          edition: lastEdition(v.statements),
          publication: raw[i],
          storedAt: now,
        });
      });
      const manifest = verified
        .flatMap((v) => v.statements)
        .filter((s) => s.kind === 'manifest')
        .at(-1);
      this.table.setNetwork({
        network,
        size: newest.size,
        rootHash: toBase64(newest.rootHash),
        checkpoint: newest.note,
        edition,
        editionHash:
          manifest === undefined
            ? (prior?.editionHash ?? null)
            : manifestHash(manifest.statement as Manifest),
        cosigners,
        updatedAt: now,
      });
      this.table.setFetch({
        network,
        source: 'relay',
        at: now,
        url: ctx.config.relay.url,
        outcome: 'ok',
      });
      audit(
        ctx,
        'system',
        'trust.edition-applied',
        network,
        `v${edition ?? '-'} size ${newest.size}`,
      );
    });
    for (const v of verified) {
      applyStatements(ctx.trust, network, v.statements, { history: true });
      this.noteEdition(network, v);
    }
    this.applied.set(network, newest.size);
  }

  /** Keep the newest edition as the base of later rebuilds, and in the trust folder for tools that read it. */
  private noteEdition(network: string, v: VerifiedPublication): void {
    if (!v.statements.some((s) => s.kind === 'manifest')) return;
    const manifest = this.ctx.trust.manifest(network);
    if (!manifest) return;
    this.base.set(network, manifest);
    void writeFileAtomic(
      join(this.ctx.dir, this.ctx.config.paths.trust, `${network}.json`),
      `${JSON.stringify(manifest, null, 2)}\n`,
      { mode: 0o644 },
    ).catch(() => undefined);
  }

  private refuse(network: string, url: string, code: string): void {
    const last = this.table.fetches(network).find((f) => f.source === 'relay');
    this.ctx.db.transaction(() => {
      // One audit entry per refusal, not one per poll while the relay keeps serving it.
      if (last?.outcome !== code)
        audit(this.ctx, 'system', 'trust.publication-refused', network, code);
      this.table.setFetch({ network, source: 'relay', at: this.ctx.clock(), url, outcome: code });
    });
  }

  private recordFetch(
    network: string,
    source: 'relay' | 'second',
    url: string,
    outcome: string,
  ): void {
    this.table.setFetch({ network, source, at: this.ctx.clock(), url, outcome });
  }

  private raiseAlarm(
    network: string,
    sourceA: string,
    noteA: string,
    sourceB: string,
    noteB: string,
  ): void {
    this.ctx.db.transaction(() => {
      this.table.raiseAlarm({
        network,
        code: 'LOG_FORK_DETECTED',
        raisedAt: this.ctx.clock(),
        sourceA,
        noteA,
        sourceB,
        noteB,
      });
      audit(this.ctx, 'system', 'trust.fork-detected', network, 'LOG_FORK_DETECTED');
    });
  }

  /** The second source: one of the network's own relays, other than the node's. */
  private secondUrl(network: string): string | undefined {
    const own = normaliseUrl(this.ctx.config.relay.url);
    return this.ctx.trust
      .relays(network)
      .map((r) => r.url)
      .find((u) => /^https?:\/\//.test(u) && normaliseUrl(u) !== own);
  }

  /**
   * Fetch the network's chain from the second source, verify it from the
   * empty log, and compare its newest checkpoint with the newest the node
   * holds or is about to accept (§18.7): equal sizes must have equal roots;
   * otherwise the smaller must be consistent with the larger chain, through
   * the consistency proof of the publication that continues from it. A
   * fork raises the alarm; an unreachable or invalid second source is only
   * recorded.
   */
  private async checkSecondSource(network: string, primary: readonly ChainLink[]): Promise<string> {
    const url = this.secondUrl(network);
    if (url === undefined) return 'none';
    // Nothing held or offered yet: nothing to compare.
    if (primary.length === 0) return 'inconclusive';
    let fetched: Fetched;
    try {
      fetched = await this.fetchChain(url, network, null);
    } catch (err) {
      const code = codeOf(err);
      this.recordFetch(network, 'second', url, code);
      return code;
    }
    if (fetched.refused) {
      this.recordFetch(network, 'second', url, fetched.refused.code);
      return fetched.refused.code;
    }
    const second = fetched.verified.map((v, i) => linkOf(fetched.raw[i], v.size, v.rootHash));
    const a = primary.at(-1);
    const b = second.at(-1);
    if (!a || !b) {
      this.recordFetch(network, 'second', url, 'inconclusive');
      return 'inconclusive';
    }
    const verdict =
      a.size <= b.size ? consistentWith(network, a, second) : consistentWith(network, b, primary);
    if (verdict === 'fork') {
      this.recordFetch(network, 'second', url, 'LOG_FORK_DETECTED');
      this.raiseAlarm(
        network,
        `relay ${this.ctx.config.relay.url}`,
        a.note,
        `second ${url}`,
        b.note,
      );
      return 'fork';
    }
    this.recordFetch(network, 'second', url, verdict);
    return verdict;
  }
}

function noteOf(publication: unknown): string {
  const note = (publication as { checkpoint?: unknown } | null)?.checkpoint;
  return typeof note === 'string' ? note : '';
}

function linkOf(publication: unknown, size: number, rootHash: Uint8Array): ChainLink {
  const p = publication as {
    checkpoint: string;
    previous: { size: number } | null;
    consistency: string[];
  };
  return {
    size,
    rootHash,
    note: p.checkpoint,
    previousSize: p.previous?.size ?? 0,
    consistency: p.consistency.map((h) => fromBase64(h, 'consistency proof')),
  };
}

/** Whether checkpoint `small` is consistent with the verified chain `large` (which ends at or above it). */
function consistentWith(
  network: string,
  small: ChainLink,
  large: readonly ChainLink[],
): 'consistent' | 'inconclusive' | 'fork' {
  const origin = logOrigin(network);
  const cp = (l: ChainLink) => ({ origin, size: l.size, rootHash: l.rootHash });
  try {
    const same = large.find((l) => l.size === small.size);
    if (same) {
      checkCheckpointsConsistent(cp(small), cp(same), []);
      return 'consistent';
    }
    const next = large.find((l) => l.previousSize === small.size);
    if (!next) return 'inconclusive';
    checkCheckpointsConsistent(cp(small), cp(next), next.consistency);
    return 'consistent';
  } catch (err) {
    if (isProtocolError(err, 'LOG_FORK_DETECTED')) return 'fork';
    throw err;
  }
}

function normaliseUrl(url: string): string {
  return url.replace(/\/+$/, '').toLowerCase();
}
