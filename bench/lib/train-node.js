// One measurement of Tessera's Node trainer (TfjsTrainer on the backend selectBackend picks),
// run in its own process so each backend starts clean. Prints one JSON line.
//
//   node bench/lib/train-node.js '{"backend":"wasm","preset":"cnn","data":"/tmp/x","maxSamples":4096,"targetSeconds":5}'
//
// Data: a file of n × 784 float32 pixels followed by n int32 labels (written by run.js; the
// PyTorch baseline reads the same file). Steps: build the preset's topology and initial weights
// (@tessera/server's defineModel), select the backend, warm up on one batch (and a second,
// larger warm-up when it is cheap), then time `trials` epochs — TfjsTrainer.train, what a client
// runs each round — each on as many samples as fit in targetSeconds (at least minSamples), and
// report the fastest.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { defineModel } from '@tessera/server';
import { createDataset, selectBackend, TfjsTrainer } from '@tessera/client-node';

const opts = { batch: 32, minSamples: 64, maxSamples: 65536, targetSeconds: 5, ...JSON.parse(process.argv[2] ?? '{}') };
const FEATURES = 784;
const trainConfig = { epochs: 1, batchSize: opts.batch, learningRate: 1e-3, optimizer: 'adam', proximalMu: 0 };

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const raw = readFileSync(opts.data);
const total = raw.byteLength / (FEATURES * 4 + 4);
const allXs = new Float32Array(raw.buffer, raw.byteOffset, total * FEATURES);
const allLabels = new Int32Array(raw.buffer.slice(raw.byteOffset + total * FEATURES * 4, raw.byteOffset + raw.byteLength));
const slice = (n) => createDataset({ xs: allXs.subarray(0, n * FEATURES), labels: allLabels.subarray(0, n), featureShape: [28, 28, 1], numClasses: 10 });
const empty = createDataset({ xs: new Float32Array(0), labels: new Int32Array(0), featureShape: [28, 28, 1], numClasses: 10 });

// The server's model definition (topology + initial weights) uses the cpu backend; done first.
const model = await defineModel({ preset: opts.preset });

let choice;
try {
  choice = await selectBackend(opts.backend);
} catch (e) {
  emit({ backend: opts.backend, preset: opts.preset, skipped: e.message });
  process.exit(0);
}
const info = { backend: tf.getBackend(), reason: choice.reason };
if (info.backend === 'wasm') {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  info.wasmThreads = wasm.getThreadsCount();
  info.simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  info.multithread = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
}

async function trainOnce(n, epochs = 1) {
  const trainer = new TfjsTrainer(info.backend, slice(n), empty);
  try {
    await trainer.loadModel(model.topology);
    trainer.setWeights(model.weights);
    const t = performance.now();
    const r = await trainer.train({ ...trainConfig, epochs });
    const seconds = (performance.now() - t) / 1000;
    return { samples: n * epochs, epochs, seconds, samplesPerSec: (n * epochs) / seconds, loss: r.metrics.loss };
  } finally {
    trainer.dispose();
  }
}

/** One trial of `samples` samples (whole epochs over the data file past its size: fit reshuffles each epoch). */
const trial = (samples) => {
  const epochs = Math.ceil(samples / total);
  return trainOnce(epochs > 1 ? total : samples, epochs);
};
const roundToBatch = (x) => Math.max(opts.batch, Math.floor(x / opts.batch) * opts.batch);

// Warm-up: the first call compiles kernels and JITs; its speed only sizes the first trial.
const warm1 = await trainOnce(opts.batch);
let samples = Math.max(opts.minSamples, Math.min(opts.maxSamples, roundToBatch(warm1.samplesPerSec * opts.targetSeconds)));
// Several trials, the best reported: on a shared machine noise only ever slows a run down. A
// trial shorter than half the target (the warm-up underestimated the speed) is a further
// warm-up: it is discarded and the size grows to the target at the speed it measured.
const trials = [];
for (let guard = 0; trials.length < (opts.trials ?? 1) && guard < 20; guard++) {
  const t = await trial(samples);
  if (t.seconds < opts.targetSeconds / 2 && samples < opts.maxSamples) {
    samples = Math.min(opts.maxSamples, Math.max(2 * samples, roundToBatch(t.samplesPerSec * opts.targetSeconds)));
    continue;
  }
  trials.push(t);
}
const best = trials.reduce((a, b) => (b.samplesPerSec > a.samplesPerSec ? b : a));
const leaked = tf.memory().numTensors;
emit({ ...info, preset: opts.preset, batch: opts.batch, params: model.weights.reduce((a, w) => a + w.values.length, 0), warmupSamplesPerSec: warm1.samplesPerSec, ...best, trials: trials.map((t) => t.samplesPerSec), tensorsAfter: leaked });
