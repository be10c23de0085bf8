import { resolve } from 'node:path';
import type { FastifyRequest } from 'fastify';
import type { FileRoot } from '../files/file-root.js';
import type { AuthorityNode } from '../authority-node.js';
import {
  PERMISSIONS,
  type Actor,
  type Permission,
  type Role,
  type UserInfo,
} from '../administration/users.js';
import { ApiError } from './errors.js';
import type { LoginLimiter, Session, SessionStore } from './sessions.js';

/** What every route plugin of the API shares (decorated on the root instance as `nodeApi`). */
export interface ApiContext {
  readonly node: AuthorityNode;
  readonly sessions: SessionStore;
  readonly limiter: LoginLimiter;
  /** When set, attachment paths and export directories must lie inside it, with no symbolic link below it. */
  readonly fileRoot: FileRoot | undefined;
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

/** The logged-in user's account, if its role grants `permission` (NOT_AUTHORISED otherwise); for API-only actions. */
export function requirePermission(
  node: AuthorityNode,
  actor: Actor,
  permission: Permission,
): UserInfo {
  const user = accountOf(node, actor);
  if (!(PERMISSIONS[permission] as readonly Role[]).includes(user.role))
    throw new ApiError('NOT_AUTHORISED', `role ${user.role} may not ${permission}`);
  return user;
}

/**
 * A host path from a request, made absolute. With a file root this is a
 * lexical check only (PATH_REFUSED when the path leaves it): whoever opens
 * or creates the file checks links (`FileRoot.openForReading`,
 * `FileRoot.makeDirectory`).
 */
export function hostPath(ctx: ApiContext, path: string): string {
  return ctx.fileRoot === undefined ? resolve(path) : ctx.fileRoot.lexical(path);
}
