import * as tf from '@tensorflow/tfjs';
import type { EvalResult, NamedTensor, Trainer, TrainConfig, TrainProgress, TrainResult } from '@tessera/protocol';
import { featureSize, LocalDataError, type BrowserDataset } from './data.js';

function optimizerFor(cfg: TrainConfig): tf.Optimizer {
  switch (cfg.optimizer) {
    case 'sgd':
      return tf.train.sgd(cfg.learningRate);
    case 'momentum':
      return tf.train.momentum(cfg.learningRate, 0.9);
    case 'rmsprop':
      return tf.train.rmsprop(cfg.learningRate);
    case 'adam':
      return tf.train.adam(cfg.learningRate);
  }
}

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
    const optimizer = optimizerFor(cfg);
    model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const n = this.numTrainExamples;
    const start = performance.now();
    let epochStart = start;
    try {
      const hist = await model.fit(this.train$.x, this.train$.y, {
        epochs: cfg.epochs,
        batchSize: cfg.batchSize,
        shuffle: true,
        verbose: 0,
        yieldEvery: YIELD_EVERY_MS,
        callbacks: {
          // tfjs yields with requestAnimationFrame by default, which never fires in a hidden tab.
          nextFrameFunc: yieldToEventLoop,
          onEpochBegin: async () => {
            epochStart = performance.now();
          },
          onEpochEnd: async (epoch, logs) => {
            const secs = (performance.now() - epochStart) / 1000;
            onProgress?.({ epoch: epoch + 1, epochs: cfg.epochs, loss: Number(logs?.loss), accuracy: logs?.acc === undefined ? undefined : Number(logs.acc), samplesPerSecond: n / secs });
          },
        },
      });
      this.readBack = await this.readWeights();
      const last = (k: string): number => {
        const v = hist.history[k];
        return v && v.length ? Number(v[v.length - 1]) : NaN;
      };
      const seconds = (performance.now() - start) / 1000;
      return {
        numExamples: n,
        metrics: { loss: last('loss'), accuracy: last('acc'), trainSeconds: seconds, samplesPerSecond: (n * cfg.epochs) / seconds },
      };
    } finally {
      optimizer.dispose();
    }
  }

  async evaluate(): Promise<EvalResult> {
    if (!this.test$) return { numExamples: 0, loss: 0, accuracy: 0 };
    const model = this.m;
    model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const out = model.evaluate(this.test$.x, this.test$.y, { batchSize: 256 }) as tf.Scalar[];
    const [loss, acc] = await Promise.all(out.map((t) => t.data()));
    out.forEach((t) => t.dispose());
    return { numExamples: this.numTestExamples, loss: Number(loss![0]), accuracy: Number(acc![0]) };
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
