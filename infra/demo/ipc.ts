/**
 * The commands the demo sends to an authority-node process over its IPC
 * channel (child_process.fork, structured-clone serialisation), and what
 * each one answers. Users are named; the node process logs them in once.
 */
import type {
  AuditReport,
  DossierDetails,
  DossierSummary,
  EvidenceSummary,
  OpenedView,
  Role,
  Clearance,
  SavedAttachment,
  SyncEvent,
  DirectoryEntry,
  IntroductionInboxEntry,
  IntroductionOfSelf,
  IntroductionRequestView,
} from '@rogatory/node';

export interface DemoUser {
  readonly username: string;
  readonly password: string;
  readonly role: Role;
  readonly clearances: readonly Clearance[];
}

export interface Ops {
  /** Unlock the node, log the admin in, create the users. */
  open: {
    args: {
      dir: string;
      passphrase: string;
      admin: { username: string; password: string };
      users: readonly DemoUser[];
    };
    result: { address: string };
  };
  startSync: { args: Record<string, never>; result: null };
  compose: {
    args: {
      user: string;
      content: unknown;
      attachments: readonly { path: string; mediaType?: string }[];
    };
    result: { id: string };
  };
  reply: { args: { user: string; requestId: string; content: unknown }; result: { id: string } };
  submit: { args: { user: string; id: string }; result: null };
  approve: { args: { user: string; id: string }; result: { envelopeId: string } };
  show: { args: { user: string; id: string }; result: DossierDetails };
  evidences: {
    args: { user: string; id: string };
    result: {
      evidences: readonly EvidenceSummary[];
      chain?: {
        ordered: readonly string[];
        submission: string;
        recipients: Readonly<Record<string, string>>;
      };
      error?: string;
    };
  };
  inbox: { args: { user: string }; result: readonly DossierSummary[] };
  read: { args: { user: string; id: string }; result: OpenedView };
  saveAttachments: {
    args: { user: string; id: string; dir: string };
    result: readonly SavedAttachment[];
  };
  verifyAudit: { args: Record<string, never>; result: AuditReport };
  exportBundle: {
    args: { user: string; id: string; dir: string };
    result: { dir: string; files: string[] };
  };
  /** The point-of-contact workflow (services/node README, "Points of contact and introductions"). */
  requestIntroduction: {
    args: {
      user: string;
      to: string;
      country: string;
      requestType: 'mla';
      languages: readonly string[];
      note: string;
      caseReference: string;
    };
    result: { id: string };
  };
  introductionStatus: {
    args: { user: string; id: string };
    result: readonly IntroductionRequestView[];
  };
  introductionInbox: { args: { user: string }; result: readonly IntroductionInboxEntry[] };
  introductionsOfSelf: { args: { user: string }; result: readonly IntroductionOfSelf[] };
  referIntroduction: {
    args: { user: string; id: string; to: string; remarks: string };
    result: { dossierId: string };
  };
  issueIntroduction: {
    args: { user: string; id: string; authority: string; note: string };
    result: { dossierId: string; validUntil: number };
  };
  directory: { args: { user: string; text: string }; result: readonly DirectoryEntry[] };
  /** Stop sync, close the node and exit. */
  close: { args: Record<string, never>; result: null };
}

export type OpName = keyof Ops;

export interface Request<K extends OpName = OpName> {
  readonly id: number;
  readonly op: K;
  readonly args: Ops[K]['args'];
}

export type Reply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly code: string; readonly message: string };

/** Sync events are forwarded as they happen (for the log). */
export interface EventMessage {
  readonly event: SyncEvent;
}
