import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Request, type Response } from 'express';
import type { Socket } from 'socket.io';
import { z } from 'zod';
import { ErrorCode, Events, parseMessage, StrategyNames, taskSpecSchema, TesseraError, type ErrorBody } from '@tessera/protocol';
import { parseTtl, type Claims } from '../auth.js';
import type { TaskRow, TaskStatus } from '../db.js';
import { Metrics } from '../metrics.js';
import type { RunnerEvents } from '../runner.js';
import type { TesseraServerApp } from '../server.js';
import { IdentityStore, REFRESH_PREFIX, sameSecret, type AdminSession } from './identity.js';
import { LiveFeed, recentRejections } from './live.js';
import { openApiDocument, toOpenApiPath } from './openapi.js';
import { apiCsp, consoleCsp, corsPolicy, limiter, originAllowed, ownOrigin, parseCookies, requestLog, securityHeaders } from './security.js';

export { IdentityStore } from './identity.js';
export { hashPassword, verifyPassword } from './password.js';
export { openApiDocument } from './openapi.js';

/** Options of the admin surface; each has an environment variable for `tessera server`. */
export interface AdminOptions {
  /** Failed console logins per IP per window (default 10 per minute). */
  loginRateLimit?: { limit: number; windowMs: number };
  /** Enrollment and refresh calls per IP per window (default 30 per minute). */
  tokenRateLimit?: { limit: number; windowMs: number };
  /** Console session lifetime (default 12 h). */
  sessionTtlSeconds?: number;
  /** Lifetime of the session JWTs that enrollment and refresh hand out (default 15m). */
  accessTokenTtl?: string | number;
  /** Extra origins allowed to call the API from a browser (TESSERA_CORS_ORIGINS, comma-separated); default none. */
  corsOrigins?: string[];
  /** When set, GET /metrics needs `Authorization: Bearer <token>` (TESSERA_METRICS_TOKEN). */
  metricsToken?: string;
  /** Password of admin user 'admin' on first start, when none is set (TESSERA_ADMIN_PASSWORD). */
  adminPassword?: string;
  /** express 'trust proxy' (TESSERA_TRUST_PROXY), so req.ip is the client's behind a reverse proxy. */
  trustProxy?: boolean | number | string;
  /** How often the live feed compares task snapshots (default 400 ms). */
  liveIntervalMs?: number;
}

export const SESSION_COOKIE = 'tessera_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

interface Principal {
  claims: Claims;
  via: 'bearer' | 'cookie';
  sessionId?: string;
  session?: AdminSession;
}

const loginSchema = z.union([
  z.strictObject({ username: z.string().min(1).max(64).default('admin'), password: z.string().min(1).max(1024) }),
  z.strictObject({ token: z.string().min(1).max(8192) }),
]);
const enrollSchema = z.strictObject({ token: z.string().min(1).max(256), clientId: z.string().min(1).max(64).optional() });
const refreshSchema = z.strictObject({ refreshToken: z.string().min(1).max(256) });
const createEnrollmentSchema = z.strictObject({
  role: z.enum(['client', 'keyholder']),
  tasks: z.array(z.string().min(1).max(200)).max(100).optional(),
  clientId: z.string().min(1).max(64).optional(),
  ttl: z.union([z.string().max(16), z.number().int().positive()]).default('1d'),
  note: z.string().max(200).optional(),
});
const revokeSchema = z.union([
  z.strictObject({ sub: z.string().min(1).max(200), reason: z.string().max(200).optional() }),
  z.strictObject({ jti: z.string().min(1).max(200), reason: z.string().max(200).optional() }),
  z.strictObject({ token: z.string().min(1).max(8192), reason: z.string().max(200).optional() }),
]);

const here = dirname(fileURLToPath(import.meta.url));
/** Static files of the console page (HTML, CSS): server/console. */
const CONSOLE_STATIC = join(here, '..', '..', 'console');
/** The console's compiled scripts: server/dist/console (also when this module runs from src under vitest). */
const CONSOLE_JS = [join(here, '..', 'console'), join(here, '..', '..', 'dist', 'console')].find((d) => existsSync(join(d, 'app.js'))) ?? join(here, '..', 'console');
const SOCKET_IO_CLIENT = join(dirname(createRequire(import.meta.url).resolve('socket.io/package.json')), 'client-dist', 'socket.io.esm.min.js');

