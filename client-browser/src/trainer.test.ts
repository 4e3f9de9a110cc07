import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BrowserDataset } from './data.js';
import { BrowserTrainer } from './trainer.js';

/** 4 features → 3 classes, linearly separable by the largest of the first three features. */
function dataset(n: number): BrowserDataset {
  const xs = new Float32Array(n * 4);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 3;
    xs[i * 4 + (i % 3)] = 1;
    xs[i * 4 + 3] = (i % 7) / 7;
  }
  return { n, xs, labels, featureShape: [4], numClasses: 3 };
}

function topology(inputs = 4, classes = 3): string {
  const m = tf.sequential();
  m.add(tf.layers.dense({ inputShape: [inputs], units: 8, activation: 'relu', name: 'hidden' }));
  m.add(tf.layers.dense({ units: classes, activation: 'softmax', name: 'out' }));
  const json = m.toJSON(undefined, true) as string;
  m.dispose();
  return json;
}

const cfg = { epochs: 2, batchSize: 8, learningRate: 0.05, optimizer: 'adam' as const, proximalMu: 0 };

describe('BrowserTrainer (tfjs cpu backend in Node)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('keeps the weight names it was given, trains with per-epoch progress, and evaluates', async () => {
    const trainer = new BrowserTrainer('cpu', dataset(60), dataset(15));
    await trainer.loadModel(topology());
    const names = ['hidden/kernel', 'hidden/bias', 'out/kernel', 'out/bias'];
    const initial = trainer.getWeights().map((w, i) => ({ ...w, name: names[i]! }));
    trainer.setWeights(initial);
    const progress: number[] = [];
    const r = await trainer.train(cfg, (p) => progress.push(p.epoch));
    expect(progress).toEqual([1, 2]);
    expect(r.numExamples).toBe(60);
    expect(r.metrics.samplesPerSecond).toBeGreaterThan(0);
    const after = trainer.getWeights();
    expect(after.map((w) => w.name)).toEqual(names);
    expect(after.map((w) => w.shape)).toEqual(initial.map((w) => w.shape));
    expect(Array.from(after[0]!.values)).not.toEqual(Array.from(initial[0]!.values));
    const ev = await trainer.evaluate();
    expect(ev.numExamples).toBe(15);
    expect(ev.accuracy).toBeGreaterThanOrEqual(0);
    // setWeights replaces the trained weights (no stale read-back is returned).
    trainer.setWeights(initial);
    expect(Array.from(trainer.getWeights()[0]!.values)).toEqual(Array.from(initial[0]!.values));
    trainer.dispose();
  });

  it('starts each round with a fresh optimizer: same weights + same data → same result', async () => {
    const trainer = new BrowserTrainer('cpu', dataset(30), dataset(0));
    await trainer.loadModel(topology());
    const w0 = trainer.getWeights();
    const one = { ...cfg, epochs: 1, optimizer: 'sgd' as const, batchSize: 30 };
    trainer.setWeights(w0);
    await trainer.train(one);
    const a = trainer.getWeights();
    trainer.setWeights(w0);
    await trainer.train(one);
    const b = trainer.getWeights();
    // Full-batch SGD ignores shuffling; identical inputs must give identical updates.
    expect(Array.from(b[2]!.values)).toEqual(Array.from(a[2]!.values));
    expect(await trainer.evaluate()).toEqual({ numExamples: 0, loss: 0, accuracy: 0 });
    trainer.dispose();
  });

  it('explains data that does not fit the task model', async () => {
    await expect(new BrowserTrainer('cpu', dataset(6), dataset(0)).loadModel(topology(5))).rejects.toThrow(/your examples have shape \[4\] but the task's model takes \[5\]/);
    await expect(new BrowserTrainer('cpu', dataset(6), dataset(0)).loadModel(topology(4, 2))).rejects.toThrow(/your data has 3 classes but the task's model predicts 2/);
  });
});
