// Training throughput of a small CNN on tfjs' wasm backend (with Tessera's
// training kernels) versus the pure-JS cpu backend, plus a per-kernel profile
// of one wasm training step.
//
//   npx tsc -b protocol && npx node bench/wasm-conv.mjs [wasmSamples] [cpuSamples]
//
// The cpu backend is ~100x slower, so it trains on fewer samples (default 64).
//
// Prints a table and writes bench/results/wasm-conv.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '@tessera/protocol/tfjs/wasm-kernels';

const BATCH = 32;
const WASM_SAMPLES = Number(process.argv[2] ?? 640);
const CPU_SAMPLES = Number(process.argv[3] ?? 64);
const PROFILE_STEPS = 5;

/** conv2d 32 3x3 relu → maxPool 2 → conv2d 64 3x3 relu → maxPool 2 → flatten → dense 128 relu → dense 10 softmax. */
function buildModel() {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 128, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  return model;
}

function makeData(n) {
  return tf.tidy(() => {
    const xs = tf.randomUniform([n, 28, 28, 1], 0, 1, 'float32', 7);
    const labels = tf.randomUniform([n], 0, 10, 'int32', 8);
    return { xs, ys: tf.oneHot(labels, 10).toFloat() };
  });
}

async function measure(label, samples, warmupBatches) {
  const model = buildModel();
  const { xs, ys } = makeData(samples);
  const wx = xs.slice(0, BATCH);
  const wy = ys.slice(0, BATCH);
  for (let i = 0; i < warmupBatches; i++) await model.trainOnBatch(wx, wy);
  const t0 = performance.now();
  const history = await model.fit(xs, ys, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
  const seconds = (performance.now() - t0) / 1000;
  const result = { label, backend: tf.getBackend(), samples, samplesPerSec: samples / seconds, msPerBatch: (1000 * seconds * BATCH) / samples, loss: history.history.loss[0] };

  let profile = null;
  if (tf.getBackend() === 'wasm') {
    // Profiled steps: kernel wall times (the wasm backend times kernels synchronously), averaged.
    const info = await tf.profile(async () => {
      for (let i = 0; i < PROFILE_STEPS; i++) await model.trainOnBatch(wx, wy);
    });
    const byName = new Map();
    let total = 0;
    for (const k of info.kernels) {
      const t = await k.kernelTimeMs;
      const ms = (typeof t === 'number' ? t : 0) / PROFILE_STEPS;
      total += ms;
      const key = k.name.startsWith('Conv2D') ? `${k.name} ${JSON.stringify(k.inputShapes[0])}` : k.name;
      byName.set(key, (byName.get(key) ?? 0) + ms);
    }
    profile = { steps: PROFILE_STEPS, totalKernelMs: total, top: [...byName.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([name, ms]) => ({ name, ms })) };
  }
  tf.dispose([xs, ys, wx, wy]);
  model.dispose();
  return { ...result, profile };
}

tfwasm.setThreadsCount(os.cpus().length);
const results = [];

await tf.setBackend('cpu');
results.push(await measure('cpu', CPU_SAMPLES, 1));

const registered = registerWasmTrainingKernels();
await tf.setBackend('wasm');
const threads = tfwasm.getThreadsCount();
const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
results.push(await measure('wasm + training kernels', WASM_SAMPLES, 3));

registerWasmTrainingKernels({ replaceConv2DBackpropInput: true });
results.push(await measure('wasm + training kernels + fast Conv2DBackpropInput', WASM_SAMPLES, 3));

console.log(`\nCNN 28x28x1 (conv32-pool-conv64-pool-dense128-dense10), batch ${BATCH}, adam; one epoch of ${WASM_SAMPLES} (wasm) / ${CPU_SAMPLES} (cpu) samples`);
console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), wasm threads ${threads}, simd ${simd}; registered: ${registered.join(', ')}\n`);
console.log('| backend | samples/s | ms/batch | vs cpu |');
console.log('|---|---:|---:|---:|');
const cpu = results[0].samplesPerSec;
for (const r of results) {
  console.log(`| ${r.label} | ${r.samplesPerSec.toFixed(1)} | ${r.msPerBatch.toFixed(1)} | ${(r.samplesPerSec / cpu).toFixed(2)}x |`);
}
for (const r of results) {
  if (r.profile == null) continue;
  console.log(`\nkernel time per step (mean of ${r.profile.steps}), ${r.label} (total ${r.profile.totalKernelMs.toFixed(1)} ms):`);
  for (const { name, ms } of r.profile.top) console.log(`  ${ms.toFixed(2).padStart(8)} ms  ${name}`);
}

mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const out = new URL('./results/wasm-conv.json', import.meta.url);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, wasmThreads: threads, simd, batch: BATCH, results }, null, 2));
console.log(`\nwrote ${out.pathname}`);
