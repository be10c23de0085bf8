/**
 * The fault matrix runner and its accounting, with fake scenarios: no
 * processes, no network. Exit codes, the exact JSON shape, skips, budgets,
 * and the Ledger's counting rules.
 */
import { existsSync } from 'node:fs';
import { ready } from '@rogatory/protocol';
import { buildTestWorld, sealTestDossier, type TestWorld } from '@rogatory/protocol/testing';
import { issueEvidence, type Envelope } from '@rogatory/protocol';
import { smallAttachment, type TestAttachment } from '@rogatory/relay/testing/helpers';
import { beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from './accounting.js';
import { scenarios as registered } from './registry.js';
import { main, parseArgs, runMatrix } from './run.js';
import type { Scenario, ScenarioResult } from './scenario.js';

const CLEAN: ScenarioResult = {
  sent: 10,
  accepted: 10,
  delivered: 12,
  duplicated: 0,
  lost: 0,
  evidencesOwed: 12,
  evidencesReceived: 12,
};

function fake(name: string, result: ScenarioResult | Scenario['run']): Scenario {
  return {
    name,
    title: `fake ${name}`,
    budgetSeconds: { quick: 5, full: 5 },
    run: typeof result === 'function' ? result : () => Promise.resolve(result),
  };
}

async function cli(
  argv: string[],
  list: readonly Scenario[],
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, list, {
    out: (t) => (out += t),
    err: (t) => (err += t),
  });
  return { code, out, err };
}

