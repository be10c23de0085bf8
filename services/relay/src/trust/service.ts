import {
  checkManifestSuccession,
  emptyRoot,
  encodeAddCheckpointRequest,
  encodeNote,
  fromBase64,
  isProtocolError,
  logOrigin,
  manifestHash,
  parseAddCheckpointRequest,
  parseCheckpointText,
  parseNote,
  publicKeyOf,
  publicationWitnesses,
  toBase64,
  verifyCheckpoint,
  verifyCosignature,
  witnessAddCheckpoint,
  ProtocolError,
  type KeyRef,
  type Manifest,
  type NoteSignature,
  type NoteVerifier,
  type SigningKeyPair,
  type TrustStore,
  type WitnessLogState,
} from '@rogatory/protocol';
import { backoffDelay } from '@rogatory/client';
import { TRUST_LIMITS, isRelayErrorCode, type RelayErrorCode } from '@rogatory/relay-api';
import type { FastifyBaseLogger } from 'fastify';
import { RelayError, isRelayError } from '../errors.js';
import type { RelayMetrics } from '../metrics.js';
import { equalBytes, type TrustFiles } from './files.js';
import { verifyPublication, type Publication, type VerifiedPublication } from './publication.js';

const ORIGIN_PREFIX = 'rogatory.invalid/key-log/';

/** One accepted publication of a chain. */
interface Link {
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly previousSize: number;
  /** The stored publication; its checkpoint note gains cosignature lines. */
  publication: Publication;
  /** The version of the last manifest entry of this publication, if any. */
  readonly manifestVersion: number | undefined;
  /**
   * Set while the relay collects the witnesses' cosignatures of its own new
   * publication: it is not served until then, so a peer relay or a node that
   * polls meanwhile never takes (and keeps) the note without them.
   */
  collecting?: boolean;
  /** Times the newest publication of a peer's chain was fetched again for missing cosignatures. */
  refreshes?: number;
}

/** How many times a peer's newest publication is fetched again while witnesses' cosignatures are missing. */
const COSIGNATURE_REFRESHES = 60;

/** A trust-related refusal as the relay answers it (docs/relay-api.md). */
export function trustRelayError(err: unknown): RelayError {
  if (isRelayError(err)) return err;
  if (!isProtocolError(err)) return new RelayError('INTERNAL', 'internal error', { cause: err });
  const code = err.code as string;
  const direct: Record<string, RelayErrorCode> = {
    SCHEMA_INVALID: 'MALFORMED',
    KEY_UNKNOWN: 'LOG_UNKNOWN',
  };
  const relayCode: RelayErrorCode =
    direct[code] ?? (isRelayErrorCode(code) ? code : 'STATEMENT_REFUSED');
  return new RelayError(relayCode, err.message.replace(/^[A-Z_]+: /, ''), {
    cause: err,
    detail: err.code,
  });
}

