import { ENVELOPE_LIMITS } from '@rogatory/protocol';
import type { BundleKind, EncryptionKeyCert, KeyRef } from '@rogatory/protocol';
import type { AuditEntry, AuditReport } from './administration/audit-log.js';
import {
  closeContext,
  openContext,
  type OpenNodeOptions,
} from './administration/node-directory.js';
import {
  type Actor,
  type Clearance,
  type NewUser,
  type Role,
  type UserInfo,
} from './administration/users.js';
import {
  identitySwitchAt,
  identitySwitchWritten,
  listNodeKeys,
  rotateEncryptionKey,
  rotateIdentityKey,
  switchIdentityIfDue,
  takeUpNewKeys,
  type EncryptionRotation,
  type IdentityRotation,
  type NodeKeyInfo,
} from './administration/key-rotation.js';
import { draftReply } from './answering/reply.js';
import { audit, type NodeContext, type ProgressListener } from './context.js';
import type { AttachmentInput } from './drafting/attachment-encryption.js';
import { compose, submitForApproval, updateDraft, type ComposeInput } from './drafting/draft.js';
import { dossierWarnings, type DraftWarning } from './drafting/recipient-warnings.js';
import { draftTemplate, type TemplateOptions } from './drafting/template.js';
import {
  collectGarbage,
  diskUse,
  type DiskUse,
  type GcReport,
} from './administration/housekeeping.js';
import {
  buildDirectory,
  type DirectoryEntry,
  type DirectoryFilter,
  type IntroductionSource,
} from './directory/directory.js';
import { codeOf, nodeFail } from './errors.js';
import { exportBundle } from './export/bundle.js';
import { writeNewFileSync } from './files/atomic-write.js';
import {
  evidenceChain,
  show,
  type DossierDetails,
  type EvidenceChainView,
} from './reading/details.js';
import {
  cases,
  list,
  overdue,
  quarantine,
  type CaseSummary,
  type DossierFilter,
  type QuarantineEntry,
} from './reading/lists.js';
import { open, saveAttachments, type OpenedView, type SavedAttachment } from './reading/opening.js';
import type { DossierSummary } from './reading/summaries.js';
import type { ItemOutcome } from './receiving/receive-item.js';
import { pullMailbox, subscribeMailbox } from './receiving/mailbox-sync.js';
import { relayIncidents, type RelayIncidents } from './receiving/relay-incidents.js';
import { approve, returnToDraft } from './sending/approval.js';
import { Outbox, type OutboxReport } from './sending/outbox.js';
import { startOutboxWorker } from './sending/outbox-worker.js';
import { TrustSync, type TrustStatus, type TrustSyncReport } from './trust/trust-sync.js';
import { reloadIntroductions, storedIntroductions } from './introductions/verify.js';
import {
  declineIntroduction,
  exportIntroductions,
  introductionInbox,
  introductionStatus,
  introductionsOfSelf,
  isPoc,
  issueIntroduction,
  receiveIntroduction,
  referIntroduction,
  requestIntroduction,
  type IntroductionInboxEntry,
  type IntroductionOfSelf,
  type IntroductionRequestInput,
  type IntroductionRequestView,
  type IssueInput,
} from './introductions/workflow.js';
import type { IntroducedRecord } from './store/introduction-table.js';
import type { Introduction } from '@rogatory/protocol';

/** What live sync reports (every MailboxEvent and OutboxEvent), for a CLI or a UI. Never content. */
export type SyncEvent =
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected'; readonly willReconnect: boolean }
  | { readonly type: 'item'; readonly seq: number; readonly outcome: ItemOutcome }
  | { readonly type: 'outbox'; readonly report: OutboxReport }
  | { readonly type: 'trust'; readonly report: TrustSyncReport }
  | { readonly type: 'mailbox-reset'; readonly epoch: string }
  | {
      readonly type: 'error';
      readonly code: string;
      readonly detail?: string;
      readonly seq?: number;
    };

