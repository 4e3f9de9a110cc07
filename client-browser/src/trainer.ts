import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels, type EvalResult, type NamedTensor, type Trainer, type TrainConfig, type TrainProgress, type TrainResult } from '@tessera/protocol';
import { evaluateSums, FAST_WASM_KERNELS, optimizerFor, shuffledIndices, trainStep } from '@tessera/protocol/tfjs/training';
import { featureSize, LocalDataError, type BrowserDataset } from './data.js';

/**
 * Yields to the browser's event loop through a message (not a timer or an animation frame: both
 * are throttled or paused in background tabs, which would stall training in a tab the person
 * switched away from).
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(null);
  });
}

/** Lets the page repaint and socket.io answer heartbeats at most this often during training. */
const YIELD_EVERY_MS = 50;

interface Tensors {
  x: tf.Tensor;
  y: tf.Tensor;
}

/**
 * Local training in a browser tab with tfjs Layers on the active backend, with the Node client's
 * semantics: the model is built from the task's topology, weights carry the names given to
 * `setWeights`, the optimizer is fresh each round. Examples are shaped to the model's input and
 * one-hot encoded to its output width when the model is loaded.
 */
export class BrowserTrainer implements Trainer {
  readonly numTrainExamples: number;
  readonly numTestExamples: number;
  private model: tf.LayersModel | undefined;
  private names: string[] = [];
  private train$: Tensors | undefined;
  private test$: Tensors | undefined;
  /** Weights read back asynchronously after training (a synchronous GPU read stalls WebGPU). */
  private readBack: NamedTensor[] | undefined;

  constructor(
    readonly backend: string,
    private readonly trainData: BrowserDataset,
    private readonly testData: BrowserDataset,
  ) {
    this.numTrainExamples = trainData.n;
    this.numTestExamples = testData.n;
  }

  async loadModel(topology: string): Promise<void> {
    this.disposeModel();
    const model = await tf.models.modelFromJSON({ modelTopology: JSON.parse(topology) as object } as tf.io.ModelJSON);
    const inShape = model.inputs[0]!.shape.slice(1);
    const outShape = model.outputs[0]!.shape;
    if (inShape.some((d) => d === null) || model.outputs.length !== 1) {
      model.dispose();
      throw new LocalDataError('the task model has a variable input shape or several outputs; this page trains single-output classifiers');
    }
    const inputShape = inShape as number[];
    const classes = outShape[outShape.length - 1] ?? 1;
    for (const ds of [this.trainData, this.testData]) {
      if (ds.n > 0 && featureSize(ds.featureShape) !== featureSize(inputShape)) {
        model.dispose();
        throw new LocalDataError(`your examples have shape [${ds.featureShape.join('×')}] but the task's model takes [${inputShape.join('×')}]`);
      }
      const maxLabel = ds.labels.reduce((m, v) => Math.max(m, v), 0);
      if (ds.n > 0 && maxLabel >= classes) {
        model.dispose();
        throw new LocalDataError(`your data has ${maxLabel + 1} classes but the task's model predicts ${classes}`);
      }
    }
    this.model = model;
    const toTensors = (ds: BrowserDataset): Tensors | undefined =>
      ds.n === 0
        ? undefined
        : tf.tidy(() => ({
            x: tf.tensor(ds.xs, [ds.n, ...inputShape], 'float32'),
            y: tf.oneHot(tf.tensor1d(ds.labels, 'int32'), classes).toFloat(),
          }));
    this.train$ = toTensors(this.trainData);
    this.test$ = toTensors(this.testData);
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
    this.readBack = undefined;
  }

  getWeights(): NamedTensor[] {
    if (this.readBack) return this.readBack;
    return this.m.getWeights().map((t, i) => ({ name: this.names[i] ?? `w${i}`, shape: [...t.shape], values: Float32Array.from(t.dataSync() as Float32Array) }));
  }

  private async readWeights(): Promise<NamedTensor[]> {
    const ws = this.m.getWeights();
    const values = await Promise.all(ws.map((t) => t.data() as Promise<Float32Array>));
    return ws.map((t, i) => ({ name: this.names[i] ?? `w${i}`, shape: [...t.shape], values: Float32Array.from(values[i]!) }));
  }

  async train(cfg: TrainConfig, onProgress?: (p: TrainProgress) => void): Promise<TrainResult> {
    if (!this.train$) throw new LocalDataError('no training data in this tab');
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
            const next = trainStep(model, optimizer, x, y, order.subarray(b0, Math.min(n, b0 + cfg.batchSize)), sums);
            sums.dispose();
            sums = next;
            if (performance.now() - lastYield >= YIELD_EVERY_MS) {
              await yieldToEventLoop();
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
      this.readBack = await this.readWeights();
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

  private disposeModel(): void {
    this.model?.dispose();
    this.model = undefined;
    for (const d of [this.train$, this.test$]) {
      d?.x.dispose();
      d?.y.dispose();
    }
    this.train$ = undefined;
    this.test$ = undefined;
    this.readBack = undefined;
  }

  /** Frees the model and the example tensors (GPU memory on WebGPU/WebGL). */
  dispose(): void {
    this.disposeModel();
  }
}
