import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, TesseraServerApp } from '@tessera/server';
import { runAdminPasswordCommand } from './admin-password-command.js';
import { runEnrollCommand } from './enroll-command.js';
import { UsageError } from './args.js';

let server: TesseraServerApp | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const post = (path: string, body: unknown) => fetch(`${server!.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('tessera enroll and tessera admin-password', () => {
  it('creates an enrollment token a running server redeems once, and sets the console password', async () => {
    const data = mkdtempSync(join(tmpdir(), 'tessera-enroll-'));
    server = await TesseraServerApp.start({ dataDir: data, port: 0, logger: createLogger({ silent: true }) });
    const out: string[] = [];
    const err: string[] = [];
    expect(await runEnrollCommand(['--data', data, '--role', 'client', '--task', 'task-x', '--ttl', '2h', '--client-id', 'lab-1'], (l) => out.push(l), (l) => err.push(l))).toBe(0);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^tse_[A-Za-z0-9_-]{43}$/);
    expect(err[0]).toMatch(/client, tasks task-x, expires/);
    const r = await post('/api/enroll', { token: out[0] });
    expect(r.status).toBe(201);
    expect(await r.json()).toMatchObject({ clientId: 'lab-1', role: 'client', tasks: ['task-x'] });
    expect((await post('/api/enroll', { token: out[0] })).status).toBe(401);
    expect(server.store.listAudit().find((a) => a.action === 'enrollment.create')).toMatchObject({ actor: 'cli' });

    const json: string[] = [];
    await runEnrollCommand(['--data', data, '--role', 'keyholder', '--json'], (l) => json.push(l));
    expect(JSON.parse(json[0]!)).toMatchObject({ role: 'keyholder', status: 'unused', token: expect.stringMatching(/^tse_/) });
    await expect(runEnrollCommand(['--data', data, '--role', 'admin'])).rejects.toBeInstanceOf(UsageError);

    // Password from stdin, then from a file; the running server takes it at the next login.
    expect((await post('/api/login', { password: 'first-password' })).status).toBe(401);
    expect(await runAdminPasswordCommand(['--data', data], { stdin: Readable.from(['first-password\n']), out: () => undefined })).toBe(0);
    expect((await post('/api/login', { password: 'first-password' })).status).toBe(200);
    const file = join(data, 'pw.txt');
    writeFileSync(file, 'second-password\n');
    await runAdminPasswordCommand(['--data', data, '--user', 'ops', '--password-file', file], { out: () => undefined });
    expect((await post('/api/login', { username: 'ops', password: 'second-password' })).status).toBe(200);
    await expect(runAdminPasswordCommand(['--data', data], { stdin: Readable.from(['short\n']), out: () => undefined })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' });
    await expect(runAdminPasswordCommand(['--data', data], { stdin: Readable.from(['']), out: () => undefined })).rejects.toBeInstanceOf(UsageError);
  });
});