export interface SyncReport {
  /** The trust logs polled first, so that new revocations apply before anything is sent. */
  readonly trust: TrustSyncReport;
  readonly items: readonly { readonly seq: number; readonly outcome: ItemOutcome }[];
  readonly outbox: OutboxReport;
}

interface SyncHandle {
  /** Wake the outbox worker now (after an approval or an opening). */
  poke(): void;
  /** Stop the subscription and the outbox worker; resolves when both are idle. */
  stop(): Promise<void>;
}

/** `rogatory status --check-relay`: whether a session opens, and the relay's clock against ours. */
export interface RelayCheck {
  readonly ok: boolean;
  /** Why not (a relay or client code: UNAVAILABLE, NETWORK, SENDER_UNKNOWN, ...). */
  readonly code: string | null;
  /** The relay's clock minus this machine's, in ms (from its Date header), when it answered. */
  readonly clockOffsetMs: number | null;
  /** This machine's clock is ahead of the relay's beyond the protocol's 5 minutes: envelopes wait. */
  readonly clockAhead: boolean;
}

export interface NodeStatus {
  readonly address: string;
  readonly network: string;
  readonly relay: { readonly url: string; readonly id: string };
  readonly identityKid: string;
  /** Whether the trusted manifest of the own network lists this node's identity key. */
  readonly listedInManifest: boolean;
  readonly trustedNetworks: readonly string[];
  readonly mailboxCursor: number;
  readonly dossiers: Readonly<Record<string, number>>;
  readonly outbox: {
    readonly pending: number;
    readonly failed: number;
    readonly nextAttemptAt: number | null;
  };
  readonly users: number;
  /**
   * Submissions the relay refused as created in its future (this machine's
   * clock ahead of the relay's beyond the 5-minute tolerance): kept, and
   * offered again once the relay's clock reaches them (outbox code CLOCK_AHEAD).
   */
  readonly waitingForRelayClock: number;
  /** What the relay served that the node refused (forged, re-addressed, replayed, corrupt, oversized); see the audit log. */
  readonly relayIncidents: RelayIncidents;
  /** Trust logs followed (D4): edition and log size per network, fork alarms. */
  readonly trust: {
    readonly networks: readonly {
      readonly network: string;
      readonly edition: number | null;
      readonly logSize: number;
      readonly forkAlarm: boolean;
    }[];
    readonly openAlarms: number;
    readonly forksTotal: number;
  };
}

/**
 * An authority node, unlocked. Every method that acts on dossiers takes the
 * acting user (`login`), checks role, clearance and the four-eyes rule,
 * and audits what it changes. Errors are NodeErrors (errors.ts).
 */
export class AuthorityNode {
  private readonly ctx: NodeContext;
  private readonly outbox: Outbox;
  private readonly trustSync: TrustSync;
  private sync: SyncHandle | undefined;
  private closed = false;

  private constructor(ctx: NodeContext, options: OpenNodeOptions) {
    this.ctx = ctx;
    this.outbox = new Outbox(ctx);
    this.trustSync = new TrustSync(ctx, {
      base: ctx.trustState.base,
      dispatcher: options.relay?.dispatcher,
      timeoutMs: options.relay?.timeoutMs,
    });
  }

  /** Unlock a node directory with its passphrase (PASSPHRASE_INVALID, nothing changed, when wrong). */
  static async open(options: OpenNodeOptions): Promise<AuthorityNode> {
    const ctx = await openContext(options);
    try {
      for (const r of ctx.trustState.refusals)
        audit(
          ctx,
          'system',
          'trust.manifest-refused',
          r.network,
          `${r.code} v${r.folderVersion} held v${r.storedVersion}`,
        );
      reloadIntroductions(ctx);
      return new AuthorityNode(ctx, options);
    } catch (err) {
      await closeContext(ctx);
      throw err;
    }
  }

  get address(): string {
    return this.ctx.address;
  }

  /** The public identity key and encryption-key certificate, as published in the manifest. */
  identity(): {
    address: string;
    identity: KeyRef;
    encryptionCertificate: EncryptionKeyCert;
    relay: { url: string; id: string };
  } {
    const c = this.ctx.config;
    return {
      address: c.address,
      identity: c.identity,
      encryptionCertificate: c.encryptionCerts[c.encryptionCerts.length - 1]!,
      relay: c.relay,
    };
  }

