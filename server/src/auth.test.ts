import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, TesseraError } from '@tessera/protocol';
import { importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AUDIENCE, ISSUER, parseTtl, scopeAllows, TokenAuthority } from './auth.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-auth-test-'));
  dirs.push(d);
  return d;
}

afterEach(() => {
  vi.useRealTimers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const keyFile = (dataDir: string) => join(dataDir, 'keys', 'server-ed25519.jwk.json');

/** The authority's own private key, read from its key file, to craft tokens it would accept the signature of. */
async function serverKey(dataDir: string): Promise<{ key: CryptoKey; kid: string }> {
  const jwk = JSON.parse(readFileSync(keyFile(dataDir), 'utf8')) as JWK;
  return { key: (await importJWK({ ...jwk, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey, kid: jwk.kid! };
}

/** Runs fn and returns the code of the TesseraError it rejects with. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TesseraError);
    return (e as TesseraError).code;
  }
  throw new Error('expected a TesseraError rejection');
}

function b64urlJson(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

describe('TokenAuthority', () => {
  let dataDir: string;
  let authority: TokenAuthority;

  beforeEach(async () => {
    dataDir = tempDir();
    authority = await TokenAuthority.open(dataDir);
  });

  it('issues and verifies a token with role, subject, task scope and expiry', async () => {
    const before = Math.floor(Date.now() / 1000);
    const token = await authority.issue({ role: 'client', sub: 'node-1', tasks: ['t1', 't2'], ttl: '15m' });
    const claims = await authority.verify(token, 'client');
    expect(claims.sub).toBe('node-1');
    expect(claims.role).toBe('client');
    expect(claims.tasks).toEqual(['t1', 't2']);
    expect(claims.exp - before).toBeGreaterThanOrEqual(900);
    expect(claims.exp - before).toBeLessThanOrEqual(901);

    const [header, payload] = token.split('.');
    expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toEqual({ alg: 'EdDSA', kid: authority.kid, typ: 'JWT' });
    expect(JSON.parse(Buffer.from(payload!, 'base64url').toString())).toMatchObject({ iss: ISSUER, aud: AUDIENCE, sub: 'node-1', role: 'client', tasks: ['t1', 't2'] });
  });

  it('an unscoped token carries no task list and allows any task', async () => {
    const claims = await authority.verify(await authority.issue({ role: 'admin', sub: 'ops' }));
    expect(claims).not.toHaveProperty('tasks');
    expect(scopeAllows(claims, 'anything')).toBe(true);
    const scoped = await authority.verify(await authority.issue({ role: 'client', sub: 'c', tasks: ['t1'] }));
    expect(scopeAllows(scoped, 't1')).toBe(true);
    expect(scopeAllows(scoped, 't2')).toBe(false);
    const none = await authority.verify(await authority.issue({ role: 'client', sub: 'c', tasks: [] }));
    expect(scopeAllows(none, 't1')).toBe(false);
  });

  it('defaults to a one-hour lifetime', async () => {
    const before = Math.floor(Date.now() / 1000);
    const claims = await authority.verify(await authority.issue({ role: 'client', sub: 'c' }));
    expect(claims.exp - before).toBeGreaterThanOrEqual(3600);
    expect(claims.exp - before).toBeLessThanOrEqual(3601);
  });

  it('an expired token (ttl 1s, clock moved 2s on) → ERR_TOKEN_EXPIRED', async () => {
    const token = await authority.issue({ role: 'client', sub: 'c', ttl: 1 });
    // A 1 s token may already be expired at issue (exp is whole seconds), so the control is a 10 s one.
    const longer = await authority.issue({ role: 'client', sub: 'c', ttl: '10s' });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 2_000);
    expect(await codeOf(authority.verify(token))).toBe(ErrorCode.TOKEN_EXPIRED);
    expect((await authority.verify(longer)).sub).toBe('c');
    vi.setSystemTime(Date.now() + 10_000);
    expect(await codeOf(authority.verify(longer))).toBe(ErrorCode.TOKEN_EXPIRED);
  });

  it('a correctly signed token with exp in the past (crafted with jose) → ERR_TOKEN_EXPIRED', async () => {
    const { key, kid } = await serverKey(dataDir);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ role: 'client' })
      .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('c')
      .setIssuedAt(now - 120)
      .setExpirationTime(now - 60)
      .sign(key);
    expect(await codeOf(authority.verify(token))).toBe(ErrorCode.TOKEN_EXPIRED);
  });

  it('a token signed by a different authority → ERR_UNAUTHORIZED', async () => {
    const other = await TokenAuthority.open(tempDir());
    const foreign = await other.issue({ role: 'admin', sub: 'intruder' });
    expect((await other.verify(foreign)).sub).toBe('intruder');
    expect(await codeOf(authority.verify(foreign))).toBe(ErrorCode.UNAUTHORIZED);
  });

  it('a tampered payload (role escalated, signature kept) → ERR_UNAUTHORIZED', async () => {
    const token = await authority.issue({ role: 'client', sub: 'c', tasks: ['t1'] });
    const [header, payload, sig] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const escalated = `${header}.${b64urlJson({ ...claims, role: 'admin' })}.${sig}`;
    expect(await codeOf(authority.verify(escalated, 'admin'))).toBe(ErrorCode.UNAUTHORIZED);
    const unscoped = `${header}.${b64urlJson({ ...claims, tasks: undefined })}.${sig}`;
    expect(await codeOf(authority.verify(unscoped))).toBe(ErrorCode.UNAUTHORIZED);
    // A flipped signature bit as well.
    const sigBytes = Buffer.from(sig!, 'base64url');
    sigBytes[0]! ^= 1;
    expect(await codeOf(authority.verify(`${header}.${payload}.${sigBytes.toString('base64url')}`))).toBe(ErrorCode.UNAUTHORIZED);
  });

  it('missing, empty or malformed tokens → ERR_UNAUTHORIZED', async () => {
    for (const t of [undefined, null, '', 42, 'not-a-jwt', 'a.b.c']) {
      expect(await codeOf(authority.verify(t))).toBe(ErrorCode.UNAUTHORIZED);
    }
  });

  it('correctly signed tokens with the wrong issuer/audience, no role or a bad scope → ERR_UNAUTHORIZED', async () => {
    const { key, kid } = await serverKey(dataDir);
    const craft = (claims: Record<string, unknown>, iss = ISSUER, aud = AUDIENCE) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid }).setIssuer(iss).setAudience(aud).setSubject('c').setExpirationTime('1h').sign(key);
    // Sanity: the crafting itself yields acceptable tokens.
    expect((await authority.verify(await craft({ role: 'client' }))).role).toBe('client');
    expect(await codeOf(authority.verify(await craft({ role: 'client' }, 'someone-else')))).toBe(ErrorCode.UNAUTHORIZED);
    expect(await codeOf(authority.verify(await craft({ role: 'client' }, ISSUER, 'other-service')))).toBe(ErrorCode.UNAUTHORIZED);
    expect(await codeOf(authority.verify(await craft({})))).toBe(ErrorCode.UNAUTHORIZED);
    expect(await codeOf(authority.verify(await craft({ role: 'root' })))).toBe(ErrorCode.UNAUTHORIZED);
    expect(await codeOf(authority.verify(await craft({ role: 'client', tasks: 't1' })))).toBe(ErrorCode.UNAUTHORIZED);
    expect(await codeOf(authority.verify(await craft({ role: 'client', tasks: [1] })))).toBe(ErrorCode.UNAUTHORIZED);
  });

  it('a valid token of the wrong role → ERR_FORBIDDEN; any role of a list passes', async () => {
    const client = await authority.issue({ role: 'client', sub: 'c' });
    expect(await codeOf(authority.verify(client, 'admin'))).toBe(ErrorCode.FORBIDDEN);
    expect(await codeOf(authority.verify(client, ['admin', 'keyholder']))).toBe(ErrorCode.FORBIDDEN);
    expect((await authority.verify(client, ['admin', 'client'])).role).toBe('client');
    const keyholder = await authority.issue({ role: 'keyholder', sub: 'k' });
    expect((await authority.verify(keyholder, 'keyholder')).sub).toBe('k');
  });

  it('persists the key with mode 0600 and reuses it on reopen (earlier tokens still verify)', async () => {
    const file = keyFile(dataDir);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'keys')).mode & 0o077).toBe(0);
    const jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: authority.kid });
    expect(typeof jwk.d).toBe('string');

    const token = await authority.issue({ role: 'admin', sub: 'ops', tasks: ['t9'] });
    const fileBefore = readFileSync(file, 'utf8');
    const reopened = await TokenAuthority.open(dataDir);
    expect(reopened.kid).toBe(authority.kid);
    expect(readFileSync(file, 'utf8')).toBe(fileBefore);
    expect(await reopened.verify(token, 'admin')).toMatchObject({ sub: 'ops', role: 'admin', tasks: ['t9'] });
    // And the other way round.
    expect((await authority.verify(await reopened.issue({ role: 'client', sub: 'z' }))).sub).toBe('z');
  });
});

describe('parseTtl', () => {
  it.each([
    ['90s', 90],
    ['15m', 900],
    ['1h', 3600],
    ['7d', 604_800],
    ['42', 42],
    [' 5m ', 300],
    ['2 h', 7200],
    [30, 30],
  ] as const)('%j → %i seconds', (input, seconds) => {
    expect(parseTtl(input)).toBe(seconds);
  });

  it.each(['', '1w', '-5s', '1.5h', 'h', '10 minutes', '5ms'])('rejects %j with ERR_INVALID_CONFIG', (input) => {
    let err: unknown;
    try {
      parseTtl(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TesseraError);
    expect((err as TesseraError).code).toBe(ErrorCode.INVALID_CONFIG);
    expect((err as TesseraError).message).toContain(`'${input}'`);
  });
});
