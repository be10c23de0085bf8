/**
 * Errors that name the culprit (issue 13 item 3): which file could not be
 * read and why, which attachment, which folder holds no node. Never the
 * operating system's raw message, a stack or the file's text.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestWorld } from '@rogatory/protocol/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { whyUnreadable } from '../src/files/file-errors.js';
import {
  makeNode,
  mlaRequest,
  offlineWorld,
  randomFile,
  tempDir,
  type NodeFixture,
} from './support/fixtures.js';
import { runCliCaptured } from './support/run-cli.js';

const SN = 'sn-moj@wacap';
const KZ = 'kz-gpo@casc';

describe('CLI errors name the file, attachment or folder at fault', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n: NodeFixture;
  let content: string;
  let attachment: string;

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
    n = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    n.user('officer', 'officer', ['restricted', 'witness-protection', 'sealed']);
    await n.node.close();
    content = join(tmp.path, 'request.json');
    await writeFile(content, JSON.stringify(mlaRequest(world, SN, KZ)));
    attachment = (await randomFile(tmp.path, 'warrant.pdf', 1024)).path;
  }, 60_000);
  afterAll(async () => {
    await tmp.remove();
  });

  const cli = (args: string[]) => runCliCaptured(args);
  const compose = (file: string, attach: string[] = [attachment, attachment]) =>
    cli(['--dir', n.dir, '--user', 'officer', 'compose', '--content', file, '--attach', ...attach]);

  it('a content file that is missing, a folder, empty or not JSON', async () => {
    const missing = join(tmp.path, 'nope.json');
    const r1 = await compose(missing);
    expect(r1.code).toBe(1);
    expect(r1.err).toBe(`rogatory: INPUT_INVALID: the content file ${missing} does not exist\n`);

    const r2 = await compose(tmp.path);
    expect(r2.err).toContain(`the content file ${tmp.path} is a folder, not a file`);

    const empty = join(tmp.path, 'empty.json');
    await writeFile(empty, '  \n');
    expect((await compose(empty)).err).toContain(`the content file ${empty} is empty`);

    const broken = join(tmp.path, 'broken.json');
    await writeFile(broken, '{\n  "kind": "request",\n  "secret name": Jane Doe\n}\n');
    const r4 = await compose(broken);
    expect(r4.code).toBe(1);
    expect(r4.err).toMatch(
      new RegExp(
        `the content file ${broken} is not JSON at line 3, column \\d+ \\(InvalidSymbol\\)\\n`,
      ),
    );
    expect(r4.err).not.toContain('Jane');
  });

  it('an unreadable content file (permission denied), unless running as root', async () => {
    const locked = join(tmp.path, 'locked.json');
    await writeFile(locked, '{}');
    await chmod(locked, 0o000);
    const r = await compose(locked);
    // root reads it anyway: then the empty object fails as content, not as a file.
    if (process.getuid?.() === 0) expect(r.err).toContain('CONTENT_INVALID');
    else {
      expect(r.code).toBe(1);
      expect(r.err).toContain(`${locked} is not readable (permission denied)`);
    }
    expect(whyUnreadable({ code: 'EACCES' })).toBe('is not readable (permission denied)');
  });

  it('an attachment that is missing or a folder, by its path', async () => {
    const gone = join(tmp.path, 'bank-records.csv');
    const r1 = await compose(content, [attachment, gone]);
    expect(r1.code).toBe(1);
    expect(r1.err).toContain(`attachment ${gone} does not exist`);
    const folder = join(tmp.path, 'scans');
    await mkdir(folder);
    const r2 = await compose(content, [folder, attachment]);
    expect(r2.err).toMatch(
      new RegExp(`attachment ${folder} (is a folder, not a file|is not a regular file)`),
    );
    // Nothing was drafted by the failures.
    const inbox = await cli(['--dir', n.dir, '--user', 'officer', '--json', 'inbox', '--all']);
    expect(JSON.parse(inbox.out)).toEqual([]);
  });

  it('a folder that holds no node, and a --json error with its code', async () => {
    const empty = join(tmp.path, 'not-a-node');
    await mkdir(empty);
    const r = await cli(['--dir', empty, '--user', 'officer', 'inbox']);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${empty} holds no node: its node.json does not exist`);
    const j = await cli(['--dir', empty, '--user', 'officer', '--json', 'inbox']);
    expect(JSON.parse(j.out)).toMatchObject({ error: { code: 'NODE_NOT_FOUND' } });
    expect(j.out).not.toMatch(/at .*\.ts:\d+/);
  });

  it('init names the trust file it cannot read', async () => {
    const missingRoot = join(tmp.path, 'wacap-root.json');
    const r = await cli([
      '--dir',
      join(tmp.path, 'new-node'),
      'init',
      '--address',
      SN,
      '--relay-url',
      'http://127.0.0.1:9',
      '--relay-id',
      'relay@wacap',
      '--root',
      missingRoot,
      '--manifest',
      content,
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${missingRoot} does not exist`);
  });
});