  /** Counts, queue state and trust overview (no content). */
  status(): NodeStatus {
    const { ctx } = this;
    const outbox = ctx.store.outboxRows();
    return {
      address: ctx.address,
      network: ctx.config.network,
      relay: ctx.config.relay,
      identityKid: ctx.config.identity.kid,
      listedInManifest:
        (ctx.trust.authority(ctx.address) ?? ctx.trust.poc(ctx.address))?.key.kid ===
        ctx.config.identity.kid,
      trustedNetworks: ctx.trust.networks(),
      mailboxCursor: ctx.store.cursor(),
      dossiers: ctx.store.countByStatus(),
      outbox: {
        pending: outbox.filter((r) => r.state === 'pending').length,
        failed: outbox.filter((r) => r.state === 'failed').length,
        nextAttemptAt: ctx.store.nextOutboxAt() ?? null,
      },
      users: ctx.users.count(),
      waitingForRelayClock: outbox.filter(
        (r) => r.state === 'pending' && r.last_error === 'CLOCK_AHEAD',
      ).length,
      relayIncidents: relayIncidents(ctx),
      trust: (() => {
        const t = this.trustSync.status();
        return {
          networks: t.networks.map((n) => ({
            network: n.network,
            edition: n.edition,
            logSize: n.logSize,
            forkAlarm: n.alarms.length > 0,
          })),
          openAlarms: t.openAlarms,
          forksTotal: t.forksTotal,
        };
      })(),
    };
  }

  // ------------------------------------------------------------------ trust

  /** Per trusted network: editions, log size, cosigners, last fetches and fork alarms. */
  trustStatus(): TrustStatus {
    return this.trustSync.status();
  }

  /** Poll the trust logs now (own network and anchored peers) and apply what verifies. */
  syncTrust(): Promise<TrustSyncReport> {
    return this.trustSync.syncOnce().finally(() => this.afterTrust());
  }

  /** Clear a network's fork alarm after investigation (admins; audited): its log is followed again. */
  clearTrustAlarm(actor: Actor, network: string): number {
    const admin = this.ctx.users.require(actor, 'users:manage');
    return this.trustSync.clearAlarms(network, admin.id);
  }

  // ------------------------------------------------------------------ users

  /** Authenticate an officer (AUTHENTICATION_FAILED for any wrong username, password or disabled account; audited). */
  login(username: string, password: string): Actor {
    try {
      return this.ctx.users.authenticate(username, password);
    } catch (err) {
      audit(this.ctx, 'system', 'auth.failed', null, null);
      throw err;
    }
  }

  /** The acting user's account as it is now (roles, clearances); NOT_AUTHORISED for a forged or disabled actor. */
  whoami(actor: Actor): UserInfo {
    return this.ctx.users.current(actor);
  }

  /** Add a user (admins only; the very first user of a node may be added by nobody and must be an admin). */
  addUser(actor: Actor | null, user: NewUser): UserInfo {
    const { ctx } = this;
    return ctx.db.transaction(() => {
      let by: string | null = null;
      if (actor === null) {
        if (ctx.users.count() > 0 || user.role !== 'admin')
          nodeFail('NOT_AUTHORISED', 'only an admin may add users');
      } else {
        by = ctx.users.require(actor, 'users:manage').id;
      }
      const added = ctx.users.add(user, by, ctx.clock());
      audit(ctx, by ?? 'system', 'user.add', added.username, added.role);
      return added;
    });
  }

  listUsers(actor: Actor): UserInfo[] {
    this.ctx.users.require(actor, 'users:manage');
    return this.ctx.users.list();
  }

  disableUser(actor: Actor, username: string): UserInfo {
    const { ctx } = this;
    const admin = ctx.users.require(actor, 'users:manage');
    if (admin.username === username)
      nodeFail('INVALID_STATE', 'an admin cannot disable their own account');
    return ctx.db.transaction(() => {
      const user = ctx.users.disable(username);
      audit(ctx, admin.id, 'user.disable', username);
      return user;
    });
  }

