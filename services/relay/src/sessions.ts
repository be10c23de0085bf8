import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  CONTEXTS,
  DOSSIER_PARTY_ROLES,
  ENVELOPE_LIMITS,
  fromBase64url,
  publicKeyOf,
  toBase64url,
  verifySignature,
  type TrustStore,
} from '@rogatory/protocol';
import type { SessionRequest } from '@rogatory/relay-api';
import type { RelayBackend } from './backend/types.js';
import { RelayError, relayCodeFor } from './errors.js';

/** How long a challenge can be answered (docs/relay-api.md, Node sessions). */
export const CHALLENGE_TTL_MS = 2 * 60 * 1000;
/** How long a session token lasts unless the relay is configured otherwise (docs/relay-api.md). */
export const DEFAULT_SESSION_TTL_MS = 30 * 60 * 1000;
/** Tokens whose MAC was checked, kept so that each request does not decode and MAC its token again. */
const VERIFIED_TOKENS_MAX = 10_000;

export interface Session {
  readonly address: string;
  readonly expiresAt: number;
}

/**
 * Node sessions without server-side session state: challenges and bearer
 * tokens are MACed with a secret every instance of the relay shares, so any
 * instance can check them; a challenge's single use is enforced through the
 * shared backend.
 */
export class SessionAuthority {
  private readonly macKey: Buffer;
  /** Token -> its MAC-checked payload; expiry and the signing key are still checked on every use. */
  private readonly verified = new Map<
    string,
    { address: string; kid: string; expiresAt: number }
  >();

  constructor(
    private readonly options: {
      relayId: string;
      network: string;
      secret: Uint8Array;
      trust: TrustStore;
      backend: RelayBackend;
      clock: () => number;
      ttlMs: number;
    },
  ) {
    if (options.secret.length < 32) throw new Error('session secret must have at least 32 bytes');
    this.macKey = createHmac('sha256', options.secret)
      .update('rogatory/v1/relay-session-mac')
      .digest();
  }

  private mac(parts: readonly string[]): Buffer {
    return createHmac('sha256', this.macKey).update(parts.join('\u0000')).digest().subarray(0, 16);
  }

  /** A challenge bound to this relay, the address and an expiry. */
  challenge(address: string): { challenge: string; relay: string; expiresAt: number } {
    const expiresAt = this.options.clock() + CHALLENGE_TTL_MS;
    // 32 bytes: nonce (10) || expiry in ms (6, big-endian) || MAC (16).
    const nonce = randomBytes(10);
    const exp = Buffer.alloc(6);
    exp.writeUIntBE(expiresAt, 0, 6);
    const tag = this.mac([
      'challenge',
      this.options.relayId,
      address,
      nonce.toString('hex'),
      String(expiresAt),
    ]);
    return {
      challenge: toBase64url(Buffer.concat([nonce, exp, tag])),
      relay: this.options.relayId,
      expiresAt,
    };
  }

  /** Check the signed challenge and issue a bearer token. */
  async login(req: SessionRequest): Promise<{ token: string; expiresAt: number; address: string }> {
    const { body, signature } = req;
    const now = this.options.clock();
    let raw: Uint8Array;
    try {
      raw = fromBase64url(body.challenge);
    } catch (cause) {
      throw new RelayError('CHALLENGE_INVALID', 'unknown challenge', { cause });
    }
    if (raw.length !== 32 || body.relay !== this.options.relayId)
      throw new RelayError('CHALLENGE_INVALID', 'unknown challenge');
    const nonce = Buffer.from(raw.subarray(0, 10));
    const expiresAt = Buffer.from(raw.subarray(10, 16)).readUIntBE(0, 6);
    const expected = this.mac([
      'challenge',
      this.options.relayId,
      body.address,
      nonce.toString('hex'),
      String(expiresAt),
    ]);
    if (!timingSafeEqual(expected, Buffer.from(raw.subarray(16, 32))) || now > expiresAt) {
      throw new RelayError('CHALLENGE_INVALID', 'unknown or expired challenge');
    }
    // Claimed before any other check: a genuine challenge serves one login attempt, whether it succeeds or not,
    // so a refused answer (wrong key, skew, stranger) cannot be corrected and replayed with the same challenge.
    if (
      !(await this.options.backend.claimOnce(
        `challenge:${nonce.toString('hex')}`,
        CHALLENGE_TTL_MS * 2,
      ))
    ) {
      throw new RelayError('CHALLENGE_INVALID', 'challenge already used');
    }
    if (Math.abs(now - body.issuedAt) > ENVELOPE_LIMITS.maxClockSkewMs)
      throw new RelayError('CHALLENGE_INVALID', 'clock skew too large');
    if (!body.address.endsWith(`@${this.options.network}`))
      throw new RelayError('FORBIDDEN', 'this relay serves only its own network');
    try {
      const key = this.options.trust.resolveSigningKey(
        body.address,
        signature.kid,
        now,
        DOSSIER_PARTY_ROLES,
      );
      verifySignature(CONTEXTS.sessionChallenge, body, signature, publicKeyOf(key.key));
    } catch (err) {
      const { code } = relayCodeFor(err);
      throw new RelayError(code === 'MALFORMED' ? 'SENDER_UNKNOWN' : code, 'session refused', {
        cause: err,
      });
    }
    const tokenExpires = now + this.options.ttlMs;
    const payload = `${body.address}.${signature.kid}.${tokenExpires}`;
    const tag = this.mac(['token', this.options.relayId, payload]);
    // token = base64url(payload || MAC(16)), payload = "address.kid.expiresAt"
    const token = toBase64url(Buffer.concat([Buffer.from(payload, 'utf8'), tag]));
    return { token, expiresAt: tokenExpires, address: body.address };
  }

  /** The session a bearer token stands for; throws UNAUTHENTICATED. */
  verify(token: string | undefined): Session {
    if (!token || token.length > 400)
      throw new RelayError('UNAUTHENTICATED', 'missing or invalid token');
    const { address, kid, expiresAt } = this.verified.get(token) ?? this.checkMac(token);
    const now = this.options.clock();
    if (!(now < expiresAt)) {
      this.verified.delete(token);
      throw new RelayError('UNAUTHENTICATED', 'token expired');
    }
    try {
      // A key revoked or a member removed since login ends the session at once.
      this.options.trust.resolveSigningKey(address, kid, now, DOSSIER_PARTY_ROLES);
    } catch (cause) {
      throw new RelayError('UNAUTHENTICATED', 'session no longer valid', { cause });
    }
    return { address, expiresAt };
  }

  private checkMac(token: string): { address: string; kid: string; expiresAt: number } {
    let payload: string;
    let tag: Buffer;
    try {
      const raw = Buffer.from(fromBase64url(token));
      if (raw.length <= 16) throw new Error('short');
      payload = new TextDecoder('utf-8', { fatal: true }).decode(raw.subarray(0, raw.length - 16));
      tag = raw.subarray(raw.length - 16);
    } catch {
      throw new RelayError('UNAUTHENTICATED', 'invalid token');
    }
    if (!timingSafeEqual(this.mac(['token', this.options.relayId, payload]), tag))
      throw new RelayError('UNAUTHENTICATED', 'invalid token');
    const [address = '', kid = '', exp = ''] = payload.split('.');
    const checked = { address, kid, expiresAt: Number(exp) };
    // Bounded: when full, start over (tokens are re-checked, not refused).
    if (this.verified.size >= VERIFIED_TOKENS_MAX) this.verified.clear();
    this.verified.set(token, checked);
    return checked;
  }
}
