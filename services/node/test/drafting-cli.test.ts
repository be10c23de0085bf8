/**
 * Drafting without the spec at hand (issue 13 item 1): `draft new` writes a
 * commented template, `draft check` lists every issue by field, `compose`
 * and `edit` read the commented file, `open` renders the content readably.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderContent } from '@rogatory/protocol';
import type { TestWorld } from '@rogatory/protocol/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('draft new, draft check, edit, readable open', () => {
  let world: TestWorld;
  let tmp: { path: string; remove: () => Promise<void> };
  let n: NodeFixture;
  let attachment: string;

  beforeAll(async () => {
    world = await offlineWorld();
    tmp = await tempDir();
    n = await makeNode({ world, address: SN, dir: join(tmp.path, 'sn') });
    n.user('officer', 'officer', ['restricted', 'witness-protection', 'sealed']);
    n.user('approver', 'approver', ['restricted', 'witness-protection', 'sealed']);
    await n.node.close();
    attachment = (await randomFile(tmp.path, 'warrant.pdf', 1024)).path;
  }, 60_000);
  afterAll(async () => {
    await tmp.remove();
  });

  const cli = (args: string[], user = 'officer') =>
    runCliCaptured(['--dir', n.dir, '--user', user, ...args]);

  it('draft new writes a commented template with the parties from the directory', async () => {
    const file = join(tmp.path, 'mla.jsonc');
    const r = await cli(['draft', 'new', '--type', 'mla', '--to', KZ, '--out', file]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`rogatory draft check ${file}`);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('// Case reference (required)');
    expect(text).toMatch(/\/\/ Urgency \(required\)[^\n]*\n\s+"urgency"/);
    expect(text).toContain('FICTITIOUS EXAMPLE');
    expect(text).toContain(`"address": "${KZ}"`);
    const kzName = world.networks['casc']!.manifest.body.authorities.find(
      (a) => a.address === KZ,
    )!.name;
    expect(text).toContain(`"name": "${kzName}"`);
    expect(text).toContain(`"address": "${SN}"`);
    // never overwritten
    const again = await cli(['draft', 'new', '--type', 'mla', '--out', file]);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`${file} exists already`);
    // each type has a template
    for (const type of ['extradition', 'transfer', 'confiscation']) {
      const t = await cli(['draft', 'new', '--type', type]);
      expect(t.code).toBe(0);
      expect(t.out).toContain('"requestType":');
    }
  });

  it('refuses an unknown type, an unknown recipient, and mixing request and answer', async () => {
    const bad = await cli(['draft', 'new', '--type', 'rogatory-letter']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('--type must be one of mla, extradition, transfer, confiscation');
    const unknown = await cli(['draft', 'new', '--type', 'mla', '--to', 'nobody@nowhere']);
    expect(unknown.code).toBe(8);
    expect(unknown.err).toContain('RECIPIENT_UNKNOWN');
    const none = await cli(['draft', 'new']);
    expect(none.err).toContain('give --type');
  });

  it('draft check lists every issue by field, and passes a filled-in file with comments', async () => {
    const broken = join(tmp.path, 'broken.jsonc');
    const content = mlaRequest(world, SN, KZ) as unknown as {
      header: Record<string, unknown>;
    };
    const { caseReference: _dropped, ...header } = content.header;
    await writeFile(
      broken,
      `// a comment\n${JSON.stringify({ ...content, header: { ...header, language: 'english' } }, null, 2)}`,
    );
    const r = await cli(['draft', 'check', broken, '--attachments', '2']);
    expect(r.code).toBe(8);
    expect(r.err).toContain(`${broken} has 2 problem(s) to fix`);
    expect(r.err).toMatch(/\/header\/caseReference: .*Case reference/);
    expect(r.err).toMatch(/\/header\/language: /);

    const good = join(tmp.path, 'good.jsonc');
    await writeFile(
      good,
      `/* filled in */\n// by the officer\n${JSON.stringify(mlaRequest(world, SN, KZ, { caseReference: 'SN-DRAFT-1' }), null, 2)}\n`,
    );
    const ok = await cli(['--json', 'draft', 'check', good, '--attachments', '2']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toEqual({ ok: true, file: good, issues: [] });
    const tooFew = await cli(['draft', 'check', good, '--attachments', '0']);
    expect(tooFew.code).toBe(8);
    expect(tooFew.err).toContain('attachment');

    const notJson = join(tmp.path, 'not.jsonc');
    await writeFile(notJson, '{\n  "kind": "request",\n  oops\n}\n');
    const nj = await cli(['draft', 'check', notJson]);
    expect(nj.code).toBe(1);
    expect(nj.err).toMatch(new RegExp(`${notJson} is not JSON at line 3, column \\d+`));
  });

  it('composes from a commented file, edits the draft, and opens it readably', async () => {
    const file = join(tmp.path, 'compose.jsonc');
    await writeFile(
      file,
      `// drafted by hand\n${JSON.stringify(mlaRequest(world, SN, KZ, { caseReference: 'SN-EDIT-1' }))}`,
    );
    const c = await cli([
      '--json',
      'compose',
      '--content',
      file,
      '--attach',
      attachment,
      attachment,
    ]);
    expect(c.code).toBe(0);
    const id = (JSON.parse(c.out) as { id: string }).id;

    const edited = join(tmp.path, 'edited.jsonc');
    await writeFile(
      edited,
      JSON.stringify(mlaRequest(world, SN, KZ, { caseReference: 'SN-EDIT-2' })),
    );
    const e = await cli(['edit', id, '--content', edited]);
    expect(e.code).toBe(0);
    expect(e.out).toContain(`draft ${id} updated`);
    const shown = await cli(['--json', 'show', id]);
    expect(JSON.parse(shown.out)).toMatchObject({ caseReference: 'SN-EDIT-2' });
    // Dropping the attachments the content refers to is refused, and changes nothing.
    const dropped = await cli(['edit', id, '--content', edited, '--replace-attachments']);
    expect(dropped.code).toBe(8);
    const opened = await cli(['open', id]);
    expect(opened.code).toBe(0);
    expect(opened.out).toContain('Case reference: SN-EDIT-2');
    expect(opened.out).toContain('Offence 1:');
    expect(opened.out).not.toContain('"caseReference"');
    const raw = await cli(['--json', 'open', id]);
    expect(JSON.parse(raw.out)).toMatchObject({
      content: { header: { caseReference: 'SN-EDIT-2' } },
    });
    // A draft that is not one any more cannot be edited.
    expect((await cli(['send', id])).code).toBe(0);
    const late = await cli(['edit', id, '--content', edited]);
    expect(late.code).toBe(7);
  });

  it('draft new --answer-to needs a sent or received request', async () => {
    const file = join(tmp.path, 'a.jsonc');
    await writeFile(file, JSON.stringify(mlaRequest(world, SN, KZ, { caseReference: 'SN-ANS-1' })));
    const c = await cli([
      '--json',
      'compose',
      '--content',
      file,
      '--attach',
      attachment,
      attachment,
    ]);
    const id = (JSON.parse(c.out) as { id: string }).id;
    const r = await cli(['draft', 'new', '--answer-to', id]);
    expect(r.code).toBe(7);
    expect(r.err).toContain('is not a sent or received request');
    const mixed = await cli(['draft', 'new', '--answer-to', id, '--type', 'mla']);
    expect(mixed.err).toContain('not both');
  });

  it('renders every field title of a content, multi-line text indented', () => {
    const content = mlaRequest(world, SN, KZ);
    if (content.kind !== 'request') throw new Error('not a request');
    const text = renderContent({
      ...content,
      header: { ...content.header, summaryOfFacts: 'line one\nline two' },
    });
    expect(text).toContain('Summary of facts: line one\n    line two');
    expect(text).toMatch(/^Kind: request$/m);
    expect(text).toMatch(/^ {2}Persons concerned:$/m);
  });
});