  /** Enable a disabled account again (admins). */
  enableUser(actor: Actor, username: string): UserInfo {
    const { ctx } = this;
    const admin = ctx.users.require(actor, 'users:manage');
    return ctx.db.transaction(() => {
      const user = ctx.users.enable(username);
      audit(ctx, admin.id, 'user.enable', username);
      return user;
    });
  }

  /** A user changes their own password; the current one is checked first (AUTHENTICATION_FAILED). */
  changePassword(actor: Actor, current: string, next: string): UserInfo {
    const { ctx } = this;
    const me = ctx.users.current(actor);
    if (!ctx.users.checkPassword(me.username, current))
      nodeFail('AUTHENTICATION_FAILED', 'the current password is wrong');
    if (current.normalize('NFC') === next.normalize('NFC'))
      nodeFail('INPUT_INVALID', 'the new password is the current one');
    return ctx.db.transaction(() => {
      const user = ctx.users.setPassword(me.username, next);
      audit(ctx, me.id, 'user.password-change', me.username);
      return user;
    });
  }

  /** An admin sets another user's password (the user's sessions should end: the API does so). */
  resetPassword(actor: Actor, username: string, next: string): UserInfo {
    const { ctx } = this;
    const admin = ctx.users.require(actor, 'users:manage');
    if (admin.username === username)
      nodeFail('INVALID_STATE', 'change your own password with `user passwd`, which asks for it');
    return ctx.db.transaction(() => {
      const user = ctx.users.setPassword(username, next);
      audit(ctx, admin.id, 'user.password-reset', username);
      return user;
    });
  }

  /** Change a user's role (admins); the last enabled admin keeps theirs. Takes effect at once. */
  setUserRole(actor: Actor, username: string, role: Role): UserInfo {
    const { ctx } = this;
    const admin = ctx.users.require(actor, 'users:manage');
    return ctx.db.transaction(() => {
      const before = ctx.users.byUsername(username);
      if (!before) return nodeFail('NOT_FOUND', `no user ${username}`);
      if (
        before.role === 'admin' &&
        role !== 'admin' &&
        !before.disabled &&
        ctx.users.activeAdmins() <= 1
      )
        nodeFail('INVALID_STATE', 'the node needs at least one enabled admin');
      const user = ctx.users.setRole(username, role);
      audit(ctx, admin.id, 'user.set-role', username, `${before.role}->${user.role}`);
      return user;
    });
  }

  /** Replace a user's clearances (admins). Takes effect at once. */
  setUserClearances(actor: Actor, username: string, clearances: readonly Clearance[]): UserInfo {
    const { ctx } = this;
    const admin = ctx.users.require(actor, 'users:manage');
    return ctx.db.transaction(() => {
      const user = ctx.users.setClearances(username, [...clearances]);
      audit(ctx, admin.id, 'user.set-clearance', username, user.clearances.join(',') || 'none');
      return user;
    });
  }

  // --------------------------------------------------------------- drafting

  /** Draft a request or an answer; attachments are encrypted from disk now (their plaintext is never stored). Returns the local id. */
  compose(actor: Actor, input: ComposeInput): Promise<string> {
    return compose(this.ctx, actor, input);
  }

  /**
   * Draft an answer to a request this node holds: `inReplyTo`, `from` and
   * `to` are filled in from the request and the manifests.
   */
  reply(
    actor: Actor,
    requestId: string,
    input: {
      content: unknown;
      attachments?: readonly AttachmentInput[];
      onProgress?: ProgressListener;
    },
  ): Promise<string> {
    return draftReply(this.ctx, actor, requestId, input);
  }

  /** Replace a draft's content (the editor becomes a co-drafter and may not approve it). */
  updateDraft(
    actor: Actor,
    id: string,
    input: Omit<ComposeInput, 'caseId'> & { keepAttachments?: boolean },
  ): Promise<void> {
    return updateDraft(this.ctx, actor, id, input);
  }

