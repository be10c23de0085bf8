/**
 * One authority node as its own process: started by infra/demo/demo.ts with
 * child_process.fork, it opens the node directory, runs live sync with its
 * relay and answers the commands of ./ipc.ts over the IPC channel. It exits
 * when told to close, on SIGINT/SIGTERM, or when its parent goes away.
 */
import { terminateHashWorker } from '@rogatory/protocol/node';
import { AuthorityNode, type Actor } from '@rogatory/node';
import type { EventMessage, Ops, OpName, Reply, Request } from './ipc.js';

let node: AuthorityNode | undefined;
let admin: Actor | undefined;
const actors = new Map<string, Actor>();
let closing: Promise<void> | undefined;

function send(message: Reply | EventMessage): void {
  if (process.connected) process.send?.(message);
}

function requireNode(): AuthorityNode {
  if (!node) throw Object.assign(new Error('the node is not open'), { code: 'NOT_OPEN' });
  return node;
}

function actor(username: string): Actor {
  const a = actors.get(username);
  if (!a) throw Object.assign(new Error(`no user ${username}`), { code: 'NO_SUCH_USER' });
  return a;
}

type Handlers = {
  [K in OpName]: (args: Ops[K]['args']) => Promise<Ops[K]['result']> | Ops[K]['result'];
};

const handlers: Handlers = {
  async open(args) {
    node = await AuthorityNode.open({
      dir: args.dir,
      passphrase: args.passphrase,
      relay: { timeoutMs: 30_000 },
    });
    admin = node.login(args.admin.username, args.admin.password);
    for (const u of args.users) {
      node.addUser(admin, {
        username: u.username,
        password: u.password,
        role: u.role,
        clearances: [...u.clearances],
      });
      actors.set(u.username, node.login(u.username, u.password));
    }
    return { address: node.identity().address };
  },
  startSync() {
    requireNode().startSync((event) => send({ event }));
    return null;
  },
  async compose(args) {
    return {
      id: await requireNode().compose(actor(args.user), {
        content: args.content,
        attachments: args.attachments,
      }),
    };
  },
  async reply(args) {
    return {
      id: await requireNode().reply(actor(args.user), args.requestId, { content: args.content }),
    };
  },
  submit(args) {
    requireNode().submitForApproval(actor(args.user), args.id);
    return null;
  },
  async approve(args) {
    return { envelopeId: await requireNode().approve(actor(args.user), args.id) };
  },
  show(args) {
    return requireNode().show(actor(args.user), args.id);
  },
  evidences(args) {
    const view = requireNode().evidences(actor(args.user), args.id);
    return {
      evidences: view.evidences.map((e) => ({
        kind: e.body.kind,
        issuer: e.body.issuer,
        recipient: e.body.recipient,
        issuedAt: e.body.issuedAt,
        reason: e.body.reason,
      })),
      ...(view.chain ? { chain: view.chain } : {}),
      ...(view.error ? { error: view.error } : {}),
    };
  },
  inbox(args) {
    return requireNode().inbox(actor(args.user));
  },
  read(args) {
    return requireNode().open(actor(args.user), args.id);
  },
  saveAttachments(args) {
    return requireNode().saveAttachments(actor(args.user), args.id, args.dir);
  },
  verifyAudit() {
    if (!admin) throw Object.assign(new Error('the node is not open'), { code: 'NOT_OPEN' });
    return requireNode().verifyAudit(admin);
  },
  exportBundle(args) {
    return requireNode().exportBundle(actor(args.user), args.id, args.dir);
  },
  requestIntroduction(args) {
    const { user, ...input } = args;
    return { id: requireNode().requestIntroduction(actor(user), { ...input, submit: true }) };
  },
  introductionStatus(args) {
    return requireNode().introductionStatus(actor(args.user), args.id);
  },
  introductionInbox(args) {
    return requireNode().introductionInbox(actor(args.user));
  },
  introductionsOfSelf(args) {
    return requireNode().introductionsOfSelf(actor(args.user));
  },
  referIntroduction(args) {
    return requireNode().referIntroduction(actor(args.user), args.id, {
      to: args.to,
      remarks: args.remarks,
    });
  },
  issueIntroduction(args) {
    const { dossierId, introduction } = requireNode().issueIntroduction(actor(args.user), args.id, {
      authority: args.authority,
      note: args.note,
    });
    return { dossierId, validUntil: introduction.body.validUntil };
  },
  directory(args) {
    return requireNode().directory(actor(args.user), { text: args.text });
  },
  async close() {
    await shutdown();
    return null;
  },
};

function shutdown(): Promise<void> {
  closing ??= (async () => {
    try {
      await node?.close();
    } finally {
      await terminateHashWorker();
    }
  })();
  return closing;
}

async function handle(request: Request): Promise<void> {
  const run = handlers[request.op] as (args: unknown) => unknown;
  try {
    const result = await run(request.args);
    send({ id: request.id, ok: true, result });
  } catch (err) {
    const code =
      typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
        ? err.code
        : 'INTERNAL';
    send({
      id: request.id,
      ok: false,
      code,
      message: err instanceof Error ? err.message : String(err),
    });
  }
  if (request.op === 'close') {
    process.disconnect();
    process.exit(0);
  }
}

process.on('message', (message: Request) => {
  void handle(message);
});

const exitNow = (code: number) => () => {
  const timer = setTimeout(() => process.exit(code), 5000);
  timer.unref();
  shutdown().then(
    () => process.exit(code),
    () => process.exit(code),
  );
};
process.on('disconnect', exitNow(1));
process.on('SIGINT', exitNow(130));
process.on('SIGTERM', exitNow(143));
