import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { TrainConfig, TrainProgress } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { createDataset } from './data/index.js';
import { TfjsTrainer } from './trainer.js';

/** Two well-separated Gaussian-ish blobs in 6 dimensions, labels 0/1/2 by blob; deterministic. */
function blobs(n: number, offset: number): ReturnType<typeof createDataset> {
  const d = 6;
  const xs = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = (i * 7 + offset) % 3;
    labels[i] = label;
    for (let j = 0; j < d; j++) {
      const noise = 0.3 * Math.sin(12.9898 * (i + offset) + 78.233 * j);
      xs[i * d + j] = (j % 3 === label ? 2 : -1) + noise;
    }
  }
  return createDataset({ xs, labels, featureShape: [d], numClasses: 3 });
}

function topology(): string {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [6], units: 8, activation: 'relu' }), tf.layers.dense({ units: 3, activation: 'softmax' })],
  });
  const json = JSON.stringify(model.toJSON(null, false));
  model.dispose();
  return json;
}

const cfg: TrainConfig = { epochs: 15, batchSize: 16, learningRate: 0.05, optimizer: 'adam', proximalMu: 0 };

describe.each(['cpu', 'wasm'])('TfjsTrainer on %s', (backend) => {
  it('learns a separable dataset, reports per-epoch progress, and leaks no tensors across rounds', async () => {
    await tf.setBackend(backend);
    const trainer = new TfjsTrainer(backend, blobs(200, 0), blobs(60, 1));
    try {
      await trainer.loadModel(topology());
      const initial = trainer.getWeights();
      const progress: TrainProgress[] = [];
      const first = await trainer.train(cfg, (p) => progress.push(p));

      expect(progress.map((p) => p.epoch)).toEqual(Array.from({ length: cfg.epochs }, (_, i) => i + 1));
      expect(progress.every((p) => p.epochs === cfg.epochs && p.samplesPerSecond > 0 && Number.isFinite(p.loss))).toBe(true);
      expect(progress.at(-1)!.loss).toBeLessThan(0.5 * progress[0]!.loss);
      expect(first.numExamples).toBe(200);
      expect(first.metrics.accuracy).toBeGreaterThanOrEqual(0.95);
      expect(first.metrics.loss).toBe(progress.at(-1)!.loss);
      expect(first.metrics.trainSeconds).toBeGreaterThan(0);
      expect(first.metrics.samplesPerSecond).toBeCloseTo((200 * cfg.epochs) / first.metrics.trainSeconds!, 6);
      const evaluation = await trainer.evaluate();
      expect(evaluation.accuracy).toBeGreaterThanOrEqual(0.95);

      // A second round from the same starting weights: no tensor outlives a round.
      trainer.setWeights(initial);
      const before = tf.memory().numTensors;
      await trainer.train(cfg);
      expect(tf.memory().numTensors).toBe(before);
      await trainer.evaluate();
      const afterEval = tf.memory().numTensors;
      await trainer.train(cfg);
      await trainer.evaluate();
      expect(tf.memory().numTensors).toBe(afterEval);
    } finally {
      trainer.dispose();
    }
  });

  it('reports the loss and accuracy tfjs model.evaluate computes (one full batch, SGD lr 0)', async () => {
    await tf.setBackend(backend);
    const train = blobs(32, 2);
    const trainer = new TfjsTrainer(backend, train, train);
    const reference = await tf.models.modelFromJSON({ modelTopology: JSON.parse(topology()) as object } as tf.io.ModelJSON);
    try {
      await trainer.loadModel(topology());
      const weights = trainer.getWeights();
      const result = await trainer.train({ ...cfg, epochs: 1, batchSize: 32, optimizer: 'sgd', learningRate: 0 });
      const ev = await trainer.evaluate();
      const ts = weights.map((w) => tf.tensor(w.values, w.shape));
      reference.setWeights(ts);
      reference.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
      const x = tf.tensor(train.xs, [32, 6]);
      const y = tf.oneHot(tf.tensor1d(train.labels, 'int32'), 3).toFloat();
      const [loss, acc] = (reference.evaluate(x, y) as tf.Scalar[]).map((t) => t.dataSync()[0]!);
      tf.dispose([...ts, x, y]);
      expect(loss).toBeGreaterThan(0.1);
      expect(result.metrics.loss).toBeCloseTo(loss!, 5);
      expect(result.metrics.accuracy).toBeCloseTo(acc!, 6);
      expect(ev.loss).toBeCloseTo(loss!, 5);
      expect(ev.accuracy).toBeCloseTo(acc!, 6);
    } finally {
      trainer.dispose();
      reference.dispose();
    }
  });
});