  /** Draft → awaiting-approval (content validated again). */
  submitForApproval(actor: Actor, id: string): void {
    submitForApproval(this.ctx, actor, id);
  }

  /** Four-eyes approval: signs, seals and queues the dossier for sending; returns its envelope id. */
  async approve(actor: Actor, id: string): Promise<string> {
    // Editions another process of this node accepted apply before anything is sealed.
    this.trustSync.catchUp();
    const envelopeId = await approve(this.ctx, actor, id);
    this.sync?.poke();
    return envelopeId;
  }

  /** An approver sends the dossier back to its drafter. */
  returnToDraft(actor: Actor, id: string): void {
    returnToDraft(this.ctx, actor, id);
  }

  /**
   * Warnings about a draft or a dossier awaiting approval (a request type or
   * language its recipient's manifest entry does not list). Never a refusal.
   */
  /** A commented content template for a new request or an answer (`rogatory draft new`). */
  draftTemplate(actor: Actor, options: TemplateOptions): string {
    return draftTemplate(this.ctx, actor, options);
  }

  warnings(actor: Actor, id: string): DraftWarning[] {
    return dossierWarnings(this.ctx, actor, id);
  }

  // -------------------------------------------------------------- directory

  /**
   * Authorities and points of contact of every trusted manifest, and the
   * authorities introduced to this node. `introductions` is the seam for the
   * node's stored introductions (by default those the trust store verified).
   */
  directory(
    actor: Actor,
    filter: DirectoryFilter = {},
    introductions: IntroductionSource = storedIntroductions(this.ctx),
  ): DirectoryEntry[] {
    this.ctx.users.require(actor, 'node:status');
    return buildDirectory({
      trust: this.ctx.trust,
      self: this.ctx.address,
      now: this.ctx.clock(),
      introductions,
      filter,
    });
  }

  // ---------------------------------------------------------------- network

  /** Send what is queued (submissions, evidences) now, whatever their backoff. */
  flushOutbox(options: { onProgress?: ProgressListener } = {}): Promise<OutboxReport> {
    return this.outbox.run({ force: true, ...options });
  }

  /** Re-queue items that failed permanently (e.g. after a manifest update). */
  retryFailed(): number {
    const n = this.ctx.store.retryFailedOutbox(this.ctx.clock());
    if (n > 0) audit(this.ctx, 'system', 'outbox.retry', null, String(n));
    return n;
  }

  /** One pull of the mailbox (store, then ack, each item) and a flush of the outbox. */
  async syncOnce(options: { onProgress?: ProgressListener } = {}): Promise<SyncReport> {
    const trust = await this.trustSync.syncOnce().finally(() => this.afterTrust());
    const items = await pullMailbox(this.ctx, options.onProgress);
    const outbox = await this.outbox.run({ force: true, ...options });
    return { trust, items, outbox };
  }

  /** Live sync: mailbox subscription from the stored cursor, and the outbox worker, until `stopSync`. */
  startSync(onEvent?: (event: SyncEvent) => void): void {
    if (this.sync) nodeFail('INVALID_STATE', 'sync is already running');
    const emit = (event: SyncEvent): void => {
      try {
        onEvent?.(event);
      } catch {
        // A listener that throws must not stop the node.
      }
    };
    const worker = startOutboxWorker(this.ctx, this.outbox, emit);
    const mailbox = subscribeMailbox(this.ctx, { onEvent: emit, onStored: () => worker.poke() });
    const trust = this.startTrustPolling(emit);
    this.sync = {
      poke: () => worker.poke(),
      stop: async () => {
        await Promise.all([mailbox.stop(), worker.stop(), trust.stop()]);
      },
    };
  }

