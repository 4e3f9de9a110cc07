import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels, type EvalResult, type NamedTensor, type Trainer, type TrainConfig, type TrainProgress, type TrainResult } from '@tessera/protocol';
import { HostAdamOptimizer } from '@tessera/protocol/tfjs/wasm-kernels';
import type { Dataset } from './data/index.js';

/** Backends whose tensors are host (or wasm heap) memory: reading them is a copy, not a GPU sync. */
const HOST_MEMORY_BACKENDS = new Set(['wasm', 'cpu']);

function optimizerFor(cfg: TrainConfig): tf.Optimizer {
  switch (cfg.optimizer) {
    case 'sgd':
      return tf.train.sgd(cfg.learningRate);
    case 'momentum':
      return tf.train.momentum(cfg.learningRate, 0.9);
    case 'rmsprop':
      return tf.train.rmsprop(cfg.learningRate);
    case 'adam':
      // Same update rule; one JS pass per variable where tensors live in host memory.
      return HOST_MEMORY_BACKENDS.has(tf.getBackend()) ? new HostAdamOptimizer(cfg.learningRate) : tf.train.adam(cfg.learningRate);
  }
}

function toTensors(ds: Dataset): { x: tf.Tensor; y: tf.Tensor } {
  return tf.tidy(() => ({
    x: tf.tensor(ds.xs, [ds.n, ...ds.featureShape], 'float32'),
    y: tf.oneHot(tf.tensor1d(ds.labels, 'int32'), ds.numClasses).toFloat(),
  }));
}

/** How often a long training loop hands the event loop a turn. */
const YIELD_EVERY_MS = 50;

/** A uniformly shuffled 0..n-1 (Fisher–Yates on xorshift32 seeded from crypto; not a privacy mechanism). */
function shuffledIndices(n: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let s = crypto.getRandomValues(new Uint32Array(1))[0]! | 1;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = Math.floor(((s >>> 0) / 4294967296) * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/**
 * One optimizer step on examples `idx`, what `model.fit` does per batch (training-mode forward
 * pass, categorical cross-entropy averaged over the batch plus regularizer penalties), without
 * its per-batch callbacks and metric reads. Returns `sums` + [batch loss · batch size, correct].
 */
function trainStep(model: tf.LayersModel, optimizer: tf.Optimizer, x: tf.Tensor, y: tf.Tensor, idx: Int32Array, sums: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const indices = tf.tensor1d(idx, 'int32');
    const xb = tf.gather(x, indices);
    const yb = tf.gather(y, indices);
    let correct: tf.Scalar | undefined;
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const cost = optimizer.minimize(
      () => {
        const pred = model.apply(xb, { training: true }) as tf.Tensor;
        correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(pred, -1), tf.argMax(yb, -1)), 'float32')) as tf.Scalar);
        let total = tf.mean(tf.metrics.categoricalCrossentropy(yb, pred)) as tf.Scalar;
        for (const penalty of model.calculateLosses()) total = tf.add(total, penalty) as tf.Scalar;
        return total;
      },
      true,
      vars,
    );
    if (cost == null || correct == null) throw new Error('training step produced no loss');
    // `correct` was kept out of minimize's scope; this tidy does not own it.
    const next = tf.add(sums, tf.stack([tf.mul(cost, idx.length), correct])) as tf.Tensor1D;
    correct.dispose();
    return next;
  });
}

/** Examples per inference batch in `evaluate`. */
const EVAL_BATCH = 256;

/**
 * [Σ cross-entropy, Σ correct] of the model (inference mode) over x/y, what `model.evaluate`
 * with categorical cross-entropy and accuracy computes, without compiling the model (each
 * compile leaves an optimizer's tensors behind).
 */
async function evaluateSums(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor): Promise<Float32Array> {
  const n = x.shape[0]!;
  let sums: tf.Tensor1D = tf.zeros([2]);
  try {
    for (let b0 = 0; b0 < n; b0 += EVAL_BATCH) {
      const size = Math.min(EVAL_BATCH, n - b0);
      const next = tf.tidy(() => {
        const xb = tf.slice(x, b0, size);
        const yb = tf.slice(y, b0, size);
        const pred = model.predict(xb) as tf.Tensor;
        const correct = tf.sum(tf.cast(tf.equal(tf.argMax(pred, -1), tf.argMax(yb, -1)), 'float32'));
        return tf.add(sums, tf.stack([tf.sum(tf.metrics.categoricalCrossentropy(yb, pred)), correct])) as tf.Tensor1D;
      });
      sums.dispose();
      sums = next;
    }
    return (await sums.data()) as Float32Array;
  } finally {
    sums.dispose();
  }
}

