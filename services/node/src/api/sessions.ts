import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Actor } from '../administration/users.js';

export interface Session {
  readonly actor: Actor;
  readonly username: string;
  readonly expiresAt: number;
}

interface Stored extends Session {
  readonly hash: Buffer;
}

function sha256(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * Bearer sessions, in memory: the token (32 random bytes, base64url) is
 * given to the client once; only its SHA-256 is kept, so a heap dump does
 * not yield usable tokens. Restarting the API logs everyone out.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Stored>();
  private readonly ttlMs: number;
  private readonly clock: () => number;

  constructor(options: { ttlMs: number; clock: () => number }) {
    this.ttlMs = options.ttlMs;
    this.clock = options.clock;
  }

  create(actor: Actor): { token: string; session: Session } {
    this.prune();
    const token = randomBytes(32).toString('base64url');
    const hash = sha256(token);
    const session: Stored = {
      actor,
      username: actor.username,
      expiresAt: this.clock() + this.ttlMs,
      hash,
    };
    this.sessions.set(hash.toString('hex'), session);
    return { token, session };
  }

  /** The live session of a token, or undefined (unknown, expired or logged out). */
  find(token: string): Session | undefined {
    const hash = sha256(token);
    const key = hash.toString('hex');
    const stored = this.sessions.get(key);
    // The map is keyed by a hash the caller cannot steer; the explicit
    // constant-time comparison keeps that property independent of the map.
    if (!stored || !timingSafeEqual(stored.hash, hash)) return undefined;
    if (stored.expiresAt <= this.clock()) {
      this.sessions.delete(key);
      return undefined;
    }
    return stored;
  }

  revoke(token: string): boolean {
    return this.sessions.delete(sha256(token).toString('hex'));
  }

  /** Drop every session of a user (account disabled). */
  revokeUser(username: string): void {
    for (const [key, s] of this.sessions) if (s.username === username) this.sessions.delete(key);
  }

  get size(): number {
    return this.sessions.size;
  }

  private prune(): void {
    const now = this.clock();
    for (const [key, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(key);
  }
}

export interface LoginLimits {
  /** Failed logins of one username from one client address before each further try waits. */
  readonly perUserAndAddress: number;
  /** Failed logins from one client address (any username) before each further try waits. */
  readonly perAddress: number;
  /** The first wait; every further failure doubles it. */
  readonly baseDelayMs: number;
  /** The longest wait for one username from one address. */
  readonly maxDelayMs: number;
  /**
   * The longest wait the per-address counter imposes. Kept short: every
   * user behind one NAT shares that counter, so a long cap would let one
   * outsider there hold them all off; a short one still slows spraying one
   * password over many usernames to a try per cap.
   */
  readonly maxAddressDelayMs: number;
  /** A counter is forgotten after this long without a failure. */
  readonly forgetMs: number;
}

const MAX_TRACKED = 100_000;

export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  perUserAndAddress: 3,
  perAddress: 10,
  baseDelayMs: 1000,
  maxDelayMs: 15 * 60 * 1000,
  maxAddressDelayMs: 30 * 1000,
  forgetMs: 60 * 60 * 1000,
};

interface Failures {
  count: number;
  last: number;
}

/**
 * Failed-login throttle, in memory: per username and client address, and
 * per client address. Past the allowance, each further try waits for a
 * delay that doubles with every failure, up to a cap; a counter is
 * forgotten `forgetMs` after its last failure, and a successful login
 * clears its username-and-address counter. There is no per-username
 * counter across addresses: failures from one address never stop the
 * right password from another, so no outsider can lock a user out (a
 * guesser with many addresses gets each address's allowance; Argon2id and
 * the password length bound what that buys). Checked before the password
 * is hashed, so guessing cannot tie up the CPU with Argon2id either.
 */
export class LoginLimiter {
  private readonly pairs = new Map<string, Failures>();
  private readonly addresses = new Map<string, Failures>();
  private readonly limits: LoginLimits;
  private readonly clock: () => number;

  constructor(limits: LoginLimits, clock: () => number) {
    this.limits = limits;
    this.clock = clock;
  }

  /** Milliseconds to wait after `count` failures (0 within the allowance): base, doubling, capped. */
  delayAfter(count: number, allowed: number, cap = this.limits.maxDelayMs): number {
    if (count < allowed) return 0;
    const doublings = Math.min(count - allowed, 52);
    return Math.min(cap, this.limits.baseDelayMs * 2 ** doublings);
  }

  /** Seconds until a login may be tried again, or 0 when it may now. */
  blockedFor(username: string, address: string): number {
    const now = this.clock();
    const wait = (
      map: Map<string, Failures>,
      key: string,
      allowed: number,
      cap: number,
    ): number => {
      const f = map.get(key);
      if (!f) return 0;
      if (now - f.last >= this.limits.forgetMs) {
        map.delete(key);
        return 0;
      }
      return Math.max(0, f.last + this.delayAfter(f.count, allowed, cap) - now);
    };
    const ms = Math.max(
      wait(
        this.pairs,
        pairKey(username, address),
        this.limits.perUserAndAddress,
        this.limits.maxDelayMs,
      ),
      wait(this.addresses, address, this.limits.perAddress, this.limits.maxAddressDelayMs),
    );
    return Math.ceil(ms / 1000);
  }

  failed(username: string, address: string): void {
    const now = this.clock();
    // Bound the memory a flood of distinct usernames or addresses can take.
    if (this.pairs.size + this.addresses.size > MAX_TRACKED) this.prune(now);
    for (const [map, key] of [
      [this.pairs, pairKey(username, address)],
      [this.addresses, address],
    ] as const) {
      const f = map.get(key);
      if (!f || now - f.last >= this.limits.forgetMs) map.set(key, { count: 1, last: now });
      else {
        f.count++;
        f.last = now;
      }
    }
  }

  /** A successful login clears its username-and-address counter (not the address's). */
  succeeded(username: string, address: string): void {
    this.pairs.delete(pairKey(username, address));
  }

  /** Forget every counter (an admin letting everyone in again); returns how many were dropped. */
  reset(): number {
    const n = this.pairs.size + this.addresses.size;
    this.pairs.clear();
    this.addresses.clear();
    return n;
  }

  private prune(now: number): void {
    for (const map of [this.pairs, this.addresses]) {
      for (const [key, f] of map) if (now - f.last >= this.limits.forgetMs) map.delete(key);
      // Still too many: drop the oldest entries (insertion order) rather than grow.
      for (const key of map.keys()) {
        if (map.size <= MAX_TRACKED / 2) break;
        map.delete(key);
      }
    }
  }
}

function pairKey(username: string, address: string): string {
  // An address never contains a newline: the first one ends it.
  return `${address}\n${username}`;
}