  /** Poll the trust logs now and every `trust.pollSeconds` until stopped. */
  private startTrustPolling(emit: (event: SyncEvent) => void): { stop(): Promise<void> } {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const poll = (): void => {
      timer = undefined;
      this.trustSync
        .syncOnce()
        .then(
          (report) => {
            if (!stopped) emit({ type: 'trust', report });
          },
          (err: unknown) => {
            if (!stopped) emit({ type: 'error', code: codeOf(err), detail: 'trust sync' });
          },
        )
        .then(() => this.afterTrust())
        .catch((err: unknown) => {
          if (!stopped) emit({ type: 'error', code: codeOf(err), detail: 'key switch' });
        })
        .finally(() => {
          if (!stopped) timer = setTimeout(poll, this.trustSync.pollSeconds * 1000);
        });
    };
    poll();
    return {
      stop: async () => {
        stopped = true;
        if (timer !== undefined) clearTimeout(timer);
        await this.trustSync.idle();
      },
    };
  }

  async stopSync(): Promise<void> {
    const sync = this.sync;
    this.sync = undefined;
    await sync?.stop();
  }

  // ---------------------------------------------------------------- reading

  /** Dossiers filtered by case reference, counterpart, type, status, direction and dates (metadata only). */
  list(actor: Actor, filter?: DossierFilter): DossierSummary[] {
    return list(this.ctx, actor, filter);
  }

  /** Received dossiers. */
  inbox(actor: Actor, filter: DossierFilter = {}): DossierSummary[] {
    return list(this.ctx, actor, { ...filter, direction: 'in' });
  }

  /** Dossiers past their deadline and not finished. */
  overdue(actor: Actor, today?: string): DossierSummary[] {
    return overdue(this.ctx, actor, today);
  }

  /** Metadata, per-recipient progress, evidences and approvals (no content; no Retrieval evidence). */
  show(actor: Actor, id: string): DossierDetails {
    return show(this.ctx, actor, id);
  }

  /** Content and attachment list; audited; the first opening of a received dossier sends a Retrieval evidence. */
  open(actor: Actor, id: string): OpenedView {
    const view = open(this.ctx, actor, id);
    this.sync?.poke();
    return view;
  }

  /** Decrypt attachments to a directory (verified against the signed manifests); counts as an opening. */
  async saveAttachments(
    actor: Actor,
    id: string,
    destDir: string,
    options: { indexes?: readonly number[]; onProgress?: ProgressListener } = {},
  ): Promise<SavedAttachment[]> {
    const saved = await saveAttachments(this.ctx, actor, id, destDir, options);
    this.sync?.poke();
    return saved;
  }

  /** Evidences of a dossier and their verification as a chain. */
  evidences(actor: Actor, id: string): EvidenceChainView {
    return evidenceChain(this.ctx, actor, id);
  }

  cases(actor: Actor): CaseSummary[] {
    return cases(this.ctx, actor);
  }

  /** Dossiers that failed verification, with their reason codes. */
  quarantine(actor: Actor): QuarantineEntry[] {
    return quarantine(this.ctx, actor);
  }

  /**
   * Export a self-contained bundle that `verifyBundle` checks offline: a full
   * one (decrypted dossier and attachments, counts as an opening), or with
   * `sealed` one without any plaintext or key.
   */
  exportBundle(
    actor: Actor,
    id: string,
    destDir: string,
    options: { readonly sealed?: boolean } = {},
  ): Promise<{ dir: string; kind: BundleKind; files: string[] }> {
    return exportBundle(this.ctx, actor, id, destDir, options);
  }

  // ------------------------------------------------------------------ audit

  /** Verify the audit log's hash chain and heads (admins). */
  verifyAudit(actor: Actor): AuditReport {
    this.ctx.users.require(actor, 'audit:verify');
    return this.ctx.audit.verify();
  }

  /** Audit entries, newest last (admins). */
  auditEntries(
    actor: Actor,
    options: {
      target?: string;
      limit?: number;
      since?: number;
      /** A username, or `system` for the node's own work. */
      actor?: string;
      action?: string;
    } = {},
  ): AuditEntry[] {
    const { ctx } = this;
    ctx.users.require(actor, 'audit:verify');
    const { actor: who, ...rest } = options;
    if (who === undefined) return ctx.audit.entries(rest);
    if (who === 'system') return ctx.audit.entries({ ...rest, actor: 'system' });
    const user = ctx.users.byUsername(who);
    if (!user) return nodeFail('NOT_FOUND', `no user ${who}`);
    return ctx.audit.entries({ ...rest, actor: user.id });
  }

