import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { HostAdamOptimizer } from './host-adam.js';

/** max |a − ref| / max(1, max |ref|), as in the wasm kernel tests. */
function relErr(actual: Float32Array, ref: Float32Array): number {
  expect(actual.length).toBe(ref.length);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(actual[i]! - ref[i]!);
    if (!(d <= diff)) diff = d;
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return diff / scale;
}

/** Runs `steps` minimize() calls of a least-squares problem from fixed weights; returns the weights. */
function fit(optimizer: tf.Optimizer, steps: number): Float32Array[] {
  const w0 = tf.tensor2d([0.5, -0.25, 1, 0.1, -0.7, 0.3], [3, 2]);
  const b0 = tf.tensor1d([0.1, -0.1]);
  const w = tf.variable(w0, true);
  const b = tf.variable(b0, true);
  tf.dispose([w0, b0]);
  const x = tf.tensor2d([1, 2, 3, -1, 0.5, 2, 0, 1, -2, 3, 1, 1], [4, 3]);
  const y = tf.tensor2d([1, 0, 0, 1, 2, -1, 0.5, 0.5], [4, 2]);
  for (let i = 0; i < steps; i++) {
    tf.dispose(optimizer.minimize(() => tf.losses.meanSquaredError(y, tf.add(tf.matMul(x, w), b)) as tf.Scalar, false, [w, b]));
  }
  const out = [Float32Array.from(w.dataSync()), Float32Array.from(b.dataSync())];
  tf.dispose([w, b, x, y]);
  optimizer.dispose();
  return out;
}

describe.each(['cpu', 'wasm'])('HostAdamOptimizer on %s', (backend) => {
  it('follows tf.train.adam step for step (25 steps, lr 0.05)', async () => {
    await tf.setBackend(backend);
    const ref = fit(tf.train.adam(0.05), 25);
    const before = tf.memory().numTensors;
    const got = fit(new HostAdamOptimizer(0.05), 25);
    expect(tf.memory().numTensors).toBe(before);
    expect(relErr(got[0]!, ref[0]!)).toBeLessThanOrEqual(1e-4);
    expect(relErr(got[1]!, ref[1]!)).toBeLessThanOrEqual(1e-4);
    // Not vacuous: the weights moved.
    expect(Math.abs(ref[0]![0]! - 0.5)).toBeGreaterThan(0.1);
  });
});

describe('HostAdamOptimizer moments', () => {
  it('a gradient that becomes 0 leaves m at exactly 0, never a stuck subnormal', async () => {
    await tf.setBackend('cpu');
    const opt = new HostAdamOptimizer(0.01);
    const w0 = tf.tensor1d([1, 1]);
    const w = tf.variable(w0, true, 'moment-test');
    w0.dispose();
    const step = (g: number[]): void => {
      const gt = tf.tensor1d(g);
      opt.applyGradients([{ name: 'moment-test', tensor: gt }]);
      gt.dispose();
    };
    step([1e-3, 1]);
    for (let i = 0; i < 1200; i++) step([0, 1]);
    const m = (opt as unknown as { m: Map<string, Float32Array> }).m.get('moment-test')!;
    // tf.train.adam leaves m[0] at 1.4e-45 (0.9 × the smallest subnormal rounds back to it).
    expect(m[0]).toBe(0);
    expect(m[1]).toBeCloseTo(1, 5);
    expect(opt.iterations).toBe(1201);
    w.dispose();
    opt.dispose();
  });
});
