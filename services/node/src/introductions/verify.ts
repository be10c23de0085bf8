import {
  CONTEXTS,
  IntroductionSchema,
  hashOf,
  isProtocolError,
  networkOf,
  publicKeyOf,
  validator,
  verifySignature,
  type Introduction,
} from '@rogatory/protocol';
import type { NodeContext } from '../context.js';
import { nodeFail } from '../errors.js';
import { IntroductionTable } from '../store/introduction-table.js';

/**
 * Why a node refuses an introduction (the `detail` of its VERIFICATION_FAILED
 * error): the protocol's codes of `TrustStore.addIntroduction` (§6.3), and the
 * checks a node adds: still valid now, meant for this node, subject listed.
 */
export const INTRODUCTION_REFUSALS = {
  SCHEMA_INVALID: 'not an introduction, or validUntil before issuedAt',
  KEY_UNKNOWN: 'the issuer or its key is not in a trusted manifest',
  KEY_WRONG_ROLE: 'the issuer is not a point of contact',
  KEY_EXPIRED: "the issuer's key was not valid when it signed",
  KEY_NOT_YET_VALID: "the issuer's key was not valid when it signed",
  KEY_REVOKED: "the issuer's key is revoked",
  SIGNATURE_INVALID: 'the signature does not verify (forged or altered)',
  TRUST_CHAIN_BROKEN: "the subject key is not the one the subject's manifest lists",
  INTRODUCTION_EXPIRED: 'validUntil has passed, or issuedAt is in the future',
  INTRODUCTION_NOT_ADDRESSED: 'neither this node nor its network is the audience, nor the subject',
  SUBJECT_UNKNOWN: 'the subject is not an authority of a trusted manifest',
  INTRODUCTION_UNSOLICITED: 'an answer to no introduction request this node sent',
} as const;
export type IntroductionRefusal = keyof typeof INTRODUCTION_REFUSALS;

/** A clock ahead of ours by this much may still have issued the introduction (as envelopes, §8.6). */
const SKEW_MS = 5 * 60 * 1000;
const shape = validator(IntroductionSchema, 'introduction');

export function refuseIntroduction(code: IntroductionRefusal, what: string): never {
  return nodeFail('VERIFICATION_FAILED', `introduction refused: ${what}`, { detail: code });
}

/**
 * Verify an introduction for this node (docs/protocol.md §6.3, plus what an
 * application acting on it checks): signed by a point of contact of a trusted
 * manifest, current, meant for this node (its address or network as audience,
 * or this node as the subject), subject an authority a trusted manifest lists.
 * Nothing is stored or added: VERIFICATION_FAILED with the code as detail.
 */
export function checkIntroduction(ctx: NodeContext, value: unknown): Introduction {
  let intro: Introduction;
  try {
    intro = shape.parse(value);
  } catch {
    return refuseIntroduction('SCHEMA_INVALID', 'not a signed introduction');
  }
  const b = intro.body;
  if (b.validUntil <= b.issuedAt) refuseIntroduction('SCHEMA_INVALID', 'validUntil ≤ issuedAt');
  try {
    const issuer = ctx.trust.resolveSigningKey(b.issuer, intro.signature.kid, b.issuedAt, ['poc']);
    verifySignature(CONTEXTS.introduction, b, intro.signature, publicKeyOf(issuer.key));
  } catch (cause) {
    if (isProtocolError(cause) && cause.code in INTRODUCTION_REFUSALS)
      refuseIntroduction(cause.code as IntroductionRefusal, `issuer ${b.issuer}`);
    throw cause;
  }
  const now = ctx.clock();
  if (now >= b.validUntil || b.issuedAt > now + SKEW_MS)
    refuseIntroduction('INTRODUCTION_EXPIRED', `not valid now (issued by ${b.issuer})`);
  if (![ctx.address, networkOf(ctx.address)].includes(b.audience) && b.subject !== ctx.address)
    refuseIntroduction('INTRODUCTION_NOT_ADDRESSED', `audience ${b.audience}`);
  if (!ctx.trust.authority(b.subject))
    refuseIntroduction('SUBJECT_UNKNOWN', `subject ${b.subject}`);
  subjectKeyCheck(ctx, intro);
  return intro;
}

/**
 * §6.3 step 5 without touching the trust store: the subject key must be the
 * listed one or a key rotated in for the subject.
 */
function subjectKeyCheck(ctx: NodeContext, intro: Introduction): void {
  const listed = ctx.trust.authority(intro.body.subject);
  if (!listed || listed.key.kid === intro.body.subjectKey.kid) return;
  try {
    ctx.trust.resolveSigningKey(intro.body.subject, intro.body.subjectKey.kid, ctx.clock());
  } catch (cause) {
    if (isProtocolError(cause, 'KEY_UNKNOWN'))
      refuseIntroduction('TRUST_CHAIN_BROKEN', `subject key of ${intro.body.subject}`);
  }
}

/**
 * Verify and keep an introduction: the row is written in the caller's
 * transaction (or its own) and the trust store learns it only once that
 * commits. Returns the introduction and whether it was new.
 */
export function acceptIntroduction(
  ctx: NodeContext,
  value: unknown,
  link: { requestId: string | null; dossierId: string | null },
): { introduction: Introduction; fresh: boolean } {
  const intro = checkIntroduction(ctx, value);
  const table = new IntroductionTable(ctx.db, ctx.cipher);
  return ctx.db.transaction(() => {
    const fresh = table.insertIntroduction({
      introduction: intro,
      direction: 'received',
      ...link,
      now: ctx.clock(),
    });
    if (fresh)
      ctx.db.onCommit(() => {
        try {
          ctx.trust.addIntroduction(intro);
        } catch (cause) {
          // Checked against the same trust store just before: only a change of trust meanwhile.
          if (!isProtocolError(cause)) throw cause;
        }
      });
    return { introduction: intro, fresh };
  });
}

/** At open: put the stored introductions that still verify back into the trust store. Returns how many. */
export function reloadIntroductions(ctx: NodeContext): number {
  const table = new IntroductionTable(ctx.db, ctx.cipher);
  let n = 0;
  for (const { introduction } of table.introductions('received')) {
    try {
      ctx.trust.addIntroduction(introduction);
      n++;
    } catch (cause) {
      // An issuer since revoked or removed: the introduction no longer vouches for anything.
      if (!isProtocolError(cause)) throw cause;
    }
  }
  return n;
}

/** The directory's source: stored introductions the trust store verified in this process. */
export function storedIntroductions(ctx: NodeContext): { listIntroductions(): Introduction[] } {
  return {
    listIntroductions: () => {
      const held = new Set(ctx.trust.introductions().map((i) => hashOf(i)));
      return new IntroductionTable(ctx.db, ctx.cipher)
        .introductions('received')
        .map((r) => r.introduction)
        .filter((i) => held.has(hashOf(i)));
    },
  };
}
