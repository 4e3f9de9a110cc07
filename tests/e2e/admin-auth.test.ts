import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, TesseraServerApp } from '@tessera/server';
import { FakeClient, tinyTask, tmp } from '../helpers.js';

/**
 * Who may call what: every admin endpoint of the OpenAPI document refuses anonymous and wrong-role
 * callers, cookie calls need the CSRF token, logins are throttled, expired and revoked tokens are
 * refused (REST, sockets, refresh), key rotation keeps old tokens valid, and the task lifecycle,
 * metrics, headers and logs behave.
 */

const PASSWORD = 'admin-auth-test-password';
let server: TesseraServerApp | undefined;
const clients: FakeClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  await server?.close();
  server = undefined;
});

type Opts = Parameters<typeof TesseraServerApp.start>[0];
async function start(opts: Opts = {}) {
  server = await TesseraServerApp.start({ dataDir: tmp(), port: 0, logger: createLogger({ silent: true }), ...opts, admin: { adminPassword: PASSWORD, ...opts?.admin } });
  return server;
}

interface Call {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
  headers: Headers;
}
async function call(method: string, path: string, opts: { bearer?: string; cookie?: string; csrf?: string; body?: unknown; origin?: string; headers?: Record<string, string> } = {}): Promise<Call> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.csrf) headers['x-csrf-token'] = opts.csrf;
  if (opts.origin) headers.origin = opts.origin;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${server!.url}${path}`, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
  const text = await r.text();
  let body: Call['body'] = {};
  try {
    body = JSON.parse(text) as Call['body'];
  } catch {
    /* text body */
  }
  return { status: r.status, body, headers: r.headers };
}

async function login(password = PASSWORD): Promise<{ cookie: string; csrf: string; res: Call }> {
  const res = await call('POST', '/api/login', { body: { username: 'admin', password } });
  const set = res.headers.get('set-cookie') ?? '';
  return { cookie: set.split(';')[0]!, csrf: String(res.body.csrfToken ?? ''), res };
}

type OpenApi = { paths: Record<string, Record<string, { security: Record<string, string[]>[]; 'x-roles': string[] }>> };

describe('admin API access control', () => {
  it('every admin endpoint in the OpenAPI document refuses anonymous, wrong-role, expired, revoked and CSRF-less callers', async () => {
    const s = await start();
    const doc = (await call('GET', '/api/openapi.json')).body as unknown as OpenApi;
    expect(doc).toMatchObject({ openapi: '3.1.0' });
    const client = await s.tokens.issue({ role: 'client', sub: 'c1' });
    const keyholder = await s.tokens.issue({ role: 'keyholder', sub: 'k1' });
    const expired = await s.tokens.issue({ role: 'admin', sub: 'ops', ttl: 0 });
    const revoked = await s.tokens.issue({ role: 'admin', sub: 'gone' });
    const admin = await s.tokens.issue({ role: 'admin', sub: 'ops' });
    expect((await call('POST', '/api/revocations', { bearer: admin, body: { token: revoked, reason: 'test' } })).status).toBe(201);
    const { cookie, csrf } = await login();
    expect(cookie).toMatch(/^tessera_session=/);

    let adminOps = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const url = path.replace(/\{[^}]+\}/g, 'does-not-exist');
        const M = method.toUpperCase();
        const body = M === 'GET' ? undefined : { rounds: 0 };
        const what = `${M} ${path}`;
        if (op.security.length === 0) {
          expect([401, 403], what).not.toContain((await call(M, url, { body: M === 'GET' ? undefined : {} })).status);
          continue;
        }
        if (!op['x-roles'].includes('admin')) continue;
        adminOps++;
        const anon = await call(M, url, { body });
        expect(anon.status, `${what} anonymous`).toBe(401);
        expect(anon.body.error?.code, what).toBe('ERR_UNAUTHORIZED');
        expect((await call(M, url, { body, bearer: client })).status, `${what} as client`).toBe(403);
        expect((await call(M, url, { body, bearer: keyholder })).status, `${what} as keyholder`).toBe(403);
        const exp = await call(M, url, { body, bearer: expired });
        expect([exp.status, exp.body.error?.code], `${what} expired`).toEqual([401, 'ERR_TOKEN_EXPIRED']);
        const rev = await call(M, url, { body, bearer: revoked });
        expect([rev.status, rev.body.error?.message], `${what} revoked`).toEqual([401, 'token revoked']);
        expect((await call(M, url, { body, headers: { authorization: 'Basic YWRtaW46eA==' } })).status, `${what} basic auth`).toBe(401);
        if (M !== 'GET') {
          const noCsrf = await call(M, url, { body, cookie });
          expect([noCsrf.status, noCsrf.body.error?.code], `${what} cookie without CSRF`).toEqual([403, 'ERR_FORBIDDEN']);
          expect((await call(M, url, { body, cookie, csrf: csrf.slice(1) + 'x' })).status, `${what} wrong CSRF`).toBe(403);
        }
        if (path === '/api/logout') continue; // would end the cookie session used below
        // The right credentials get past authentication (the dummy ids and bodies may still be refused).
        expect([401, 403], `${what} as admin`).not.toContain((await call(M, url, { body, bearer: admin })).status);
        expect([401, 403], `${what} with cookie + CSRF`).not.toContain((await call(M, url, { body, cookie, csrf })).status);
      }
    }
    expect(adminOps).toBeGreaterThanOrEqual(24);

    // Every route the server registers is in the document.
    const documented = new Set(Object.entries(doc.paths).flatMap(([p, ms]) => Object.keys(ms).map((m) => `${m} ${p}`)));
    const routes = s.admin.routeTable().map((r) => `${r.method} ${r.path}`);
    expect(routes.length).toBeGreaterThan(24);
    expect(routes.filter((r) => !documented.has(r))).toEqual([]);
  });

  it('refuses cross-site requests: CSRF token, Origin check and CORS', async () => {
    const s = await start();
    const { cookie, csrf } = await login();
    const create = { role: 'client', ttl: '1h' };
    expect((await call('POST', '/api/enrollments', { cookie, body: create })).status).toBe(403);
    const ok = await call('POST', '/api/enrollments', { cookie, csrf, body: create });
    expect(ok.status).toBe(201);
    expect(String(ok.body.token)).toMatch(/^tse_/);
    // A page on another origin: refused before any handler, even with a (stolen) CSRF token.
    const evil = await call('POST', '/api/enrollments', { cookie, csrf, body: create, origin: 'https://evil.example' });
    expect([evil.status, evil.body.error?.code]).toEqual([403, 'ERR_FORBIDDEN']);
    const pre = await call('OPTIONS', '/api/enrollments', { origin: 'https://evil.example', headers: { 'access-control-request-method': 'POST' } });
    expect(pre.status).toBe(403);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const read = await call('GET', '/api/session', { cookie, origin: 'https://evil.example' });
    expect(read.headers.get('access-control-allow-origin')).toBeNull();
    const own = new URL(s.url).origin;
    const preOwn = await call('OPTIONS', '/api/enrollments', { origin: own, headers: { 'access-control-request-method': 'POST' } });
    expect([preOwn.status, preOwn.headers.get('access-control-allow-origin')]).toEqual([204, own]);
    // Logging out ends the session for good.
    expect((await call('POST', '/api/logout', { cookie, csrf })).status).toBe(200);
    expect((await call('GET', '/api/session', { cookie })).status).toBe(401);
    // The cookie is httpOnly and SameSite=Strict.
    const { res } = await login();
    expect(res.headers.get('set-cookie')).toMatch(/HttpOnly/);
    expect(res.headers.get('set-cookie')).toMatch(/SameSite=Strict/);
    // An admin JWT can log in to the console too; a client JWT cannot.
    expect((await call('POST', '/api/login', { body: { token: await s.tokens.issue({ role: 'admin', sub: 'jwt-ops' }) } })).body.actor).toBe('jwt-ops');
    expect((await call('POST', '/api/login', { body: { token: await s.tokens.issue({ role: 'client', sub: 'c' }) } })).status).toBe(403);
  });

  it('throttles brute-force logins per IP and audits failures with the ip', async () => {
    const s = await start();
    for (let i = 0; i < 10; i++) expect((await call('POST', '/api/login', { body: { password: `guess-${i}` } })).status).toBe(401);
    const blocked = await call('POST', '/api/login', { body: { password: PASSWORD } });
    expect([blocked.status, blocked.body.error?.code]).toEqual([429, 'ERR_RATE_LIMITED']);
    expect(blocked.headers.get('ratelimit-policy')).toMatch(/q=10; w=60/);
    const failures = s.store.listAudit().filter((a) => a.action === 'admin.login_failed');
    expect(failures).toHaveLength(10);
    expect(String(failures[0]!.ip)).toMatch(/127\.0\.0\.1/);
    // Enrollment and refresh are limited too (here: 3 per window).
    await s.close();
    await start({ admin: { tokenRateLimit: { limit: 3, windowMs: 60_000 } } });
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await call('POST', '/api/token/refresh', { body: { refreshToken: 'tsr_nope' } })).status);
    expect(codes).toEqual([401, 401, 401, 429]);
  });
});

describe('enrollment, refresh, revocation and key rotation', () => {
  it('exchanges a single-use, expiring, scoped enrollment token for a session JWT and a refresh token', async () => {
    const s = await start();
    const admin = await s.tokens.issue({ role: 'admin', sub: 'ops' });
    const taskId = await s.createTask(tinyTask({ rounds: 1 }));
    const e = await call('POST', '/api/enrollments', { bearer: admin, body: { role: 'client', tasks: [taskId], ttl: '1h', note: 'site A' } });
    expect(e.status).toBe(201);
    const grant = await call('POST', '/api/enroll', { body: { token: e.body.token, clientId: 'site-a' } });
    expect(grant.status).toBe(201);
    expect(grant.body).toMatchObject({ clientId: 'site-a', role: 'client', tasks: [taskId], tokenType: 'Bearer', expiresIn: 900 });
    const claims = await s.tokens.verify(grant.body.accessToken, 'client');
    expect(claims).toMatchObject({ sub: 'site-a', tasks: [taskId], sid: grant.body.deviceId });
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    // Single use.
    expect((await call('POST', '/api/enroll', { body: { token: e.body.token, clientId: 'site-x' } })).body.error?.message).toBe('enrollment token already used');
    // The session JWT joins its task over socket.io.
    const c = new FakeClient(s.url, String(grant.body.accessToken));
    clients.push(c);
    expect(await c.join('site-a')).toMatchObject({ ok: true, taskId });
    // Refresh gives a fresh session JWT.
    const r = await call('POST', '/api/token/refresh', { body: { refreshToken: grant.body.refreshToken } });
    expect(r.status).toBe(200);
    expect((await s.tokens.verify(r.body.accessToken)).sub).toBe('site-a');
    // Expired and revoked enrollment tokens; a keyholder token; a token bound to a client id.
    const short = await call('POST', '/api/enrollments', { bearer: admin, body: { role: 'client', ttl: 1 } });
    const rev = await call('POST', '/api/enrollments', { bearer: admin, body: { role: 'client' } });
    expect((await call('POST', `/api/enrollments/${String(rev.body.id)}/revoke`, { bearer: admin })).body.status).toBe('revoked');
    expect((await call('POST', '/api/enroll', { body: { token: rev.body.token } })).body.error?.message).toBe('enrollment token revoked');
    const kh = await call('POST', '/api/enrollments', { bearer: admin, body: { role: 'keyholder', clientId: 'kh-1' } });
    expect((await call('POST', '/api/enroll', { body: { token: kh.body.token, clientId: 'other' } })).status).toBe(403);
    const khGrant = await call('POST', '/api/enroll', { body: { token: kh.body.token } });
    expect(khGrant.body).toMatchObject({ clientId: 'kh-1', role: 'keyholder' });
    expect((await call('POST', '/api/enrollments', { bearer: admin, body: { role: 'admin' } })).status).toBe(400);
    await new Promise((res) => setTimeout(res, 1100));
    const late = await call('POST', '/api/enroll', { body: { token: short.body.token } });
    expect([late.status, late.body.error?.code]).toEqual([401, 'ERR_TOKEN_EXPIRED']);
    expect((await call('POST', '/api/enroll', { body: { token: 'tse_forged' } })).status).toBe(401);
    const list = (await call('GET', '/api/enrollments', { bearer: admin })).body as unknown as { status: string; token?: string }[];
    expect(list.map((x) => x.status).sort()).toEqual(['expired', 'revoked', 'used', 'used']);
    expect(list.every((x) => x.token === undefined)).toBe(true);
  });

  it('revocation by subject closes the live socket and refuses the next connection and refresh; by jti refuses operator tokens', async () => {
    const s = await start();
    const admin = await s.tokens.issue({ role: 'admin', sub: 'ops' });
    const taskId = await s.createTask(tinyTask());
    const e = await call('POST', '/api/enrollments', { bearer: admin, body: { role: 'client' } });
    const grant = await call('POST', '/api/enroll', { body: { token: e.body.token, clientId: 'dev-1' } });
    const c = new FakeClient(s.url, String(grant.body.accessToken));
    clients.push(c);
    expect(await c.join('dev-1')).toMatchObject({ ok: true, taskId });
    const closed = new Promise<string>((res) => c.socket.on('disconnect', (reason) => res(reason)));
    const errorEvent = new Promise<unknown>((res) => c.socket.on('tessera:error', res));
    const r = await call('POST', '/api/revocations', { bearer: admin, body: { sub: 'dev-1', reason: 'lost device' } });
    expect(r.status).toBe(201);
    expect(r.body.socketsClosed).toBe(1);
    expect(await errorEvent).toEqual({ code: 'ERR_UNAUTHORIZED', message: 'token revoked' });
    expect(await closed).toBe('io server disconnect');
    const again = new FakeClient(s.url, String(grant.body.accessToken));
    clients.push(again);
    expect((await again.connectError).data).toEqual({ code: 'ERR_UNAUTHORIZED', message: 'token revoked' });
    expect((await call('POST', '/api/token/refresh', { body: { refreshToken: grant.body.refreshToken } })).body.error?.message).toBe('token revoked');
    const devices = (await call('GET', '/api/devices', { bearer: admin })).body as unknown as { sub: string; status: string }[];
    expect(devices).toEqual([expect.objectContaining({ sub: 'dev-1', status: 'revoked' })]);
    // A new enrollment for the same id (the admin's decision) works again.
    const e2 = await call('POST', '/api/enrollments', { bearer: admin, body: { role: 'client', clientId: 'dev-1' } });
    await new Promise((res) => setTimeout(res, 1000)); // a new second: tokens issued after the revocation
    const grant2 = await call('POST', '/api/enroll', { body: { token: e2.body.token } });
    expect(grant2.status).toBe(201);
    expect((await s.tokens.verify(grant2.body.accessToken)).sub).toBe('dev-1');

    // Operator-issued tokens (tessera token) carry a jti and are revocable by it, on sockets and REST.
    const op = await s.tokens.issue({ role: 'client', sub: 'op-1' });
    const { jti } = await s.tokens.verify(op);
    const live = new FakeClient(s.url, op);
    clients.push(live);
    expect(await live.join('op-1')).toMatchObject({ ok: true });
    const gone = new Promise<string>((res) => live.socket.on('disconnect', (reason) => res(reason)));
    expect((await call('POST', '/api/revocations', { bearer: admin, body: { jti } })).status).toBe(201);
    expect(await gone).toBe('io server disconnect');
    const refused = new FakeClient(s.url, op);
    clients.push(refused);
    expect((await refused.connectError).data?.message).toBe('token revoked');
    const other = await s.tokens.issue({ role: 'client', sub: 'op-1' });
    // Only that token: the subject's other tokens still work.
    expect((await s.tokens.verify(other)).sub).toBe('op-1');
    // A device session id revokes the JWTs minted from it.
    const e3 = await call('POST', '/api/enrollments', { bearer: admin, body: { role: 'client', clientId: 'dev-3' } });
    const g3 = await call('POST', '/api/enroll', { body: { token: e3.body.token } });
    expect((await call('POST', '/api/revocations', { bearer: admin, body: { jti: g3.body.deviceId } })).status).toBe(201);
    await expect(s.tokens.verify(g3.body.accessToken)).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED', message: 'token revoked' });
    expect((await call('POST', '/api/token/refresh', { body: { refreshToken: g3.body.refreshToken } })).status).toBe(401);
    const audit = s.store.listAudit().map((a) => a.action);
    expect(audit).toEqual(expect.arrayContaining(['token.revoke_subject', 'token.revoke_id', 'device.enroll', 'enrollment.create']));
  });

  it('publishes its keys as a JWKS and keeps tokens of a rotated key valid until they expire, across restarts', async () => {
    const dataDir = tmp();
    let s = await start({ dataDir });
    const admin = await s.tokens.issue({ role: 'admin', sub: 'ops', ttl: '1h' });
    const oldKid = s.tokens.kid;
    const jwks1 = (await call('GET', '/.well-known/jwks.json')).body as unknown as { keys: { kid: string; d?: string; kty: string }[] };
    expect(jwks1.keys.map((k) => k.kid)).toEqual([oldKid]);
    const rot = await call('POST', '/api/keys/rotate', { bearer: admin });
    expect(rot.status).toBe(200);
    expect(rot.body.retiredKid).toBe(oldKid);
    const newKid = String(rot.body.kid);
    expect(newKid).not.toBe(oldKid);
    const jwks2 = (await call('GET', '/.well-known/jwks.json')).body as unknown as { keys: { kid: string; d?: string }[] };
    expect(jwks2.keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    expect(jwks2.keys.every((k) => k.d === undefined)).toBe(true);
    const fresh = await s.tokens.issue({ role: 'admin', sub: 'ops' });
    expect(JSON.parse(Buffer.from(fresh.split('.')[0]!, 'base64url').toString()).kid).toBe(newKid);
    expect((await call('GET', '/api/tasks', { bearer: admin })).status).toBe(200);
    expect((await call('GET', '/api/tasks', { bearer: fresh })).status).toBe(200);
    await s.close();
    s = await start({ dataDir });
    expect(s.tokens.kid).toBe(newKid);
    expect((await call('GET', '/api/tasks', { bearer: admin })).status).toBe(200);
    expect((await call('GET', '/api/tasks', { bearer: fresh })).status).toBe(200);
    expect(s.store.listAudit().some((a) => a.action === 'keys.rotate' && a.actor === 'ops')).toBe(true);
  });
});

describe('task lifecycle, live feed, metrics, headers and logs', () => {
  it('creates a task paused, starts, pauses, resumes and aborts it; pushes state to /admin; counts it in /metrics', async () => {
    const s = await start({ admin: { liveIntervalMs: 50 } });
    const admin = await s.tokens.issue({ role: 'admin', sub: 'ops' });
    const created = await call('POST', '/api/tasks?start=false', { bearer: admin, body: tinyTask({ rounds: 5, roundDeadlineSeconds: 30 }) });
    expect(created.status).toBe(201);
    const id = String(created.body.id);
    expect(s.store.getTask(id)!.status).toBe('paused');
    expect((await call('POST', `/api/tasks/${id}/pause`, { bearer: admin })).status).toBe(400);

    // The console's live feed, with an admin JWT (the page uses its cookie).
    const { io } = await import('socket.io-client');
    const live = io(`${s.url}/admin`, { auth: { token: admin }, transports: ['websocket'], forceNew: true, reconnection: false });
    const states: { runner: { state: string; roundId: number; submitted: string[] } | null; task: { status: string } }[] = [];
    live.on('task:state', (x: (typeof states)[number]) => states.push(x));
    const rounds: unknown[] = [];
    live.on('task:round', (x: unknown) => rounds.push(x));
    const sub = (await live.timeout(5000).emitWithAck('subscribe', id)) as { ok: boolean };
    expect(sub.ok).toBe(true);
    const anon = io(`${s.url}/admin`, { transports: ['websocket'], forceNew: true, reconnection: false });
    const anonErr = await new Promise<{ data?: { code: string } }>((res) => anon.on('connect_error', res));
    anon.close();
    expect(anonErr.data?.code).toBe('ERR_UNAUTHORIZED');

    expect((await call('POST', `/api/tasks/${id}/start`, { bearer: admin })).body.status).toBe('running');
    const tokens = await Promise.all(['a', 'b'].map((sub) => s.tokens.issue({ role: 'client', sub })));
    const [a, b] = tokens.map((t) => new FakeClient(s.url, t));
    clients.push(a!, b!);
    await a!.join('a');
    await b!.join('b');
    const ra = await a!.round();
    const rb = await b!.round();
    expect(await a!.submit(ra, 0.01)).toEqual({ ok: true });
    expect(await a!.submit(ra, 0.01)).toMatchObject({ ok: false, error: { code: 'ERR_DUPLICATE_SUBMISSION' } });
    expect(await b!.submit(rb, 0.01)).toEqual({ ok: true });
    expect(await a!.roundEnd()).toMatchObject({ roundId: 1, status: 'completed' });
    const r2 = await a!.round();
    expect(r2.roundId).toBe(2);
    await expect.poll(() => states.some((x) => x.runner?.roundId === 2 && x.runner.state === 'training')).toBe(true);
    expect(rounds).toContainEqual(expect.objectContaining({ taskId: id, roundId: 1, kind: 'ended', status: 'completed' }));

    // Pause: round 2 is interrupted, the task stays at v1; resume starts round 3 from v1.
    expect((await call('POST', `/api/tasks/${id}/pause`, { bearer: admin })).body.status).toBe('paused');
    expect(s.store.listRounds(id).map((r) => [r.roundId, r.status, r.reason])).toEqual([
      [1, 'completed', null],
      [2, 'interrupted', 'task paused'],
    ]);
    expect(await a!.submit(r2, 0.01)).toMatchObject({ ok: false, error: { code: 'ERR_ROUND_CLOSED' } });
    expect((await call('POST', `/api/tasks/${id}/resume`, { bearer: admin })).body.status).toBe('running');
    await a!.task();
    const r3 = await a!.round();
    expect([r3.roundId, r3.modelVersion]).toEqual([3, 1]);
    expect((await call('POST', `/api/tasks/${id}/abort`, { bearer: admin })).body).toMatchObject({ status: 'aborted', reason: 'aborted by ops' });
    expect(await a!.done()).toMatchObject({ taskId: id, status: 'aborted' });
    expect(s.store.listRounds(id).at(-1)).toMatchObject({ roundId: 3, status: 'failed', reason: 'aborted by ops' });
    expect((await call('POST', `/api/tasks/${id}/resume`, { bearer: admin })).status).toBe(400);
    await expect.poll(() => states.at(-1)?.task.status).toBe('aborted');
    live.close();

    const audit = s.store.listAudit().filter((x) => x.target === id).map((x) => x.action);
    expect(audit).toEqual(['task.abort', 'task.resume', 'task.pause', 'task.start', 'task.create']);

    const participants = (await call('GET', `/api/tasks/${id}/participants`, { bearer: admin })).body as unknown as { clientId: string; cohorts: number; roundsContributed: number }[];
    expect(participants.map((p) => [p.clientId, p.cohorts, p.roundsContributed])).toEqual([
      ['a', 3, 1],
      ['b', 3, 1],
    ]);
    const rejections = (await call('GET', `/api/tasks/${id}/rejections`, { bearer: admin })).body as unknown as { code: string; clientId: string }[];
    expect(rejections.map((r) => r.code)).toEqual(['ERR_ROUND_CLOSED', 'ERR_DUPLICATE_SUBMISSION']);

    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(metrics)?.[1]);
    expect(value(new RegExp(`tessera_rounds_total\\{task="${id}",status="completed"\\} (\\d+)`))).toBe(1);
    expect(value(/tessera_submissions_total\{result="accepted",code=""\} (\d+)/)).toBe(2);
    expect(value(/tessera_submissions_total\{result="rejected",code="ERR_DUPLICATE_SUBMISSION"\} (\d+)/)).toBe(1);
    expect(value(/tessera_rejections_total\{code="ERR_ROUND_CLOSED"\} (\d+)/)).toBe(1);
    expect(value(/tessera_connected_clients\{platform="node",backend="fake"\} (\d+)/)).toBe(2);
    expect(value(/tessera_round_duration_seconds_count\{status="completed"\} (\d+)/)).toBe(1);
    expect(value(/tessera_socket_bytes_total\{direction="in"\} (\d+)/)).toBeGreaterThan(1000);
    expect(value(/tessera_socket_bytes_total\{direction="out"\} (\d+)/)).toBeGreaterThan(1000);
    expect(value(/tessera_model_bytes_total\{direction="up"\} (\d+)/)).toBeGreaterThan(0);
  });

  it('sends security headers, limits body sizes, protects /metrics with its token, and logs JSON with request ids and no secrets', async () => {
    const lines: string[] = [];
    const s = await start({ logger: createLogger({ json: true, write: (l) => lines.push(l) }), admin: { metricsToken: 'scrape-secret' } });
    const page = await fetch(`${s.url}/console/`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(page.headers.get('x-powered-by')).toBeNull();
    expect((await fetch(`${s.url}/console/js/app.js`)).headers.get('content-type')).toMatch(/javascript/);
    expect((await call('GET', '/api/tasks')).headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
    const big = await call('POST', '/api/login', { body: { password: 'x'.repeat(70_000) } });
    expect([big.status, big.body.error?.code]).toEqual([413, 'ERR_PAYLOAD_TOO_LARGE']);
    expect((await fetch(`${s.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${s.url}/metrics`, { headers: { authorization: 'Bearer scrape-secret' } })).status).toBe(200);

    const admin = await s.tokens.issue({ role: 'admin', sub: 'ops' });
    const e = await call('POST', '/api/enrollments', { bearer: admin, body: { role: 'client' }, headers: { 'x-request-id': 'req-test-123' } });
    expect(e.headers.get('x-request-id')).toBe('req-test-123');
    const g = await call('POST', '/api/enroll', { body: { token: e.body.token } });
    await login('wrong password');
    await login();
    s.log.info(`a careless message with ${String(g.body.accessToken)} and ${String(g.body.refreshToken)}`, { token: String(e.body.token) });
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.find((l) => l.reqId === 'req-test-123')).toMatchObject({ level: 'info', method: 'POST', path: '/api/enrollments', status: 201 });
    expect(parsed.find((l) => l.path === '/api/login' && l.status === 401)).toMatchObject({ level: 'warn' });
    const all = lines.join('\n');
    for (const secret of [e.body.token, g.body.accessToken, g.body.refreshToken, PASSWORD, admin]) expect(all).not.toContain(String(secret));
    expect(all).toContain('[Redacted]');
  });
});
