import * as tf from '@tensorflow/tfjs';
import type { EvalResult, NamedTensor, Trainer, TrainConfig, TrainProgress, TrainResult } from '@tessera/protocol';
import type { Dataset } from './data/index.js';

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

function toTensors(ds: Dataset): { x: tf.Tensor; y: tf.Tensor } {
  return tf.tidy(() => ({
    x: tf.tensor(ds.xs, [ds.n, ...ds.featureShape], 'float32'),
    y: tf.oneHot(tf.tensor1d(ds.labels, 'int32'), ds.numClasses).toFloat(),
  }));
}

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
    const optimizer = optimizerFor(cfg);
    model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    let epochStart = performance.now();
    const start = performance.now();
    const n = this.numTrainExamples;
    const hist = await model.fit(this.train$.x, this.train$.y, {
      epochs: cfg.epochs,
      batchSize: cfg.batchSize,
      shuffle: true,
      verbose: 0,
      callbacks: {
        onEpochBegin: async () => {
          epochStart = performance.now();
        },
        onEpochEnd: async (epoch, logs) => {
          const secs = (performance.now() - epochStart) / 1000;
          onProgress?.({ epoch: epoch + 1, epochs: cfg.epochs, loss: Number(logs?.loss), accuracy: logs?.acc === undefined ? undefined : Number(logs.acc), samplesPerSecond: n / secs });
        },
      },
    });
    optimizer.dispose();
    const last = (k: string): number => {
      const v = hist.history[k];
      return v && v.length ? Number(v[v.length - 1]) : NaN;
    };
    const seconds = (performance.now() - start) / 1000;
    return {
      numExamples: n,
      metrics: { loss: last('loss'), accuracy: last('acc'), trainSeconds: seconds, samplesPerSecond: (n * cfg.epochs) / seconds },
    };
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

  dispose(): void {
    this.model?.dispose();
    for (const d of [this.train$, this.test$]) {
      d?.x.dispose();
      d?.y.dispose();
    }
  }
}
