import type { RelayClient } from '@rogatory/client';
import type { TrustStore } from '@rogatory/protocol';
import type { BlobStore } from '@rogatory/storage';
import type { AuditAction, AuditLog } from './audit.js';
import type { NodeConfig } from './config.js';
import type { Keyring } from './keyring.js';
import type { LocalCipher } from './local-crypto.js';
import type { NodeDatabase } from './store/db.js';
import type { MailboxStore } from './store/store.js';
import type { UserDirectory } from './users.js';

/** Everything an open node holds; shared by the workflow modules behind `AuthorityNode`. */
export interface NodeContext {
  readonly dir: string;
  readonly config: NodeConfig;
  readonly address: string;
  readonly keys: Keyring;
  readonly trust: TrustStore;
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
