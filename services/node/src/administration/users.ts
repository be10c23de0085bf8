import { Type, type Static } from 'typebox';
import { validator } from '@rogatory/protocol';
import { pwhashStrInWorkerSync, pwhashStrVerifyInWorkerSync } from '@rogatory/protocol/node';
import type { KdfLimits } from './config.js';
import { nodeFail } from '../errors.js';
import type { NodeDatabase } from '../store/db.js';
import { newLocalId } from '../store/mailbox-store.js';
import type { HandlingCode } from '../store/records.js';
import { UserTable, type UserRow } from '../store/user-table.js';

export const ROLES = ['officer', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export const CLEARANCES = ['restricted', 'witness-protection', 'sealed'] as const;
export type Clearance = (typeof CLEARANCES)[number];

/**
 * What each role may do. Approvers draft as well; admins run the node and
 * manage accounts but do not read dossiers (separation of duties).
 */
export const PERMISSIONS = {
  'dossier:read': ['officer', 'approver'],
  'dossier:draft': ['officer', 'approver'],
  'dossier:approve': ['approver'],
  'dossier:export': ['officer', 'approver'],
  'users:manage': ['admin'],
  'audit:verify': ['admin'],
  'quarantine:read': ['officer', 'approver', 'admin'],
  'node:status': ['officer', 'approver', 'admin'],
  'keys:manage': ['admin'],
} as const satisfies Record<string, readonly Role[]>;
export type Permission = keyof typeof PERMISSIONS;

export const NewUserSchema = Type.Object(
  {
    username: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }),
    password: Type.String({ minLength: 10, maxLength: 1024 }),
    role: Type.Enum(ROLES),
    clearances: Type.Array(Type.Enum(CLEARANCES), { maxItems: 3, uniqueItems: true }),
  },
  { additionalProperties: false },
);
export type NewUser = Static<typeof NewUserSchema>;
const newUserShape = validator(NewUserSchema, 'user');

/** A new password, as `NewUserSchema` requires one. */
export const PasswordSchema = NewUserSchema.properties.password;
const passwordShape = validator(PasswordSchema, 'password');
const roleShape = validator(NewUserSchema.properties.role, 'role');
const clearancesShape = validator(NewUserSchema.properties.clearances, 'clearances');

/** A user as listed (no hash). */
export interface UserInfo {
  readonly id: string;
  readonly username: string;
  readonly role: Role;
  readonly clearances: readonly Clearance[];
  readonly disabled: boolean;
  readonly createdAt: number;
}

/**
 * An authenticated officer, obtained only from `AuthorityNode.login` (the
 * registry below refuses objects it did not issue). Role and clearances are
 * re-read from the database on every action, so disabling a user or
 * changing a role takes effect at once.
 */
export class Actor {
  readonly id: string;
  readonly username: string;
  private constructor(id: string, username: string) {
    this.id = id;
    this.username = username;
  }

  /** @internal */
  static issue(id: string, username: string): Actor {
    const actor = new Actor(id, username);
    issued.add(actor);
    return actor;
  }
}
const issued = new WeakSet<Actor>();

export class UserDirectory {
  private readonly table: UserTable;
  private readonly kdf: KdfLimits;
  /** A hash for unknown usernames, so a login costs the same whether or not the user exists. */
  private dummyHash: string | undefined;

  constructor(db: NodeDatabase, kdf: KdfLimits) {
    this.table = new UserTable(db);
    this.kdf = kdf;
  }

  count(): number {
    return this.table.count();
  }

  /** Insert a user (caller checks who may, and audits). Password hashed with crypto_pwhash_str (Argon2id). */
  add(input: unknown, createdBy: string | null, now: number): UserInfo {
    const user = newUserShape.parse(input);
    if (this.table.byUsername(user.username) !== undefined)
      return nodeFail('USER_EXISTS', `user ${user.username} exists`);
    // Argon2id on a short-lived worker thread (blocking, as in-process would):
    // in-process, libsodium's WebAssembly memory would grow to memlimit for good.
    const hash = pwhashStrInWorkerSync(
      user.password.normalize('NFC'),
      this.kdf.opslimit,
      this.kdf.memlimit,
    );
    const id = newLocalId('u');
    this.table.insert({
      id,
      username: user.username,
      role: user.role,
      clearances: JSON.stringify(user.clearances),
      password_hash: hash,
      created_at: now,
      created_by: createdBy,
    });
    return {
      id,
      username: user.username,
      role: user.role,
      clearances: user.clearances,
      disabled: false,
      createdAt: now,
    };
  }

  list(): UserInfo[] {
    return this.table.all().map(info);
  }

  byUsername(username: string): UserInfo | undefined {
    const row = this.table.byUsername(username);
    return row ? info(row) : undefined;
  }

