import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, errors as joseErrors, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';
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
  /** Token id (every token issued since key rotation support carries one); revocable. */
  jti?: string;
  /** Issued-at (seconds); a revocation by subject refuses tokens issued up to it. */
  iat?: number;
  /** Device session (refresh token id) a session JWT was minted from; revoking it revokes them all. */
  sid?: string;
}

/** Public verification keys as served at /.well-known/jwks.json. */
export interface PublicJwks {
  keys: (JWK & { kid: string; use: 'sig'; alg: 'EdDSA' })[];
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
  /** Returns true when claims belong to a revoked token (set by the server's identity store). */
  private revoked: ((claims: Claims) => boolean) | undefined;
  private verifyKeys!: ReturnType<typeof createLocalJWKSet>;

  private constructor(
    private privateKey: CryptoKey,
    private kidValue: string,
    /** The current key's public JWK first, then retired ones (kept so their tokens verify until they expire). */
    private publicJwks: PublicJwks['keys'],
    private readonly dir: string,
  ) {
    this.verifyKeys = createLocalJWKSet({ keys: publicJwks });
  }

  /** Key id of the current signing key. */
  get kid(): string {
    return this.kidValue;
  }

  /** Loads the signing key from `dataDir/keys`, creating it on first use. */
  static async open(dataDir: string): Promise<TokenAuthority> {
    const dir = join(dataDir, 'keys');
    const file = join(dir, KEY_FILE);
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
    const retiredFile = join(dir, RETIRED_FILE);
    const retired = existsSync(retiredFile) ? (JSON.parse(readFileSync(retiredFile, 'utf8')) as PublicJwks).keys : [];
    return new TokenAuthority(priv, kid, [publicOf(jwk, kid), ...retired.filter((k) => k.kid !== kid)], dir);
  }

  /** The public keys (current and retired), for /.well-known/jwks.json. */
  jwks(): PublicJwks {
    return { keys: this.publicJwks.map((k) => ({ ...k })) };
  }

  /**
   * Rotates the signing key: new tokens get a new `kid`; the old public key stays in the JWKS
   * (DATA/keys/retired.jwks.json) so tokens it signed verify until they expire.
   */
  async rotate(): Promise<{ kid: string; retiredKid: string }> {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const jwk = await exportJWK(privateKey);
    const kid = (jwk.kid = `ed25519-${Date.now().toString(36)}-${randomUUID().slice(0, 4)}`);
    const retiredKid = this.kidValue;
    const retired = this.publicJwks;
    writeFileSync(join(this.dir, RETIRED_FILE), JSON.stringify({ keys: retired }), { mode: 0o600 });
    const tmp = join(this.dir, `${KEY_FILE}.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify(jwk), { mode: 0o600 });
    renameSync(tmp, join(this.dir, KEY_FILE));
    this.privateKey = (await importJWK({ ...jwk, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey;
    this.kidValue = kid;
    this.publicJwks = [publicOf(jwk, kid), ...retired];
    this.verifyKeys = createLocalJWKSet({ keys: this.publicJwks });
    return { kid, retiredKid };
  }

  /** Installs the revocation check that verify() applies to every token. */
  setRevocationCheck(fn: (claims: Claims) => boolean): void {
    this.revoked = fn;
  }

  /** Issues a JWT for a role. */
  async issue(opts: { role: Role; sub: string; tasks?: string[]; ttl?: string | number; sid?: string }): Promise<string> {
    const ttl = parseTtl(opts.ttl ?? '1h');
    const jwt = new SignJWT({ role: opts.role, ...(opts.tasks ? { tasks: opts.tasks } : {}), ...(opts.sid ? { sid: opts.sid } : {}) })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.kid, typ: 'JWT' })
      .setJti(randomUUID())
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
      ({ payload } = await jwtVerify(token, this.verifyKeys, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['EdDSA'] }));
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
    const claims: Claims = {
      sub: payload.sub,
      role: role as Role,
      exp: payload.exp ?? 0,
      ...(tasks ? { tasks: tasks as string[] } : {}),
      ...(typeof payload.jti === 'string' ? { jti: payload.jti } : {}),
      ...(typeof payload.iat === 'number' ? { iat: payload.iat } : {}),
      ...(typeof payload.sid === 'string' ? { sid: payload.sid } : {}),
    };
    if (this.revoked?.(claims)) throw new TesseraError(ErrorCode.UNAUTHORIZED, 'token revoked');
    if (requiredRole) {
      const allowed = typeof requiredRole === 'string' ? [requiredRole] : requiredRole;
      if (!allowed.includes(claims.role)) throw new TesseraError(ErrorCode.FORBIDDEN, `role ${claims.role} may not do this`);
    }
    return claims;
  }
}

const KEY_FILE = 'server-ed25519.jwk.json';
const RETIRED_FILE = 'retired.jwks.json';

function publicOf(jwk: JWK, kid: string): PublicJwks['keys'][number] {
  return { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, kid, use: 'sig', alg: 'EdDSA' };
}

/** True when the token's scope allows the task. */
export function scopeAllows(claims: Claims, taskId: string): boolean {
  return claims.tasks === undefined || claims.tasks.includes(taskId);
}