  /**
   * Write the whole audit log to `file` (created, never overwritten; mode 0600)
   * as JSON lines: a header, every entry with its chain hashes, and the
   * verified head, so a reviewer can recompute the chain away from the node.
   * The export is itself audited (its entry is the last one exported).
   */
  exportAudit(
    actor: Actor,
    file: string,
  ): { file: string; entries: number; head: AuditReport['head'] } {
    const { ctx } = this;
    const admin = ctx.users.require(actor, 'audit:verify');
    audit(ctx, admin.id, 'audit.export', null);
    const report = ctx.audit.verify();
    const lines: string[] = [
      JSON.stringify({
        format: 'rogatory-audit-export/v1',
        node: ctx.address,
        exportedAt: ctx.clock(),
      }),
    ];
    let entries = 0;
    for (const line of ctx.audit.exportLines()) {
      lines.push(JSON.stringify(line));
      entries += 1;
    }
    lines.push(JSON.stringify({ head: report.head, ok: report.ok, problems: report.problems }));
    writeNewFileSync(file, `${lines.join('\n')}\n`);
    return { file, entries, head: report.head };
  }

  // ----------------------------------------------------------- housekeeping

  /**
   * Collect blobs no row needs (left by an interrupted compose, approval or
   * download), in two passes at least `graceMs` apart (default 24 h); admins,
   * or the node itself at start (`actor` null).
   */
  async collectGarbage(
    actor: Actor | null,
    options: { graceMs?: number; dryRun?: boolean } = {},
  ): Promise<GcReport> {
    const by = actor === null ? 'system' : this.ctx.users.require(actor, 'users:manage').id;
    return await collectGarbage(this.ctx, { ...options, actor: by });
  }

  /**
   * After a restore, or any time: the audit chain and heads, and the blobs
   * the rows need that the store lacks (ids only).
   */
  async integrity(): Promise<{ audit: AuditReport; missingBlobs: string[] }> {
    const { ctx } = this;
    const missingBlobs = await ctx.blobs.missing([...ctx.store.referencedBlobIds()]);
    return { audit: ctx.audit.verify(), missingBlobs };
  }

  /** Disk use of the database and the blob store (no content). */
  diskUse(): Promise<DiskUse> {
    return diskUse(this.ctx);
  }

  /**
   * Reach the relay now: open a session (so the key, its listing and the
   * relay's identity are checked) and read how far the relay's clock is from
   * this machine's. Never throws: a failure is reported by its code.
   */
  async checkRelay(): Promise<RelayCheck> {
    let code: string | null = null;
    try {
      await this.ctx.relay.login();
    } catch (err) {
      code = codeOf(err);
    }
    const offset = this.ctx.relay.relayClockOffset()?.offsetMs ?? null;
    return {
      ok: code === null,
      code,
      clockOffsetMs: offset === null ? null : Math.round(offset),
      // The relay's clock behind ours by more than the tolerance: it refuses our envelopes as from the future.
      clockAhead: offset !== null && -offset > ENVELOPE_LIMITS.maxClockSkewMs,
    };
  }

  // ---------------------------------------------------------- introductions

  /** Whether this node is a point of contact of its trusted manifest (under the key it holds). */
  isPointOfContact(): boolean {
    return isPoc(this.ctx);
  }

  /** Ask a point of contact for a competent authority: a draft (kind introduction-request), sent like any dossier. */
  requestIntroduction(actor: Actor, input: IntroductionRequestInput): string {
    return requestIntroduction(this.ctx, actor, input);
  }

  /** The officer's introduction requests and their outcome (one with `id`). */
  introductionStatus(actor: Actor, id?: string): IntroductionRequestView[] {
    return introductionStatus(this.ctx, actor, id);
  }

  /** Introductions of this node to others, as their subject. */
  introductionsOfSelf(actor: Actor): IntroductionOfSelf[] {
    return introductionsOfSelf(this.ctx, actor);
  }