  byId(id: string): UserInfo | undefined {
    const row = this.table.byId(id);
    return row ? info(row) : undefined;
  }

  disable(username: string): UserInfo {
    if (!this.table.disable(username)) return nodeFail('NOT_FOUND', `no user ${username}`);
    return this.byUsername(username)!;
  }

  enable(username: string): UserInfo {
    if (!this.table.enable(username)) return nodeFail('NOT_FOUND', `no user ${username}`);
    return this.byUsername(username)!;
  }

  /** Hash and store a new password (Argon2id, as `add`). */
  setPassword(username: string, password: unknown): UserInfo {
    const checked = passwordShape.parse(password);
    if (this.table.byUsername(username) === undefined)
      return nodeFail('NOT_FOUND', `no user ${username}`);
    const hash = pwhashStrInWorkerSync(
      checked.normalize('NFC'),
      this.kdf.opslimit,
      this.kdf.memlimit,
    );
    this.table.setPasswordHash(username, hash);
    return this.byUsername(username)!;
  }

  /** Whether `password` is the user's current one (constant-time verify; false for an unknown user). */
  checkPassword(username: string, password: string): boolean {
    const row = this.table.byUsername(username);
    if (!row) return false;
    try {
      return pwhashStrVerifyInWorkerSync(row.password_hash, password.normalize('NFC'));
    } catch {
      return false;
    }
  }

  setRole(username: string, role: unknown): UserInfo {
    const checked = roleShape.parse(role);
    if (!this.table.setRole(username, checked)) return nodeFail('NOT_FOUND', `no user ${username}`);
    return this.byUsername(username)!;
  }

  setClearances(username: string, clearances: unknown): UserInfo {
    const checked = clearancesShape.parse(clearances);
    if (!this.table.setClearances(username, JSON.stringify(checked)))
      return nodeFail('NOT_FOUND', `no user ${username}`);
    return this.byUsername(username)!;
  }

  /** Enabled admin accounts: the node keeps at least one. */
  activeAdmins(): number {
    return this.table.activeAdmins();
  }

  /** Check a password (crypto_pwhash_str_verify compares in constant time). Same error for every failure. */
  authenticate(username: string, password: string): Actor {
    const row = this.table.byUsername(username);
    this.dummyHash ??= pwhashStrInWorkerSync(
      'not a password of anyone',
      this.kdf.opslimit,
      this.kdf.memlimit,
    );
    let ok = false;
    try {
      ok = pwhashStrVerifyInWorkerSync(
        row?.password_hash ?? this.dummyHash,
        password.normalize('NFC'),
      );
    } catch {
      ok = false;
    }
    if (!row || !ok || row.disabled !== 0)
      return nodeFail('AUTHENTICATION_FAILED', 'unknown user, wrong password or disabled account');
    return Actor.issue(row.id, row.username);
  }

  /** The actor's current account, refusing forged actors and disabled accounts. */
  current(actor: Actor): UserInfo {
    if (!issued.has(actor)) return nodeFail('AUTHENTICATION_FAILED', 'not a logged-in user');
    const user = this.byId(actor.id);
    if (!user || user.disabled)
      return nodeFail('AUTHENTICATION_FAILED', 'the account is disabled or gone');
    return user;
  }

  /** The actor's account, if its role grants `permission` (NOT_AUTHORISED otherwise). */
  require(actor: Actor, permission: Permission): UserInfo {
    const user = this.current(actor);
    if (!(PERMISSIONS[permission] as readonly Role[]).includes(user.role))
      return nodeFail('NOT_AUTHORISED', `role ${user.role} may not ${permission}`);
    return user;
  }
}

/** Whether a user may see a dossier with this handling code: `none` is open to every reader, the others need that clearance. */
export function isCleared(user: UserInfo, code: HandlingCode): boolean {
  return code === 'none' || (user.clearances as readonly string[]).includes(code);
}

export function requireClearance(user: UserInfo, code: HandlingCode): void {
  if (!isCleared(user, code))
    nodeFail(
      'CLEARANCE_REQUIRED',
      `handling code ${code} requires a clearance ${user.username} does not hold`,
    );
}

function info(row: UserRow): UserInfo {
  const parsed: unknown = JSON.parse(row.clearances);
  const clearances = Array.isArray(parsed)
    ? parsed.filter((c): c is Clearance => (CLEARANCES as readonly unknown[]).includes(c))
    : [];
  return {
    id: row.id,
    username: row.username,
    // The table's CHECK constraint admits only ROLES.
    role: row.role as Role,
    clearances,
    disabled: row.disabled !== 0,
    createdAt: row.created_at,
  };
}