/** One promise chain per key: what runs under a key runs one at a time. */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    const result = before.then(fn, fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

export interface TrustServiceOptions {
  readonly relayId: string;
  readonly network: string;
  readonly key: SigningKeyPair;
  /** The live trust store admission uses: accepted editions are applied to it in place. */
  readonly trust: TrustStore;
  readonly files: TrustFiles;
  readonly peerUrls: Readonly<Record<string, string>>;
  readonly clock: () => number;
  readonly log: FastifyBaseLogger;
  readonly metrics: RelayMetrics;
  /** Peer chain polling period (ms). */
  readonly pollMs: number;
  readonly requestTimeoutMs: number;
  /** Called after a new manifest edition was applied (caches keyed on manifests refresh). */
  readonly onEdition?: (network: string) => void;
}

/**
 * The relay's key transparency state (design D2, D3): the publication
 * chains it holds (its own network's, pushed by the secretariat, and its
 * peers', fetched), applied to the live trust store; its witness state per
 * peer log; cosignature collection for its own publications; the peer
 * polling loop.
 */
export class TrustService {
  private readonly chains = new Map<string, Link[]>();
  private readonly witnessState = new Map<string, WitnessLogState>();
  private readonly chainLock = new KeyedMutex();
  private readonly witnessLock = new KeyedMutex();
  private readonly lastFetch = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly nextPollAt = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private stopped = false;

  private constructor(private readonly o: TrustServiceOptions) {}

  /**
   * Open the stored state: re-verify each stored chain, apply it to the trust
   * store (a manifest file older than the stored edition is refused with
   * MANIFEST_ROLLBACK, logged, and the stored edition used), load the witness
   * state of every peer log.
   */
  static async open(options: TrustServiceOptions): Promise<TrustService> {
    const service = new TrustService(options);
    for (const network of await options.files.networks()) await service.loadChain(network);
    for (const peer of service.ownPeers()) {
      const stored = await options.files.readWitnessState(peer.network);
      if (stored)
        service.witnessState.set(stored.origin, {
          size: stored.size,
          rootHash: fromBase64(stored.rootHash, 'witness state root'),
        });
    }
    options.metrics.trustFetchAge = () => service.fetchAges();
    service.updateMetrics();
    return service;
  }

  // ------------------------------------------------------------------ state

  private ownPeers(): readonly { network: string; via: string | null }[] {
    return this.o.trust.manifest(this.o.network)?.body.peers ?? [];
  }

  /** Whether this relay serves the chain of `network`: its own or a peer's. */
  serves(network: string): boolean {
    return network === this.o.network || this.ownPeers().some((p) => p.network === network);
  }

  private held(network: string): { size: number; rootHash: Uint8Array } | null {
    const last = this.chains.get(network)?.at(-1);
    return last ? { size: last.size, rootHash: last.rootHash } : null;
  }

  /** The highest edition accepted through publications (0: none). */
  private chainEdition(network: string): number {
    const chain = this.chains.get(network) ?? [];
    for (let i = chain.length - 1; i >= 0; i--) {
      const v = chain[i]!.manifestVersion;
      if (v !== undefined) return v;
    }
    return 0;
  }

  edition(network: string): number {
    return this.o.trust.manifest(network)?.body.version ?? 0;
  }

  private logKey(network: string): KeyRef {
    const root = this.o.trust.rootOf(network);
    if (!root) throw new RelayError('LOG_UNKNOWN', `no trusted root for network ${network}`);
    return root;
  }

  private async loadChain(network: string): Promise<void> {
    if (!this.o.trust.rootOf(network)) {
      this.o.log.warn({ network }, 'stored publications of a network without a trusted root');
      return;
    }
    const fileEdition = this.o.trust.manifest(network);
    const stored = await this.o.files.readChain(network);
    for (const value of stored) {
      const verified = verifyPublication({
        publication: value,
        logKey: this.logKey(network),
        held: this.held(network),
      });
      this.applyStatements(network, verified, { startup: true });
      this.append(network, value as Publication, verified);
    }
    const chainEdition = this.chainEdition(network);
    if (fileEdition && chainEdition > fileEdition.body.version)
      this.o.log.warn(
        {
          code: 'MANIFEST_ROLLBACK',
          network,
          fileEdition: fileEdition.body.version,
          storedEdition: chainEdition,
        },
        'manifest file older than the stored edition: refused, the stored edition is used',
      );
  }

  private append(network: string, publication: Publication, verified: VerifiedPublication): Link {
    let manifestVersion: number | undefined;
    for (const s of verified.statements)
      if (s.kind === 'manifest') manifestVersion = (s.statement as Manifest).body.version;
    const link: Link = {
      size: verified.size,
      rootHash: verified.rootHash,
      previousSize: publication.previous?.size ?? 0,
      publication,
      manifestVersion,
    };
    const chain = this.chains.get(network) ?? [];
    chain.push(link);
    this.chains.set(network, chain);
    return link;
  }

  /**
   * Check the manifests of a verified publication before anything is stored
   * or applied: each must not be older than the highest edition accepted
   * through publications (MANIFEST_ROLLBACK); one at the trust store's
   * version must be that edition; newer ones must follow each other
   * (STATEMENT_REFUSED with MANIFEST_CHAIN_BROKEN).
   */
  private checkManifests(network: string, verified: VerifiedPublication): void {
    let current = this.o.trust.manifest(network);
    const floor = this.chainEdition(network);
    for (const s of verified.statements) {
      if (s.kind !== 'manifest') continue;
      const m = s.statement as Manifest;
      if (m.body.version <= floor)
        throw new RelayError(
          'MANIFEST_ROLLBACK',
          `manifest ${network} v${m.body.version} is not newer than the accepted v${floor}`,
          { detail: 'MANIFEST_ROLLBACK' },
        );
      if (current && m.body.version < current.body.version) continue;
      if (current && m.body.version === current.body.version) {
        if (manifestHash(m) !== manifestHash(current))
          throw new RelayError(
            'MANIFEST_ROLLBACK',
            `manifest ${network} v${m.body.version} differs from the edition held`,
            { detail: 'MANIFEST_ROLLBACK' },
          );
        continue;
      }
      if (current) {
        try {
          checkManifestSuccession(current, m);
        } catch (err) {
          throw trustRelayError(err);
        }
      }
      current = m;
    }
  }

  /**
   * Apply a verified publication's statements to the live trust store in
   * entry order: newer manifest editions (succession checked by the store),
   * rotations, revocations. A rotation or revocation the store refuses is
   * logged by code and skipped: the log is append-only, and refusing the
   * publication would stall the chain for good.
   */
  private applyStatements(
    network: string,
    verified: VerifiedPublication,
    options: { startup: boolean },
  ): void {
    const { trust } = this.o;
    let editionChanged = false;
    const manifests = verified.statements.filter((s) => s.kind === 'manifest');
    const lastManifest = manifests.at(-1);
    for (const s of verified.statements) {
      try {
        if (s.kind === 'manifest') {
          const m = s.statement as Manifest;
          const held = trust.manifest(network);
          if (held && m.body.version <= held.body.version) continue;
          // Only the newest edition of a publication must still be valid; older ones are history.
          if (
            trust.addManifest(
              m,
              s === lastManifest && !options.startup ? { now: this.o.clock() } : {},
            )
          )
            editionChanged = true;
        } else if (s.kind === 'rotation') {
          trust.addKeyRotation(s.statement);
        } else if (s.kind === 'revocation') {
          trust.addRevocation(s.statement);
        }
      } catch (err) {
        if (s.kind === 'manifest' && !options.startup) throw trustRelayError(err);
        this.o.log.warn(
          {
            network,
            index: s.index,
            kind: s.kind,
            code: isProtocolError(err) ? err.code : 'INTERNAL',
          },
          'logged statement not applied to the trust store',
        );
      }
    }
    if (editionChanged) {
      this.o.log.info(
        { network, edition: this.edition(network) },
        'trust: new manifest edition applied',
      );
      this.o.onEdition?.(network);
    }
  }

  /**
   * Accept a publication of `network` (own network from the secretariat, or
   * a peer's fetched from a relay): verify against the held chain, store,
   * apply. A publication already held (same size and root) is answered as
   * accepted without change. Runs under the network's lock.
   */
  private async accept(network: string, value: unknown): Promise<{ link: Link; fresh: boolean }> {
    const claimed =
      typeof value === 'object' && value !== null
        ? (value as { network?: unknown }).network
        : undefined;
    if (
      typeof claimed !== 'string' ||
      typeof (value as { checkpoint?: unknown }).checkpoint !== 'string'
    )
      throw new RelayError('MALFORMED', 'not a publication', { detail: 'SCHEMA_INVALID' });
    if (claimed !== network)
      throw new RelayError('LOG_UNKNOWN', `a publication of ${claimed} is not accepted here`, {
        detail: 'KEY_UNKNOWN',
      });
    const logKey = this.logKey(network);
    const held = this.held(network);
    if (held) {
      // Already held, a fork, or a rollback: decided on the checkpoint alone.
      const { checkpoint } = verifyCheckpoint((value as { checkpoint: string }).checkpoint, {
        name: logOrigin(network),
        publicKey: publicKeyOf(logKey),
      });
      if (checkpoint.size <= held.size) {
        const link = this.chains.get(network)!.find((l) => l.size === checkpoint.size);
        if (link && equalBytes(link.rootHash, checkpoint.rootHash)) {
          await this.mergeCosignatures(network, link, (value as { checkpoint: string }).checkpoint);
          return { link, fresh: false };
        }
        if (link || checkpoint.size === held.size)
          throw new RelayError('LOG_FORK_DETECTED', 'another root for a size already held', {
            detail: 'LOG_FORK_DETECTED',
          });
        throw new RelayError('CHECKPOINT_ROLLBACK', 'publication ends below the chain held', {
          detail: 'CHECKPOINT_ROLLBACK',
        });
      }
    }
    const verified = verifyPublication({ publication: value, logKey, held });
    this.checkManifests(network, verified);
    await this.o.files.writePublication(network, verified.size, value);
    this.applyStatements(network, verified, { startup: false });
    const link = this.append(network, value as Publication, verified);
    this.updateMetrics();
    this.o.log.info({ network, size: link.size }, 'trust: publication accepted');
    return { link, fresh: true };
  }

  /**
   * A publication already held, offered again (a peer's chain fetched again,
   * or a re-post): keep the cosignature lines of its note that the stored
   * note lacks, if they verify under a witness trusted for the network's log
   * (one line a witness). A peer relay may have served the note before all
   * its witnesses had cosigned; without this it would stay bare here for good.
   */
  private async mergeCosignatures(network: string, link: Link, offered: string): Promise<void> {
    const held = parseNote(link.publication.checkpoint);
    let note: ReturnType<typeof parseNote>;
    try {
      note = parseNote(offered);
    } catch {
      return;
    }
    if (note.text !== held.text) return;
    const witnesses = publicationWitnesses(this.o.trust, network);
    const added: NoteSignature[] = [];
    for (const sig of note.signatures) {
      if ([...held.signatures, ...added].some((s) => s.name === sig.name)) continue;
      const witness = witnesses.find((w) => w.name === sig.name);
      if (!witness) continue;
      try {
        if (verifyCosignature(held.text, sig, witness)) added.push(sig);
      } catch {
        // a line that does not verify is not kept
      }
    }
    if (added.length === 0) return;
    link.publication = {
      ...link.publication,
      checkpoint: encodeNote({ text: held.text, signatures: [...held.signatures, ...added] }),
    };
    await this.o.files.writePublication(network, link.size, link.publication);
    this.o.log.info(
      { network, size: link.size, witnesses: added.map((s) => s.name) },
      'trust: cosignatures added to a held publication',
    );
  }

  /**
   * Whether the newest held publication of a peer's chain lacks the
   * cosignature of one of that network's direct peers (its witnesses): it is
   * then fetched again (a bounded number of times) to pick them up.
   */
  private needsCosignatures(network: string): Link | undefined {
    const link = this.chains.get(network)?.at(-1);
    if (!link || (link.refreshes ?? 0) >= COSIGNATURE_REFRESHES) return undefined;
    const direct = (this.o.trust.manifest(network)?.body.peers ?? []).filter((p) => p.via === null);
    const note = parseNote(link.publication.checkpoint);
    const missing = direct.some(
      (peer) =>
        !this.o.trust.relays(peer.network).some((relay) =>
          note.signatures.some((sig) => {
            try {
              return (
                verifyCosignature(note.text, sig, {
                  name: relay.id,
                  publicKey: publicKeyOf(relay.key),
                }) !== null
              );
            } catch {
              return false;
            }
          }),
        ),
    );
    return missing ? link : undefined;
  }

  // ------------------------------------------------------------ publishing

  /**
   * `POST /v1/trust/publications`: accept a publication of the relay's own
   * network, then collect the cosignatures of its direct peers' relays
   * (also on a re-post of the newest publication: cosignatures retried).
   */
  async publish(
    value: unknown,
  ): Promise<{ network: string; size: number; edition: number; cosigners: string[] }> {
    const network = this.o.network;
    return this.chainLock.run(network, async () => {
      let result: { link: Link; fresh: boolean };
      try {
        result = await this.accept(network, value);
      } catch (err) {
        throw trustRelayError(err);
      }
      const { link } = result;
      if (link === this.chains.get(network)!.at(-1)) {
        // A re-post (cosignatures retried) of a publication already served stays served.
        if (result.fresh) link.collecting = true;
        try {
          await this.collectCosignatures(link);
        } finally {
          link.collecting = false;
        }
      }
      return {
        network,
        size: link.size,
        edition: this.edition(network),
        cosigners: this.cosignersOf(link),
      };
    });
  }

  /** The witnesses (relays of direct peers) whose cosignature the link's note carries and verifies. */
  private cosignersOf(link: Link): string[] {
    const note = parseNote(link.publication.checkpoint);
    const names = new Set<string>();
    for (const peer of this.ownPeers()) {
      if (peer.via !== null) continue;
      for (const relay of this.o.trust.relays(peer.network)) {
        const verifier = { name: relay.id, publicKey: publicKeyOf(relay.key) };
        for (const sig of note.signatures) {
          try {
            if (verifyCosignature(note.text, sig, verifier)) names.add(relay.id);
          } catch {
            // a bad line is not a cosigner
          }
        }
      }
    }
    return [...names].sort();
  }

  private relayUrl(network: string, entryUrl: string): string {
    return (this.o.peerUrls[network] ?? entryUrl).replace(/\/+$/, '');
  }

  /** Ask each directly peered network's relays (first reachable one of each) to cosign the link. */
  private async collectCosignatures(link: Link): Promise<void> {
    const network = this.o.network;
    const direct = this.ownPeers().filter((p) => p.via === null);
    const lines: NoteSignature[] = [];
    await Promise.all(
      direct.map(async (peer) => {
        for (const relay of this.o.trust.relays(peer.network)) {
          try {
            const line = await this.cosignBy(peer.network, relay, link);
            if (line) lines.push(line);
            return;
          } catch (err) {
            this.o.log.warn(
              { network: peer.network, witness: relay.id, code: codeOf(err) },
              'trust: witness did not cosign',
            );
          }
        }
      }),
    );
    if (lines.length === 0) return;
    const note = parseNote(link.publication.checkpoint);
    const kept = note.signatures.filter(
      (s) => !lines.some((l) => l.name === s.name && equalBytes(l.keyId, s.keyId)),
    );
    link.publication = {
      ...link.publication,
      checkpoint: encodeNote({ text: note.text, signatures: [...kept, ...lines] }),
    };
    await this.o.files.writePublication(network, link.size, link.publication);
  }

  /** The root-signed note of a link, without cosignature lines. */
  private logNote(link: Link): string {
    const note = parseNote(link.publication.checkpoint);
    const origin = logOrigin(this.o.network);
    return encodeNote({
      text: note.text,
      signatures: note.signatures.filter((s) => s.name === origin),
    });
  }

  /**
   * One witness: add-checkpoint with old = the publication's previous size
   * and its consistency proof. On 409 with a smaller stored size, replay the
   * stored publications from that size, then retry; on 409 with this very
   * size, retry as a same-checkpoint request. Returns the verified line.
   */
  private async cosignBy(
    peerNetwork: string,
    relay: { id: string; url: string; key: KeyRef },
    link: Link,
  ): Promise<NoteSignature | undefined> {
    const url = `${this.relayUrl(peerNetwork, relay.url)}/v1/witness/add-checkpoint`;
    const attempt = async (
      step: Link,
      old: number,
      proof: readonly string[],
    ): Promise<{ line: string } | { stored: number }> => {
      const body = encodeAddCheckpointRequest({
        oldSize: old,
        proof: proof.map((p) => fromBase64(p, 'consistency proof')),
        checkpoint: this.logNote(step),
      });
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body,
        signal: AbortSignal.timeout(this.o.requestTimeoutMs),
      });
      const text = await res.text();
      if (res.status === 200) return { line: text };
      if (res.status === 409 && /^(0|[1-9][0-9]{0,15})\n$/.test(text))
        return { stored: Number(text.trim()) };
      throw new RelayError('UNAVAILABLE', `witness answered ${res.status}`);
    };
    const chain = this.chains.get(this.o.network) ?? [];
    let outcome = await attempt(link, link.previousSize, link.publication.consistency);
    if ('stored' in outcome) {
      const stored = outcome.stored;
      if (stored === link.size) {
        outcome = await attempt(link, link.size, []);
      } else if (stored < link.previousSize) {
        // Catch the witness up: each stored publication is a consistent step.
        const from = chain.findIndex((l) => l.previousSize === stored);
        const upTo = chain.indexOf(link);
        if (from < 0 || upTo < 0 || from >= upTo)
          throw new RelayError('UNAVAILABLE', 'witness state is not a publication boundary');
        for (const step of chain.slice(from, upTo)) {
          const r = await attempt(step, step.previousSize, step.publication.consistency);
          if (!('line' in r))
            throw new RelayError('UNAVAILABLE', 'witness refused a catch-up step');
        }
        outcome = await attempt(link, link.previousSize, link.publication.consistency);
      }
    }
    if (!('line' in outcome)) throw new RelayError('UNAVAILABLE', 'witness state conflict');
    const note = parseNote(`${parseNote(link.publication.checkpoint).text}\n${outcome.line}`);
    const sig = note.signatures[0];
    if (note.signatures.length !== 1 || !sig) throw new RelayError('UNAVAILABLE', 'not one line');
    const ok = verifyCosignature(note.text, sig, {
      name: relay.id,
      publicKey: publicKeyOf(relay.key),
    });
    if (!ok) throw new RelayError('UNAVAILABLE', 'cosignature by another key');
    return sig;
  }

  // -------------------------------------------------------------- serving

  /** `GET /v1/trust/networks`: own network and every network with a chain. */
  networks(): { network: string; size: number; edition: number; rootHash: string }[] {
    const names = new Set([this.o.network, ...this.chains.keys()]);
    return [...names].sort().map((network) => {
      const held = this.held(network);
      return {
        network,
        size: held?.size ?? 0,
        edition: this.edition(network),
        rootHash: toBase64(held?.rootHash ?? emptyRoot()),
      };
    });
  }

  /**
   * `GET /v1/trust/publications/:network`: publications ending above `after`,
   * in order, one page; a publication whose cosignatures are being collected
   * is left out until they are in its note.
   */
  publications(network: string, after: number): Publication[] {
    if (!this.serves(network) && !this.chains.has(network))
      throw new RelayError('LOG_UNKNOWN', `no chain of network ${network} here`);
    const chain = this.chains.get(network) ?? [];
    const ready = chain.findIndex((l) => l.collecting === true);
    return (ready < 0 ? chain : chain.slice(0, ready))
      .filter((l) => l.size > after)
      .slice(0, TRUST_LIMITS.maxPage)
      .map((l) => l.publication);
  }

  // -------------------------------------------------------------- witness

  /** The logs this relay witnesses: its own manifest's peers, with their anchored roots. */
  private witnessedLogs(): NoteVerifier[] {
    const logs: NoteVerifier[] = [];
    for (const peer of this.ownPeers()) {
      const root = this.o.trust.rootOf(peer.network);
      if (root) logs.push({ name: logOrigin(peer.network), publicKey: publicKeyOf(root) });
    }
    return logs;
  }

  /**
   * `POST /v1/witness/add-checkpoint` (§18.5): the rules of
   * `witnessAddCheckpoint` against the stored state of the checkpoint's
   * origin, under that origin's lock; the new state is written durably before
   * the cosignature line is returned. Refusals are RelayErrors (with
   * WITNESS_CONFLICT: `storedSize`).
   */
  async addCheckpoint(body: string): Promise<string> {
    let origin: string;
    try {
      const request = parseAddCheckpointRequest(body);
      origin = parseCheckpointText(parseNote(request.checkpoint).text).origin;
    } catch (err) {
      this.o.metrics.witnessCosignatures.inc({ outcome: 'refused', code: 'CHECKPOINT_INVALID' });
      throw trustRelayError(err);
    }
    return this.witnessLock.run(origin, async () => {
      const outcome = witnessAddCheckpoint({
        request: body,
        logs: this.witnessedLogs(),
        state: this.witnessState,
        witness: { name: this.o.relayId, key: this.o.key },
        now: this.o.clock(),
      });
      if (!outcome.ok) {
        const code = outcome.code === 'KEY_UNKNOWN' ? 'LOG_UNKNOWN' : outcome.code;
        this.o.metrics.witnessCosignatures.inc({ outcome: 'refused', code });
        if (outcome.code === 'WITNESS_CONFLICT') throw new WitnessConflict(outcome.storedSize ?? 0);
        throw trustRelayError(new ProtocolError(outcome.code, outcome.message));
      }
      await this.o.files.writeWitnessState(outcome.origin.slice(ORIGIN_PREFIX.length), {
        origin: outcome.origin,
        size: outcome.state.size,
        rootHash: toBase64(outcome.state.rootHash),
      });
      this.witnessState.set(outcome.origin, outcome.state);
      this.o.metrics.witnessCosignatures.inc({ outcome: 'given', code: 'OK' });
      return outcome.cosignature;
    });
  }

  // -------------------------------------------------------------- polling

  /** Start the peer chain polling loop (first round right away). */
  start(): void {
    if (this.stopped || this.timer) return;
    const tick = (): void => {
      this.polling = this.pollOnce()
        .catch((err: unknown) => {
          this.o.log.warn({ code: codeOf(err) }, 'trust: polling round failed');
        })
        .finally(() => {
          this.polling = undefined;
          if (!this.stopped) {
            this.timer = setTimeout(tick, Math.min(this.o.pollMs, 1000));
            this.timer.unref();
          }
        });
    };
    this.timer = setTimeout(tick, 0);
    this.timer.unref();
  }

  /** Stop polling and wait for a round in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.polling;
  }

  /** One round: every peer whose turn has come is fetched; failures back off per peer (bounded). */
  async pollOnce(): Promise<void> {
    const now = this.o.clock();
    await Promise.all(
      this.ownPeers().map(async (peer) => {
        if (this.stopped || now < (this.nextPollAt.get(peer.network) ?? 0)) return;
        try {
          await this.fetchChain(peer.network, peer.via);
          this.failures.set(peer.network, 0);
          this.lastFetch.set(peer.network, this.o.clock());
          this.nextPollAt.set(peer.network, this.o.clock() + this.o.pollMs);
        } catch (err) {
          const failures = (this.failures.get(peer.network) ?? 0) + 1;
          this.failures.set(peer.network, failures);
          const backoff = backoffDelay(
            { retries: 0, baseMs: this.o.pollMs, maxMs: MAX_BACKOFF_MS, jitter: 0 },
            Math.min(failures, 10),
            Math.random,
          );
          this.nextPollAt.set(peer.network, this.o.clock() + Math.max(this.o.pollMs, backoff));
          this.o.log.warn(
            { network: peer.network, code: codeOf(err), failures },
            'trust: fetching a peer chain failed',
          );
        }
      }),
    );
    this.updateMetrics();
  }

  /**
   * Fetch a peer network's chain past the held size, from its relays or
   * (reached via a hub) the hub's: each listed relay in turn until one
   * answers, so that one relay down (or serving garbage) does not stop the
   * chain. What a relay served is verified before anything is kept, so a
   * fork it serves is still detected and recorded on the way.
   */
  private async fetchChain(network: string, via: string | null): Promise<void> {
    const source = via ?? network;
    const bases = [
      ...new Set(this.o.trust.relays(source).map((relay) => this.relayUrl(source, relay.url))),
    ];
    if (bases.length === 0) throw new RelayError('UNAVAILABLE', `no relay listed for ${source}`);
    let last: unknown;
    for (const base of bases) {
      if (this.stopped) return;
      try {
        await this.fetchChainFrom(network, base);
        return;
      } catch (err) {
        last = err;
        if (bases.length > 1)
          this.o.log.warn(
            { network, source, relay: base, code: codeOf(err) },
            'trust: a relay did not serve the chain; trying the next listed one',
          );
      }
    }
    throw last;
  }

  private async fetchChainFrom(network: string, base: string): Promise<void> {
    const refresh = this.needsCosignatures(network);
    if (refresh) refresh.refreshes = (refresh.refreshes ?? 0) + 1;
    for (let page = 0; page < 1000 && !this.stopped; page++) {
      const after = page === 0 && refresh ? refresh.previousSize : (this.held(network)?.size ?? 0);
      const res = await fetch(
        `${base}/v1/trust/publications/${encodeURIComponent(network)}?after=${after}`,
        { signal: AbortSignal.timeout(this.o.requestTimeoutMs) },
      );
      if (res.status !== 200) throw new RelayError('UNAVAILABLE', `peer answered ${res.status}`);
      const body = (await res.json()) as { publications?: unknown };
      if (!Array.isArray(body.publications))
        throw new RelayError('MALFORMED', 'peer answer has no publications list');
      for (const publication of body.publications)
        await this.chainLock.run(network, async () => {
          try {
            await this.accept(network, publication);
          } catch (err) {
            throw trustRelayError(err);
          }
        });
      if (body.publications.length < TRUST_LIMITS.maxPage) return;
    }
  }

  // -------------------------------------------------------------- metrics

  private fetchAges(): Map<string, number> {
    const now = this.o.clock();
    return new Map([...this.lastFetch].map(([n, t]) => [n, (now - t) / 1000]));
  }

  private updateMetrics(): void {
    for (const network of new Set([this.o.network, ...this.chains.keys()])) {
      this.o.metrics.trustEdition.set({ network }, this.edition(network));
      this.o.metrics.trustLogSize.set({ network }, this.held(network)?.size ?? 0);
    }
  }
}

/** Longest wait between two fetches of a failing peer. */
const MAX_BACKOFF_MS = 30 * 60 * 1000;

/** The witness's 409: the answer is `<stored size>\n` (text/plain). */
export class WitnessConflict extends RelayError {
  constructor(readonly storedSize: number) {
    super('WITNESS_CONFLICT', 'old size is not the last cosigned size', {
      detail: 'WITNESS_CONFLICT',
    });
  }
}

function codeOf(err: unknown): string {
  if (isRelayError(err)) return err.code;
  if (isProtocolError(err)) return err.code;
  if (err instanceof Error && err.name === 'TimeoutError') return 'TIMEOUT';
  return 'UNREACHABLE';
}
