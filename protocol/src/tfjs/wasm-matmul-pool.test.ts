import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerWasmTrainingKernels } from './wasm-kernels.js';

// The opt-in replacements of wasm's BatchMatMul and MaxPoolGrad, checked against tfjs' 'cpu'
// backend with relErr(a, ref) = max_i |a_i - ref_i| / max(1, max_i |ref_i|) ≤ 1e-4.
// Registered before the wasm backend initializes: the replacements must keep the built-ins'
// setup (their C++ bindings) working in that order too.
const TOLERANCE = 1e-4;

function relErr(actual: Float32Array, ref: Float32Array): number {
  expect(actual.length).toBe(ref.length);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(actual[i]! - ref[i]!);
    if (!(d <= diff)) diff = d; // also propagates NaN
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return diff / scale;
}

function randn(shape: number[], seed: number): Float32Array {
  return tf.tidy(() => Float32Array.from(tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync()));
}

function wasmDataIds(): number {
  return (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
}

async function on(backend: 'cpu' | 'wasm', f: () => Float32Array): Promise<Float32Array> {
  await tf.setBackend(backend);
  return f();
}

let replaced: string[] = [];
let builtinMatMul: unknown;
beforeAll(async () => {
  builtinMatMul = tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc;
  replaced = registerWasmTrainingKernels({ replaceBatchMatMul: true, replaceMaxPoolGrad: true, replaceSum: true });
  await tf.setBackend('wasm');
  await tf.setBackend('cpu');
});

describe('registration', () => {
  it('replaces BatchMatMul and MaxPoolGrad once, only when asked', () => {
    expect(replaced).toContain('BatchMatMul');
    expect(replaced).toContain('MaxPoolGrad');
    expect(replaced).toContain('Sum');
    expect(replaced).not.toContain('Conv2DBackpropInput');
    expect(tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc).not.toBe(builtinMatMul);
    expect(registerWasmTrainingKernels({ replaceBatchMatMul: true, replaceMaxPoolGrad: true, replaceSum: true })).toEqual([]);
  });
});

interface MatMulCase {
  a: number[];
  b: number[];
  ta: boolean;
  tb: boolean;
}

// Dense layers' backward pass (dx = dy·Wᵀ, dW = xᵀ·dy), odd sizes, batched and broadcast batches.
const MATMUL_CASES: MatMulCase[] = [
  { a: [32, 128], b: [784, 128], ta: false, tb: true },
  { a: [32, 784], b: [32, 128], ta: true, tb: false },
  { a: [37, 5], b: [3, 37], ta: true, tb: true },
  { a: [7, 13], b: [13, 9], ta: false, tb: false },
  { a: [1, 1], b: [5, 1], ta: false, tb: true },
  { a: [3, 11, 6], b: [3, 11, 4], ta: true, tb: false },
  { a: [2, 3, 6, 5], b: [2, 3, 7, 5], ta: false, tb: true },
  { a: [1, 9, 4], b: [4, 9, 6], ta: true, tb: false },
  { a: [4, 5, 9], b: [1, 6, 5], ta: true, tb: true },
];

describe('BatchMatMul with transposes on wasm matches cpu', () => {
  it.each(MATMUL_CASES.map((c) => [`a[${c.a}]${c.ta ? 'ᵀ' : ''} · b[${c.b}]${c.tb ? 'ᵀ' : ''}`, c] as const))('%s', async (_label, c) => {
    const av = randn(c.a, 1);
    const bv = randn(c.b, 2);
    const run = (): Float32Array =>
      tf.tidy(() => Float32Array.from(tf.matMul(tf.tensor(av, c.a), tf.tensor(bv, c.b), c.ta, c.tb).dataSync()));
    const ref = await on('cpu', run);
    const idsBefore = (await tf.setBackend('wasm'), wasmDataIds());
    const got = await on('wasm', run);
    expect(relErr(got, ref)).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.max(...ref.map(Math.abs))).toBeGreaterThan(0.1);
    // Transposed copies are freed.
    expect(wasmDataIds()).toBe(idsBefore);
  });

  it('the same right operand used transposed and not gives both products (no stale packed weights)', async () => {
    await tf.setBackend('wasm');
    const got = tf.tidy(() => {
      const w = tf.tensor(randn([6, 6], 3), [6, 6]);
      const x = tf.tensor(randn([4, 6], 4), [4, 6]);
      return [tf.matMul(x, w), tf.matMul(x, w, false, true), tf.matMul(x, w)].map((t) => Float32Array.from(t.dataSync()));
    });
    await tf.setBackend('cpu');
    const ref = tf.tidy(() => {
      const w = tf.tensor(randn([6, 6], 3), [6, 6]);
      const x = tf.tensor(randn([4, 6], 4), [4, 6]);
      return [tf.matMul(x, w), tf.matMul(x, w, false, true)].map((t) => Float32Array.from(t.dataSync()));
    });
    expect(relErr(got[0]!, ref[0]!)).toBeLessThanOrEqual(TOLERANCE);
    expect(relErr(got[1]!, ref[1]!)).toBeLessThanOrEqual(TOLERANCE);
    expect(relErr(got[2]!, ref[0]!)).toBeLessThanOrEqual(TOLERANCE);
  });
});

