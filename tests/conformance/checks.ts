import {
  ENVELOPE_LIMITS,
  canonicalBytes,
  envelopeHash,
  generateEncryptionKeyPair,
  issueEvidence,
  keyRef,
  newEnvelopeId,
  sealDossier,
  signEnvelope,
  sha256,
  toHex,
  utf8,
  verifyEvidence,
  type DossierContent,
  type Envelope,
  type Evidence,
  type SealedResult,
} from '@rogatory/protocol';
import {
  encryptTestAttachment,
  exampleContentFor,
  sealTestDossier,
  testSeed,
  type TestWorld,
} from '@rogatory/protocol/testing';
import WebSocket from 'ws';
import { Wire, codeOf, type Answer } from './wire.js';

/**
 * The behaviours and refusals of docs/relay-api.md, checked from outside.
 * Each check is independent: it logs in afresh (so a short session lifetime
 * does not get in the way) and creates its own envelopes and chunks.
 */

export const SENDER = 'sn-moj@wacap';
export const RECIPIENT = 'gh-ago@wacap';
export const BYSTANDER = 'ng-agf@wacap';
/** An address of the relay's network that its manifest does not list. */
export const STRANGER = 'xx-nobody@wacap';

export interface CheckContext {
  readonly wire: Wire;
  readonly world: TestWorld;
}

export interface Check {
  readonly name: string;
  run(ctx: CheckContext): Promise<void>;
}

export class CheckFailed extends Error {
  override readonly name = 'CheckFailed';
}

export function expect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CheckFailed(message);
}

function expectRefusal(a: Answer, status: number, code: string, what: string): void {
  expect(
    a.status === status && codeOf(a) === code,
    `${what}: expected ${status} ${code}, got ${a.status} ${codeOf(a) ?? '(no error code)'}`,
  );
  const error = (a.json as { error: Record<string, unknown> }).error;
  expect(typeof error['message'] === 'string', `${what}: error.message is not a string`);
  expect(
    error['detail'] === undefined ||
      (typeof error['detail'] === 'string' && /^[A-Z_]+$/.test(error['detail'])),
    `${what}: error.detail is not a code`,
  );
}

const key = (ctx: CheckContext, address: string) => ctx.world.authority(address).identity;
const session = async (ctx: CheckContext, address: string) =>
  (await ctx.wire.login(address, key(ctx, address))).token;

/** A sealed dossier from SENDER with one small attachment, and every chunk it references. */
interface Sent extends SealedResult {
  readonly chunks: readonly { id: string; bytes: Uint8Array }[];
}

async function seal(
  ctx: CheckContext,
  options: { to?: string; envelopeId?: string; createdAt?: number; expiresAt?: number } = {},
): Promise<Sent> {
  // The example requests refer to an attachment, so every test dossier carries one.
  const attachment = await encryptTestAttachment(crypto.getRandomValues(new Uint8Array(1024)));
  const sealed = sealTestDossier(ctx.world, {
    from: SENDER,
    to: [options.to ?? RECIPIENT],
    attachments: [attachment.manifest],
    createdAt: options.createdAt ?? Date.now(),
    ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
    ...(options.envelopeId === undefined ? {} : { envelopeId: options.envelopeId }),
  });
  return {
    ...sealed,
    chunks: [{ id: sealed.envelope.body.dossier.id, bytes: sealed.sealed }, ...attachment.chunks],
  };
}

const chunkIdOf = (bytes: Uint8Array) => toHex(sha256(bytes));

async function upload(ctx: CheckContext, token: string, bytes: Uint8Array): Promise<Answer> {
  return ctx.wire.call({
    method: 'PUT',
    path: `/v1/chunks/${chunkIdOf(bytes)}`,
    token,
    body: bytes,
    contentType: 'application/octet-stream',
  });
}

/** Upload every chunk and submit the envelope; returns the answer to the submission. */
async function submit(
  ctx: CheckContext,
  token: string,
  sent: { envelope: Envelope; chunks: readonly { bytes: Uint8Array }[] },
): Promise<Answer> {
  for (const chunk of sent.chunks) {
    const up = await upload(ctx, token, chunk.bytes);
    expect(up.status === 200 || up.status === 201, `upload of a chunk answered ${up.status}`);
  }
  return ctx.wire.call({ path: '/v1/envelopes', token, body: canonicalBytes(sent.envelope) });
}

