// Local training speed of the browser client in headless Chromium (Debian's `chromium`), per
// backend and model preset, with the trainer the join page uses (BrowserTrainer, batch 32, adam)
// on the demo shard. One warm-up epoch (shader / kernel compilation) precedes the timed epoch.
//
//   npm run build && npx node tests/browser/bench-train.mjs [backends] [presets]
//   e.g. npx node tests/browser/bench-train.mjs webgpu,wasm mlp,cnn
//
// Prints a table and writes bench/results/browser-train.json.
import { execSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createLogger, defineModel, TesseraServerApp } from '@tessera/server';

const BACKENDS = (process.argv[2] ?? 'webgpu,wasm').split(',');
const PRESETS = (process.argv[3] ?? 'mlp,cnn').split(',');
/** Examples per timed epoch: enough batches for a stable rate, few enough for a software GPU. */
const EXAMPLES = { mlp: 2400, cnn: 640 };
const BATCH = 32;

const pageDir = fileURLToPath(new URL('../../client-browser/dist/page', import.meta.url));
const executablePath = execSync('command -v chromium', { encoding: 'utf8' }).trim();
const server = await TesseraServerApp.start({ dataDir: mkdtempSync(join(os.tmpdir(), 'tessera-bench-')), port: 0, logger: createLogger({ silent: true }), staticRoutes: { '/join': pageDir } });
const origin = `http://localhost:${server.port}`;
const context = await chromium.launchPersistentContext(mkdtempSync(join(os.tmpdir(), 'tessera-chromium-')), {
  executablePath,
  args: ['--headless=new', '--no-sandbox', '--disable-gpu-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const browserVersion = context.browser()?.version() ?? execSync(`${executablePath} --version`, { encoding: 'utf8' }).trim();

const results = [];
try {
  for (const preset of PRESETS) {
    const { topology } = await defineModel({ preset });
    for (const backend of BACKENDS) {
      const page = await context.newPage();
      try {
        await page.goto(`${origin}/join/bench.html?backend=${backend}`);
        // eslint-disable-next-line no-undef -- runs in the page
        const r = await page.evaluate((req) => window.tesseraBench(req), { topology, batchSize: BATCH, epochs: 1, examples: EXAMPLES[preset] });
        results.push({ preset, ...r });
        console.error(`${preset} on ${backend}: ${r.samplesPerSecond.toFixed(0)} samples/s`);
      } catch (e) {
        results.push({ preset, backend, error: String(e.message ?? e).split('\n')[0] });
        console.error(`${preset} on ${backend}: failed: ${e.message}`);
      } finally {
        await page.close();
      }
    }
  }
} finally {
  await context.close();
  await server.close();
}

const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, browser: browserVersion };
console.log(`\nBrowser local training, batch ${BATCH}, headless ${browserVersion}, ${machine.cpus} × ${machine.cpuModel}\n`);
console.log('| model | backend | examples | samples/s | warm-up (s) | adapter / reason |');
console.log('|---|---|---:|---:|---:|---|');
for (const r of results) {
  if (r.error) console.log(`| ${r.preset} | ${r.backend} | | failed | | ${r.error} |`);
  else console.log(`| ${r.preset} | ${r.backend} | ${r.examples} | ${r.samplesPerSecond.toFixed(0)} | ${r.warmupSeconds.toFixed(1)} | ${r.reason} |`);
}
const outDir = fileURLToPath(new URL('../../bench/results', import.meta.url));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'browser-train.json'), JSON.stringify({ machine, batchSize: BATCH, results }, null, 2));