/**
 * Everything an operator and a device use besides the training protocol: console login and
 * sessions, enrollment and refresh, revocation, key rotation, the task lifecycle, the console page,
 * its live feed, metrics, security headers, CORS and rate limits. Mounted by TesseraServerApp.
 */
export class AdminModule {
  readonly identity: IdentityStore;
  readonly metrics: Metrics;
  readonly live: LiveFeed;
  private readonly principals = new WeakMap<Request, Principal>();
  private readonly corsOrigins: string[];
  private readonly accessTtl: number;
  private readonly routers: { prefix: string; router: express.Router }[] = [];

  private constructor(
    private readonly app: TesseraServerApp,
    private readonly opts: AdminOptions,
  ) {
    this.identity = new IdentityStore(app.store.db);
    this.metrics = new Metrics({ hub: app.hub, runners: app.runners, rejectionCounts: app.rejectionCounts });
    this.corsOrigins = opts.corsOrigins ?? (process.env.TESSERA_CORS_ORIGINS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    this.accessTtl = parseTtl(opts.accessTokenTtl ?? '15m');
    app.tokens.setRevocationCheck((c) => {
      try {
        return this.identity.isRevoked(c);
      } catch {
        return true; // store closed or broken: fail closed
      }
    });
    this.live = new LiveFeed(app, (s) => this.authenticateSocket(s), opts.liveIntervalMs);
    this.instrumentSockets();
  }

  /** Opens the identity tables, sets the first admin password from the options or environment, hooks sockets. */
  static async create(app: TesseraServerApp, opts: AdminOptions = {}): Promise<AdminModule> {
    const m = new AdminModule(app, opts);
    if (!m.identity.hasAdminUsers()) {
      const password = opts.adminPassword ?? process.env.TESSERA_ADMIN_PASSWORD;
      if (password) {
        await m.identity.setAdminPassword('admin', password);
        app.store.audit('system', 'admin.password_set', 'admin', { source: opts.adminPassword ? 'options' : 'TESSERA_ADMIN_PASSWORD' });
        app.log.info(`console: password of admin user 'admin' set from ${opts.adminPassword ? 'the server options' : 'TESSERA_ADMIN_PASSWORD'}`);
      } else {
        app.log.info('console: no admin password set (tessera admin-password --data DIR, or TESSERA_ADMIN_PASSWORD); log in with an admin JWT meanwhile');
      }
    }
    return m;
  }

  private get features() {
    const shape = (taskSpecSchema as unknown as { shape?: Record<string, z.ZodType> }).shape;
    const he = shape?.he;
    const heValue = he ? [true, { enabled: true }].find((v) => he.safeParse(v).success) : undefined;
    return {
      he: heValue === undefined ? { available: false as const } : { available: true as const, value: heValue },
      strategies: Object.values(StrategyNames),
      privacyModes: ['off', 'central', 'distributed', 'local'],
    };
  }

  private ip(req: Request): string | null {
    return req.ip ?? req.socket.remoteAddress ?? null;
  }

  private audit(req: Request, action: string, target: string | null, details?: unknown, actor?: string): void {
    this.app.store.audit(actor ?? this.principals.get(req)?.claims.sub ?? 'anonymous', action, target, details, this.ip(req));
  }

  // ---- authentication -----------------------------------------------------------------------

  /**
   * Authenticates an admin API call: `Authorization: Bearer <admin JWT>`, or the console session
   * cookie, which on a state-changing method also needs the `x-csrf-token` header. Throws
   * ERR_UNAUTHORIZED (401) or ERR_FORBIDDEN (403).
   */
  async authenticate(req: Request): Promise<Claims> {
    const h = req.header('authorization');
    if (h !== undefined) {
      if (!h.startsWith('Bearer ')) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'expected Authorization: Bearer <token>');
      const claims = await this.app.tokens.verify(h.slice(7), 'admin');
      this.principals.set(req, { claims, via: 'bearer' });
      return claims;
    }
    const sessionId = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (!sessionId) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'missing token');
    const session = this.identity.getSession(sessionId);
    if (!session) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'console session expired, revoked or logged out');
    if (!SAFE_METHODS.has(req.method)) {
      const csrf = req.header('x-csrf-token');
      if (!csrf || !sameSecret(csrf, session.csrf)) throw new TesseraError(ErrorCode.FORBIDDEN, 'missing or wrong CSRF token (x-csrf-token)');
    }
    const claims: Claims = { sub: session.actor, role: 'admin', exp: Math.floor(session.expiresAt / 1000) };
    this.principals.set(req, { claims, via: 'cookie', sessionId, session });
    return claims;
  }

  /** The `/admin` namespace: an admin JWT in `auth.token`, or the session cookie from this origin. */
  private async authenticateSocket(socket: Socket): Promise<Claims> {
    const token: unknown = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
    if (token !== undefined) return this.app.tokens.verify(token, 'admin');
    const headers = socket.handshake.headers;
    const own = ownOrigin({ protocol: socket.handshake.secure ? 'https' : 'http', headers });
    if (!originAllowed(headers.origin, own, this.corsOrigins)) throw new TesseraError(ErrorCode.FORBIDDEN, 'origin not allowed');
    const sessionId = parseCookies(headers.cookie)[SESSION_COOKIE];
    const session = sessionId ? this.identity.getSession(sessionId) : undefined;
    if (!session) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'missing token');
    return { sub: session.actor, role: 'admin', exp: Math.floor(session.expiresAt / 1000) };
  }

  // ---- HTTP: before the server's own routes -------------------------------------------------------

  /** Security headers, CORS, request ids and logs, body limits, the public auth endpoints, the console page and /metrics. */
  mountPublic(app: express.Express): void {
    const trust = this.opts.trustProxy ?? process.env.TESSERA_TRUST_PROXY;
    if (trust !== undefined && trust !== '') app.set('trust proxy', trust === 'true' ? true : /^\d+$/.test(String(trust)) ? Number(trust) : trust);
    app.use(requestLog(this.app.log, { verbose: process.env.TESSERA_LOG_FORMAT === 'json', onDone: (method, status) => this.metrics.httpRequests.inc({ method, status: String(status) }) }));
    app.use(securityHeaders());
    app.use(corsPolicy(this.corsOrigins));
    app.use(['/api', '/.well-known'], apiCsp());
    // Small bodies everywhere under /api except task creation (a model topology with weights can be large).
    const small = express.json({ limit: '64kb' });
    app.use('/api', (req, res, next) => (req.method === 'POST' && req.path === '/tasks' ? next() : small(req, res, next)));

    const pub = express.Router();
    const loginLimit = this.opts.loginRateLimit ?? { limit: 10, windowMs: 60_000 };
    const tokenLimit = this.opts.tokenRateLimit ?? { limit: 30, windowMs: 60_000 };
    pub.post('/api/login', limiter('login', { ...loginLimit, failedOnly: true, onLimited: () => this.metrics.logins.inc({ result: 'throttled' }) }), (req, res) => this.login(req, res));
    pub.post('/api/enroll', limiter('enrollment', tokenLimit), (req, res) => this.enroll(req, res));
    pub.post('/api/token/refresh', limiter('token refresh', tokenLimit), (req, res) => this.refresh(req, res));
    pub.get('/.well-known/jwks.json', (_req, res) => {
      res.setHeader('Cache-Control', 'public, max-age=300');
      res.json(this.app.tokens.jwks());
    });
    pub.get('/api/openapi.json', (_req, res) => {
      res.json(openApiDocument(this.app.url));
    });
    pub.get('/metrics', (req, res, next) => {
      const token = this.opts.metricsToken ?? process.env.TESSERA_METRICS_TOKEN;
      if (token && !sameSecret(req.header('authorization') ?? '', `Bearer ${token}`)) return next(new TesseraError(ErrorCode.UNAUTHORIZED, 'metrics need the metrics token'));
      this.metrics
        .render()
        .then(({ contentType, body }) => res.type(contentType).send(body))
        .catch(next);
    });
    app.use(pub);
    this.routers.push({ prefix: '', router: pub });

    // The console: a static page, its compiled scripts and socket.io's browser build, all from this origin.
    app.get('/console/vendor/socket.io.esm.min.js', (_req, res) => res.sendFile(SOCKET_IO_CLIENT));
    app.use('/console/js', express.static(CONSOLE_JS, { index: false, fallthrough: false }));
    app.use('/console', consoleCsp(), express.static(CONSOLE_STATIC, { index: 'index.html' }));
  }

  private async login(req: Request, res: Response): Promise<void> {
    const ip = this.ip(req);
    const body = parseMessage(loginSchema, req.body, 'login request');
    const ttlMs = (this.opts.sessionTtlSeconds ?? 12 * 3600) * 1000;
    let actor: string;
    let expiresAt = Date.now() + ttlMs;
    try {
      if ('token' in body) {
        const claims = await this.app.tokens.verify(body.token, 'admin');
        actor = claims.sub;
        expiresAt = Math.min(expiresAt, claims.exp * 1000);
      } else {
        if (!(await this.identity.checkAdminPassword(body.username, body.password))) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'wrong user name or password');
        actor = body.username;
      }
    } catch (e) {
      this.metrics.logins.inc({ result: 'failed' });
      const who = 'token' in body ? 'token' : body.username.replace(/[^A-Za-z0-9._@-]/g, '?');
      this.app.store.audit(who, 'admin.login_failed', null, { method: 'token' in body ? 'jwt' : 'password', reason: (e as Error).message }, ip);
      throw e;
    }
    const { id, session } = this.identity.createSession(actor, expiresAt - Date.now(), ip);
    res.cookie(SESSION_COOKIE, id, { httpOnly: true, sameSite: 'strict', secure: req.secure, path: '/', maxAge: expiresAt - Date.now() });
    this.metrics.logins.inc({ result: 'ok' });
    this.app.store.audit(actor, 'admin.login', null, { method: 'token' in body ? 'jwt' : 'password' }, ip);
    res.json({ actor, role: 'admin', via: 'cookie', csrfToken: session.csrf, expiresAt: session.expiresAt, features: this.features });
  }

  private async enroll(req: Request, res: Response): Promise<void> {
    const body = parseMessage(enrollSchema, req.body, 'enrollment request');
    const ip = this.ip(req);
    const { device, refreshToken } = this.identity.redeemEnrollment(body.token, body.clientId, ip);
    const accessToken = await this.app.tokens.issue({ role: device.role, sub: device.sub, ...(device.tasks ? { tasks: device.tasks } : {}), ttl: this.accessTtl, sid: device.id });
    this.app.store.audit(device.sub, 'device.enroll', device.id, { enrollment: device.enrollmentId, role: device.role, tasks: device.tasks ?? 'any' }, ip);
    this.app.log.info(`device ${device.id} enrolled as ${device.role} ${device.sub}`, { enrollment: device.enrollmentId });
    res.status(201).json({ clientId: device.sub, role: device.role, tasks: device.tasks ?? null, accessToken, tokenType: 'Bearer', expiresIn: this.accessTtl, refreshToken, deviceId: device.id });
  }

  private async refresh(req: Request, res: Response): Promise<void> {
    const body = parseMessage(refreshSchema, req.body, 'refresh request');
    const device = this.identity.useRefreshToken(body.refreshToken, this.ip(req));
    const accessToken = await this.app.tokens.issue({ role: device.role, sub: device.sub, ...(device.tasks ? { tasks: device.tasks } : {}), ttl: this.accessTtl, sid: device.id });
    res.json({ clientId: device.sub, role: device.role, tasks: device.tasks ?? null, accessToken, tokenType: 'Bearer', expiresIn: this.accessTtl, deviceId: device.id });
  }

  // ---- HTTP: admin routes (inside the server's authenticated /api router) ----------------------------

  /** Adds the admin endpoints to the server's `/api` router (already behind authenticate()). */
  mountAdmin(api: express.Router): void {
    this.routers.push({ prefix: '/api', router: api });
    const actor = (req: Request) => this.principals.get(req)?.claims.sub ?? 'admin';

    api.get('/session', (req, res) => {
      const p = this.principals.get(req)!;
      res.json({ actor: p.claims.sub, role: 'admin', via: p.via, ...(p.session ? { csrfToken: p.session.csrf, expiresAt: p.session.expiresAt } : { expiresAt: p.claims.exp * 1000 }), features: this.features });
    });
    api.post('/logout', (req, res) => {
      const p = this.principals.get(req)!;
      if (p.sessionId) this.identity.endSession(p.sessionId);
      res.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict', secure: req.secure });
      this.audit(req, 'admin.logout', null);
      res.json({ ok: true });
    });

    for (const action of ['start', 'pause', 'resume', 'abort'] as const) {
      api.post(`/tasks/:id/${action}`, async (req, res) => {
        const t = await this.taskAction(action, String(req.params.id), actor(req));
        this.audit(req, `task.${action}`, t.id, { status: t.status });
        res.json(summary(t));
      });
    }
    api.get('/tasks/:id/rejections', (req, res) => {
      const t = this.task(String(req.params.id));
      const limit = Math.min(500, Math.max(1, Number(req.query.limit ?? 100) || 100));
      res.json(recentRejections(this.app, t.id, limit));
    });
    api.get('/tasks/:id/participants', (req, res) => {
      const t = this.task(String(req.params.id));
      res.json(this.participants(t.id));
    });

    api.get('/enrollments', (_req, res) => {
      res.json(this.identity.listEnrollments());
    });
    api.post('/enrollments', (req, res) => {
      const body = parseMessage(createEnrollmentSchema, req.body, 'enrollment');
      const { token, enrollment } = this.identity.createEnrollment({
        role: body.role,
        ...(body.tasks ? { tasks: body.tasks } : {}),
        ...(body.clientId ? { clientId: body.clientId } : {}),
        ...(body.note ? { note: body.note } : {}),
        ttlSeconds: parseTtl(body.ttl),
        createdBy: actor(req),
      });
      this.audit(req, 'enrollment.create', enrollment.id, { role: enrollment.role, tasks: enrollment.tasks ?? 'any', clientId: enrollment.clientId, expiresAt: enrollment.expiresAt });
      res.status(201).json({ ...enrollment, token });
    });
    api.post('/enrollments/:id/revoke', (req, res) => {
      const id = String(req.params.id);
      const e = this.identity.getEnrollment(id);
      if (!e) throw new TesseraError(ErrorCode.NOT_FOUND, `no enrollment token ${id}`);
      const revoked = this.identity.revokeEnrollment(id, actor(req));
      if (revoked) this.audit(req, 'enrollment.revoke', id);
      res.json({ ...this.identity.getEnrollment(id)!, revoked });
    });
    api.get('/devices', (_req, res) => {
      res.json(this.identity.listDevices());
    });
    api.get('/revocations', (_req, res) => {
      res.json(this.identity.listRevocations());
    });
    api.post('/revocations', async (req, res) => {
      const body = parseMessage(revokeSchema, req.body, 'revocation');
      let kind: 'sub' | 'jti';
      let value: string;
      if ('sub' in body) [kind, value] = ['sub', body.sub];
      else if ('jti' in body) [kind, value] = ['jti', body.jti];
      else [kind, value] = ['jti', await this.tokenId(body.token)];
      const r = this.identity.revoke(kind, value, actor(req), body.reason);
      const closed = this.disconnectRevoked();
      this.audit(req, kind === 'sub' ? 'token.revoke_subject' : 'token.revoke_id', value, { reason: body.reason ?? null, socketsClosed: closed });
      this.app.log.info(`revoked ${kind} ${value}`, { by: actor(req), socketsClosed: closed });
      res.status(201).json({ ...r, socketsClosed: closed });
    });
    api.post('/keys/rotate', async (req, res) => {
      const r = await this.app.tokens.rotate();
      this.audit(req, 'keys.rotate', r.kid, { retired: r.retiredKid });
      this.app.log.info(`signing key rotated: ${r.retiredKid} → ${r.kid}`);
      res.json({ kid: r.kid, retiredKid: r.retiredKid, ...this.app.tokens.jwks() });
    });
  }

  /** The id to revoke for a pasted token: a refresh token's device session, or a JWT's jti (signature checked). */
  private async tokenId(token: string): Promise<string> {
    if (token.startsWith(REFRESH_PREFIX)) {
      try {
        return this.identity.useRefreshToken(token, null).id;
      } catch (e) {
        throw new TesseraError(ErrorCode.INVALID_MESSAGE, `cannot revoke this refresh token: ${(e as Error).message}`);
      }
    }
    let claims: Claims;
    try {
      claims = await this.app.tokens.verify(token);
    } catch (e) {
      throw new TesseraError(ErrorCode.INVALID_MESSAGE, `cannot revoke this token: ${(e as Error).message}`);
    }
    if (!claims.jti) throw new TesseraError(ErrorCode.INVALID_MESSAGE, 'this token has no jti (issued before token ids); revoke its subject instead');
    return claims.jti;
  }

  /** Closes every live socket whose token is now revoked (training clients, key holders, consoles). */
  disconnectRevoked(): number {
    let n = 0;
    for (const s of this.app.io.of('/').sockets.values()) {
      const c = s.data.claims as Claims | undefined;
      if (c && this.identity.isRevoked(c)) {
        s.emit(Events.ERROR, { code: ErrorCode.UNAUTHORIZED, message: 'token revoked' });
        s.disconnect(true);
        n++;
      }
    }
    for (const s of this.live.nsp.sockets.values()) {
      const c = (s.data as { claims?: Claims } | undefined)?.claims;
      if (c && this.identity.isRevoked(c)) {
        s.disconnect(true);
        n++;
      }
    }
    return n;
  }

  private task(id: string): TaskRow {
    const t = this.app.store.getTask(id);
    if (!t) throw new TesseraError(ErrorCode.NOT_FOUND, `no task ${id}`);
    return t;
  }

  /**
   * start/resume: a paused task gets a new runner from its last checkpoint; pause: the runner stops,
   * the open round is interrupted, the task stays paused (across restarts too); abort: ends it.
   */
  async taskAction(action: 'start' | 'pause' | 'resume' | 'abort', id: string, actor: string): Promise<TaskRow> {
    const t = this.task(id);
    const refuse = (allowed: TaskStatus[]) => {
      if (!allowed.includes(t.status)) throw new TesseraError(ErrorCode.INVALID_CONFIG, `task ${id} is ${t.status}; ${action} needs it ${allowed.join(' or ')}`);
    };
    const runner = this.app.runners.get(id);
    if (action === 'start' || action === 'resume') {
      refuse(['paused']);
      if (runner) await this.app.waitForTask(id);
      this.app.store.markInterrupted(id, 'task paused');
      this.app.store.setTaskStatus(id, 'running');
      this.app.launch(this.app.store.getTask(id)!);
    } else if (action === 'pause') {
      refuse(['running']);
      runner?.pause();
      await this.app.waitForTask(id);
      this.app.store.markInterrupted(id, 'task paused');
      this.app.store.setTaskStatus(id, 'paused', `paused by ${actor}`);
    } else {
      refuse(['running', 'paused']);
      const reason = `aborted by ${actor}`;
      if (runner && runner.state !== 'done' && runner.state !== 'failed' && runner.state !== 'aborted') {
        runner.abort(reason);
        await this.app.waitForTask(id);
      }
      this.app.store.setTaskStatus(id, 'aborted', reason);
    }
    const after = this.app.store.getTask(id)!;
    this.app.log.info(`task ${id} ${action} by ${actor}`, { status: after.status });
    this.live.tasksChanged(id, after.status);
    return after;
  }

  /** Clients that were in a cohort of the task or are connected to it now. */
  participants(taskId: string) {
    const cohorts = new Map<string, number>();
    for (const r of this.app.store.listRounds(taskId)) for (const id of r.cohort) cohorts.set(id, (cohorts.get(id) ?? 0) + 1);
    const connected = new Map(this.app.hub.forTask(taskId).map((c) => [c.clientId, c]));
    const known = new Map(this.app.store.listClients().map((r) => [String(r.id), r]));
    const ids = new Set([...cohorts.keys(), ...connected.keys()]);
    return [...ids]
      .map((id) => {
        const row = known.get(id);
        const live = connected.get(id);
        return {
          clientId: id,
          platform: live?.platform ?? (row ? String(row.platform) : null),
          backend: live?.backend ?? (row ? String(row.backend) : null),
          lastSeen: live ? Date.now() : row ? Number(row.last_seen) : null,
          roundsContributed: row ? Number(row.rounds_contributed) : 0,
          cohorts: cohorts.get(id) ?? 0,
          connected: Boolean(live),
        };
      })
      .sort((a, b) => Number(b.connected) - Number(a.connected) || a.clientId.localeCompare(b.clientId));
  }

  /** Wraps a new runner's event hooks: metrics and the console's live feed, then the caller's hooks. */
  runnerEvents(taskId: string, base: RunnerEvents): RunnerEvents {
    // Called by launch() just before a new runner replaces the task's previous one.
    const previous = this.app.runners.get(taskId);
    if (previous) this.metrics.retireRunner(previous);
    const safe = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        this.app.log.warn(`admin hook failed: ${(e as Error).message}`);
      }
    };
    return {
      onRoundEnd: (e) => {
        safe(() => {
          this.metrics.rounds.inc({ task: taskId, status: e.status });
          const row = this.app.store.db.prepare('SELECT started_at, ended_at FROM rounds WHERE task_id = ? AND round_id = ?').get(taskId, e.roundId) as { started_at: number; ended_at: number | null } | undefined;
          if (row) this.metrics.roundDuration.observe({ status: e.status }, ((row.ended_at ?? Date.now()) - row.started_at) / 1000);
          this.live.roundChanged(taskId, { roundId: e.roundId, kind: 'ended', status: e.status, metrics: e.metrics });
        });
        base.onRoundEnd?.(e);
      },
      onEvaluated: (e) => {
        safe(() => this.live.roundChanged(taskId, { roundId: e.roundId, kind: 'evaluated', metrics: e.metrics }));
        base.onEvaluated?.(e);
      },
      onDone: (e) => {
        safe(() => this.live.tasksChanged(taskId, e.status));
        base.onDone?.(e);
      },
    };
  }

  /** Counts submissions by outcome (from their acks) and socket bytes in and out. */
  private instrumentSockets(): void {
    this.app.io.on('connection', (socket) => {
      socket.use((packet, next) => {
        const last = packet.length - 1;
        const ack = packet[last] as unknown;
        if (packet[0] === Events.SUBMIT && typeof ack === 'function') {
          packet[last] = (res: { ok?: boolean; error?: ErrorBody }) => {
            if (res?.ok) this.metrics.submissions.inc({ result: 'accepted', code: '' });
            else this.metrics.submissions.inc({ result: 'rejected', code: res?.error?.code ?? 'unknown' });
            (ack as (r: unknown) => void)(res);
          };
        }
        next();
      });
    });
    const size = (data: unknown): number =>
      typeof data === 'string' ? Buffer.byteLength(data) : data instanceof ArrayBuffer || ArrayBuffer.isView(data) ? (data as ArrayBufferLike | ArrayBufferView).byteLength : 0;
    this.app.io.engine.on('connection', (conn: { on(ev: 'packet' | 'packetCreate', fn: (p: { data?: unknown }) => void): void }) => {
      conn.on('packet', (p) => this.metrics.socketBytes.inc({ direction: 'in' }, size(p.data)));
      conn.on('packetCreate', (p) => this.metrics.socketBytes.inc({ direction: 'out' }, size(p.data)));
    });
  }

  /** Every route this module and the server registered, as OpenAPI paths (for the coverage test). */
  routeTable(): { method: string; path: string }[] {
    const out: { method: string; path: string }[] = [];
    for (const { prefix, router } of this.routers) {
      for (const layer of router.stack as { route?: { path: string; methods: Record<string, boolean> } }[]) {
        if (!layer.route) continue;
        for (const [m, on] of Object.entries(layer.route.methods)) if (on && m !== '_all') out.push({ method: m, path: toOpenApiPath(prefix + layer.route.path) });
      }
    }
    return out;
  }

  close(): void {
    this.live.close();
  }
}

function summary(t: TaskRow) {
  return { id: t.id, name: t.name, status: t.status, modelVersion: t.modelVersion, completedRounds: t.completedRounds, reason: t.reason, createdAt: t.createdAt };
}