function evidenceOf(ctx: CheckContext, envelope: Envelope, a: Answer, kind: string): Evidence {
  const value = (a.json as { evidence?: unknown } | undefined)?.evidence;
  expect(value !== undefined, `no evidence in the answer (status ${a.status})`);
  let ev: Evidence;
  try {
    ev = verifyEvidence(envelope, value, ctx.world.trustFor('wacap'));
  } catch (err) {
    throw new CheckFailed(
      `the evidence does not verify (${(err as { code?: string }).code ?? 'error'})`,
    );
  }
  expect(ev.body.kind === kind, `evidence kind ${ev.body.kind}, expected ${kind}`);
  // A rejection states the refusal's code as its reason.
  if (kind === 'submission-rejection')
    expect(
      ev.body.reason?.code === codeOf(a),
      `rejection reason ${ev.body.reason?.code ?? 'none'} differs from the error code`,
    );
  return ev;
}

async function mailbox(
  ctx: CheckContext,
  token: string,
  query = '',
): Promise<{ seq: number; kind: string; envelope?: Envelope; evidence?: Evidence }[]> {
  const a = await ctx.wire.call({ path: `/v1/mailbox${query}`, token });
  expect(a.status === 200, `GET /v1/mailbox${query} answered ${a.status}`);
  return (
    a.json as { items: { seq: number; kind: string; envelope?: Envelope; evidence?: Evidence }[] }
  ).items;
}

/** Ack everything waiting in a mailbox, so that a check sees only its own items. */
async function drain(ctx: CheckContext, token: string): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const items = await mailbox(ctx, token, '?after=0&limit=1000');
    if (items.length === 0) return;
    const a = await ctx.wire.call({
      path: '/v1/mailbox/ack',
      token,
      body: { seqs: items.map((i) => i.seq) },
    });
    expect(a.status === 200, `ack answered ${a.status}`);
  }
  throw new CheckFailed('the mailbox does not empty');
}

