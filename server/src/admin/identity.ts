import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';
import { ErrorCode, TesseraError } from '@tessera/protocol';
import type { Claims, Role } from '../auth.js';
import { hashPassword, MIN_PASSWORD_LENGTH, verifyPassword } from './password.js';

/**
 * Identity tables, created by this module on the server's SQLite file (`DATA/tessera.db`), so the
 * CLI (`tessera enroll`, `tessera admin-password`) and the server share them.
 * Secrets (enrollment tokens, refresh tokens, admin session ids) are stored only as SHA-256 hashes.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS enrollment_tokens (
  id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, tasks TEXT, client_id TEXT, note TEXT,
  created_at INTEGER NOT NULL, created_by TEXT NOT NULL, expires_at INTEGER NOT NULL,
  used_at INTEGER, used_by TEXT, used_ip TEXT, revoked_at INTEGER, revoked_by TEXT);
CREATE TABLE IF NOT EXISTS refresh_tokens (
  id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, sub TEXT NOT NULL, role TEXT NOT NULL, tasks TEXT,
  enrollment_id TEXT, created_at INTEGER NOT NULL, last_used_at INTEGER, last_ip TEXT,
  revoked_at INTEGER, revoked_by TEXT);
CREATE INDEX IF NOT EXISTS refresh_tokens_sub ON refresh_tokens (sub);
CREATE TABLE IF NOT EXISTS revocations (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL CHECK (kind IN ('sub', 'jti')), value TEXT NOT NULL,
  at INTEGER NOT NULL, actor TEXT NOT NULL, reason TEXT);
CREATE INDEX IF NOT EXISTS revocations_value ON revocations (kind, value);
CREATE TABLE IF NOT EXISTS admin_users (
  username TEXT PRIMARY KEY, password TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS admin_sessions (
  id_hash TEXT PRIMARY KEY, actor TEXT NOT NULL, csrf TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, ip TEXT, revoked_at INTEGER);
`;

type Row = Record<string, unknown>;

/** Prefixes make leaked secrets recognisable (and redactable in logs). */
export const ENROLLMENT_PREFIX = 'tse_';
export const REFRESH_PREFIX = 'tsr_';
const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const secret = (prefix: string): string => prefix + randomBytes(32).toString('base64url');
const shortId = (prefix: string): string => `${prefix}-${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const tasksOf = (v: unknown): string[] | undefined => (v === null || v === undefined ? undefined : (JSON.parse(String(v)) as string[]));

export type EnrollmentRole = Extract<Role, 'client' | 'keyholder'>;

/** An enrollment token as listed (never its secret). */
export interface EnrollmentInfo {
  id: string;
  role: EnrollmentRole;
  tasks?: string[];
  clientId: string | null;
  note: string | null;
  createdAt: number;
  createdBy: string;
  expiresAt: number;
  usedAt: number | null;
  usedBy: string | null;
  revokedAt: number | null;
  status: 'unused' | 'used' | 'expired' | 'revoked';
}

/** A device session: the refresh token a device got at enrollment (never its secret). */
export interface DeviceInfo {
  id: string;
  sub: string;
  role: EnrollmentRole;
  tasks?: string[];
  enrollmentId: string | null;
  createdAt: number;
  lastUsedAt: number | null;
  lastIp: string | null;
  revokedAt: number | null;
  status: 'active' | 'revoked';
}

export interface Revocation {
  id: number;
  kind: 'sub' | 'jti';
  value: string;
  at: number;
  actor: string;
  reason: string | null;
}

export interface AdminSession {
  actor: string;
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

/** Enrollment, device sessions (refresh tokens), revocations and admin credentials, on one SQLite connection. */
export class IdentityStore {
  constructor(readonly db: DatabaseSync) {
    db.exec(SCHEMA);
  }

  // ---- enrollment ------------------------------------------------------------------------

  /** Creates a single-use enrollment token; returns its secret once (only its hash is kept). */
  createEnrollment(opts: { role: EnrollmentRole; tasks?: string[]; clientId?: string; ttlSeconds: number; note?: string; createdBy: string }): { token: string; enrollment: EnrollmentInfo } {
    if (opts.role !== 'client' && opts.role !== 'keyholder') throw new TesseraError(ErrorCode.INVALID_CONFIG, `enrollment role must be client or keyholder, not ${String(opts.role)}`);
    if (!(opts.ttlSeconds > 0) || opts.ttlSeconds > 90 * 86_400) throw new TesseraError(ErrorCode.INVALID_CONFIG, 'enrollment ttl must be between 1 s and 90 days');
    if (opts.clientId !== undefined && !CLIENT_ID.test(opts.clientId)) throw new TesseraError(ErrorCode.INVALID_CONFIG, 'client id: 1–64 of A–Z a–z 0–9 . _ : - (starting with a letter or digit)');
    const token = secret(ENROLLMENT_PREFIX);
    const id = shortId('enr');
    const now = Date.now();
    this.db
      .prepare('INSERT INTO enrollment_tokens (id, hash, role, tasks, client_id, note, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(id, sha256(token), opts.role, opts.tasks ? JSON.stringify(opts.tasks) : null, opts.clientId ?? null, opts.note ?? null, now, opts.createdBy, now + opts.ttlSeconds * 1000);
    return { token, enrollment: this.getEnrollment(id)! };
  }

  getEnrollment(id: string): EnrollmentInfo | undefined {
    const r = this.db.prepare('SELECT * FROM enrollment_tokens WHERE id = ?').get(id) as Row | undefined;
    return r ? enrollmentRow(r) : undefined;
  }

  listEnrollments(limit = 200): EnrollmentInfo[] {
    return (this.db.prepare('SELECT * FROM enrollment_tokens ORDER BY created_at DESC LIMIT ?').all(limit) as Row[]).map(enrollmentRow);
  }

  /** Revokes an unused enrollment token; false when there is none (or it is already used or revoked). */
  revokeEnrollment(id: string, actor: string): boolean {
    const r = this.db.prepare('UPDATE enrollment_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL AND used_at IS NULL').run(Date.now(), actor, id);
    return Number(r.changes) === 1;
  }

  /**
   * Redeems an enrollment token (single use, atomically) and opens a device session. The client id
   * is the token's if it names one, else the device's proposal, else a fresh one.
   */
  redeemEnrollment(token: unknown, proposedClientId: string | undefined, ip: string | null): { device: DeviceInfo; refreshToken: string } {
    if (typeof token !== 'string' || !token.startsWith(ENROLLMENT_PREFIX)) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'not an enrollment token');
    if (proposedClientId !== undefined && !CLIENT_ID.test(proposedClientId)) throw new TesseraError(ErrorCode.INVALID_MESSAGE, 'clientId: 1–64 of A–Z a–z 0–9 . _ : - (starting with a letter or digit)');
    return this.tx(() => {
      const row = this.db.prepare('SELECT * FROM enrollment_tokens WHERE hash = ?').get(sha256(token)) as Row | undefined;
      if (!row) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'unknown enrollment token');
      const e = enrollmentRow(row);
      if (e.status === 'used') throw new TesseraError(ErrorCode.UNAUTHORIZED, 'enrollment token already used');
      if (e.status === 'revoked') throw new TesseraError(ErrorCode.UNAUTHORIZED, 'enrollment token revoked');
      if (e.status === 'expired') throw new TesseraError(ErrorCode.TOKEN_EXPIRED, 'enrollment token expired');
      if (e.clientId && proposedClientId && proposedClientId !== e.clientId) throw new TesseraError(ErrorCode.FORBIDDEN, `this enrollment token is for client ${e.clientId}`);
      const sub = e.clientId ?? proposedClientId ?? shortId('c');
      const active = this.db.prepare('SELECT id FROM refresh_tokens WHERE sub = ? AND revoked_at IS NULL').get(sub) as Row | undefined;
      if (active) throw new TesseraError(ErrorCode.FORBIDDEN, `client id ${sub} is already enrolled; revoke its device session first`);
      const now = Date.now();
      const used = this.db.prepare('UPDATE enrollment_tokens SET used_at = ?, used_by = ?, used_ip = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL').run(now, sub, ip, e.id);
      if (Number(used.changes) !== 1) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'enrollment token already used');
      const refreshToken = secret(REFRESH_PREFIX);
      const id = shortId('dev');
      this.db
        .prepare('INSERT INTO refresh_tokens (id, hash, sub, role, tasks, enrollment_id, created_at, last_used_at, last_ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(id, sha256(refreshToken), sub, e.role, e.tasks ? JSON.stringify(e.tasks) : null, e.id, now, now, ip);
      return { device: this.getDevice(id)!, refreshToken };
    });
  }

  // ---- device sessions (refresh tokens) ----------------------------------------------------

  /** Looks up a refresh token for a new session JWT; refused once it (or its subject) is revoked. */
  useRefreshToken(token: unknown, ip: string | null): DeviceInfo {
    if (typeof token !== 'string' || !token.startsWith(REFRESH_PREFIX)) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'not a refresh token');
    const row = this.db.prepare('SELECT * FROM refresh_tokens WHERE hash = ?').get(sha256(token)) as Row | undefined;
    if (!row) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'unknown refresh token');
    const d = deviceRow(row);
    if (d.status === 'revoked' || this.isRevoked({ sub: d.sub, jti: d.id, iat: Math.floor(d.createdAt / 1000) })) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'token revoked');
    this.db.prepare('UPDATE refresh_tokens SET last_used_at = ?, last_ip = ? WHERE id = ?').run(Date.now(), ip, d.id);
    return { ...d, lastUsedAt: Date.now(), lastIp: ip };
  }

  getDevice(id: string): DeviceInfo | undefined {
    const r = this.db.prepare('SELECT * FROM refresh_tokens WHERE id = ?').get(id) as Row | undefined;
    return r ? deviceRow(r) : undefined;
  }

  listDevices(limit = 500): DeviceInfo[] {
    return (this.db.prepare('SELECT * FROM refresh_tokens ORDER BY created_at DESC LIMIT ?').all(limit) as Row[]).map(deviceRow);
  }

  // ---- revocation ----------------------------------------------------------------------------

  /**
   * Revokes by subject (every token of that client id issued until now, and its device sessions)
   * or by token id (one JWT's `jti`, or a device session id, which also revokes the JWTs minted from it).
   */
  revoke(kind: 'sub' | 'jti', value: string, actor: string, reason?: string): Revocation {
    if (!value || value.length > 200) throw new TesseraError(ErrorCode.INVALID_MESSAGE, `${kind} must be 1–200 characters`);
    return this.tx(() => {
      const now = Date.now();
      const r = this.db.prepare('INSERT INTO revocations (kind, value, at, actor, reason) VALUES (?, ?, ?, ?, ?)').run(kind, value, now, actor, reason ?? null);
      const devices = kind === 'sub' ? 'UPDATE refresh_tokens SET revoked_at = ?, revoked_by = ? WHERE sub = ? AND revoked_at IS NULL' : 'UPDATE refresh_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL';
      this.db.prepare(devices).run(now, actor, value);
      if (kind === 'sub') this.db.prepare("UPDATE admin_sessions SET revoked_at = ? WHERE actor = ? AND revoked_at IS NULL").run(now, value);
      return { id: Number(r.lastInsertRowid), kind, value, at: now, actor, reason: reason ?? null };
    });
  }

  listRevocations(limit = 500): Revocation[] {
    return (this.db.prepare('SELECT * FROM revocations ORDER BY id DESC LIMIT ?').all(limit) as Row[]).map((r) => ({
      id: Number(r.id),
      kind: String(r.kind) as 'sub' | 'jti',
      value: String(r.value),
      at: Number(r.at),
      actor: String(r.actor),
      reason: strOrNull(r.reason),
    }));
  }

  /**
   * True when a token is revoked: its jti or device session is, or its subject was revoked at or
   * after the second it was issued (tokens without `iat` count as issued at the epoch).
   */
  isRevoked(c: Pick<Claims, 'sub' | 'jti' | 'iat' | 'sid'>): boolean {
    const ids = [c.jti, c.sid].filter((x): x is string => typeof x === 'string');
    for (const id of ids) if (this.db.prepare("SELECT 1 FROM revocations WHERE kind = 'jti' AND value = ?").get(id)) return true;
    if (c.sid && this.db.prepare('SELECT 1 FROM refresh_tokens WHERE id = ? AND revoked_at IS NOT NULL').get(c.sid)) return true;
    const latest = this.db.prepare("SELECT MAX(at) AS at FROM revocations WHERE kind = 'sub' AND value = ?").get(c.sub) as Row;
    if (latest.at === null) return false;
    return (c.iat ?? 0) <= Math.floor(Number(latest.at) / 1000);
  }

  // ---- admin credentials and console sessions ----------------------------------------------------

  hasAdminUsers(): boolean {
    return this.db.prepare('SELECT 1 FROM admin_users LIMIT 1').get() !== undefined;
  }

  /** Sets (or replaces) an admin's password, hashed with scrypt. */
  async setAdminPassword(username: string, password: string): Promise<void> {
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(username)) throw new TesseraError(ErrorCode.INVALID_CONFIG, 'admin user name: 1–64 of A–Z a–z 0–9 . _ @ -');
    if (password.length < MIN_PASSWORD_LENGTH) throw new TesseraError(ErrorCode.INVALID_CONFIG, `admin password must have at least ${MIN_PASSWORD_LENGTH} characters`);
    const hash = await hashPassword(password);
    const now = Date.now();
    this.db
      .prepare('INSERT INTO admin_users (username, password, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(username) DO UPDATE SET password = excluded.password, updated_at = excluded.updated_at')
      .run(username, hash, now, now);
  }

  /** Checks an admin's password (scrypt, constant-time); an unknown user costs the same time. */
  async checkAdminPassword(username: string, password: string): Promise<boolean> {
    const r = this.db.prepare('SELECT password FROM admin_users WHERE username = ?').get(username) as Row | undefined;
    const ok = await verifyPassword(password, r ? String(r.password) : DUMMY_HASH);
    return ok && r !== undefined;
  }

  /** Opens a console session; returns the cookie value (kept only hashed) and its CSRF token. */
  createSession(actor: string, ttlMs: number, ip: string | null): { id: string; session: AdminSession } {
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    const now = Date.now();
    this.db.prepare('INSERT INTO admin_sessions (id_hash, actor, csrf, created_at, expires_at, ip) VALUES (?, ?, ?, ?, ?, ?)').run(sha256(id), actor, csrf, now, now + ttlMs, ip);
    this.db.prepare('DELETE FROM admin_sessions WHERE expires_at < ?').run(now - 86_400_000);
    return { id, session: { actor, csrf, createdAt: now, expiresAt: now + ttlMs } };
  }

  /** The live session for a cookie value, or undefined (unknown, expired, logged out or revoked). */
  getSession(id: string): AdminSession | undefined {
    const r = this.db.prepare('SELECT * FROM admin_sessions WHERE id_hash = ?').get(sha256(id)) as Row | undefined;
    if (!r || r.revoked_at !== null || Number(r.expires_at) <= Date.now()) return undefined;
    const s = { actor: String(r.actor), csrf: String(r.csrf), createdAt: Number(r.created_at), expiresAt: Number(r.expires_at) };
    if (this.isRevoked({ sub: s.actor, iat: Math.floor(s.createdAt / 1000) })) return undefined;
    return s;
  }

  endSession(id: string): void {
    this.db.prepare('UPDATE admin_sessions SET revoked_at = ? WHERE id_hash = ?').run(Date.now(), sha256(id));
  }

  private tx<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const r = fn();
      this.db.exec('COMMIT');
      return r;
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }
}

/** Compares two secrets in constant time. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// A valid hash of a random password, so a login for an unknown user does the same scrypt work.
const DUMMY_HASH = `scrypt$32768$8$1$${randomBytes(16).toString('base64url')}$${randomBytes(32).toString('base64url')}`;

function enrollmentRow(r: Row): EnrollmentInfo {
  const usedAt = numOrNull(r.used_at);
  const revokedAt = numOrNull(r.revoked_at);
  const expiresAt = Number(r.expires_at);
  const tasks = tasksOf(r.tasks);
  return {
    id: String(r.id),
    role: String(r.role) as EnrollmentRole,
    ...(tasks ? { tasks } : {}),
    clientId: strOrNull(r.client_id),
    note: strOrNull(r.note),
    createdAt: Number(r.created_at),
    createdBy: String(r.created_by),
    expiresAt,
    usedAt,
    usedBy: strOrNull(r.used_by),
    revokedAt,
    status: usedAt !== null ? 'used' : revokedAt !== null ? 'revoked' : expiresAt <= Date.now() ? 'expired' : 'unused',
  };
}

function deviceRow(r: Row): DeviceInfo {
  const revokedAt = numOrNull(r.revoked_at);
  const tasks = tasksOf(r.tasks);
  return {
    id: String(r.id),
    sub: String(r.sub),
    role: String(r.role) as EnrollmentRole,
    ...(tasks ? { tasks } : {}),
    enrollmentId: strOrNull(r.enrollment_id),
    createdAt: Number(r.created_at),
    lastUsedAt: numOrNull(r.last_used_at),
    lastIp: strOrNull(r.last_ip),
    revokedAt,
    status: revokedAt === null ? 'active' : 'revoked',
  };
}
