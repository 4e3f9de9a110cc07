import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { TokenAuthority } from '@tessera/server';
import { tmp } from '../helpers.js';

const BIN = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));
const procs: ChildProcess[] = [];
afterAll(() => procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL')));

function run(args: string[], log: string[]): ChildProcess {
  const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
  p.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  procs.push(p);
  return p;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const exited = (p: ChildProcess) => new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', (c) => r(c))));

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      /* server not up yet */
    }
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('crash recovery', () => {
  it('resumes the task from its last completed round after kill -9 mid-round; clients reconnect and finish', async () => {
    const dataDir = tmp();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const taskFile = join(dataDir, 'task.json');
    writeFileSync(taskFile, JSON.stringify({ name: 'restart', model: { preset: 'mlp' }, rounds: 3, clientsPerRound: 2, minClients: 2, roundDeadlineSeconds: 60, evaluateEvery: 0, train: { epochs: 1, batchSize: 32 } }));
    const serverLog: string[] = [];
    let server = run(['server', '--port', String(port), '--data', dataDir, '--task', taskFile], serverLog);
    const auth = await TokenAuthority.open(dataDir);
    const admin = await auth.issue({ role: 'admin', sub: 'test' });
    const api = async <T>(path: string): Promise<T> => {
      const r = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${admin}` } });
      if (!r.ok) throw new Error(`${path}: ${r.status}`);
      return (await r.json()) as T;
    };
    type Task = { id: string; status: string; completedRounds: number; modelVersion: number; runner?: { state: string; roundId: number } };
    const task = await until('task created', async () => (await api<Task[]>('/api/tasks'))[0]);
    const clientLogs: string[][] = [[], []];
    const clients = await Promise.all(
      [0, 1].map(async (i) =>
        run(['client', '--server', url, '--token', await auth.issue({ role: 'client', sub: `c${i}` }), '--data', 'mnist', '--partition', 'iid', '--num-clients', '8', '--index', String(i), '--backend', 'wasm'], clientLogs[i]!),
      ),
    );
    // Kill the server while round 2 is training (round 1 is completed and checkpointed).
    await until('round 2 training', async () => {
      const t = await api<Task>(`/api/tasks/${task.id}`);
      return t.completedRounds >= 1 && t.runner?.state === 'training' ? t : undefined;
    });
    server.kill('SIGKILL');
    expect(await exited(server)).toBe(null);

    server = run(['server', '--port', String(port), '--data', dataDir], serverLog);
    const codes = await Promise.all(clients.map(exited));
    expect(codes, clientLogs.flat().join('')).toEqual([0, 0]);
    const t = await api<Task>(`/api/tasks/${task.id}`);
    expect(t).toMatchObject({ status: 'done', completedRounds: 3, modelVersion: 3 });
    const rounds = await api<{ roundId: number; status: string }[]>(`/api/tasks/${task.id}/rounds`);
    expect(rounds.map((r) => r.status)).toEqual(['completed', 'interrupted', 'completed', 'completed']);
    const ckpts = await api<{ version: number; roundId: number | null }[]>(`/api/tasks/${task.id}/checkpoints`);
    expect(ckpts.map((c) => [c.version, c.roundId])).toEqual([[0, null], [1, 1], [2, 3], [3, 4]]);
    expect(serverLog.join('')).toMatch(/resuming task .* from model v1/);
    server.kill('SIGTERM');
    await exited(server);
  }, 180_000);
});
