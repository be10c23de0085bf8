import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ready } from '@rogatory/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishEdition } from '../src/index.js';
import { NOW, PASSPHRASE, cli, memberFile, relayKeyFile, tempDir, type Run } from './support.js';

let tmp: { path: string; remove: () => Promise<void> };
beforeAll(async () => {
  await ready();
  tmp = await tempDir();
});
afterAll(async () => {
  await tmp.remove();
});

const errorOf = (run: Run) => run.json<{ error: { code: string } }>().error;

async function populated(name: string): Promise<string> {
  const dir = join(tmp.path, name);
  expect((await cli(['--dir', dir, 'init', '--network', name, '--kdf', 'interactive'])).code).toBe(
    0,
  );
  const relay = await relayKeyFile(dir, 'relay-key');
  const r = await cli([
    '--dir',
    dir,
    'relay',
    'add',
    '--key',
    relay.file,
    '--url',
    `https://relay.${name}.example`,
  ]);
  expect(r.code, r.err).toBe(0);
  const sn = await memberFile(tmp.path, `sn@${name}`);
  const a = await cli([
    '--dir',
    dir,
    'authority',
    'add',
    '--from',
    sn.file,
    '--name',
    'MoJ',
    '--country',
    'SN',
    '--competences',
    'mla',
    '--languages',
    'fr',
  ]);
  expect(a.code, a.err).toBe(0);
  return dir;
}

describe('publish and the log', () => {
  it('appends the edition, writes a publication, and log show / log verify / verify agree', async () => {
    const dir = await populated('pubone');
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
    expect((await readdir(join(dir, 'publications'))).sort()).toEqual([
      '000000000001.json',
      '000000000002.json',
    ]);
    const second = JSON.parse(
      await readFile(join(dir, 'publications', '000000000002.json'), 'utf8'),
    );
    expect(second.previous.size).toBe(1);
    const show = (await cli(['--dir', dir, '--json', 'log', 'show'])).json<{ size: number }>();
    expect(show.size).toBe(2);
    const verified = await cli(['--dir', dir, '--json', 'log', 'verify']);
    expect(verified.code, verified.out).toBe(0);
    expect((await cli(['--dir', dir, '--json', 'verify'])).code).toBe(0);
    expect(errorOf(await cli(['--dir', dir, '--json', 'publish', '--statements-only'])).code).toBe(
      'NOTHING_TO_PUBLISH',
    );
  });

  it('revoke queues a root-signed revocation logged before the next edition', async () => {
    const dir = await populated('pubrev');
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
    const revoked = await cli(['--dir', dir, 'revoke', 'sn@pubrev', '--reason', 'superseded']);
    expect(revoked.code, revoked.err).toBe(0);
    const diff = (await cli(['--dir', dir, '--json', 'diff'])).json<{ queued: unknown[] }>();
    expect(diff.queued.length).toBe(2);
    const pub = (await cli(['--dir', dir, '--json', 'publish'])).json<{
      publication: { entries: { kind: string }[] };
    }>();
    expect(pub.publication.entries.map((e) => e.kind)).toEqual([
      'revocation',
      'revocation',
      'manifest',
    ]);
    expect((await cli(['--dir', dir, '--json', 'log', 'verify'])).code).toBe(0);
  });

  it('refuses statements that do not verify, and a publish from a stale draft', async () => {
    const dir = await populated('pubbad');
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
    const junk = join(tmp.path, 'junk.json');
    await writeFile(junk, JSON.stringify({ body: { type: 'key-rotation' }, signature: {} }));
    const bad = await cli(['--dir', dir, '--json', 'log', 'add', junk]);
    expect(errorOf(bad).code).toBe('STATEMENT_INVALID');
    expect(bad.code).toBe(2);
    const draft = JSON.parse(await readFile(join(dir, 'draft.json'), 'utf8'));
    await writeFile(join(dir, 'draft.json'), JSON.stringify({ ...draft, basedOn: null }));
    expect(errorOf(await cli(['--dir', dir, '--json', 'publish'])).code).toBe('DRAFT_STALE');
    expect(
      errorOf(
        await cli([
          '--dir',
          dir,
          '--json',
          'authority',
          'update',
          'nobody@pubbad',
          '--drop-key',
          'x',
        ]),
      ).code,
    ).toBe('MEMBER_NOT_FOUND');
  });

  it('finishes a publish interrupted after the log append at the next command', async () => {
    for (const crash of ['journal', 'append', 'edition'] as const) {
      const dir = await populated(`crash-${crash}`);
      await expect(
        publishEdition({ dir, passphrase: PASSPHRASE, validDays: 90, clock: () => NOW, crash }),
      ).rejects.toThrow(/injected crash/);
      const status = await cli(['--dir', dir, '--json', 'status']);
      expect(status.code, status.out).toBe(0);
      expect(await readdir(join(dir, 'editions'))).toEqual(['000001.json']);
      expect(await readdir(join(dir, 'publications'))).toEqual(['000000000001.json']);
      expect(status.json<{ log: { size: number } }>().log.size).toBe(1);
      expect((await cli(['--dir', dir, '--json', 'log', 'verify'])).code).toBe(0);
      expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
    }
  });

  it('log verify finds a tampered publication file', async () => {
    const dir = await populated('tamper');
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
    const file = join(dir, 'publications', '000000000001.json');
    const p = JSON.parse(await readFile(file, 'utf8')) as {
      entries: { statement: { body: { validUntil: number } } }[];
    };
    p.entries[0]!.statement.body.validUntil += 1;
    await writeFile(file, JSON.stringify(p));
    const run = await cli(['--dir', dir, '--json', 'log', 'verify']);
    expect(errorOf(run).code).toBe('LOG_INVALID');
    expect(run.code).toBe(2);
  });
});

