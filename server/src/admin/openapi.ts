/**
 * The REST API as an OpenAPI 3.1 document (hand-written), served at GET /api/openapi.json.
 * Every operation says who may call it: `security: []` is public; admin operations accept an admin
 * JWT (Bearer) or a console session cookie, and with the cookie a state-changing call also needs the
 * `x-csrf-token` header. `x-roles` lists the roles allowed. Tests walk this document, so an endpoint
 * added here is covered by the 401/403 checks automatically; a route registered but missing here
 * fails the coverage test.
 */

type Json = Record<string, unknown>;
type Method = 'get' | 'post' | 'delete';

const ADMIN_READ = [{ bearerAdmin: [] }, { consoleSession: [] }];
const ADMIN_WRITE = [{ bearerAdmin: [] }, { consoleSession: [], csrfToken: [] }];

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json): Json => ({ content: { 'application/json': { schema } } });
const errors = (...codes: number[]): Json =>
  Object.fromEntries(codes.map((c) => [String(c), { description: ERROR_TEXT[c] ?? 'error', ...json(ref('Error')) }]));
const ERROR_TEXT: Record<number, string> = {
  400: 'invalid request (ERR_INVALID_MESSAGE, ERR_INVALID_CONFIG)',
  401: 'missing, invalid, expired or revoked credentials (ERR_UNAUTHORIZED, ERR_TOKEN_EXPIRED)',
  403: 'wrong role, missing/wrong CSRF token, or foreign Origin (ERR_FORBIDDEN)',
  404: 'no such resource (ERR_NOT_FOUND)',
  413: 'request body too large (ERR_PAYLOAD_TOO_LARGE)',
  429: 'rate limited (ERR_RATE_LIMITED)',
};
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

interface Op {
  summary: string;
  auth: 'public' | 'admin' | 'metrics';
  body?: Json;
  params?: Json[];
  ok?: { status?: number; schema?: Json; description?: string };
  extraErrors?: number[];
}

function op(method: Method, o: Op): Json {
  const write = method !== 'get';
  const security = o.auth === 'admin' ? (write ? ADMIN_WRITE : ADMIN_READ) : o.auth === 'metrics' ? [{}, { metricsToken: [] }] : [];
  const errs = o.auth === 'admin' ? [401, 403, ...(o.extraErrors ?? [])] : (o.extraErrors ?? []);
  return {
    summary: o.summary,
    security,
    'x-roles': o.auth === 'admin' ? ['admin'] : ['anyone'],
    ...(o.params ? { parameters: o.params } : {}),
    ...(o.body ? { requestBody: { required: true, ...json(o.body) } } : {}),
    responses: {
      [String(o.ok?.status ?? 200)]: { description: o.ok?.description ?? 'OK', ...(o.ok?.schema ? json(o.ok.schema) : {}) },
      ...errors(...new Set(errs)),
    },
  };
}

const obj = (properties: Json, required: string[] = []): Json => ({ type: 'object', properties, ...(required.length ? { required } : {}), additionalProperties: false });
const taskAction = (what: string, extra = ''): Json =>
  op('post', { summary: `${what} a task${extra}`, auth: 'admin', params: [idParam], ok: { schema: ref('TaskSummary') }, extraErrors: [400, 404] });