async function findEnvelopeItem(ctx: CheckContext, token: string, envelopeId: string) {
  for (let i = 0; i < 50; i++) {
    const item = (await mailbox(ctx, token, '?after=0&limit=1000')).find(
      (it) => it.kind === 'envelope' && it.envelope?.body.id === envelopeId,
    );
    if (item) return item;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new CheckFailed(`envelope ${envelopeId} never reached the recipient's mailbox`);
}

/** A WebSocket on the mailbox, collecting frames. */
async function openSocket(
  ctx: CheckContext,
  token: string,
): Promise<{
  ws: WebSocket;
  frames: Record<string, unknown>[];
  closed: Promise<number>;
  next: (pred: (f: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
}> {
  const url = new URL(`/v1/mailbox/ws?token=${encodeURIComponent(token)}`, ctx.wire.base);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(url);
  const frames: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data: Buffer) => {
    frames.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = async (pred: (f: Record<string, unknown>) => boolean) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = frames.find(pred);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new CheckFailed('the expected WebSocket frame did not come within 10 s');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };
  return { ws, frames, closed, next };
}

export const CHECKS: readonly Check[] = [
  // ------------------------------------------------------------------ sessions
  {
    name: 'session: a member gets a challenge (32 bytes, base64url) naming the relay, with an expiry',
    async run(ctx) {
      const c = await ctx.wire.challenge(SENDER);
      expect(/^[A-Za-z0-9_-]{43}$/.test(c.challenge), 'challenge is not 32 bytes in base64url');
      expect(c.relay === ctx.world.networks['wacap']!.relay.id, `challenge names relay ${c.relay}`);
      expect(c.expiresAt > Date.now(), 'challenge already expired');
    },
  },
  {
    name: 'session: challenges are issued to non-members too (membership is checked at login)',
    async run(ctx) {
      const a = await ctx.wire.call({ path: '/v1/session/challenge', body: { address: STRANGER } });
      expect(a.status === 200, `answered ${a.status}`);
    },
  },
  {
    name: 'session: a member signing the challenge gets a bearer token bound to its address',
    async run(ctx) {
      const s = await ctx.wire.login(SENDER, key(ctx, SENDER));
      expect(
        s.address === SENDER && typeof s.token === 'string' && s.expiresAt > Date.now(),
        'unexpected session answer',
      );
      const items = await ctx.wire.call({ path: '/v1/mailbox', token: s.token });
      expect(items.status === 200, `the token is refused (${items.status})`);
    },
  },
  {
    name: 'session: a bad signature is refused (403 SIGNATURE_INVALID)',
    async run(ctx) {
      const c = await ctx.wire.challenge(SENDER);
      const good = Wire.answer(c, SENDER, key(ctx, SENDER));
      const other = Wire.answer(c, SENDER, key(ctx, SENDER), 1);
      const a = await ctx.wire.call({
        path: '/v1/session',
        body: { body: good.body, signature: other.signature },
      });
      expectRefusal(a, 403, 'SIGNATURE_INVALID', 'bad signature');
    },
  },
  {
    name: 'session: a challenge opens one session only (401 CHALLENGE_INVALID when reused)',
    async run(ctx) {
      const c = await ctx.wire.challenge(SENDER);
      const request = Wire.answer(c, SENDER, key(ctx, SENDER));
      expect(
        (await ctx.wire.call({ path: '/v1/session', body: request })).status === 200,
        'first login refused',
      );
      expectRefusal(
        await ctx.wire.call({ path: '/v1/session', body: request }),
        401,
        'CHALLENGE_INVALID',
        'reused challenge',
      );
    },
  },
  {
    name: 'session: a refused login uses up its challenge too',
    async run(ctx) {
      const c = await ctx.wire.challenge(SENDER);
      const good = Wire.answer(c, SENDER, key(ctx, SENDER));
      const bad = {
        body: good.body,
        signature: Wire.answer(c, SENDER, key(ctx, SENDER), 1).signature,
      };
      expectRefusal(
        await ctx.wire.call({ path: '/v1/session', body: bad }),
        403,
        'SIGNATURE_INVALID',
        'bad signature',
      );
      expectRefusal(
        await ctx.wire.call({ path: '/v1/session', body: good }),
        401,
        'CHALLENGE_INVALID',
        'corrected answer with the same challenge',
      );
    },
  },
  {
    name: 'session: a non-member is refused (403 SENDER_UNKNOWN)',
    async run(ctx) {
      const c = await ctx.wire.challenge(STRANGER);
      const a = await ctx.wire.call({
        path: '/v1/session',
        body: Wire.answer(c, STRANGER, key(ctx, SENDER)),
      });
      expectRefusal(a, 403, 'SENDER_UNKNOWN', 'non-member');
    },
  },
  {
    name: 'session: issuedAt further than the clock skew bound (5 minutes) is refused (401 CHALLENGE_INVALID)',
    async run(ctx) {
      const skew = ENVELOPE_LIMITS.maxClockSkewMs;
      for (const issuedAt of [Date.now() - skew - 60_000, Date.now() + skew + 60_000]) {
        const c = await ctx.wire.challenge(SENDER);
        const a = await ctx.wire.call({
          path: '/v1/session',
          body: Wire.answer(c, SENDER, key(ctx, SENDER), issuedAt),
        });
        expectRefusal(a, 401, 'CHALLENGE_INVALID', 'skewed issuedAt');
      }
      const c = await ctx.wire.challenge(SENDER);
      const within = await ctx.wire.call({
        path: '/v1/session',
        body: Wire.answer(c, SENDER, key(ctx, SENDER), Date.now() - skew + 60_000),
      });
      expect(within.status === 200, `issuedAt within the bound refused (${within.status})`);
    },
  },
  {
    name: 'session: a challenge for another relay is refused (401 CHALLENGE_INVALID)',
    async run(ctx) {
      const c = await ctx.wire.challenge(SENDER);
      const a = await ctx.wire.call({
        path: '/v1/session',
        body: Wire.answer({ ...c, relay: 'relay@casc' }, SENDER, key(ctx, SENDER)),
      });
      expectRefusal(a, 401, 'CHALLENGE_INVALID', 'other relay');
    },
  },
  {
    name: 'session: missing, unknown and altered tokens are refused (401 UNAUTHENTICATED)',
    async run(ctx) {
      const token = await session(ctx, SENDER);
      const altered = token.slice(0, -2) + (token.endsWith('AA') ? 'AB' : 'AA');
      for (const [what, t] of [
        ['missing', undefined],
        ['unknown', 'bm90LWEtdG9rZW4tYXQtYWxsLWJ1dC1sb25nLWVub3VnaA'],
        ['altered', altered],
      ] as const) {
        const a = await ctx.wire.call({
          path: '/v1/mailbox',
          ...(t === undefined ? {} : { token: t }),
        });
        expectRefusal(a, 401, 'UNAUTHENTICATED', `${what} token`);
      }
    },
  },

  // ------------------------------------------------------------------- errors
  {
    name: 'errors: unknown routes answer 404 NOT_FOUND in the error shape',
    async run(ctx) {
      expectRefusal(
        await ctx.wire.call({ path: '/v1/nothing-here' }),
        404,
        'NOT_FOUND',
        'unknown route',
      );
    },
  },
  {
    name: 'errors: a body that is not application/json is refused (400 MALFORMED)',
    async run(ctx) {
      const a = await ctx.wire.call({
        path: '/v1/session/challenge',
        body: utf8(JSON.stringify({ address: SENDER })),
        contentType: 'text/plain',
      });
      expectRefusal(a, 400, 'MALFORMED', 'text/plain body');
    },
  },
  {
    name: 'errors: request bodies other than the envelope need not be canonical JSON',
    async run(ctx) {
      const a = await ctx.wire.call({
        path: '/v1/session/challenge',
        body: utf8(`{ "address" : "${SENDER}" }\n`),
        contentType: 'application/json; charset=utf-8',
      });
      expect(a.status === 200, `a spaced JSON body was refused (${a.status})`);
    },
  },

  // ------------------------------------------------------------------- chunks
  {
    name: 'chunks: presence query, upload (201, then 200), hash mismatch refused and nothing stored',
    async run(ctx) {
      const token = await session(ctx, SENDER);
      const bytes = crypto.getRandomValues(new Uint8Array(4096));
      const other = crypto.getRandomValues(new Uint8Array(4096));
      const id = chunkIdOf(bytes);
      const missing = async () => {
        const a = await ctx.wire.call({
          path: '/v1/chunks/missing',
          token,
          body: { ids: [id, chunkIdOf(other)] },
        });
        expect(a.status === 200, `missing answered ${a.status}`);
        return (a.json as { missing: string[] }).missing;
      };
      expect((await missing()).includes(id), 'a new chunk is not reported missing');
      const bad = await ctx.wire.call({
        method: 'PUT',
        path: `/v1/chunks/${id}`,
        token,
        body: other,
        contentType: 'application/octet-stream',
      });
      expectRefusal(bad, 400, 'CHUNK_HASH_MISMATCH', 'mismatching bytes');
      expect((await missing()).includes(id), 'a refused upload left the chunk present');
      const first = await upload(ctx, token, bytes);
      expect(first.status === 201, `first upload answered ${first.status}`);
      expect(
        (first.json as { id: string; size: number }).size === bytes.length,
        'upload answer has the wrong size',
      );
      expect((await upload(ctx, token, bytes)).status === 200, 'second upload did not answer 200');
      const after = await missing();
      expect(
        !after.includes(id) && after.includes(chunkIdOf(other)),
        'presence is not reported after upload',
      );
    },
  },
  {
    name: 'chunks: invalid ids (400 CHUNK_ID_INVALID) and oversize chunks (413 LIMIT_EXCEEDED) are refused',
    async run(ctx) {
      const token = await session(ctx, SENDER);
      const a = await ctx.wire.call({
        method: 'PUT',
        path: `/v1/chunks/${'A'.repeat(64)}`,
        token,
        body: new Uint8Array(8),
        contentType: 'application/octet-stream',
      });
      expectRefusal(a, 400, 'CHUNK_ID_INVALID', 'uppercase id');
      const big = new Uint8Array(ENVELOPE_LIMITS.maxChunkBytes + 1);
      const b = await ctx.wire.oversize({
        method: 'PUT',
        path: `/v1/chunks/${chunkIdOf(big)}`,
        token,
        bytes: big,
        contentType: 'application/octet-stream',
      });
      expectRefusal(b, 413, 'LIMIT_EXCEEDED', 'oversize chunk');
    },
  },
  {
    name: 'chunks: readable by sender and recipients of a live envelope only, 404 for others and once every recipient acked',
    async run(ctx) {
      const [sender, recipient, bystander] = [
        await session(ctx, SENDER),
        await session(ctx, RECIPIENT),
        await session(ctx, BYSTANDER),
      ];
      const sealed = await seal(ctx);
      const path = `/v1/chunks/${sealed.envelope.body.dossier.id}`;
      const before = await ctx.wire.call({ path, token: sender });
      expectRefusal(before, 404, 'NOT_FOUND', 'a chunk no envelope references yet');
      expect((await submit(ctx, sender, sealed)).status === 200, 'submission refused');
      for (const [who, token] of [
        ['sender', sender],
        ['recipient', recipient],
      ] as const) {
        const a = await ctx.wire.call({ path, token });
        expect(
          a.status === 200 && toHex(sha256(a.bytes)) === sealed.envelope.body.dossier.id,
          `${who} cannot read the chunk (${a.status})`,
        );
      }
      expectRefusal(
        await ctx.wire.call({ path, token: bystander }),
        404,
        'NOT_FOUND',
        'a bystander',
      );
      const item = await findEnvelopeItem(ctx, recipient, sealed.envelope.body.id);
      expect(
        (
          await ctx.wire.call({
            path: '/v1/mailbox/ack',
            token: recipient,
            body: { seqs: [item.seq] },
          })
        ).status === 200,
        'ack refused',
      );
      for (const [who, token] of [
        ['sender', sender],
        ['recipient', recipient],
      ] as const) {
        expectRefusal(
          await ctx.wire.call({ path, token }),
          404,
          'NOT_FOUND',
          `${who} after every recipient acked`,
        );
      }
    },
  },

  // --------------------------------------------------------------- submission
  {
    name: 'submit: accepted with a SubmissionAcceptance signed by the relay; the same bytes again get the same acceptance',
    async run(ctx) {
      const token = await session(ctx, SENDER);
      const sealed = await seal(ctx);
      const a = await submit(ctx, token, sealed);
      expect(a.status === 200, `submission answered ${a.status} ${codeOf(a) ?? ''}`);
      const ev = evidenceOf(ctx, sealed.envelope, a, 'submission-acceptance');
      expect(
        ev.body.issuer === ctx.world.networks['wacap']!.relay.id,
        `acceptance issued by ${ev.body.issuer}`,
      );
      const again = await ctx.wire.call({
        path: '/v1/envelopes',
        token,
        body: canonicalBytes(sealed.envelope),
      });
      expect(again.status === 200, `resubmission answered ${again.status}`);
      expect(
        envelopeHash(sealed.envelope) ===
          evidenceOf(ctx, sealed.envelope, again, 'submission-acceptance').body.envelopeHash,
        'resubmission acceptance is about another envelope',
      );
    },
  },
  {
    name: 'submit: the same id with other content is refused (409 REPLAY) with a signed SubmissionRejection',
    async run(ctx) {
      const token = await session(ctx, SENDER);
      const first = await seal(ctx);
      expect((await submit(ctx, token, first)).status === 200, 'first submission refused');
      const second = await seal(ctx, { envelopeId: first.envelope.body.id });
      const a = await submit(ctx, token, second);
      expectRefusal(a, 409, 'REPLAY', 'replay');
      evidenceOf(ctx, second.envelope, a, 'submission-rejection');
    },
  },
  {
    name: 'submit: a bad envelope signature is refused (403 SIGNATURE_INVALID) with a signed SubmissionRejection',
    async run(ctx) {
      const token = await session(ctx, SENDER);
      const sealed = await seal(ctx);
      const forged: Envelope = {
        ...sealed.envelope,
        signature: {
          ...sealed.envelope.signature,
          value: (await seal(ctx)).envelope.signature.value,
        },
      };
      const a = await submit(ctx, token, { ...sealed, envelope: forged });
      expectRefusal(a, 403, 'SIGNATURE_INVALID', 'bad signature');
      evidenceOf(ctx, forged, a, 'submission-rejection');
    },
  },
  {
    name: 'submit: an expired envelope is refused (410 EXPIRED)',
    async run(ctx) {
      const token = await session(ctx, SENDER);
      const now = Date.now();
      const a = await submit(
        ctx,
        token,
        await seal(ctx, { createdAt: now - 3 * 86_400_000, expiresAt: now - 86_400_000 }),
      );
      expectRefusal(a, 410, 'EXPIRED', 'expired envelope');
      const detail = (a.json as { error: { detail?: string } }).error.detail;
      expect(
        detail === undefined || detail === 'ENVELOPE_EXPIRED',
        `detail ${detail ?? ''} is not the protocol's ENVELOPE_EXPIRED`,
      );
    },
  },
  {
    name: 'submit: a non-canonical envelope body is refused (400 MALFORMED)',
    async run(ctx) {
      const token = await session(ctx, SENDER);
      const sealed = await seal(ctx);
      const a = await ctx.wire.call({
        path: '/v1/envelopes',
        token,
        body: utf8(JSON.stringify(sealed.envelope, null, 1)),
      });
      expectRefusal(a, 400, 'MALFORMED', 'non-canonical envelope');
    },
  },
  {
    name: 'submit: a body over the protocol limit is refused (413 LIMIT_EXCEEDED)',
    async run(ctx) {
      const token = await session(ctx, SENDER);
      const big = new Uint8Array(ENVELOPE_LIMITS.maxEnvelopeBytes + 1).fill(0x20);
      const a = await ctx.wire.oversize({
        method: 'POST',
        path: '/v1/envelopes',
        token,
        bytes: big,
        contentType: 'application/json',
      });
      expectRefusal(a, 413, 'LIMIT_EXCEEDED', 'oversize envelope');
    },
  },
  {
    name: 'submit: an unknown recipient is refused (422 RECIPIENT_UNKNOWN)',
    async run(ctx) {
      const token = await session(ctx, SENDER);
      const sender = ctx.world.authority(SENDER);
      // An answer needs no attachment; its `to` party is the stranger.
      const content = exampleContentFor(
        'acknowledgement',
        SENDER,
        RECIPIENT,
        ctx.world,
      ) as DossierContent & { to: unknown };
      const encryption = generateEncryptionKeyPair(testSeed('conformance/stranger'));
      const now = Date.now();
      const result = sealDossier({
        sender: { address: SENDER, identity: sender.identity, archiveKey: sender.encryptionRef },
        recipients: [
          {
            address: STRANGER,
            encryptionKey: keyRef(encryption, {
              notBefore: now - 86_400_000,
              notAfter: now + 86_400_000,
            }),
          },
        ],
        content: {
          ...content,
          to: { address: STRANGER, name: 'Nobody (test)', country: 'SN' },
        } as DossierContent,
        attachments: [],
        createdAt: now,
        expiresAt: now + 86_400_000,
      });
      const sealed = { ...result, chunks: [{ bytes: result.sealed }] };
      expectRefusal(
        await submit(ctx, token, sealed),
        422,
        'RECIPIENT_UNKNOWN',
        'unknown recipient',
      );
    },
  },
  {
    name: 'submit: chunks not held are refused (422 CHUNK_MISSING, listed in missing)',
    async run(ctx) {
      const token = await session(ctx, SENDER);
      const sealed = await seal(ctx);
      const a = await ctx.wire.call({
        path: '/v1/envelopes',
        token,
        body: canonicalBytes(sealed.envelope),
      });
      expectRefusal(a, 422, 'CHUNK_MISSING', 'missing dossier');
      expect(
        ((a.json as { missing?: string[] }).missing ?? []).includes(
          sealed.envelope.body.dossier.id,
        ),
        'missing does not list the dossier',
      );
    },
  },
  {
    name: 'chunks: belong to their uploader: another member is told they are missing, in presence queries and submissions alike',
    async run(ctx) {
      const owner = await session(ctx, SENDER);
      const sent = await seal(ctx);
      const accepted = await submit(ctx, owner, sent);
      expect(accepted.status === 200, `the owner's submission answered ${accepted.status}`);
      const dossier = sent.envelope.body.dossier;
      const nobodys = chunkIdOf(crypto.getRandomValues(new Uint8Array(64)));

      const other = await session(ctx, BYSTANDER);
      const presence = await ctx.wire.call({
        path: '/v1/chunks/missing',
        token: other,
        body: { ids: [dossier.id, nobodys] },
      });
      const reported = (presence.json as { missing?: string[] } | undefined)?.missing ?? [];
      expect(
        reported.includes(dossier.id) && reported.includes(nobodys),
        "another member's chunk is reported present",
      );
      // Its own envelope listing the owner's dossier, alone and beside a chunk nobody holds:
      // both answers list the owner's chunk as missing, so neither tells that it exists.
      for (const extra of [[], [{ id: nobodys, size: 64 }]]) {
        const { type: _t, version: _v, totalSize: _s, ...body } = sent.envelope.body;
        const borrowed = signEnvelope(
          { ...body, id: newEnvelopeId(), sender: BYSTANDER, chunks: [...body.chunks, ...extra] },
          ctx.world.authority(BYSTANDER).identity,
        );
        const a = await ctx.wire.call({
          path: '/v1/envelopes',
          token: other,
          body: canonicalBytes(borrowed),
        });
        expectRefusal(a, 422, 'CHUNK_MISSING', "an envelope listing another member's chunk");
        expect(
          ((a.json as { missing?: string[] }).missing ?? []).includes(dossier.id),
          "missing does not list the other member's chunk",
        );
      }
    },
  },
  {
    name: 'submit: an envelope of another sender is refused (403 FORBIDDEN) without evidence',
    async run(ctx) {
      const token = await session(ctx, BYSTANDER);
      const sealed = await seal(ctx);
      const a = await ctx.wire.call({
        path: '/v1/envelopes',
        token,
        body: canonicalBytes(sealed.envelope),
      });
      expectRefusal(a, 403, 'FORBIDDEN', 'impostor');
      const answer = a.json as { evidence?: unknown; evidences?: unknown };
      expect(
        answer.evidence === undefined && answer.evidences === undefined,
        'the relay signed something for an impostor',
      );
    },
  },

  // ------------------------------------------------------------------ mailbox
  {
    name: 'mailbox: items oldest first; the cursor is the client’s (after); limit; ack drops; bad query refused',
    async run(ctx) {
      const [sender, recipient] = [await session(ctx, SENDER), await session(ctx, RECIPIENT)];
      await drain(ctx, recipient);
      const sent = [await seal(ctx), await seal(ctx)];
      for (const s of sent)
        expect((await submit(ctx, sender, s)).status === 200, 'submission refused');
      const first = await findEnvelopeItem(ctx, recipient, sent[0]!.envelope.body.id);
      const second = await findEnvelopeItem(ctx, recipient, sent[1]!.envelope.body.id);
      expect(second.seq > first.seq, 'seq does not increase');
      expect(
        first.envelope !== undefined &&
          envelopeHash(first.envelope) === envelopeHash(sent[0]!.envelope),
        'the mailbox envelope is not the one sent',
      );
      const one = await mailbox(ctx, recipient, '?after=0&limit=1');
      expect(
        one.length === 1 && one[0]!.seq === first.seq,
        'limit=1 did not return the oldest item alone',
      );
      const after = await mailbox(ctx, recipient, `?after=${first.seq}`);
      expect(
        after.every((i) => i.seq > first.seq) && after.some((i) => i.seq === second.seq),
        'after= is not honoured',
      );
      // Reading moves nothing: unacked items come again from an older cursor.
      expect(
        (await mailbox(ctx, recipient, '?after=0')).some((i) => i.seq === first.seq),
        'an unacked item vanished',
      );
      const ack = await ctx.wire.call({
        path: '/v1/mailbox/ack',
        token: recipient,
        body: { seqs: [first.seq] },
      });
      expect(
        ack.status === 200 && (ack.json as { acked: number }).acked === 1,
        'ack did not count 1',
      );
      const again = await ctx.wire.call({
        path: '/v1/mailbox/ack',
        token: recipient,
        body: { seqs: [first.seq] },
      });
      expect(
        again.status === 200 && (again.json as { acked: number }).acked === 0,
        'a second ack counted again',
      );
      expect(
        !(await mailbox(ctx, recipient, '?after=0')).some((i) => i.seq === first.seq),
        'an acked item is still listed',
      );
      expectRefusal(
        await ctx.wire.call({ path: '/v1/mailbox?limit=abc', token: recipient }),
        400,
        'MALFORMED',
        'limit=abc',
      );
      expectRefusal(
        await ctx.wire.call({ path: '/v1/mailbox/ack', token: recipient, body: { seqs: [] } }),
        400,
        'MALFORMED',
        'empty ack',
      );
      await drain(ctx, recipient);
    },
  },
  {
    name: 'mailbox: a recipient’s Delivery evidence reaches the sender as an item without its envelope',
    async run(ctx) {
      const [sender, recipient] = [await session(ctx, SENDER), await session(ctx, RECIPIENT)];
      const sealed = await seal(ctx);
      expect((await submit(ctx, sender, sealed)).status === 200, 'submission refused');
      const delivery = issueEvidence({
        kind: 'delivery',
        envelope: sealed.envelope,
        issuer: RECIPIENT,
        key: key(ctx, RECIPIENT),
        issuedAt: Date.now(),
        recipient: RECIPIENT,
      });
      const bystander = await session(ctx, BYSTANDER);
      const impostor = await ctx.wire.call({
        path: '/v1/evidences',
        token: bystander,
        body: { evidence: delivery, envelope: sealed.envelope },
      });
      expect(
        impostor.status >= 400 && impostor.status < 500,
        `another authority's session could hand in the recipient's evidence (${impostor.status})`,
      );
      const posted = await ctx.wire.call({
        path: '/v1/evidences',
        token: recipient,
        body: { evidence: delivery, envelope: sealed.envelope },
      });
      expect(
        posted.status === 202,
        `POST /v1/evidences answered ${posted.status} ${codeOf(posted) ?? ''}`,
      );
      for (let i = 0; i < 50; i++) {
        const items = await mailbox(ctx, sender, '?after=0&limit=1000');
        const item = items.find(
          (it) =>
            it.kind === 'evidence' && it.evidence?.body.envelopeId === sealed.envelope.body.id,
        );
        if (item) {
          expect(!('envelope' in item), 'the evidence item carries an envelope');
          verifyEvidence(sealed.envelope, item.evidence, ctx.world.trustFor('wacap'));
          await ctx.wire.call({
            path: '/v1/mailbox/ack',
            token: sender,
            body: { seqs: [item.seq] },
          });
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new CheckFailed('the Delivery evidence never reached the sender’s mailbox');
    },
  },

  // ---------------------------------------------------------------- WebSocket
  {
    name: 'websocket: a bad token gets an UNAUTHENTICATED frame and close 1008',
    async run(ctx) {
      const s = await openSocket(ctx, 'not-a-token');
      const frame = await s.next((f) => f['type'] === 'error');
      expect(frame['code'] === 'UNAUTHENTICATED', `error frame code ${String(frame['code'])}`);
      expect((await s.closed) === 1008, 'the socket was not closed with 1008');
    },
  },
  {
    name: 'websocket: catch-up and live items come as {type:"item", item}; ack answered by acked; bad frames get MALFORMED',
    async run(ctx) {
      const [sender, recipient] = [await session(ctx, SENDER), await session(ctx, RECIPIENT)];
      await drain(ctx, recipient);
      const waiting = await seal(ctx);
      expect((await submit(ctx, sender, waiting)).status === 200, 'submission refused');
      const waitingItem = await findEnvelopeItem(ctx, recipient, waiting.envelope.body.id);
      const s = await openSocket(ctx, recipient);
      try {
        s.ws.send('{"type":"subscribe"');
        expect(
          (await s.next((f) => f['type'] === 'error'))['code'] === 'MALFORMED',
          'no MALFORMED frame for bad JSON',
        );
        s.ws.send(JSON.stringify({ type: 'subscribe', after: 0 }));
        const isItemFor = (id: string) => (f: Record<string, unknown>) =>
          f['type'] === 'item' && (f['item'] as { envelope?: Envelope }).envelope?.body.id === id;
        const caught = (await s.next(isItemFor(waiting.envelope.body.id)))['item'] as {
          seq: number;
          kind: string;
        };
        expect(
          caught.seq === waitingItem.seq && caught.kind === 'envelope',
          'catch-up item differs from the HTTP one',
        );
        const live = await seal(ctx);
        expect((await submit(ctx, sender, live)).status === 200, 'submission refused');
        const pushed = (await s.next(isItemFor(live.envelope.body.id)))['item'] as { seq: number };
        s.ws.send(JSON.stringify({ type: 'ack', seqs: [caught.seq, pushed.seq] }));
        const acked = await s.next((f) => f['type'] === 'acked');
        expect(
          JSON.stringify(acked['seqs']) === JSON.stringify([caught.seq, pushed.seq]),
          'acked frame lists other seqs',
        );
        expect(
          (await mailbox(ctx, recipient, '?after=0')).every(
            (i) => i.seq !== caught.seq && i.seq !== pushed.seq,
          ),
          'items acked over the socket are still listed',
        );
      } finally {
        s.ws.close();
      }
    },
  },
  // ------------------------------------------------------------ trust distribution
  {
    name: 'trust: GET /v1/trust/networks lists the own network with its size, edition and root hash',
    async run(ctx) {
      const a = await ctx.wire.call({ path: '/v1/trust/networks' });
      expect(a.status === 200, `answered ${a.status}`);
      const networks = (
        a.json as { networks?: { network: string; edition: number; rootHash: string }[] }
      ).networks;
      const own = networks?.find((n) => n.network === 'wacap');
      expect(own !== undefined, 'the own network is not listed');
      expect(own.edition >= 1 && typeof own.rootHash === 'string', 'edition or root hash missing');
    },
  },
  {
    name: 'trust: publications are served for the own and peer networks, LOG_UNKNOWN for others',
    async run(ctx) {
      const own = await ctx.wire.call({ path: '/v1/trust/publications/wacap?after=0' });
      expect(own.status === 200, `own network answered ${own.status}`);
      expect(Array.isArray((own.json as { publications?: unknown }).publications), 'no list');
      const other = await ctx.wire.call({ path: '/v1/trust/publications/nowhere?after=0' });
      expect(other.status === 404, `unknown network answered ${other.status}`);
      expect(
        (other.json as { error: { code: string } }).error.code === 'LOG_UNKNOWN',
        'not LOG_UNKNOWN',
      );
    },
  },
  {
    name: 'trust: a publication of another network, or not a publication, is refused',
    async run(ctx) {
      const bad = await ctx.wire.call({ path: '/v1/trust/publications', body: { type: 'x' } });
      expect(bad.status === 400, `not a publication answered ${bad.status}`);
      const other = await ctx.wire.call({
        path: '/v1/trust/publications',
        body: { type: 'publication', network: 'casc', checkpoint: 'x\n' },
      });
      expect(other.status === 404, `another network's publication answered ${other.status}`);
    },
  },
  {
    name: 'witness: a malformed add-checkpoint request is 400 CHECKPOINT_INVALID',
    async run(ctx) {
      const a = await ctx.wire.call({
        path: '/v1/witness/add-checkpoint',
        body: new TextEncoder().encode('not a witness request'),
        contentType: 'text/plain',
      });
      expect(a.status === 400, `answered ${a.status}`);
    },
  },
];

/**
 * Session expiry, checked last when the relay's session lifetime is short
 * enough to wait for (the conformance relay script sets one): a token stops
 * working at its `expiresAt`. The session is opened before the other checks
 * so that their time counts towards the wait.
 */
export async function openExpirySession(
  ctx: CheckContext,
): Promise<{ token: string; expiresAt: number }> {
  return ctx.wire.login(SENDER, key(ctx, SENDER));
}

export async function checkSessionExpiry(
  ctx: CheckContext,
  s: { token: string; expiresAt: number },
  maxWaitMs: number,
): Promise<'passed' | { skipped: string }> {
  const wait = s.expiresAt - Date.now();
  if (wait > maxWaitMs)
    return {
      skipped: `the session lifetime leaves ${Math.round(wait / 1000)} s to wait, more than --max-wait`,
    };
  if (wait > 1000) {
    const before = await ctx.wire.call({ path: '/v1/mailbox', token: s.token });
    expect(before.status === 200, `a token before its expiresAt is refused (${before.status})`);
  }
  // One second past expiresAt, for the relay's clock and ours to differ a little.
  await new Promise((r) => setTimeout(r, Math.max(0, s.expiresAt - Date.now()) + 1000));
  expectRefusal(
    await ctx.wire.call({ path: '/v1/mailbox', token: s.token }),
    401,
    'UNAUTHENTICATED',
    'expired token',
  );
  return 'passed';
}
