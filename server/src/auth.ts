import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errors as joseErrors, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';
import { ErrorCode, TesseraError } from '@tessera/protocol';

export const ISSUER = 'tessera';
export const AUDIENCE = 'tessera';
export type Role = 'client' | 'admin' | 'keyholder';
const ROLES: readonly Role[] = ['client', 'admin', 'keyholder'];

export interface Claims {
  sub: string;
  role: Role;
  /** Task ids the token is scoped to; undefined = any task. */
  tasks?: string[];
  exp: number;
}

/** Parses '90s', '15m', '1h', '7d' or plain seconds. */
export function parseTtl(ttl: string | number): number {
  if (typeof ttl === 'number') return ttl;
  const m = /^(\d+)\s*([smhd]?)$/.exec(ttl.trim());
  if (!m) throw new TesseraError(ErrorCode.INVALID_CONFIG, `bad ttl '${ttl}' (use e.g. 90s, 15m, 1h, 7d)`);
  const mult = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * mult;
}

/**
 * The server's token authority: an Ed25519 (EdDSA) key persisted in the data dir (mode 0600),
 * issuing and verifying JWTs with issuer, audience, expiry, role and task scope.
 */
export class TokenAuthority {
  private constructor(
    private readonly privateKey: CryptoKey,
    private readonly publicKey: CryptoKey,
    readonly kid: string,
  ) {}

  /** Loads the signing key from `dataDir/keys`, creating it on first use. */
  static async open(dataDir: string): Promise<TokenAuthority> {
    const dir = join(dataDir, 'keys');
    const file = join(dir, 'server-ed25519.jwk.json');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    let jwk: JWK;
    if (existsSync(file)) {
      jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
    } else {
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      jwk = await exportJWK(privateKey);
      jwk.kid = `ed25519-${Date.now().toString(36)}`;
      writeFileSync(file, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' });
    }
    const kid = jwk.kid ?? 'ed25519';
    const priv = (await importJWK({ ...jwk, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey;
    const { d: _d, ...pubJwk } = jwk;
    const pub = (await importJWK({ ...pubJwk, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey;
    return new TokenAuthority(priv, pub, kid);
  }

  /** Issues a JWT for a role. */
  async issue(opts: { role: Role; sub: string; tasks?: string[]; ttl?: string | number }): Promise<string> {
    const ttl = parseTtl(opts.ttl ?? '1h');
    const jwt = new SignJWT({ role: opts.role, ...(opts.tasks ? { tasks: opts.tasks } : {}) })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(opts.sub)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttl);
    return jwt.sign(this.privateKey);
  }

  /** Verifies a JWT; throws TesseraError ERR_UNAUTHORIZED / ERR_TOKEN_EXPIRED / ERR_FORBIDDEN. */
  async verify(token: unknown, requiredRole?: Role | readonly Role[]): Promise<Claims> {
    if (typeof token !== 'string' || token.length === 0) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'missing token');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.publicKey, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['EdDSA'] }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw new TesseraError(ErrorCode.TOKEN_EXPIRED, 'token expired');
      throw new TesseraError(ErrorCode.UNAUTHORIZED, `invalid token (${e instanceof joseErrors.JOSEError ? e.code : 'malformed'})`);
    }
    const role = payload.role;
    if (typeof role !== 'string' || !ROLES.includes(role as Role)) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'token has no valid role');
    if (typeof payload.sub !== 'string' || !payload.sub) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'token has no subject');
    const tasks = payload.tasks;
    if (tasks !== undefined && !(Array.isArray(tasks) && tasks.every((t) => typeof t === 'string'))) {
      throw new TesseraError(ErrorCode.UNAUTHORIZED, 'token has a malformed task scope');
    }
    const claims: Claims = { sub: payload.sub, role: role as Role, exp: payload.exp ?? 0, ...(tasks ? { tasks: tasks as string[] } : {}) };
    if (requiredRole) {
      const allowed = typeof requiredRole === 'string' ? [requiredRole] : requiredRole;
      if (!allowed.includes(claims.role)) throw new TesseraError(ErrorCode.FORBIDDEN, `role ${claims.role} may not do this`);
    }
    return claims;
  }
}

/** True when the token's scope allows the task. */
export function scopeAllows(claims: Claims, taskId: string): boolean {
  return claims.tasks === undefined || claims.tasks.includes(taskId);
}
