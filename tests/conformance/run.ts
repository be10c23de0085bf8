import { parseArgs } from 'node:util';
import { ready } from '@rogatory/protocol';
import { buildTestWorld } from '@rogatory/protocol/testing';
import {
  CHECKS,
  CheckFailed,
  checkSessionExpiry,
  openExpirySession,
  type CheckContext,
} from './checks.js';
import { Wire } from './wire.js';

/**
 * Black-box conformance of a relay to docs/relay-api.md:
 *   pnpm conformance --relay http://127.0.0.1:7443 [--max-wait <ms>] [--wait-ready <ms>] [--only <text>]
 * --max-wait: longest wait for a session to expire (default 60 s; longer lifetimes skip that check);
 * --wait-ready: how long to wait for GET /healthz to answer 200 (default 0).
 * The relay must trust the test world of @rogatory/protocol/testing (see
 * tests/conformance/README.md); infra/scripts/conformance-relay.sh starts ours so.
 * Prints one line per behaviour and `N passed, M failed`; exits 1 on any failure.
 */

const USAGE =
  'usage: pnpm conformance --relay <url> [--max-wait <ms>] [--wait-ready <ms>] [--only <text>]';

function reasonOf(err: unknown): string {
  if (err instanceof CheckFailed) return err.message;
  // Unexpected failures (network, a throw in the suite): name them without dumping objects.
  return `unexpected ${err instanceof Error ? `${err.name}: ${err.message}` : 'error'}`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      relay: { type: 'string' },
      'max-wait': { type: 'string', default: '60000' },
      'wait-ready': { type: 'string', default: '0' },
      only: { type: 'string' },
    },
    allowPositionals: false,
  });
  const maxWait = Number(values['max-wait']);
  const waitReady = Number(values['wait-ready']);
  if (
    values.relay === undefined ||
    !/^https?:\/\//.test(values.relay) ||
    ![maxWait, waitReady].every((n) => Number.isInteger(n) && n >= 0)
  ) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  await ready();
  // Keys come from fixed seeds; the manifests the relay holds were signed with the same keys.
  const ctx: CheckContext = {
    wire: new Wire(values.relay),
    world: buildTestWorld({ now: Date.now() }),
  };
  // A relay just started may take a moment to listen: ask /healthz until --wait-ready runs out.
  const readyBy = Date.now() + waitReady;
  let health = await ctx.wire.call({ path: '/healthz' }).catch(() => undefined);
  while (health?.status !== 200 && Date.now() < readyBy) {
    await new Promise((r) => setTimeout(r, 250));
    health = await ctx.wire.call({ path: '/healthz' }).catch(() => undefined);
  }
  if (health?.status !== 200) {
    process.stderr.write(`relay at ${values.relay} does not answer GET /healthz with 200\n`);
    return 2;
  }
  let passed = 0;
  let failed = 0;
  const report = (ok: boolean, name: string, reason?: string) => {
    if (ok) passed++;
    else failed++;
    process.stdout.write(
      `${ok ? 'ok  ' : 'FAIL'}  ${name}${reason === undefined ? '' : `\n      ${reason}`}\n`,
    );
  };
  const only = values.only;
  const expiryName =
    'session: a token is refused once its expiresAt has passed (401 UNAUTHENTICATED)';
  const expiry =
    only === undefined || expiryName.includes(only)
      ? await openExpirySession(ctx).catch((err: unknown) => err)
      : undefined;
  for (const check of CHECKS.filter((c) => only === undefined || c.name.includes(only))) {
    try {
      await check.run(ctx);
      report(true, check.name);
    } catch (err) {
      report(false, check.name, reasonOf(err));
    }
  }
  if (expiry !== undefined) {
    try {
      if (expiry instanceof Error) throw expiry;
      const outcome = await checkSessionExpiry(
        ctx,
        expiry as { token: string; expiresAt: number },
        maxWait,
      );
      if (outcome === 'passed') report(true, expiryName);
      else process.stdout.write(`skip  ${expiryName}\n      ${outcome.skipped}\n`);
    } catch (err) {
      report(false, expiryName, reasonOf(err));
    }
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`conformance: ${reasonOf(err)}\n`);
    process.exit(2);
  },
);