describe('fault matrix runner', () => {
  it('exits 0 when every scenario passed, and prints the table', async () => {
    const r = await cli(['--quick'], [fake('a', CLEAN), fake('b', CLEAN)]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^scenario\s+sent\s+accepted\s+delivered\s+duplicated\s+lost/);
    expect(r.out).toMatch(/^a\s+10\s+10\s+12\s+0\s+0\s+12\/12\s+PASS/m);
    expect(r.out).toContain('2 passed, 0 failed, 0 skipped');
    expect(r.err).toContain('[faults] a: fake a');
  });

  it('exits 1 when a scenario lost one, and names it', async () => {
    const r = await cli(['--quick'], [fake('ok', CLEAN), fake('lossy', { ...CLEAN, lost: 1 })]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^lossy\s.*\sFAIL/m);
    expect(r.out).toContain('1 passed, 1 failed (lossy)');
  });

  it('fails on duplicates and on missing evidences too', async () => {
    for (const bad of [{ duplicated: 1 }, { evidencesReceived: 11 }]) {
      const r = await cli(['--json'], [fake('x', { ...CLEAN, ...bad })]);
      expect(r.code, JSON.stringify(bad)).toBe(1);
    }
  });

  it('--json prints exactly the contract shape on stdout, progress on stderr', async () => {
    const r = await cli(
      ['--json', '--quick'],
      [
        fake('a', { ...CLEAN, measured: { rssMb: 81.5 }, notes: ['fine'] }),
        fake('b', { ...CLEAN, lost: 2, measured: {}, notes: [] }),
        { ...fake('c', CLEAN), skip: () => 'redis-server is not installed' },
      ],
    );
    expect(r.code).toBe(1);
    const json = JSON.parse(r.out) as unknown;
    expect(json).toEqual({
      scenarios: {
        a: { ...CLEAN, measured: { rssMb: 81.5 }, notes: ['fine'] },
        b: { ...CLEAN, lost: 2 },
        c: {
          sent: 0,
          accepted: 0,
          delivered: 0,
          duplicated: 0,
          lost: 0,
          evidencesOwed: 0,
          evidencesReceived: 0,
          skipped: 'redis-server is not installed',
        },
      },
    });
    expect(Object.keys((json as { scenarios: { a: object } }).scenarios.a)).toEqual([
      'sent',
      'accepted',
      'delivered',
      'duplicated',
      'lost',
      'evidencesOwed',
      'evidencesReceived',
      'measured',
      'notes',
    ]);
    expect(r.err).toContain('c: skipped (redis-server is not installed)');
  });

  it('a skipped scenario does not fail the run, and is named', async () => {
    const r = await cli([], [fake('a', CLEAN), { ...fake('s', CLEAN), skip: () => 'no redis' }]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^s\s.*\sSKIP/m);
    expect(r.out).toContain('1 passed, 0 failed, 1 skipped (s)');
    expect(r.out).toContain('s: skipped: no redis');
  });

  it('a scenario that throws fails with its message in measured.error; the next still runs', async () => {
    let ran = false;
    const r = await cli(
      ['--json'],
      [
        fake('boom', () => Promise.reject(new Error('relay did not start\nlong log'))),
        fake('after', () => {
          ran = true;
          return Promise.resolve(CLEAN);
        }),
      ],
    );
    expect(r.code).toBe(1);
    expect(ran).toBe(true);
    const boom = (JSON.parse(r.out) as { scenarios: Record<string, ScenarioResult> }).scenarios[
      'boom'
    ]!;
    expect(boom.measured).toEqual({ error: 'relay did not start' });
    expect(boom.lost).toBe(0);
  });

  it('aborts a scenario at its budget and gives up on one that ignores the signal', async () => {
    const obeys: Scenario = {
      ...fake('obeys', CLEAN),
      budgetSeconds: { quick: 0.05, full: 60 },
      run: ({ signal }) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(new Error('stopped'))),
        ),
    };
    const ignores: Scenario = {
      ...fake('ignores', CLEAN),
      budgetSeconds: { quick: 0.05, full: 60 },
      run: () => new Promise(() => undefined),
    };
    const outcome = await runMatrix([obeys, ignores], { quick: true, graceMs: 50 });
    expect(outcome.failed).toEqual(['obeys', 'ignores']);
    expect(outcome.report.scenarios['obeys']!.measured!['error']).toMatch(
      /time budget of 0.05 s spent: stopped/,
    );
    expect(outcome.report.scenarios['ignores']!.measured!['error']).toMatch(
      /did not stop within the grace period/,
    );
  });

  it('gives each scenario a fresh folder, removed afterwards, and the quick flag', async () => {
    const seen: { dir: string; quick: boolean }[] = [];
    const probe = (name: string): Scenario =>
      fake(name, ({ dir, quick }) => {
        seen.push({ dir, quick });
        expect(existsSync(dir)).toBe(true);
        return Promise.resolve(CLEAN);
      });
    await runMatrix([probe('p1'), probe('p2')], { quick: false });
    expect(seen).toHaveLength(2);
    expect(seen[0]!.dir).not.toBe(seen[1]!.dir);
    expect(seen.every((s) => !s.quick && !existsSync(s.dir))).toBe(true);
  });

  it('--only runs the named scenarios; an unknown name or argument is a usage error (2)', async () => {
    const list = [fake('a', CLEAN), fake('b', { ...CLEAN, lost: 1 })];
    const only = await cli(['--only', 'a', '--json'], list);
    expect(only.code).toBe(0);
    expect(Object.keys((JSON.parse(only.out) as { scenarios: object }).scenarios)).toEqual(['a']);
    expect((await cli(['--only=a,b'], list)).code).toBe(1);
    const unknown = await cli(['--only', 'nope'], list);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown scenario(s): nope');
    expect(unknown.out).toBe('');
    expect((await cli(['--fast'], list)).code).toBe(2);
    expect((await cli(['--only'], list)).code).toBe(2);
    expect(parseArgs(['--quick', '--only', 'x,y'])).toEqual({
      json: false,
      quick: true,
      only: ['x', 'y'],
    });
  });

  it('the registry is a plain list of uniquely named scenarios with budgets', () => {
    const names = registered.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(
      expect.arrayContaining(['relay-sigkill', 'redis-kill', 'sentinel-failover']),
    );
    for (const s of registered) {
      expect(s.name).toMatch(/^[a-z0-9-]+$/);
      expect(s.budgetSeconds.quick).toBeLessThanOrEqual(s.budgetSeconds.full);
    }
  });
});

