import type { RelayClient } from '@rogatory/client';
import type { Manifest, TrustStore } from '@rogatory/protocol';
import type { BlobStore } from '@rogatory/storage';
import type { AuditAction, AuditLog } from './administration/audit-log.js';
import type { NodeConfig } from './administration/config.js';
import type { Keyring } from './administration/keyring.js';
import type { LocalCipher } from './store/local-cipher.js';
import type { NodeDatabase } from './store/db.js';
import type { MailboxStore } from './store/mailbox-store.js';
import type { UserDirectory } from './administration/users.js';
import type { ManifestRefusal } from './trust/trust-state.js';

/** Everything an open node holds; shared by the workflow modules behind `AuthorityNode`. */
export interface NodeContext {
  readonly dir: string;
  /** Replaced when keys rotate (keys rotate-*, the identity switch). */
  config: NodeConfig;
  readonly address: string;
  keys: Keyring;
  readonly trust: TrustStore;
  /** How the trust store was built at open: its base manifests, and trust-folder editions refused (D4). */
  readonly trustState: {
    readonly base: readonly Manifest[];
    readonly refusals: readonly ManifestRefusal[];
  };
  readonly cipher: LocalCipher;
  readonly db: NodeDatabase;
  readonly store: MailboxStore;
  readonly audit: AuditLog;
  readonly users: UserDirectory;
  readonly blobs: BlobStore;
  readonly relay: RelayClient;
  readonly clock: () => number;
}

/** Progress of a long transfer, for progress bars. */
export interface TransferProgress {
  readonly phase: 'encrypt' | 'upload' | 'download' | 'decrypt';
  /** Local dossier id or file name the transfer is about (never a path). */
  readonly subject: string;
  readonly bytesDone: number;
  readonly bytesTotal: number;
}
export type ProgressListener = (progress: TransferProgress) => void;

/** Audit shorthand: `system` is the node itself (sync, outbox). */
export function audit(
  ctx: NodeContext,
  actor: string,
  action: AuditAction,
  target?: string | null,
  detail?: string | null,
): void {
  ctx.audit.append({
    at: ctx.clock(),
    actor,
    action,
    target: target ?? null,
    detail: detail ?? null,
  });
}

/** The stored chunks of an attachment, in order, read whole one at a time (each at most 16 MiB). */
export async function* storedChunks(
  ctx: NodeContext,
  ids: readonly string[],
): AsyncGenerator<Uint8Array> {
  for (const id of ids) yield await ctx.blobs.getBytes(id);
}
