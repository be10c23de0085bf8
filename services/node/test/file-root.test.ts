import { execFileSync } from 'node:child_process';
import { mkdir, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestWorld } from '@rogatory/protocol/testing';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildNodeApi } from '../src/index.js';
import {
  FillableBlobStore,
  PASSWORD,
  makeNode,
  mlaRequest,
  offlineWorld,
  randomFile,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';
const V1 = '/api/v1';

/** A blob store that runs `onGetBytes` once, the next time a whole object is read (the sealed dossier, while an export runs). */
class RacingBlobStore extends FillableBlobStore {
  onGetBytes: (() => Promise<void>) | undefined;
  override async getBytes(id: string): Promise<Uint8Array> {
    const hook = this.onGetBytes;
    this.onGetBytes = undefined;
    await hook?.();
    return super.getBytes(id);
  }
}

function codeOf(res: LightMyRequestResponse): string {
  return res.json<{ error: { code: string } }>().error.code;
}

/**
 * `--file-root` attacks: a symbolic link planted inside the root must not let
 * the API read a file outside it as an attachment, nor write an export
 * (bundle.json and decrypted attachments) outside it.
 */
describe('REST API file root: symbolic links never lead outside it', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n: NodeFixture;
  let blobs: RacingBlobStore | undefined;
  let app: FastifyInstance;
  let root: string;
  let outside: string;
  let exportable: string;
  const tokens: Record<string, string> = {};

  const as = (username: string) => {
    const headers = { authorization: `Bearer ${tokens[username]!}` };
    return {
      post: (url: string, payload?: object) =>
        app.inject({
          method: 'POST',
          url: `${V1}${url}`,
          headers,
          ...(payload === undefined ? {} : { payload }),
        }),
    };
  };
  const compose = (...paths: string[]) =>
    as('officer').post('/dossiers', {
      content: mlaRequest(world, SN, KZ),
      attachments: paths.map((path) => ({ path })),
    });
  const exportTo = (dir: string) => as('officer').post(`/dossiers/${exportable}/export`, { dir });

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
    root = join(tmp.path, 'root');
    outside = join(tmp.path, 'outside');
    await mkdir(root);
    await mkdir(outside);
    await randomFile(outside, 'secret.pdf', 2000);
    await randomFile(root, 'evidence.pdf', 3000);
    n = await makeNode({
      world,
      address: SN,
      dir: join(tmp.path, 'sn'),
      wrapBlobStore: (inner) => (blobs = new RacingBlobStore(inner)),
    });
    for (const [u, role] of [
      ['officer', 'officer'],
      ['approver-a', 'approver'],
      ['approver-b', 'approver'],
    ] as const)
      n.user(u, role, ['restricted']);
    app = await buildNodeApi({ node: n.node, fileRoot: root });
    for (const u of ['admin', 'officer', 'approver-a']) {
      const res = await app.inject({
        method: 'POST',
        url: `${V1}/login`,
        payload: { username: u, password: PASSWORD },
      });
      tokens[u] = res.json<{ token: string }>().token;
    }
    // A sealed dossier with one attachment, to export.
    const created = await compose('evidence.pdf');
    expect(created.statusCode).toBe(201);
    exportable = created.json<{ id: string }>().id;
    expect((await as('officer').post(`/dossiers/${exportable}/submit`)).statusCode).toBe(200);
    expect((await as('approver-a').post(`/dossiers/${exportable}/approve`)).statusCode).toBe(200);
  });

  afterAll(async () => {
    await app.close();
    await n.node.close();
    await tmp.remove();
  });

  describe('attachments', () => {
    it('a file inside the root is read (relative or absolute path)', async () => {
      expect((await compose('evidence.pdf', join(root, 'evidence.pdf'))).statusCode).toBe(201);
    });

    it('a symbolic link as the file name, pointing outside, is refused', async () => {
      await symlink(join(outside, 'secret.pdf'), join(root, 'innocent.pdf'));
      const res = await compose('innocent.pdf');
      expect(res.statusCode).toBe(403);
      expect(codeOf(res)).toBe('PATH_REFUSED');
    });

    it('a symbolic link as a directory on the way, pointing outside, is refused', async () => {
      await symlink(outside, join(root, 'shared'));
      const res = await compose('shared/secret.pdf');
      expect(res.statusCode).toBe(403);
      expect(codeOf(res)).toBe('PATH_REFUSED');
    });

    it('a link that stays inside the root is refused as well, and so is a path that leaves it', async () => {
      await symlink(join(root, 'evidence.pdf'), join(root, 'alias.pdf'));
      for (const path of ['alias.pdf', '../outside/secret.pdf', join(outside, 'secret.pdf'), '.']) {
        const res = await compose(path);
        expect(res.statusCode).toBe(403);
        expect(codeOf(res)).toBe('PATH_REFUSED');
      }
    });

    it('a directory or a FIFO is not an attachment (and opening the FIFO does not hang)', async () => {
      await mkdir(join(root, 'a-directory'));
      execFileSync('mkfifo', [join(root, 'a-fifo')]);
      for (const path of ['a-directory', 'a-fifo']) {
        const res = await compose(path);
        expect(res.statusCode).toBe(403);
        expect(codeOf(res)).toBe('PATH_REFUSED');
      }
    });
  });

  describe('exports', () => {
    it('exports into new directories inside the root', async () => {
      const res = await exportTo('exports/2026/case-1');
      expect(res.statusCode).toBe(200);
      const dir = join(root, 'exports', '2026', 'case-1');
      expect(res.json<{ dir: string }>().dir).toBe(dir);
      expect((await readdir(dir)).sort()).toEqual(['attachments', 'bundle.json']);
      expect(await readdir(join(dir, 'attachments'))).toEqual(['0-evidence.pdf']);
    });

    it('an export directory that is itself a link to outside is refused; nothing is written there', async () => {
      await mkdir(join(outside, 'drop'));
      await symlink(join(outside, 'drop'), join(root, 'drop'));
      const res = await exportTo('drop');
      expect(res.statusCode).toBe(403);
      expect(codeOf(res)).toBe('PATH_REFUSED');
      expect(await readdir(join(outside, 'drop'))).toEqual([]);
    });

    it('a link at a component the export creates parents under is refused; nothing is created outside', async () => {
      await symlink(outside, join(root, 'out-link'));
      const res = await exportTo('out-link/new/bundle');
      expect(res.statusCode).toBe(403);
      expect(codeOf(res)).toBe('PATH_REFUSED');
      expect((await readdir(outside)).sort()).toEqual(['drop', 'secret.pdf']);
    });

    it('attachments/ planted as a link to outside while the export runs is refused; no plaintext leaves the root', async () => {
      await mkdir(join(outside, 'loot'));
      blobs!.onGetBytes = async () => {
        await mkdir(join(root, 'race'), { recursive: true });
        await symlink(join(outside, 'loot'), join(root, 'race', 'attachments'), 'dir');
      };
      const res = await exportTo('race');
      expect(blobs!.onGetBytes).toBeUndefined();
      expect(res.statusCode).toBe(403);
      expect(codeOf(res)).toBe('PATH_REFUSED');
      expect(await readdir(join(outside, 'loot'))).toEqual([]);
    });

    it('those who may not export cannot create directories in the root', async () => {
      const res = await as('admin').post(`/dossiers/${exportable}/export`, { dir: 'by-admin' });
      expect(res.statusCode).toBe(403);
      expect(codeOf(res)).toBe('NOT_AUTHORISED');
      expect(await readdir(root)).not.toContain('by-admin');
    });
  });

  it('the node itself refuses to decrypt attachments through a link at the destination directory', async () => {
    const officer = n.node.login('officer', PASSWORD);
    await mkdir(join(outside, 'saved'));
    await symlink(join(outside, 'saved'), join(root, 'saved'));
    await expect(
      n.node.saveAttachments(officer, exportable, join(root, 'saved')),
    ).rejects.toMatchObject({ code: 'PATH_REFUSED' });
    expect(await readdir(join(outside, 'saved'))).toEqual([]);
  });
});