describe('fault matrix accounting (Ledger)', () => {
  let world: TestWorld;
  let attachment: TestAttachment;
  const seal = (from: string, to: string[]): Envelope =>
    sealTestDossier(world, {
      from,
      to,
      attachments: [attachment.manifest],
      createdAt: Date.now(),
    }).envelope;
  const delivery = (envelope: Envelope, recipient: string) =>
    issueEvidence({
      kind: 'delivery',
      envelope,
      issuer: recipient,
      key: world.authority(recipient).identity,
      issuedAt: Date.now(),
      recipient,
    });

  beforeAll(async () => {
    await ready();
    world = buildTestWorld({ now: Date.now() });
    attachment = await smallAttachment();
  });

  it('counts a clean run: everything accepted delivered once, every evidence back', () => {
    const ledger = new Ledger();
    const e1 = seal('sn-moj@wacap', ['ng-agf@wacap', 'gh-ago@wacap']);
    const e2 = seal('ng-agf@wacap', ['sn-moj@wacap']);
    for (const e of [e1, e2]) {
      ledger.send(e);
      ledger.send(e); // a retry counts once
      ledger.accept(e.body.id);
    }
    ledger.deliver('ng-agf@wacap', e1, 1);
    ledger.deliver('ng-agf@wacap', e1, 1); // the same item read again: not a duplicate
    ledger.deliver('gh-ago@wacap', e1, 7);
    ledger.deliver('sn-moj@wacap', e2, 3);
    ledger.evidence('sn-moj@wacap', delivery(e1, 'ng-agf@wacap'));
    ledger.evidence('sn-moj@wacap', delivery(e1, 'gh-ago@wacap'));
    ledger.evidence('sn-moj@wacap', delivery(e1, 'gh-ago@wacap'));
    ledger.evidence('ng-agf@wacap', delivery(e2, 'sn-moj@wacap'));
    expect(ledger.problems()).toEqual([]);
    expect(ledger.result()).toEqual({
      sent: 2,
      accepted: 2,
      delivered: 3,
      duplicated: 0,
      lost: 0,
      evidencesOwed: 3,
      evidencesReceived: 3,
      measured: { evidenceCopies: 1 },
    });
    expect(ledger.progress).toEqual({ sent: 2, accepted: 2 });
  });

  it('counts a loss, a duplicate, a missing evidence and a delivery of something never accepted', () => {
    const ledger = new Ledger();
    const lostOne = seal('sn-moj@wacap', ['ng-agf@wacap']);
    const twice = seal('sn-moj@wacap', ['gh-ago@wacap']);
    const neverAccepted = seal('gh-ago@wacap', ['sn-moj@wacap']);
    for (const e of [lostOne, twice, neverAccepted]) ledger.send(e);
    ledger.accept(lostOne.body.id);
    ledger.accept(twice.body.id);
    ledger.deliver('gh-ago@wacap', twice, 1);
    ledger.deliver('gh-ago@wacap', twice, 2);
    ledger.deliver('sn-moj@wacap', neverAccepted, 5);
    ledger.evidence('sn-moj@wacap', delivery(twice, 'gh-ago@wacap'));
    const r = ledger.result();
    expect(r).toMatchObject({
      sent: 3,
      accepted: 2,
      delivered: 1,
      duplicated: 2,
      lost: 1,
      evidencesOwed: 2,
      evidencesReceived: 1,
    });
    expect(ledger.unaccepted()).toEqual([neverAccepted.body.id]);
    const problems = ledger.problems().join('\n');
    expect(problems).toContain(`${lostOne.body.id}: accepted, never delivered to ng-agf@wacap`);
    expect(problems).toContain(`${twice.body.id}: delivered 2 times to gh-ago@wacap`);
    expect(problems).toContain('delivered, never accepted nor cut off');
    expect(r.notes?.[0]).toMatch(/^\d+ discrepancies, first: /);
  });

  it('a cut-off submission may be delivered to all recipients or none, not some', () => {
    const ledger = new Ledger();
    const all = seal('sn-moj@wacap', ['ng-agf@wacap', 'gh-ago@wacap']);
    const some = seal('sn-moj@wacap', ['ng-agf@wacap', 'gh-ago@wacap']);
    const none = seal('sn-moj@wacap', ['ng-agf@wacap']);
    for (const e of [all, some, none]) {
      ledger.send(e);
      ledger.cutOff(e.body.id);
    }
    ledger.deliver('ng-agf@wacap', all, 1);
    ledger.deliver('gh-ago@wacap', all, 1);
    ledger.deliver('ng-agf@wacap', some, 2);
    const r = ledger.result();
    expect(r.lost).toBe(1);
    expect(r.duplicated).toBe(0);
    expect(r.measured).toMatchObject({ committedWithoutAnswer: 1 });
    expect(ledger.problems()).toEqual([
      `${some.body.id}: cut off, delivered to some recipients only (1/0)`,
    ]);
  });

  it('refuses to count what is not the sent envelope, and extra owed evidences of accepted ones only', () => {
    const ledger = new Ledger();
    const e = seal('sn-moj@wacap', ['ng-agf@wacap']);
    const other = seal('sn-moj@wacap', ['ng-agf@wacap']);
    ledger.send(e);
    ledger.accept(e.body.id);
    ledger.send(other);
    ledger.owe(e.body.id, ['relay-acceptance'], 'ng-agf@wacap');
    ledger.owe(other.body.id, ['relay-acceptance'], 'ng-agf@wacap'); // never accepted: not owed
    ledger.deliver('gh-ago@wacap', e, 1); // not a recipient
    ledger.evidence('ng-agf@wacap', delivery(e, 'ng-agf@wacap')); // not the sender
    expect(ledger.evidenceCounts()).toEqual({ owed: 2, received: 0 });
    const problems = ledger.problems().join('\n');
    expect(problems).toContain('not one of its recipients');
    expect(problems).toContain('not its envelope');
    expect(problems).toContain('owed relay-acceptance ng-agf@wacap never came back');
    expect(ledger.result().duplicated).toBe(1);
  });
});
