import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import helmet, { contentSecurityPolicy } from 'helmet';
import { ErrorCode } from '@tessera/protocol';
import type { Logger } from '../log.js';

/** REST error code for a throttled request (HTTP 429); not a wire-protocol code. */
export const RATE_LIMITED = ErrorCode.RATE_LIMITED;

/** Security headers for every response (helmet); the content security policy is set per area below. */
export function securityHeaders(): RequestHandler {
  return helmet({ contentSecurityPolicy: false, strictTransportSecurity: false });
}

/** The console's CSP: everything from this origin only, no inline script or style, no framing. */
export function consoleCsp(): RequestHandler {
  return contentSecurityPolicy({
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      fontSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
    },
  });
}

/** JSON APIs render nothing: the strictest CSP. */
export function apiCsp(): RequestHandler {
  return contentSecurityPolicy({ useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } });
}

/** This server's own origin as the browser sees it (scheme + Host header). */
export function ownOrigin(req: { protocol: string; headers: IncomingHttpHeaders }): string | undefined {
  const host = req.headers.host;
  return host ? `${req.protocol}://${host}` : undefined;
}

/** True when a request's Origin header (if any) is this server or an explicitly allowed origin. */
export function originAllowed(origin: string | undefined, own: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true; // not a browser cross-origin request (curl, Node, same-origin GET)
  return origin === own || allowed.includes(origin);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CORS restricted to the server's own origin plus `allowed` (TESSERA_CORS_ORIGINS). Other origins
 * get no CORS headers (the browser refuses to read the answer), their preflights a 403, and their
 * state-changing requests a 403 before any handler runs.
 */
export function corsPolicy(allowed: readonly string[]): RequestHandler {
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (origin === undefined) return next();
    const ok = originAllowed(origin, ownOrigin(req), allowed);
    if (ok) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.append('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      if (!ok) return void res.status(403).json({ error: { code: ErrorCode.FORBIDDEN, message: 'origin not allowed' } });
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, DELETE');
      res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type, x-csrf-token, x-request-id');
      res.setHeader('Access-Control-Max-Age', '600');
      return void res.status(204).end();
    }
    if (!ok && !SAFE_METHODS.has(req.method)) return void res.status(403).json({ error: { code: ErrorCode.FORBIDDEN, message: 'origin not allowed' } });
    next();
  };
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
const requestIds = new WeakMap<Request, string>();

/** The id of a request (its X-Request-Id if well-formed, else a fresh UUID). */
export function requestId(req: Request): string {
  return requestIds.get(req) ?? '-';
}

/**
 * Gives every request an id (echoed in X-Request-Id) and logs API calls: state-changing ones and
 * failures always, successful reads only in JSON mode. Paths are logged without query strings and
 * headers never, so no token reaches the log.
 */
export function requestLog(log: Logger, opts: { verbose: boolean; onDone?: (method: string, status: number) => void }): RequestHandler {
  return (req, res, next) => {
    const header = req.headers['x-request-id'];
    const id = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    requestIds.set(req, id);
    res.setHeader('X-Request-Id', id);
    const t0 = process.hrtime.bigint();
    // Captured now: routers rewrite req.url while they handle the request.
    const path = req.path;
    res.on('finish', () => {
      opts.onDone?.(req.method, res.statusCode);
      const api = path.startsWith('/api/') || path.startsWith('/.well-known/');
      if (!api && res.statusCode < 500) return;
      if (!opts.verbose && SAFE_METHODS.has(req.method) && res.statusCode < 400) return;
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const fields = { reqId: id, method: req.method, path, status: res.statusCode, ms: Math.round(ms * 10) / 10, ip: req.ip ?? null };
      if (res.statusCode >= 500) log.error(`${req.method} ${path} ${res.statusCode}`, fields);
      else if (res.statusCode >= 400) log.warn(`${req.method} ${path} ${res.statusCode}`, fields);
      else log.info(`${req.method} ${path} ${res.statusCode}`, fields);
    });
    next();
  };
}

/** A per-IP rate limit answering 429 with a Tessera error body and RateLimit headers (IETF draft 8). */
export function limiter(name: string, opts: { limit: number; windowMs: number; failedOnly?: boolean; onLimited?: (req: Request) => void }): RequestHandler {
  return rateLimit({
    windowMs: opts.windowMs,
    limit: opts.limit,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    identifier: name,
    skipSuccessfulRequests: opts.failedOnly ?? false,
    handler: (req: Request, res: Response, _next: NextFunction) => {
      opts.onLimited?.(req);
      res.status(429).json({ error: { code: RATE_LIMITED, message: `too many ${name} requests; try again later` } });
    },
  });
}

/** Parses a Cookie header into name → value (first occurrence wins). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (!name || name in out) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      out[name] = decodeURIComponent(value);
    } catch {
      out[name] = value;
    }
  }
  return out;
}
