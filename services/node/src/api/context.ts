import { isAbsolute, relative, resolve } from 'node:path';
import type { FastifyRequest } from 'fastify';
import type { AuthorityNode } from '../node.js';
import type { Actor, UserInfo } from '../users.js';
import { ApiError } from './errors.js';
import type { LoginLimiter, Session, SessionStore } from './sessions.js';

/** What every route plugin of the API shares (decorated on the root instance as `nodeApi`). */
export interface ApiContext {
  readonly node: AuthorityNode;
  readonly sessions: SessionStore;
  readonly limiter: LoginLimiter;
  /** When set, attachment paths and export directories must lie inside it. */
  readonly fileRoot: string | undefined;
  readonly clock: () => number;
}

declare module 'fastify' {
  interface FastifyInstance {
    nodeApi: ApiContext;
  }
  interface FastifyRequest {
    /** The session of the bearer token (set by the auth hook of the protected scope). */
    nodeApiSession: Session | null;
    /** The bearer token itself, for logout. */
    nodeApiToken: string | null;
  }
}

/** The acting user of an authenticated request. */
export function actorOf(request: FastifyRequest): Actor {
  if (!request.nodeApiSession) throw new ApiError('UNAUTHENTICATED', 'log in first');
  return request.nodeApiSession.actor;
}

/**
 * The logged-in user's account (role, clearances). AuthorityNode has no
 * public "who am I" yet; this reads the node's own user directory, which
 * also refuses forged actors and disabled accounts.
 */
export function accountOf(node: AuthorityNode, actor: Actor): UserInfo {
  return node.whoami(actor);
}

/** A host path from a request, resolved; INPUT_INVALID when a file root is configured and the path leaves it. */
export function hostPath(ctx: ApiContext, path: string): string {
  const full = resolve(ctx.fileRoot ?? process.cwd(), path);
  if (ctx.fileRoot !== undefined) {
    const rel = relative(resolve(ctx.fileRoot), full);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel))
      throw new ApiError('INPUT_INVALID', 'the path is outside the directory the API may use');
  }
  return full;
}