  /** A point of contact's requests and referrals, with their state. */
  introductionInbox(actor: Actor): IntroductionInboxEntry[] {
    return introductionInbox(this.ctx, actor);
  }

  /** Sign an Introduction and put the answer up for approval (four eyes). */
  issueIntroduction(
    actor: Actor,
    id: string,
    input: IssueInput,
  ): { dossierId: string; introduction: Introduction } {
    return issueIntroduction(this.ctx, actor, id, input);
  }

  /** Refer a request to a peer network's point of contact (up for approval). */
  referIntroduction(
    actor: Actor,
    id: string,
    input: { to: string; remarks?: string },
  ): { dossierId: string } {
    return referIntroduction(this.ctx, actor, id, input);
  }

  /** Decline a request or referral (up for approval). */
  declineIntroduction(
    actor: Actor,
    id: string,
    input: { reason: string; note?: string },
  ): { dossierId: string } {
    return declineIntroduction(this.ctx, actor, id, input);
  }

  /** The introductions this PoC issued and an approver signed off, for `rogatory-network log add`. */
  exportIntroductions(actor: Actor): { introductions: Introduction[] } {
    return exportIntroductions(this.ctx, actor);
  }

  /** Verify and keep an introduction given directly (VERIFICATION_FAILED with its code, nothing stored). */
  receiveIntroduction(actor: Actor, value: unknown): IntroducedRecord {
    return receiveIntroduction(this.ctx, actor, value);
  }

  /** Stop sync and release the database, stores and keys. Does not stop the shared hashing worker (`terminateHashWorker`). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.switchTimer !== undefined) clearTimeout(this.switchTimer);
    await this.stopSync();
    await identitySwitchWritten(this.ctx);
    await closeContext(this.ctx);
  }

  // ------------------------------------------------------------------- keys

  private switchTimer: ReturnType<typeof setTimeout> | undefined;

  /** The node's identity and encryption keys, current, pending and retired (public facts only). */
  async keys(): Promise<NodeKeyInfo[]> {
    this.trustSync.catchUp();
    await this.afterTrust();
    return listNodeKeys(this.ctx);
  }

  /** After trust changed: take up keys another process of this node made, then switch identity if due. */
  private async afterTrust(): Promise<void> {
    if (this.closed) return;
    await takeUpNewKeys(this.ctx);
    this.watchIdentitySwitch();
  }

  /**
   * A new encryption key (sealed under the node passphrase, which must be
   * the node's: PASSPHRASE_INVALID) and its certificate for the secretariat
   * (`rogatory-network authority update --cert`). Audited.
   */
  rotateEncryptionKey(options: {
    passphrase: string;
    validityDays?: number;
  }): Promise<EncryptionRotation> {
    return rotateEncryptionKey(this.ctx, options);
  }

  /**
   * A new identity key and the rotation statement for the secretariat
   * (`authority update --rotation`, with the certificate for `--cert`). The
   * node switches to it by itself once an applied edition lists it and its
   * `effectiveAt` has come. Audited.
   */
  async rotateIdentityKey(options: {
    passphrase: string;
    effectiveAt?: number;
  }): Promise<IdentityRotation> {
    this.trustSync.catchUp();
    return rotateIdentityKey(this.ctx, options);
  }

  /** Switch to a pending identity key now if it is due, else wake up when it will be (no restart needed). */
  private watchIdentitySwitch(): void {
    if (this.closed) return;
    switchIdentityIfDue(this.ctx);
    const at = identitySwitchAt(this.ctx);
    if (this.switchTimer !== undefined) clearTimeout(this.switchTimer);
    this.switchTimer = undefined;
    if (at === undefined) return;
    // setTimeout holds at most 2^31-1 ms: a later time is reached in steps.
    const delay = Math.min(Math.max(at - this.ctx.clock(), 0), 2 ** 31 - 1);
    this.switchTimer = setTimeout(() => this.watchIdentitySwitch(), delay);
    this.switchTimer.unref();
  }
}

/** Unlock a node directory. */
export function openNode(options: OpenNodeOptions): Promise<AuthorityNode> {
  return AuthorityNode.open(options);
}
