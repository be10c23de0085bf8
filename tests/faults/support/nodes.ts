import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KDF_LIMITS, type DossierContent } from '@rogatory/protocol';
import { exampleContentFor, type TestWorld } from '@rogatory/protocol/testing';
import { AuthorityNode, initNode, type Actor } from '@rogatory/node';

const PASSPHRASE = 'fault scenario passphrase, never a real one';
const PASSWORD = 'a long enough fault scenario password';

/** An authority node of the test world, opened in this process, with an officer and an approver. */
export interface FaultNode {
  readonly address: string;
  readonly node: AuthorityNode;
  readonly officer: Actor;
  readonly approver: Actor;
}

/**
 * Initialise and open a node for a test-world authority (its deterministic
 * keys, trust pinned to its network's root), talking to `relayUrl`, with its
 * own clock when given (clock-skew scenario).
 */
export async function openFaultNode(options: {
  world: TestWorld;
  address: string;
  dir: string;
  relayUrl?: string;
  clock?: () => number;
}): Promise<FaultNode> {
  const { world, address } = options;
  const network = address.split('@')[1]!;
  const net = world.networks[network]!;
  const authority = world.authority(address);
  await initNode({
    dir: options.dir,
    address,
    relayUrl: options.relayUrl ?? net.relay.url,
    relayId: net.relay.id,
    passphrase: PASSPHRASE,
    pinnedRoot: net.rootRef,
    manifests: [
      net.manifest,
      ...net.manifest.body.peers.map((p) => world.networks[p.network]!.manifest),
    ],
    kdf: KDF_LIMITS.interactive,
    importKeys: { identity: authority.identity, encryption: authority.encryption },
    admin: { username: 'admin', password: PASSWORD },
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const node = await AuthorityNode.open({
    dir: options.dir,
    passphrase: PASSPHRASE,
    relay: { retry: { retries: 1, baseMs: 50, maxMs: 200 }, timeoutMs: 60_000 },
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const admin = node.login('admin', PASSWORD);
  const user = (username: string, role: 'officer' | 'approver'): Actor => {
    node.addUser(admin, { username, password: PASSWORD, role, clearances: ['restricted'] });
    return node.login(username, PASSWORD);
  };
  return {
    address,
    node,
    officer: user('officer', 'officer'),
    approver: user('approver', 'approver'),
  };
}

/** The example MLA request from `from` to `to`, its measures referring to attachment 0 only. */
export function requestContent(world: TestWorld, from: string, to: string): DossierContent {
  const c = exampleContentFor('mla', from, to, world);
  if (c.kind !== 'request' || c.requestType !== 'mla') throw new Error('not an MLA request');
  return {
    ...c,
    mla: {
      ...c.mla,
      measures: c.mla.measures.map(({ attachments, ...m }) => {
        const kept = (attachments ?? []).filter((a) => a.attachment === 0);
        return kept.length > 0 ? { ...m, attachments: kept } : m;
      }),
    },
  };
}

/** Compose, approve and queue a request with one small attachment; returns the local dossier id. */
export async function draftAndApprove(
  world: TestWorld,
  n: FaultNode,
  to: string,
  dir: string,
  /** The file to attach; a one-line text file in `dir` when absent. */
  attachment?: string,
): Promise<string> {
  let file = attachment;
  if (file === undefined) {
    file = join(dir, `attachment-${String(Date.now())}-${String(Math.random()).slice(2)}.txt`);
    await writeFile(file, `scanned page for ${to}`);
  }
  const id = await n.node.compose(n.officer, {
    content: requestContent(world, n.address, to),
    attachments: [{ path: file }],
  });
  n.node.submitForApproval(n.officer, id);
  await n.node.approve(n.approver, id);
  return id;
}
