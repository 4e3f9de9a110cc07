import { spawnSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startServer, tmp } from '../helpers.js';

const BIN = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));
const tessera = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
const tesseraAsync = (args: string[]) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (status) => resolve({ status, stdout, stderr }));
  });

describe('tessera CLI', () => {
  it.each(['server', 'client', 'token', 'demo', 'privacy'])('%s --help explains itself and exits 0', (cmd) => {
    const r = tessera([cmd, '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`tessera ${cmd}`);
  });

  it('gives a one-line reason and exit code 2 on bad usage', () => {
    const r = tessera(['client', '--server', 'http://127.0.0.1:1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--token is required/);
    expect(tessera(['nope']).status).toBe(2);
  });

  it('issues a token that the server accepts for its role', async () => {
    const dataDir = tmp();
    const r = tessera(['token', '--data', dataDir, '--role', 'admin', '--sub', 'ops', '--ttl', '5m']);
    expect(r.status).toBe(0);
    const server = await startServer({ dataDir });
    try {
      const res = await fetch(`${server.url}/api/tasks`, { headers: { authorization: `Bearer ${r.stdout.trim()}` } });
      expect(res.status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('client: refused token exits 3 with the code; unreachable server exits 1 after its retries', async () => {
    const dataDir = tmp();
    const server = await startServer();
    const url = server.url;
    try {
      const foreign = tessera(['token', '--data', dataDir, '--role', 'client', '--sub', 'x']).stdout.trim();
      const refused = await tesseraAsync(['client', '--server', server.url, '--token', foreign, '--data', 'mnist', '--backend', 'cpu']);
      expect(refused.status).toBe(3);
      expect(refused.stderr).toMatch(/ERR_UNAUTHORIZED/);
    } finally {
      await server.close();
    }
    const token = tessera(['token', '--data', dataDir, '--role', 'client', '--sub', 'x']).stdout.trim();
    const gone = await tesseraAsync(['client', '--server', url, '--token', token, '--data', 'mnist', '--backend', 'cpu', '--retries', '2']);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(/unreachable/);
  });

  it('demo: 3 client processes, 3 rounds of mlp on MNIST reach ≥ 0.85 held-out accuracy; JSON summary', async () => {
    const r = await tesseraAsync(['demo', '--clients', '3', '--rounds', '3', '--deadline', '60', '--json']);
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(summary).toMatchObject({ rounds: 3, clients: 3, status: 'done' });
    expect(summary.accuracyByRound).toHaveLength(3);
    expect(summary.finalAccuracy as number).toBeGreaterThanOrEqual(0.85);
    expect(['wasm', 'cpu', 'tensorflow']).toContain(summary.backend);
    // 3 rounds × (3 downloads + 3 uploads) + evaluations + assignments of a 101,770-parameter model.
    expect(summary.bytesUp).toBe(3 * 3 * 101_770 * 4);
    expect(summary.bytesDown as number).toBeGreaterThan(3 * 3 * 101_770 * 4);
    expect(summary.wallSeconds as number).toBeGreaterThan(0);
  }, 300_000);
});