// Leading axes (bias gradients) take the replacement's path; the others go to the built-in.
const SUM_CASES: { shape: number[]; axis: number | number[]; keepDims: boolean }[] = [
  { shape: [32, 26, 26, 8], axis: [0, 1, 2], keepDims: false },
  { shape: [5, 7, 3], axis: [1, 0], keepDims: true },
  { shape: [9, 4], axis: 0, keepDims: false },
  { shape: [3, 4, 5], axis: [-3, -2], keepDims: false },
  { shape: [3, 4, 5], axis: [1, 2], keepDims: false },
  { shape: [3, 4, 5], axis: [0, 2], keepDims: true },
  { shape: [6, 5], axis: [0, 1], keepDims: false },
];

describe('Sum on wasm matches cpu', () => {
  it.each(SUM_CASES.map((c) => [`[${c.shape}] axis ${String(c.axis)} keepDims ${c.keepDims}`, c] as const))('%s', async (_label, c) => {
    const xv = randn(c.shape, 10);
    let shape: number[] = [];
    const run = (): Float32Array =>
      tf.tidy(() => {
        const out = tf.sum(tf.tensor(xv, c.shape), c.axis, c.keepDims);
        shape = out.shape;
        return Float32Array.from(out.dataSync());
      });
    const ref = await on('cpu', run);
    const refShape = shape;
    const got = await on('wasm', run);
    expect(shape).toEqual(refShape);
    expect(relErr(got, ref)).toBeLessThanOrEqual(TOLERANCE);
  });
});

interface PoolCase {
  x: [number, number, number, number];
  size: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same';
}

const POOL_CASES: PoolCase[] = [
  { x: [2, 26, 26, 8], size: 2, strides: 2, pad: 'valid' },
  { x: [2, 11, 11, 16], size: 2, strides: 2, pad: 'valid' },
  { x: [1, 9, 7, 3], size: 3, strides: 2, pad: 'same' },
  { x: [3, 8, 8, 5], size: 3, strides: 1, pad: 'same' },
  { x: [1, 10, 6, 2], size: [3, 2], strides: [2, 1], pad: 'valid' },
];

describe('MaxPoolGrad on wasm matches cpu', () => {
  // relu(x) makes ties (all-zero windows) common, as in a CNN: the gradient goes to the first maximum.
  it.each(POOL_CASES.map((c) => [`x[${c.x}] size ${String(c.size)} stride ${String(c.strides)} ${c.pad}`, c] as const))('%s', async (_label, c) => {
    const xv = randn(c.x, 5);
    const grad = (): Float32Array =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, c.x);
        const yShape = tf.maxPool(x, c.size, c.strides, c.pad).shape;
        const r = tf.tensor(randn(yShape, 6), yShape);
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(tf.relu(t) as tf.Tensor4D, c.size, c.strides, c.pad), r)));
        return Float32Array.from(g(x).dataSync());
      });
    const ref = await on('cpu', grad);
    await tf.setBackend('wasm');
    const idsBefore = wasmDataIds();
    const got = await on('wasm', grad);
    expect(relErr(got, ref)).toBeLessThanOrEqual(TOLERANCE);
    expect(ref.filter((v) => v !== 0).length).toBeGreaterThan(0);
    expect(wasmDataIds()).toBe(idsBefore);
  });
});

describe('MaxPoolGrad kernel with tied maxima', () => {
  // Integer-valued inputs tie often; tfjs' cpu routes dy to the first maximum in row-major order.
  it.each(POOL_CASES.map((c) => [`x[${c.x}] size ${String(c.size)} stride ${String(c.strides)} ${c.pad}`, c] as const))('%s', async (_label, c) => {
    const xv = randn(c.x, 8).map((v) => Math.round(v));
    const run = (): Float32Array =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, c.x);
        const y = tf.maxPool(x, c.size, c.strides, c.pad);
        const dy = tf.tensor(randn(y.shape, 9), y.shape);
        const attrs = { filterSize: c.size, strides: c.strides, pad: c.pad } as unknown as tf.NamedAttrMap;
        return Float32Array.from((tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, attrs) as tf.Tensor).dataSync());
      });
    const ref = await on('cpu', run);
    const got = await on('wasm', run);
    expect(relErr(got, ref)).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe('a dense + pooling model trains on wasm as on cpu', () => {
  it('one SGD step moves every weight as on cpu', async () => {
    const step = async (backend: 'cpu' | 'wasm'): Promise<Float32Array[]> => {
      await tf.setBackend(backend);
      const model = tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 5, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
          tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
        ],
      });
      model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
      const xs = tf.tensor4d(randn([6, 8, 8, 1], 7), [6, 8, 8, 1]);
      const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3).toFloat();
      const before = model.getWeights().map((t) => Float32Array.from(t.dataSync()));
      await model.trainOnBatch(xs, ys);
      const after = model.getWeights().map((t) => Float32Array.from(t.dataSync()));
      tf.dispose([xs, ys]);
      model.dispose();
      return after.map((a, i) => a.map((v, j) => v - before[i]![j]!));
    };
    const ref = await step('cpu');
    const got = await step('wasm');
    expect(got.length).toBe(ref.length);
    for (let i = 0; i < ref.length; i++) expect(relErr(got[i]!, ref[i]!)).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.max(...ref[3]!.map(Math.abs))).toBeGreaterThan(1e-3);
  });
});
