/**
 * The local training step both clients run (Node and browser): optimizer choice, per-epoch
 * shuffling, one optimizer step per batch and batched evaluation — tfjs Layers semantics
 * (categorical cross-entropy, accuracy) without `model.fit`'s per-batch overhead.
 */
import * as tf from '@tensorflow/tfjs-core';
import { metrics, type LayersModel } from '@tensorflow/tfjs-layers';
import type { TrainConfig } from '../task.js';
import { HostAdamOptimizer } from './host-adam.js';

/** Backends whose tensors are host (or wasm heap) memory: reading them is a copy, not a GPU sync. */
export const HOST_MEMORY_BACKENDS = new Set(['wasm', 'cpu']);

export function optimizerFor(cfg: TrainConfig): tf.Optimizer {
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

/** A uniformly shuffled 0..n-1 (Fisher–Yates on xorshift32 seeded from crypto; not a privacy mechanism). */
export function shuffledIndices(n: number): Int32Array {
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
export function trainStep(model: LayersModel, optimizer: tf.Optimizer, x: tf.Tensor, y: tf.Tensor, idx: Int32Array, sums: tf.Tensor1D): tf.Tensor1D {
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
        let total = tf.mean(metrics.categoricalCrossentropy(yb, pred)) as tf.Scalar;
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
export const EVAL_BATCH = 256;

/**
 * [Σ cross-entropy, Σ correct] of the model (inference mode) over x/y, what `model.evaluate`
 * with categorical cross-entropy and accuracy computes, without compiling the model (each
 * compile leaves an optimizer's tensors behind).
 */
export async function evaluateSums(model: LayersModel, x: tf.Tensor, y: tf.Tensor): Promise<Float32Array> {
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
        return tf.add(sums, tf.stack([tf.sum(metrics.categoricalCrossentropy(yb, pred)), correct])) as tf.Tensor1D;
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
export const FAST_WASM_KERNELS = { replaceConv2DBackpropInput: true, replaceBatchMatMul: true, replaceMaxPoolGrad: true, replaceSum: true } as const;