/** The wasm kernel replacements training turns on (see registerWasmTrainingKernels). */
const FAST_WASM_KERNELS = { replaceConv2DBackpropInput: true, replaceBatchMatMul: true, replaceMaxPoolGrad: true, replaceSum: true } as const;

/**
 * Local training with tfjs Layers on whatever backend is active. Data stays in this process;
 * the optimizer state is fresh each round (clients are stateless between rounds, as in FedAvg).
 */
export class TfjsTrainer implements Trainer {
  private model: tf.LayersModel | undefined;
  private names: string[] = [];
  private readonly train$: { x: tf.Tensor; y: tf.Tensor } | undefined;
  private readonly test$: { x: tf.Tensor; y: tf.Tensor } | undefined;

  constructor(
    readonly backend: string,
    train: Dataset,
    test: Dataset,
  ) {
    this.numTrainExamples = train.n;
    this.numTestExamples = test.n;
    this.train$ = train.n > 0 ? toTensors(train) : undefined;
    this.test$ = test.n > 0 ? toTensors(test) : undefined;
  }
  readonly numTrainExamples: number;
  readonly numTestExamples: number;

  async loadModel(topology: string): Promise<void> {
    this.model?.dispose();
    this.model = await tf.models.modelFromJSON({ modelTopology: JSON.parse(topology) as object } as tf.io.ModelJSON);
  }

  private get m(): tf.LayersModel {
    if (!this.model) throw new Error('no model loaded');
    return this.model;
  }

  setWeights(weights: readonly NamedTensor[]): void {
    const ts = weights.map((w) => tf.tensor(w.values, w.shape, 'float32'));
    try {
      this.m.setWeights(ts);
    } finally {
      ts.forEach((t) => t.dispose());
    }
    this.names = weights.map((w) => w.name);
  }

  getWeights(): NamedTensor[] {
    return this.m.getWeights().map((t, i) => ({
      name: this.names[i] ?? `w${i}`,
      shape: [...t.shape],
      values: Float32Array.from(t.dataSync() as Float32Array),
    }));
  }

  async train(cfg: TrainConfig, onProgress?: (p: TrainProgress) => void): Promise<TrainResult> {
    if (!this.train$) throw new Error('no training data');
    const model = this.m;
    if (tf.getBackend() === 'wasm') registerWasmTrainingKernels(FAST_WASM_KERNELS);
    const optimizer = optimizerFor(cfg);
    const n = this.numTrainExamples;
    const { x, y } = this.train$;
    const start = performance.now();
    let lastYield = start;
    let loss = NaN;
    let accuracy = NaN;
    try {
      for (let epoch = 0; epoch < cfg.epochs; epoch++) {
        const epochStart = performance.now();
        const order = shuffledIndices(n);
        // Per-epoch sums stay on the device; one read per epoch instead of one per batch.
        let sums: tf.Tensor1D = tf.zeros([2]);
        try {
          for (let b0 = 0; b0 < n; b0 += cfg.batchSize) {
            const idx = order.subarray(b0, Math.min(n, b0 + cfg.batchSize));
            const next = trainStep(model, optimizer, x, y, idx, sums);
            sums.dispose();
            sums = next;
            if (performance.now() - lastYield >= YIELD_EVERY_MS) {
              // Lets socket.io answer heartbeats during a long round.
              await new Promise((resolve) => setImmediate(resolve));
              lastYield = performance.now();
            }
          }
          const [lossSum, correct] = Array.from(await sums.data());
          loss = lossSum! / n;
          accuracy = correct! / n;
        } finally {
          sums.dispose();
        }
        const secs = (performance.now() - epochStart) / 1000;
        onProgress?.({ epoch: epoch + 1, epochs: cfg.epochs, loss, accuracy, samplesPerSecond: n / secs });
      }
    } finally {
      optimizer.dispose();
    }
    const seconds = (performance.now() - start) / 1000;
    return {
      numExamples: n,
      metrics: { loss, accuracy, trainSeconds: seconds, samplesPerSecond: (n * cfg.epochs) / seconds },
    };
  }

  async evaluate(): Promise<EvalResult> {
    if (!this.test$) return { numExamples: 0, loss: 0, accuracy: 0 };
    const [lossSum, correct] = Array.from(await evaluateSums(this.m, this.test$.x, this.test$.y));
    const n = this.numTestExamples;
    return { numExamples: n, loss: lossSum! / n, accuracy: correct! / n };
  }

  dispose(): void {
    this.model?.dispose();
    for (const d of [this.train$, this.test$]) {
      d?.x.dispose();
      d?.y.dispose();
    }
  }
}