/** Builds the OpenAPI 3.1 document; `serverUrl` fills `servers`. */
export function openApiDocument(serverUrl?: string): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tessera server API',
      version: '1',
      description:
        'Admin REST API of the Tessera aggregation server, and the device endpoints for enrollment and token refresh. Errors are `{ "error": { "code", "message" } }` with the wire protocol\'s stable codes (see protocol/SPEC.md), plus ERR_RATE_LIMITED (429).',
    },
    ...(serverUrl ? { servers: [{ url: serverUrl }] } : {}),
    paths: {
      '/healthz': { get: op('get', { summary: 'Liveness: protocol version, task and client counts', auth: 'public' }) },
      '/.well-known/jwks.json': { get: op('get', { summary: "The server's public JWT verification keys (current and retired), by kid", auth: 'public', ok: { schema: ref('Jwks') } }) },
      '/api/openapi.json': { get: op('get', { summary: 'This document', auth: 'public' }) },
      '/metrics': { get: op('get', { summary: 'Prometheus metrics (text exposition); needs `Authorization: Bearer $TESSERA_METRICS_TOKEN` when that is set', auth: 'metrics', ok: { description: 'text/plain; version=0.0.4' }, extraErrors: [401] }) },
      '/api/login': {
        post: op('post', {
          summary: 'Console login with the admin password or an admin JWT; sets the httpOnly, SameSite=Strict session cookie and returns the CSRF token. Rate limited per IP (failed attempts).',
          auth: 'public',
          body: { oneOf: [obj({ username: { type: 'string', default: 'admin' }, password: { type: 'string' } }, ['password']), obj({ token: { type: 'string', description: 'admin JWT' } }, ['token'])] },
          ok: { schema: ref('Session') },
          extraErrors: [400, 401, 403, 429],
        }),
      },
      '/api/enroll': {
        post: op('post', {
          summary: 'A device exchanges a single-use enrollment token for a short session JWT and a refresh token. Rate limited per IP.',
          auth: 'public',
          body: obj({ token: { type: 'string', description: 'tse_… enrollment token' }, clientId: { type: 'string', description: 'proposed client id (ignored when the token names one)' } }, ['token']),
          ok: { status: 201, schema: ref('TokenGrant') },
          extraErrors: [400, 401, 403, 429],
        }),
      },
      '/api/token/refresh': {
        post: op('post', {
          summary: 'A new session JWT for a refresh token, until the device session or its subject is revoked. Rate limited per IP.',
          auth: 'public',
          body: obj({ refreshToken: { type: 'string', description: 'tsr_… refresh token' } }, ['refreshToken']),
          ok: { schema: ref('TokenGrant') },
          extraErrors: [400, 401, 429],
        }),
      },
      '/api/session': { get: op('get', { summary: 'Who is calling; with the cookie, the CSRF token for state-changing calls; server features', auth: 'admin', ok: { schema: ref('Session') } }) },
      '/api/logout': { post: op('post', { summary: 'Ends the console session (cookie)', auth: 'admin' }) },
      '/api/tasks': {
        get: op('get', { summary: 'List tasks with their runner state', auth: 'admin' }),
        post: op('post', {
          summary: 'Create a task from a task spec (protocol/src/task.ts); `?start=false` creates it paused',
          auth: 'admin',
          params: [{ name: 'start', in: 'query', required: false, schema: { type: 'boolean', default: true } }],
          body: ref('TaskSpec'),
          ok: { status: 201, schema: obj({ id: { type: 'string' } }, ['id']) },
          extraErrors: [400, 413],
        }),
      },
      '/api/tasks/{id}': { get: op('get', { summary: 'A task: spec, state, current round, rejection counts', auth: 'admin', params: [idParam], extraErrors: [404] }) },
      '/api/tasks/{id}/rounds': { get: op('get', { summary: "A task's rounds: cohort, accepted/rejected, train and evaluation metrics, times", auth: 'admin', params: [idParam], extraErrors: [404] }) },
      '/api/tasks/{id}/privacy': { get: op('get', { summary: 'Privacy ledger: ε spent per round against the budget', auth: 'admin', params: [idParam], extraErrors: [404] }) },
      '/api/tasks/{id}/checkpoints': { get: op('get', { summary: 'Checkpoints (version, round, SHA-256)', auth: 'admin', params: [idParam], extraErrors: [404] }) },
      '/api/tasks/{id}/rejections': { get: op('get', { summary: 'Recent rejections in a task, with codes', auth: 'admin', params: [idParam, { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 500 } }], extraErrors: [404] }) },
      '/api/tasks/{id}/participants': { get: op('get', { summary: "A task's participants: platform, backend, last seen, rounds contributed, connected", auth: 'admin', params: [idParam], extraErrors: [404] }) },
      '/api/tasks/{id}/start': { post: taskAction('Start', ' created with ?start=false (same as resume)') },
      '/api/tasks/{id}/pause': { post: taskAction('Pause', ': the open round is interrupted, no new round starts') },
      '/api/tasks/{id}/resume': { post: taskAction('Resume', ' from its last checkpoint') },
      '/api/tasks/{id}/abort': { post: taskAction('Abort', ' for good: clients get task:done "aborted"') },
      '/api/clients': { get: op('get', { summary: 'Every client seen: platform, backend, last seen, rounds contributed', auth: 'admin' }) },
      '/api/rejections': { get: op('get', { summary: 'Rejection counts by code, all tasks', auth: 'admin' }) },
      '/api/audit': { get: op('get', { summary: 'Audit log: who, what, when, from where (ip)', auth: 'admin' }) },
      '/api/enrollments': {
        get: op('get', { summary: 'Enrollment tokens (never their secrets) and their status', auth: 'admin' }),
        post: op('post', {
          summary: 'Create a single-use, expiring enrollment token scoped to a role and tasks; the secret is returned once',
          auth: 'admin',
          body: obj(
            {
              role: { enum: ['client', 'keyholder'] },
              tasks: { type: 'array', items: { type: 'string' } },
              clientId: { type: 'string' },
              ttl: { oneOf: [{ type: 'string', examples: ['1d', '12h'] }, { type: 'integer' }], default: '1d' },
              note: { type: 'string' },
            },
            ['role'],
          ),
          ok: { status: 201 },
          extraErrors: [400],
        }),
      },
      '/api/enrollments/{id}/revoke': { post: op('post', { summary: 'Revoke an unused enrollment token', auth: 'admin', params: [idParam], extraErrors: [404] }) },
      '/api/devices': { get: op('get', { summary: 'Device sessions (refresh tokens) opened by enrollment', auth: 'admin' }) },
      '/api/revocations': {
        get: op('get', { summary: 'Revocations (by subject or token id)', auth: 'admin' }),
        post: op('post', {
          summary: "Revoke by subject (all of a client's tokens and device sessions), by token id (a JWT's jti or a device session id), or by pasting a token; live sockets are closed",
          auth: 'admin',
          body: { oneOf: [obj({ sub: { type: 'string' }, reason: { type: 'string' } }, ['sub']), obj({ jti: { type: 'string' }, reason: { type: 'string' } }, ['jti']), obj({ token: { type: 'string' }, reason: { type: 'string' } }, ['token'])] },
          ok: { status: 201 },
          extraErrors: [400],
        }),
      },
      '/api/keys/rotate': { post: op('post', { summary: 'Rotate the JWT signing key; old public keys stay in the JWKS so their tokens verify until they expire', auth: 'admin', ok: { schema: ref('Jwks') } }) },
    },
    components: {
      securitySchemes: {
        bearerAdmin: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'JWT with role admin (tessera token --role admin)' },
        consoleSession: { type: 'apiKey', in: 'cookie', name: 'tessera_session', description: 'httpOnly, SameSite=Strict session cookie set by POST /api/login' },
        csrfToken: { type: 'apiKey', in: 'header', name: 'x-csrf-token', description: 'CSRF token from POST /api/login or GET /api/session; required with the cookie on state-changing calls' },
        metricsToken: { type: 'http', scheme: 'bearer', description: 'TESSERA_METRICS_TOKEN, when set' },
      },
      schemas: {
        Error: obj({ error: obj({ code: { type: 'string' }, message: { type: 'string' } }, ['code', 'message']) }, ['error']),
        Jwks: { type: 'object', properties: { keys: { type: 'array', items: { type: 'object' } } } },
        Session: obj({ actor: { type: 'string' }, role: { const: 'admin' }, via: { enum: ['cookie', 'bearer'] }, csrfToken: { type: 'string' }, expiresAt: { type: 'integer' }, features: { type: 'object' } }),
        TokenGrant: obj({
          clientId: { type: 'string' },
          role: { enum: ['client', 'keyholder'] },
          tasks: { type: 'array', items: { type: 'string' } },
          accessToken: { type: 'string' },
          tokenType: { const: 'Bearer' },
          expiresIn: { type: 'integer' },
          refreshToken: { type: 'string' },
          deviceId: { type: 'string' },
        }),
        TaskSummary: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, status: { type: 'string' }, modelVersion: { type: 'integer' }, completedRounds: { type: 'integer' } } },
        TaskSpec: { type: 'object', description: 'protocol/src/task.ts taskSpecSchema: name, model, train, rounds, clientsPerRound, minClients, roundDeadlineSeconds, evaluateEvery, privacy, he, …' },
      },
    },
  };
}

/** Express path (`/api/tasks/:id`) → OpenAPI path (`/api/tasks/{id}`). */
export function toOpenApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}
