import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TokenAuthority } from '../auth.js';
import { Store } from '../db.js';
import { IdentityStore } from './identity.js';
import { hashPassword, verifyPassword } from './password.js';

const stores: Store[] = [];
function open(dir = mkdtempSync(join(tmpdir(), 'tessera-identity-'))) {
  const store = new Store(dir);
  stores.push(store);
  return { dir, store, id: new IdentityStore(store.db) };
}
afterEach(() => {
  vi.useRealTimers();
  stores.splice(0).forEach((s) => s.close());
});

describe('scrypt password hashing', () => {
  it('verifies the right password only, with a fresh salt each time', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse battery', a)).toBe(true);
    expect(await verifyPassword('correct horse batterY', a)).toBe(false);
    expect(await verifyPassword('', a)).toBe(false);
    expect(await verifyPassword('x', 'bcrypt$whatever')).toBe(false);
    expect(await verifyPassword('x', 'scrypt$0$8$1$c2FsdA$aGFzaA')).toBe(false);
  });
});

describe('IdentityStore', () => {
  it('keeps enrollment tokens single use, expiring, hashed and scoped', () => {
    const { id, store } = open();
    const { token, enrollment } = id.createEnrollment({ role: 'client', tasks: ['t1'], ttlSeconds: 60, createdBy: 'ops' });
    expect(token).toMatch(/^tse_/);
    const raw = JSON.stringify(store.db.prepare('SELECT * FROM enrollment_tokens').all());
    expect(raw).not.toContain(token.slice(4));
    const { device, refreshToken } = id.redeemEnrollment(token, 'dev-1', '10.0.0.1');
    expect(device).toMatchObject({ sub: 'dev-1', role: 'client', tasks: ['t1'], enrollmentId: enrollment.id, status: 'active', lastIp: '10.0.0.1' });
    expect(refreshToken).toMatch(/^tsr_/);
    expect(() => id.redeemEnrollment(token, 'dev-2', null)).toThrow('enrollment token already used');
    expect(id.useRefreshToken(refreshToken, '10.0.0.2')).toMatchObject({ id: device.id, lastIp: '10.0.0.2' });
    // An active device blocks a second enrollment under its id until it is revoked.
    const second = id.createEnrollment({ role: 'client', ttlSeconds: 60, createdBy: 'ops' });
    expect(() => id.redeemEnrollment(second.token, 'dev-1', null)).toThrow(/already enrolled/);
    expect(id.getEnrollment(second.enrollment.id)!.status).toBe('unused');
    expect(() => id.redeemEnrollment(second.token, 'bad id!', null)).toThrow(/clientId/);
    // Expiry.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 61_000);
    expect(() => id.redeemEnrollment(second.token, 'dev-9', null)).toThrow('enrollment token expired');
    expect(id.getEnrollment(second.enrollment.id)!.status).toBe('expired');
    expect(() => id.createEnrollment({ role: 'admin' as 'client', ttlSeconds: 60, createdBy: 'ops' })).toThrow(/client or keyholder/);
  });

  it('revokes by subject (tokens issued up to then, devices, consoles) and by token id', () => {
    const { id } = open();
    const { token } = id.createEnrollment({ role: 'client', ttlSeconds: 60, createdBy: 'ops' });
    const { device, refreshToken } = id.redeemEnrollment(token, 'dev-1', null);
    const now = Math.floor(Date.now() / 1000);
    expect(id.isRevoked({ sub: 'dev-1', jti: 'j1', iat: now, sid: device.id })).toBe(false);
    id.revoke('sub', 'dev-1', 'ops', 'lost');
    expect(id.isRevoked({ sub: 'dev-1', jti: 'j1', iat: now })).toBe(true);
    expect(id.isRevoked({ sub: 'dev-1', iat: now + 5 })).toBe(false);
    expect(id.isRevoked({ sub: 'dev-1' })).toBe(true);
    expect(id.isRevoked({ sub: 'someone-else', iat: now })).toBe(false);
    expect(() => id.useRefreshToken(refreshToken, null)).toThrow('token revoked');
    expect(id.getDevice(device.id)!.status).toBe('revoked');

    id.revoke('jti', 'j2', 'ops');
    expect(id.isRevoked({ sub: 'x', jti: 'j2', iat: now + 5 })).toBe(true);
    const other = id.redeemEnrollment(id.createEnrollment({ role: 'keyholder', ttlSeconds: 60, createdBy: 'ops' }).token, 'kh', null);
    expect(id.isRevoked({ sub: 'kh', sid: other.device.id, iat: now + 5 })).toBe(false);
    id.revoke('jti', other.device.id, 'ops');
    expect(id.isRevoked({ sub: 'kh', sid: other.device.id, iat: now + 5 })).toBe(true);
    expect(id.listRevocations().map((r) => [r.kind, r.value])).toEqual([
      ['jti', other.device.id],
      ['jti', 'j2'],
      ['sub', 'dev-1'],
    ]);
  });

  it('checks admin passwords and keeps console sessions until expiry, logout or revocation', async () => {
    const { id } = open();
    expect(id.hasAdminUsers()).toBe(false);
    await expect(id.setAdminPassword('admin', 'short')).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' });
    await id.setAdminPassword('admin', 'long enough password');
    expect(id.hasAdminUsers()).toBe(true);
    expect(await id.checkAdminPassword('admin', 'long enough password')).toBe(true);
    expect(await id.checkAdminPassword('admin', 'wrong')).toBe(false);
    expect(await id.checkAdminPassword('nobody', 'long enough password')).toBe(false);
    const s1 = id.createSession('admin', 60_000, '127.0.0.1');
    expect(id.getSession(s1.id)).toMatchObject({ actor: 'admin', csrf: s1.session.csrf });
    id.endSession(s1.id);
    expect(id.getSession(s1.id)).toBeUndefined();
    const s2 = id.createSession('ops', 60_000, null);
    id.revoke('sub', 'ops', 'root');
    expect(id.getSession(s2.id)).toBeUndefined();
    const s3 = id.createSession('admin', 1_000, null);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 2_000);
    expect(id.getSession(s3.id)).toBeUndefined();
  });
});

describe('TokenAuthority key rotation', () => {
  it('signs with the new kid, verifies old tokens by kid, persists retired public keys (0600) and refuses revoked tokens', async () => {
    const { dir } = open();
    const auth = await TokenAuthority.open(dir);
    const old = await auth.issue({ role: 'client', sub: 'c' });
    const oldKid = auth.kid;
    const { kid, retiredKid } = await auth.rotate();
    expect(retiredKid).toBe(oldKid);
    expect(auth.jwks().keys.map((k) => k.kid)).toEqual([kid, oldKid]);
    expect(auth.jwks().keys.every((k) => !('d' in k))).toBe(true);
    expect((await auth.verify(old)).sub).toBe('c');
    const fresh = await auth.issue({ role: 'client', sub: 'd' });
    const reopened = await TokenAuthority.open(dir);
    expect(reopened.kid).toBe(kid);
    expect((await reopened.verify(old)).sub).toBe('c');
    expect((await reopened.verify(fresh)).sub).toBe('d');
    const retiredFile = join(dir, 'keys', 'retired.jwks.json');
    expect(statSync(retiredFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(retiredFile, 'utf8')).not.toContain('"d"');
    reopened.setRevocationCheck((c) => c.sub === 'c');
    await expect(reopened.verify(old)).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED', message: 'token revoked' });
  });
});
