/**
 * Benchmark page (`/join/bench.html?backend=…`): local training speed of a model topology on the
 * demo shard with the same trainer the join page uses. Driven from Node by scripts/bench.mjs.
 */
import { backendFromQuery, selectBrowserBackend, type BackendChoice } from './backend.js';
import { loadDemoShard } from './data.js';
import { BrowserTrainer } from './trainer.js';

export interface BenchRequest {
  topology: string;
  batchSize?: number;
  epochs?: number;
  /** Training examples used (from the demo pool, default 2400). */
  examples?: number;
}

export interface BenchResult {
  backend: string;
  reason: string;
  examples: number;
  batchSize: number;
  epochs: number;
  /** Timed epochs only (a warm-up epoch compiles shaders / kernels first). */
  samplesPerSecond: number;
  warmupSeconds: number;
}

declare global {
  interface Window {
    tesseraBench: (req: BenchRequest) => Promise<BenchResult>;
    tesseraBackend: Promise<BackendChoice>;
  }
}

window.tesseraBackend = selectBrowserBackend({ prefer: backendFromQuery(location.search), wasmPath: new URL('wasm/', document.baseURI).href });

window.tesseraBench = async ({ topology, batchSize = 32, epochs = 2, examples = 2400 }) => {
  const choice = await window.tesseraBackend;
  const data = await loadDemoShard({ index: 0, count: 1 });
  const n = Math.min(examples, data.train.n);
  const train = { ...data.train, n, xs: data.train.xs.subarray(0, n * 784), labels: data.train.labels.subarray(0, n) };
  const trainer = new BrowserTrainer(choice.backend, train, data.test);
  try {
    await trainer.loadModel(topology);
    const cfg = { batchSize, learningRate: 0.001, optimizer: 'adam' as const, proximalMu: 0 };
    const t0 = performance.now();
    await trainer.train({ ...cfg, epochs: 1 });
    const warmupSeconds = (performance.now() - t0) / 1000;
    const r = await trainer.train({ ...cfg, epochs });
    const result = { backend: choice.backend, reason: choice.reason, examples: n, batchSize, epochs, samplesPerSecond: r.metrics.samplesPerSecond!, warmupSeconds };
    document.getElementById('out')!.textContent += `${JSON.stringify(result)}\n`;
    return result;
  } finally {
    trainer.dispose();
  }
};
