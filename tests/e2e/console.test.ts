import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, TesseraServerApp } from '@tessera/server';
import { FakeClient, tmp } from '../helpers.js';

/**
 * The admin console in headless Chromium against a real server and real client processes: log in,
 * create a task from the form, start it, watch rounds complete on the live task page and the
 * accuracy chart gain points, enroll a device from the Access page, revoke a client there and see
 * its socket closed and its next connection refused.
 */

const BIN = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ARTIFACTS = join(ROOT, 'test-artifacts');
const PASSWORD = 'console-e2e-password';

function findChromium(): string | undefined {
  try {
    return execSync('command -v chromium || command -v chromium-browser', { encoding: 'utf8', shell: '/bin/sh' }).trim().split('\n')[0] || undefined;
  } catch {
    return undefined;
  }
}
const CHROMIUM = findChromium();

const procs: ChildProcess[] = [];
let server: TesseraServerApp | undefined;
let context: BrowserContext | undefined;
afterAll(async () => {
  procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL'));
  await context?.close().catch(() => undefined);
  await server?.close();
});

function runClient(url: string, token: string, index: number, log: string[]): ChildProcess {
  const p = spawn(process.execPath, [BIN, 'client', '--server', url, '--token', token, '--data', 'mnist', '--partition', 'iid', '--num-clients', '8', '--index', String(index), '--backend', 'wasm'], { stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
  p.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  procs.push(p);
  return p;
}

async function shot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name}.png`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// Without CI a machine lacking Chromium skips this file; in CI (which installs Chromium) it must run.
describe.skipIf(!CHROMIUM && !process.env.CI)('admin console in headless Chromium', () => {
  it('logs in, creates and starts a task, shows rounds live, and revokes a client', async () => {
    if (!CHROMIUM) throw new Error('Chromium is missing: CI must install it (apt-get install -y chromium) for the console e2e test');
    server = await TesseraServerApp.start({ dataDir: tmp(), port: 0, logger: createLogger({ silent: !process.env.TESSERA_TEST_LOGS }), admin: { adminPassword: PASSWORD, liveIntervalMs: 200 } });
    const url = server.url;
    const adminJwt = await server.tokens.issue({ role: 'admin', sub: 'e2e-ops' });
    const rest = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const r = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${adminJwt}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
      return (await r.json()) as T;
    };

    context = await chromium.launchPersistentContext(tmp('tessera-chromium-'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless=new', '--no-sandbox', '--disable-gpu-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1360, height: 900 },
      deviceScaleFactor: 1,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const hosts = new Set<string>();
    const consoleErrors: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('data:')) hosts.add(new URL(r.url()).host);
    });
    page.on('console', (m) => {
      // A refused login shows up as a failed 401 load; anything else (CSP violations, exceptions) counts.
      if (m.type() === 'error' && !/Failed to load resource: .* 401/.test(m.text())) consoleErrors.push(m.text());
    });
    page.on('dialog', (d) => void d.accept());

    // Log in (a wrong password first).
    await page.goto(`${url}/console/`);
    await page.getByTestId('login').waitFor();
    await page.locator('input[name=password]').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByTestId('login-error').textContent()).toContain('Wrong user name or password');
    await shot(page, 'console-login');
    await page.locator('input[name=password]').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('header.topbar').waitFor();

    // Create a task from the form, not started yet.
    await page.getByTestId('new-task').click();
    const form = page.getByTestId('task-form');
    await form.waitFor();
    await form.locator('[name=name]').fill('digits (console e2e)');
    await form.locator('[name=rounds]').fill('50');
    await form.locator('[name=clientsPerRound]').fill('2');
    await form.locator('[name=minClients]').fill('2');
    await form.locator('[name=roundDeadlineSeconds]').fill('60');
    await form.locator('[name=evaluateEvery]').fill('1');
    await form.locator('[name=startNow]').uncheck();
    await shot(page, 'console-new-task');
    await form.getByRole('button', { name: 'Create task' }).click();
    await page.waitForURL(/#\/tasks\/task-/);
    const taskId = decodeURIComponent(page.url().split('#/tasks/')[1]!);
    await expect.poll(() => page.locator('h1 .badge').textContent()).toBe('paused');
    expect(server.store.getTask(taskId)).toMatchObject({ status: 'paused', name: 'digits (console e2e)' });
    expect(JSON.parse(server.store.getTask(taskId)!.spec)).toMatchObject({ rounds: 50, clientsPerRound: 2, minClients: 2, evaluateEvery: 1, model: { preset: 'mlp' } });

    // Enroll one device through the Access page, two more through REST; each exchanges its token.
    await page.getByRole('link', { name: 'Access' }).click();
    const enrollForm = page.getByTestId('enroll-form');
    await enrollForm.locator('[name=clientId]').fill('site-a');
    await enrollForm.locator('[name=note]').fill('first site');
    await enrollForm.getByRole('button', { name: 'Create token' }).click();
    const uiToken = await page.getByTestId('enrollment-token').inputValue();
    expect(uiToken).toMatch(/^tse_/);
    const tokens = [uiToken, ...(await Promise.all([0, 1].map(async () => (await rest<{ token: string }>('POST', '/api/enrollments', { role: 'client', tasks: [taskId], ttl: '1h' })).token)))];
    const grants = await Promise.all(
      tokens.map(async (token, i) => {
        const r = await fetch(`${url}/api/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, ...(i > 0 ? { clientId: `site-${'abc'[i]}` } : {}) }) });
        expect(r.status).toBe(201);
        return (await r.json()) as { clientId: string; accessToken: string; refreshToken: string };
      }),
    );
    expect(grants.map((g) => g.clientId)).toEqual(['site-a', 'site-b', 'site-c']);

    const logs: string[][] = [[], [], []];
    grants.forEach((g, i) => runClient(url, g.accessToken, i, logs[i]!));

    // Start the task from its page and watch it live.
    await page.goto(`${url}/console/#/tasks/${taskId}`);
    await page.locator('button[data-action=start]').click();
    await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 10_000 }).toBe('running');
    await expect.poll(() => page.getByTestId('cohort').locator('.chip').count(), { timeout: 60_000 }).toBe(2);
    // Two evaluated rounds: the accuracy chart gains a point per round.
    const accuracyPoints = page.getByTestId('chart-accuracy').locator('circle.pt');
    await expect.poll(() => accuracyPoints.count(), { timeout: 60_000, interval: 250 }).toBeGreaterThanOrEqual(1);
    const first = await accuracyPoints.count();
    await expect.poll(() => accuracyPoints.count(), { timeout: 60_000, interval: 250 }).toBeGreaterThan(first);
    const accuracy = Number(await accuracyPoints.last().getAttribute('data-y'));
    expect(accuracy).toBeGreaterThan(0.5);
    await expect.poll(() => page.getByTestId('participants').locator('tbody tr').count()).toBe(3);
    await expect.poll(() => page.getByTestId('chart-duration').locator('rect.pt').count()).toBeGreaterThanOrEqual(2);
    await page.mouse.move(0, 0);
    const taskShot = await shot(page, 'console-task-page');
    // The README's picture: written when missing, refreshed with UPDATE_DOCS_SCREENSHOTS=1 (so test runs leave git clean).
    const docsShot = join(ROOT, 'docs', 'console-task-page.png');
    if (process.env.UPDATE_DOCS_SCREENSHOTS || !existsSync(docsShot)) copyFileSync(taskShot, docsShot);

    // Revoke site-c from the Access page: its socket is closed and its token refused from now on.
    await page.getByRole('link', { name: 'Access' }).click();
    const row = page.getByTestId('devices').locator('tr[data-client="site-c"]');
    await row.locator('button[data-action=revoke-client]').click();
    await expect.poll(() => row.locator('.badge').textContent()).toBe('revoked');
    await expect.poll(() => server!.hub.get('site-c')?.socket.connected ?? false).toBe(false);
    await shot(page, 'console-access');
    const again = new FakeClient(url, grants[2]!.accessToken);
    const refused = await again.connectError;
    again.close();
    expect(refused.data).toEqual({ code: 'ERR_UNAUTHORIZED', message: 'token revoked' });
    const refresh = await fetch(`${url}/api/token/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: grants[2]!.refreshToken }) });
    expect(refresh.status).toBe(401);
    // The others keep training.
    expect(server.hub.get('site-a')?.socket.connected).toBe(true);
    const audit = server.store.listAudit().map((a) => [a.actor, a.action, a.ip]);
    expect(audit).toContainEqual(['admin', 'token.revoke_subject', expect.stringMatching(/127\.0\.0\.1/)]);
    expect(audit).toContainEqual(['admin', 'task.start', expect.stringMatching(/127\.0\.0\.1/)]);

    await page.getByRole('link', { name: 'Audit log' }).click();
    await expect.poll(() => page.getByTestId('audit-table').locator('tbody tr').count()).toBeGreaterThan(5);
    await shot(page, 'console-audit');

    // The page loaded nothing from other hosts, and the browser reported no errors (CSP included).
    expect([...hosts]).toEqual([new URL(url).host]);
    expect(consoleErrors).toEqual([]);
  }, 110_000);
});
