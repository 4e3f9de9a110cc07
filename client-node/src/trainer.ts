import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels, type EvalResult, type NamedTensor, type Trainer, type TrainConfig, type TrainProgress, type TrainResult } from '@tessera/protocol';
import { evaluateSums, FAST_WASM_KERNELS, optimizerFor, shuffledIndices, trainStep } from '@tessera/protocol/tfjs/training';
import type { Dataset } from './data/index.js';

function toTensors(ds: Dataset): { x: tf.Tensor; y: tf.Tensor } {
  return tf.tidy(() => ({
    x: tf.tensor(ds.xs, [ds.n, ...ds.featureShape], 'float32'),
    y: tf.oneHot(tf.tensor1d(ds.labels, 'int32'), ds.numClasses).toFloat(),
  }));
}

/** How often a long training loop hands the event loop a turn. */
const YIELD_EVERY_MS = 50;

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
