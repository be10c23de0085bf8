import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Actor } from '../users.js';

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
  /** Failed logins allowed per username within the window. */
  readonly perUsername: number;
  /** Failed logins allowed per client address within the window. */
  readonly perAddress: number;
  readonly windowMs: number;
}

const MAX_TRACKED = 100_000;

export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  perUsername: 5,
  perAddress: 20,
  windowMs: 15 * 60 * 1000,
};

/**
 * Failed-login counters per username and per client address, in fixed
 * windows, in memory. Checked before the password hash is computed, so a
 * guessing run also cannot tie up the CPU with Argon2id.
 */
export class LoginLimiter {
  private readonly byUser = new Map<string, { count: number; since: number }>();
  private readonly byAddress = new Map<string, { count: number; since: number }>();
  private readonly limits: LoginLimits;
  private readonly clock: () => number;

  constructor(limits: LoginLimits, clock: () => number) {
    this.limits = limits;
    this.clock = clock;
  }

  /** Seconds until a login may be tried again, or 0 when it may now. */
  blockedFor(username: string, address: string): number {
    const now = this.clock();
    const wait = (map: Map<string, { count: number; since: number }>, key: string, max: number) => {
      const w = map.get(key);
      if (!w) return 0;
      if (now - w.since >= this.limits.windowMs) {
        map.delete(key);
        return 0;
      }
      return w.count >= max ? Math.ceil((w.since + this.limits.windowMs - now) / 1000) : 0;
    };
    return Math.max(
      wait(this.byUser, username, this.limits.perUsername),
      wait(this.byAddress, address, this.limits.perAddress),
    );
  }

  failed(username: string, address: string): void {
    const now = this.clock();
    // Bound the memory a flood of distinct usernames or addresses can take.
    if (this.byUser.size + this.byAddress.size > MAX_TRACKED) this.prune(now);
    for (const [map, key] of [
      [this.byUser, username],
      [this.byAddress, address],
    ] as const) {
      const w = map.get(key);
      if (!w || now - w.since >= this.limits.windowMs) map.set(key, { count: 1, since: now });
      else w.count++;
    }
  }

  private prune(now: number): void {
    for (const map of [this.byUser, this.byAddress])
      for (const [key, w] of map) if (now - w.since >= this.limits.windowMs) map.delete(key);
  }

  /** A successful login clears the username's counter (not the address's). */
  succeeded(username: string): void {
    this.byUser.delete(username);
  }
}
