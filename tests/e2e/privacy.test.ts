import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { epsilonFor } from '@tessera/protocol';
import type { TesseraServerApp } from '@tessera/server';
import { FakeClient, startServer, tinyTask, tmp } from '../helpers.js';

const BIN = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));
let server: TesseraServerApp | undefined;
const clients: FakeClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  await server?.close();
  server = undefined;
});

async function joinAll(s: TesseraServerApp, ids: string[]) {
  const out: FakeClient[] = [];
  for (const id of ids) {
    const c = new FakeClient(s.url, await s.tokens.issue({ role: 'client', sub: id }));
    clients.push(c);
    expect(await c.join(id)).toMatchObject({ ok: true });
    out.push(c);
  }
  return out;
}

describe('differential privacy: ledger, budget, config', () => {
  it('accounts each completed round, persists the ledger across a restart, and stops before the budget is exceeded', async () => {
    const delta = 1e-5;
    const z = 2;
    const eps2 = epsilonFor({ q: 1, noiseMultiplier: z, steps: 2, delta }).epsilon;
    const eps3 = epsilonFor({ q: 1, noiseMultiplier: z, steps: 3, delta }).epsilon;
    const budget = (eps2 + eps3) / 2; // room for exactly two rounds
    const dataDir = tmp();
    server = await startServer({ dataDir });
    const taskId = await server.createTask(tinyTask({ rounds: 5, waitForClients: 2, privacy: { mode: 'central', noiseMultiplier: z, clipNorm: 1, budget: { epsilon: budget, delta } } }));
    let [a, b] = await joinAll(server, ['a', 'b']);
    let ra = await a!.round();
    const rb = await b!.round();
    expect(ra.privacy).toEqual({ mode: 'central', clipNorm: 1, noiseStd: 0 });
    // Central mode: the server sees clipped, noiseless updates, so it can check the bound.
    expect(await a!.submit(ra, 0.5, { dp: { belowClip: false } })).toMatchObject({ ok: false, error: { code: 'ERR_NORM_BOUND' } });
    expect(await a!.submit(ra, 0.01)).toMatchObject({ ok: false, error: { code: 'ERR_INVALID_MESSAGE' } });
    expect(await a!.submit(ra, 0.01, { dp: { belowClip: true } })).toEqual({ ok: true });
    expect(await b!.submit(rb, 0.01, { dp: { belowClip: true } })).toEqual({ ok: true });
    expect(await a!.roundEnd()).toMatchObject({ roundId: 1, status: 'completed' });

    // Restart: the ledger comes back from SQLite.
    clients.splice(0).forEach((c) => c.close());
    await server.close();
    server = await startServer({ dataDir });
    const admin = await server.tokens.issue({ role: 'admin', sub: 'ops' });
    const privacy = async () => (await (await fetch(`${server!.url}/api/tasks/${taskId}/privacy`, { headers: { authorization: `Bearer ${admin}` } })).json()) as {
      spent: { epsilon: number; rounds: number };
      stopped: { code: string; reason: string } | null;
      rounds: { roundId: number; epsilon: number; samplingRate: number }[];
      status: string;
    };
    const afterRestart = await privacy();
    expect(afterRestart.spent.rounds).toBe(1);
    expect(afterRestart.spent.epsilon).toBeCloseTo(epsilonFor({ q: 1, noiseMultiplier: z, steps: 1, delta }).epsilon, 10);

    [a, b] = await joinAll(server, ['a', 'b']);
    ra = await a!.round();
    expect(ra.roundId).toBe(3); // round 2 was open when the server stopped: it is marked interrupted
    await a!.submit(ra, 0.01, { dp: { belowClip: true } });
    await b!.submit(await b!.round(), 0.01, { dp: { belowClip: true } });
    expect(await a!.roundEnd()).toMatchObject({ status: 'completed', modelVersion: 2 });
    const done = await a!.done();
    expect(done).toMatchObject({ status: 'stopped', modelVersion: 2 });
    expect(done.reason).toMatch(/^ERR_PRIVACY_BUDGET/);
    const p = await privacy();
    expect(p.status).toBe('stopped');
    expect(p.stopped?.code).toBe('ERR_PRIVACY_BUDGET');
    expect(p.rounds.map((r) => r.samplingRate)).toEqual([1, 1]);
    expect(p.spent.epsilon).toBeCloseTo(eps2, 10);
    expect(p.spent.epsilon).toBeLessThanOrEqual(budget);
    expect(server.store.getTask(taskId)).toMatchObject({ status: 'stopped', completedRounds: 2 });
  });

  it.each([
    [{ mode: 'central', noiseMultiplier: 1, clipNorm: -1 }, /clipNorm/],
    [{ mode: 'central', noiseMultiplier: 0, clipNorm: 1 }, /noiseMultiplier/],
    [{ mode: 'local', noiseMultiplier: 1, clipNorm: 1, budget: { epsilon: 1, delta: 1 } }, /delta/],
    [{ mode: 'sideways', noiseMultiplier: 1, clipNorm: 1 }, /privacy\.mode/],
  ])('rejects bad DP config %j at task creation', async (privacy, message) => {
    server = await startServer();
    await expect(server.createTask(tinyTask({ privacy: privacy as never }))).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', message });
    const admin = await server.tokens.issue({ role: 'admin', sub: 'ops' });
    const res = await fetch(`${server.url}/api/tasks`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(tinyTask({ privacy: privacy as never })) });
    expect(res.status).toBe(400);
    expect(server.store.listTasks()).toEqual([]);
  });

  it('demo with --dp reports the ε the accountant gives for its q, z and rounds', async () => {
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, 'demo', '--clients', '2', '--rounds', '2', '--deadline', '60', '--dp', 'distributed', '--noise-multiplier', '0.8', '--clip', '0.5', '--delta', '1e-6', '--json']);
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('exit', (status) => resolve({ status, stdout, stderr }));
    });
    expect(r.status, r.stderr.slice(-1500)).toBe(0);
    const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { epsilon: number; delta: number; noiseMultiplier: number; clip: number; samplingRate: number; rounds: number };
    expect(s).toMatchObject({ delta: 1e-6, noiseMultiplier: 0.8, clip: 0.5, samplingRate: 1, rounds: 2 });
    expect(s.epsilon).toBeCloseTo(epsilonFor({ q: s.samplingRate, noiseMultiplier: 0.8, steps: 2, delta: 1e-6 }).epsilon, 9);
  }, 120_000);
});
