/**
 * Issue 14 item 6, first point: a node with a valid session cannot read
 * another node's mailbox (HTTP page or WebSocket subscription) or chunks,
 * nor ack its items, on both relay backends. The victim is ng-agf, holding
 * a dossier from sn-moj; the attackers are gh-ago (no business with it)
 * and sn-moj itself (its sender, not a recipient of its own mailbox item).
 */
import type { RelayClient } from '@rogatory/client';
import { startTestRelays, type TestNetworkOfRelays, type TestRelay } from '@rogatory/relay/testing';
import { nodeClient, sealAndUpload, type Prepared } from '@rogatory/relay/testing/helpers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BACKENDS,
  FrameRecorder,
  bearer,
  loginToken,
  raw,
  type StartedBackend,
} from './support.js';

const SN = 'sn-moj@wacap';
const NG = 'ng-agf@wacap';
const GH = 'gh-ago@wacap';

for (const choice of BACKENDS) {
  describe.runIf(choice.available)(`node isolation at the relay, ${choice.name}`, () => {
    let backend: StartedBackend | undefined;
    let net: TestNetworkOfRelays | undefined;
    let relay: TestRelay;
    let clients: Record<'sn' | 'ng' | 'gh', RelayClient>;
    let tokens: Record<'sn' | 'ng' | 'gh', string>;
    /** In ng-agf's mailbox, never acked by the attacks. */
    let victim: Prepared & { seq: number };
    /** In sn-moj's mailbox at the same sequence number as the victim's. */
    let own: Prepared & { seq: number };

    const victimIds = (): string[] => [
      victim.envelope.body.id,
      victim.envelope.body.dossier.id,
      ...victim.chunks.map((c) => c.id),
    ];
    const leaks = (text: string): string[] => victimIds().filter((id) => text.includes(id));

    beforeAll(async () => {
      const started = await choice.start();
      backend = started;
      const relays = await startTestRelays({ backend: started.kind, networks: ['wacap'] });
      net = relays;
      relay = relays.relays['wacap']!;
      const { world } = relays;
      clients = {
        sn: nodeClient(world, relay.url, SN),
        ng: nodeClient(world, relay.url, NG),
        gh: nodeClient(world, relay.url, GH),
      };
      const login = (a: string): Promise<string> =>
        loginToken(relay.url, a, world.authority(a).identity);
      tokens = { sn: await login(SN), ng: await login(NG), gh: await login(GH) };
      const v = await sealAndUpload(world, clients.sn, { from: SN, to: [NG] });
      await clients.sn.submit(v.envelope);
      const o = await sealAndUpload(world, clients.gh, { from: GH, to: [SN] });
      await clients.gh.submit(o.envelope);
      const vSeq = (await clients.ng.readMailbox(0, 10))[0]!.seq;
      const oSeq = (await clients.sn.readMailbox(0, 10))[0]!.seq;
      victim = { ...v, seq: vSeq };
      own = { ...o, seq: oSeq };
    }, 120_000);

    afterAll(async () => {
      await net?.stop();
      await backend?.stop();
    });

    /** The victim's item is still in its mailbox, whole, and its recipient reads it. */
    const victimIntact = async (): Promise<void> => {
      const items = await relay.backend.readMailbox(NG, 0, 100);
      expect(items.map((i) => i.envelopeId)).toEqual([victim.envelope.body.id]);
      const page = await clients.ng.readMailbox(0, 100);
      expect(page.map((i) => (i.kind === 'envelope' ? i.envelope.body.id : i.kind))).toEqual([
        victim.envelope.body.id,
      ]);
    };

    it("a mailbox page holds only the session's own items, whatever the request names", async () => {
      const base = `${relay.url}/v1/mailbox`;
      const attempts = [
        '',
        '?after=0',
        `?address=${encodeURIComponent(NG)}`,
        `?after=0&limit=100&address=${encodeURIComponent(NG)}`,
        `?recipient=${encodeURIComponent(NG)}`,
        `/${encodeURIComponent(NG)}`,
        `/../mailbox?address=${encodeURIComponent(NG)}`,
      ];
      let answered = 0;
      for (const attacker of ['gh', 'sn'] as const) {
        for (const suffix of attempts) {
          for (const extra of [{}, { 'x-rogatory-address': NG, 'x-forwarded-for': '10.0.0.1' }]) {
            const r = await raw(`${base}${suffix}`, {
              headers: { ...bearer(tokens[attacker]), ...extra },
            });
            expect(leaks(r.text), `${attacker} ${suffix}`).toEqual([]);
            if (r.status === 200) {
              answered++;
              const items = (JSON.parse(r.text) as { items: { seq: number }[] }).items;
              // sn-moj sees its own item only, gh-ago nothing.
              expect(items.length, `${attacker} ${suffix}`).toBe(attacker === 'sn' ? 1 : 0);
            } else {
              expect(r.status, `${attacker} ${suffix}`).toBeGreaterThanOrEqual(400);
              expect(r.status, `${attacker} ${suffix}`).toBeLessThan(500);
              expect(r.code, `${attacker} ${suffix}`).toMatch(/^[A-Z_]+$/);
            }
          }
        }
      }
      // The plain page and the ignored parameters were answered: the check above saw real pages.
      expect(answered).toBeGreaterThan(4);

      // A token is bound to its holder: altered or transplanted tokens are refused, nothing leaks.
      const forged = forgeries(tokens.gh, GH, NG);
      expect(forged.length).toBeGreaterThan(0);
      for (const token of forged) {
        const r = await raw(base, { headers: bearer(token) });
        expect(r.status, token).toBe(401);
        expect(r.code).toBe('UNAUTHENTICATED');
        expect(leaks(r.text)).toEqual([]);
      }
      await victimIntact();
    });

    it("a WebSocket subscription delivers only the session's own items", async () => {
      const ws = relay.url.replace(/^http/, 'ws');
      const watchers = [
        new FrameRecorder(`${ws}/v1/mailbox/ws?token=${encodeURIComponent(tokens.gh)}`),
        new FrameRecorder(
          `${ws}/v1/mailbox/ws?token=${encodeURIComponent(tokens.gh)}&address=${encodeURIComponent(NG)}&after=0`,
        ),
      ];
      const forged = forgeries(tokens.gh, GH, NG).map(
        (t) => new FrameRecorder(`${ws}/v1/mailbox/ws?token=${encodeURIComponent(t)}`),
      );
      try {
        for (const w of watchers) expect(await w.opened).toBe(true);
        // A subscription naming another address: refused or ignored, never honoured.
        watchers[1]!.send(JSON.stringify({ type: 'subscribe', after: 0, address: NG }));
        watchers[1]!.send(JSON.stringify({ type: 'subscribe', after: 0, recipient: NG }));
        for (const w of watchers) w.send(JSON.stringify({ type: 'subscribe', after: 0 }));
        // Something for gh-ago, so the subscriptions are seen to work.
        const mine = await sealAndUpload(net!.world, clients.sn, { from: SN, to: [GH] });
        await clients.sn.submit(mine.envelope);
        for (const w of watchers) {
          expect(await w.until(() => w.frames.some((f) => f.includes(mine.envelope.body.id)))).toBe(
            true,
          );
          expect(leaks(w.frames.join('\n'))).toEqual([]);
        }
        for (const f of forged) {
          await f.opened;
          expect(await f.until(() => f.closed !== undefined)).toBe(true);
          expect(f.frames.map((x) => JSON.parse(x) as unknown)).toEqual([
            { type: 'error', code: 'UNAUTHENTICATED' },
          ]);
        }
        // Drain gh-ago's mailbox again.
        const ghItems = await clients.gh.readMailbox(0, 100);
        await clients.gh.ack(ghItems.map((i) => i.seq));
      } finally {
        await Promise.all([...watchers, ...forged].map((w) => w.close()));
      }
      await victimIntact();
    });

    // Its sender may fetch what it uploaded itself (it holds those bytes anyway); no one else but recipients.
    it("another node's chunks are served to its recipients only", async () => {
      for (const id of [victim.envelope.body.dossier.id, ...victim.chunks.map((c) => c.id)]) {
        for (const attacker of ['gh'] as const) {
          const r = await raw(`${relay.url}/v1/chunks/${id}`, {
            headers: bearer(tokens[attacker]),
          });
          expect(r.status, id).toBe(404);
          expect(r.code).toBe('NOT_FOUND');
          expect(r.text.length).toBeLessThan(200);
        }
        // Spellings that must not reach another id or bypass the check.
        for (const spelled of [id.toUpperCase(), `${id}/`, `${id}%00`, `..%2F${id}`]) {
          const r = await raw(`${relay.url}/v1/chunks/${spelled}`, {
            headers: bearer(tokens.gh),
          });
          expect(r.status, spelled).toBeGreaterThanOrEqual(400);
          expect(r.status, spelled).toBeLessThan(500);
        }
      }
      // Its recipient gets every byte.
      expect(await clients.ng.getChunkBytes(victim.envelope.body.dossier.id)).toEqual(
        victim.sealed,
      );
      await victimIntact();
    });

    it("acks of another mailbox's sequence numbers remove nothing from it (HTTP and WebSocket)", async () => {
      expect(own.seq).toBe(victim.seq);
      const seqs = Array.from({ length: 50 }, (_, i) => i + 1);
      // gh-ago over HTTP: its own mailbox is empty, so nothing is acked anywhere.
      const g = await raw(`${relay.url}/v1/mailbox/ack`, {
        method: 'POST',
        headers: { ...bearer(tokens.gh), 'content-type': 'application/json' },
        body: JSON.stringify({ seqs }),
      });
      expect(g.status).toBe(200);
      await victimIntact();

      // gh-ago over its WebSocket.
      const ws = new FrameRecorder(
        `${relay.url.replace(/^http/, 'ws')}/v1/mailbox/ws?token=${encodeURIComponent(tokens.gh)}`,
      );
      try {
        expect(await ws.opened).toBe(true);
        ws.send(JSON.stringify({ type: 'ack', seqs }));
        expect(await ws.until(() => ws.frames.some((f) => f.includes('"acked"')))).toBe(true);
      } finally {
        await ws.close();
      }
      await victimIntact();

      // sn-moj acks the victim's sequence number: that is its own item's number, and only its own goes.
      const s = await raw(`${relay.url}/v1/mailbox/ack`, {
        method: 'POST',
        headers: { ...bearer(tokens.sn), 'content-type': 'application/json' },
        body: JSON.stringify({ seqs: [victim.seq] }),
      });
      expect(s.status).toBe(200);
      expect(await relay.backend.readMailbox(SN, 0, 100)).toEqual([]);
      await victimIntact();
    });
  });
}

/**
 * Variants of `token` a thief might try: every character flipped in turn
 * at a few places, the holder's address swapped for the victim's in any
 * part that spells it (plain or base64url), and parts of the token cut.
 */
function forgeries(token: string, holder: string, victim: string): string[] {
  const out = new Set<string>();
  const flip = (c: string): string => (c === 'A' ? 'B' : 'A');
  for (const at of [0, Math.floor(token.length / 2), token.length - 1])
    out.add(token.slice(0, at) + flip(token[at]!) + token.slice(at + 1));
  out.add(token.replaceAll(holder, victim));
  const parts = token.split('.');
  parts.forEach((p, i) => {
    let decoded: string;
    try {
      decoded = Buffer.from(p, 'base64url').toString('utf8');
    } catch {
      return;
    }
    if (!decoded.includes(holder)) return;
    const swapped = Buffer.from(decoded.replaceAll(holder, victim), 'utf8').toString('base64url');
    out.add([...parts.slice(0, i), swapped, ...parts.slice(i + 1)].join('.'));
  });
  if (parts.length > 1) out.add(parts.slice(0, -1).join('.'));
  out.add(`${token}x`);
  out.delete(token);
  return [...out];
}
