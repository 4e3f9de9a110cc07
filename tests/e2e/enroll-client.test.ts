import { spawn, spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLogger, TesseraServerApp } from '@tessera/server';
import { tmp } from '../helpers.js';

const BIN = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));
const run = (args: string[]) =>
  new Promise<{ status: number | null; out: string }>((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (status) => resolve({ status, out }));
  });

describe('a device enrolls from the CLI and refreshes its session token', () => {
  it('tessera client --enroll: single-use token → session + refresh token saved 0600; a later run refreshes from the file', async () => {
    const dataDir = tmp();
    // 1 s session tokens: every connection of the client needs a refresh.
    const server = await TesseraServerApp.start({ dataDir, port: 0, logger: createLogger({ silent: !process.env.TESSERA_TEST_LOGS }), admin: { accessTokenTtl: 1 } });
    try {
      const task = { name: 'enroll', model: { preset: 'mlp' }, rounds: 1, clientsPerRound: 1, minClients: 1, evaluateEvery: 0, roundDeadlineSeconds: 60 };
      const t1 = await server.createTask(task);
      const enroll = spawnSync(process.execPath, [BIN, 'enroll', '--data', dataDir, '--role', 'client', '--client-id', 'edge-7'], { encoding: 'utf8' });
      expect(enroll.status, enroll.stderr).toBe(0);
      const enrollmentToken = enroll.stdout.trim().split('\n').at(-1)!;
      const creds = join(tmp(), 'device.json');
      const args = ['client', '--server', server.url, '--credentials', creds, '--data', 'mnist', '--partition', 'iid', '--num-clients', '16', '--index', '0', '--backend', 'wasm', '--task'];
      const first = await run([...args, t1, '--enroll', enrollmentToken]);
      expect(first.status, first.out).toBe(0);
      expect(first.out).toMatch(/\[edge-7\] enrolled; credentials saved/);
      expect(statSync(creds).mode & 0o777).toBe(0o600);
      // The enrollment token was single use.
      const again = await run([...args, t1, '--enroll', enrollmentToken, '--credentials', join(tmp(), 'other.json')]);
      expect(again.status).not.toBe(0);
      // A second task, joined with the saved credentials only: the expired session token is refreshed.
      await new Promise((r) => setTimeout(r, 1100));
      const t2 = await server.createTask({ ...task, name: 'enroll-2' });
      const second = await run([...args, t2]);
      expect(second.status, second.out).toBe(0);
      expect(second.out).not.toMatch(/enrolled/);
      expect(server.store.listRounds(t2).map((r) => r.status)).toEqual(['completed']);
      expect(server.store.listClients().map((c) => c.id)).toEqual(['edge-7']);
    } finally {
      await server.close();
    }
  }, 120_000);
});