describe('push', () => {
  it('posts the publications a relay lacks, in order, and remembers them; a refusal is typed', async () => {
    const { default: Fastify } = await import('fastify');
    const { PublicationSchema, validator } = await import('@rogatory/protocol');
    const check = validator(PublicationSchema, 'publication');
    const dir = await populated('pushed');
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
    expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
    let held = 0;
    let refuse = false;
    const app = Fastify();
    app.get('/v1/trust/networks', () => ({
      networks: held === 0 ? [] : [{ network: 'pushed', size: held, edition: 1 }],
    }));
    app.post('/v1/trust/publications', async (req, reply) => {
      if (refuse)
        return reply.code(422).send({ error: { code: 'PUBLICATION_OUT_OF_ORDER', message: 'x' } });
      const p = check.parse(req.body);
      held = p.entries.at(-1)!.index + 1;
      return {
        network: 'pushed',
        size: held,
        edition: 1,
        cosigners: [{ name: 'relay@casc', time: 1 }],
      };
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const run = await cli(['--dir', dir, '--json', 'push', '--relay', url]);
      expect(run.code, run.out).toBe(0);
      expect(run.json<{ pushed: unknown[] }>().pushed.length).toBe(2);
      expect(held).toBe(2);
      const again = await cli(['--dir', dir, '--json', 'push', '--relay', url]);
      expect(again.json<{ pushed: unknown[] }>().pushed.length).toBe(0);
      expect((await cli(['--dir', dir, 'publish'])).code).toBe(0);
      refuse = true;
      const refused = await cli(['--dir', dir, '--json', 'push', '--relay', url]);
      expect(refused.code).toBe(10);
      expect(refused.json<{ error: { code: string; detail: string } }>().error).toMatchObject({
        code: 'RELAY_REJECTED',
        detail: 'PUBLICATION_OUT_OF_ORDER',
      });
    } finally {
      await app.close();
    }
    const down = await cli(['--dir', dir, '--json', 'push', '--relay', url]);
    expect(errorOf(down).code).toBe('RELAY_UNREACHABLE');
  });
});
