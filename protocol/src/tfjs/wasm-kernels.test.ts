import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerWasmTrainingKernels } from './wasm-kernels.js';

// Reference: tfjs' pure-JS 'cpu' backend. Error measure, used everywhere below:
//   relErr(a, ref) = max_i |a_i - ref_i| / max(1, max_i |ref_i|)
// i.e. absolute error for small gradients, relative to the largest entry otherwise.
const TOLERANCE = 1e-4;

type Backend = 'cpu' | 'wasm';
type Shape4 = [number, number, number, number];
type Pad = Parameters<typeof tf.conv2d>[3];
type Pair = [number, number];

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

/** Seeded N(0, 1) values; tfjs draws them in JS, so they do not depend on the backend. */
function randn(shape: number[], seed: number): Float32Array {
  return tf.tidy(() => Float32Array.from(tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync()));
}

async function on<T>(backend: Backend, f: () => T): Promise<T> {
  await tf.setBackend(backend);
  return f();
}

function copy(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync());
}

function wasmDataIds(): number {
  return (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
}

/** Gradients of sum(conv2d(x, f) * r) w.r.t. x and f, r a fixed random cotangent. */
function conv2dGrads(xv: Float32Array, xs: Shape4, fv: Float32Array, fs: Shape4, strides: number | Pair, pad: Pad): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(xv, xs);
    const f = tf.tensor4d(fv, fs);
    const yShape = tf.conv2d(x, f, strides, pad).shape;
    const r = tf.tensor(randn(yShape, 99), yShape);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad), r)));
    return g([x, f]).map(copy);
  });
}

function depthwiseGrads(xv: Float32Array, xs: Shape4, fv: Float32Array, fs: Shape4, strides: number | Pair, pad: Pad): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(xv, xs);
    const f = tf.tensor4d(fv, fs);
    const yShape = tf.depthwiseConv2d(x, f, strides, pad).shape;
    const r = tf.tensor(randn(yShape, 98), yShape);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad), r)),
    );
    return g([x, f]).map(copy);
  });
}

function outSize(inSize: number, k: number, stride: number, dilation: number, pad: Pad, padBefore: number, padAfter: number): number {
  const eff = (k - 1) * dilation + 1;
  if (pad === 'same') return Math.ceil(inSize / stride);
  if (pad === 'valid') return Math.ceil((inSize - eff + 1) / stride);
  return Math.floor((inSize + padBefore + padAfter - eff) / stride) + 1;
}

function padAmounts(pad: Pad): { top: number; bottom: number; left: number; right: number } {
  if (typeof pad === 'number') return { top: pad, bottom: pad, left: pad, right: pad };
  if (Array.isArray(pad)) return { top: pad[1][0], bottom: pad[1][1], left: pad[2][0], right: pad[2][1] };
  return { top: 0, bottom: 0, left: 0, right: 0 };
}

/** A dilated filter as the equivalent undilated one with zeros between taps. */
function dilateFilter(w: Float32Array, shape: Shape4, d: number): { values: Float32Array; shape: Shape4 } {
  const [kh, kw, c, m] = shape;
  const eh = (kh - 1) * d + 1;
  const ew = (kw - 1) * d + 1;
  const out = new Float32Array(eh * ew * c * m);
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++)
      out.set(w.subarray((i * kw + j) * c * m, (i * kw + j + 1) * c * m), (i * d * ew + j * d) * c * m);
  return { values: out, shape: [eh, ew, c, m] };
}

/** The taps of an undilated-equivalent filter gradient that belong to the dilated filter. */
function undilateFilter(w: Float32Array, shape: Shape4, d: number): Float32Array {
  const [kh, kw, c, m] = shape;
  const ew = (kw - 1) * d + 1;
  const out = new Float32Array(kh * kw * c * m);
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++)
      out.set(w.subarray((i * d * ew + j * d) * c * m, (i * d * ew + j * d + 1) * c * m), (i * kw + j) * c * m);
  return out;
}

/** Runs one kernel on the current backend; disposes the inputs and the output. */
function runKernel(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>): Float32Array {
  try {
    return tf.tidy(() => copy(tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor));
  } finally {
    tf.dispose(Object.values(inputs));
  }
}

const PADS: { name: string; pad: Pad }[] = [
  { name: 'same', pad: 'same' },
  { name: 'valid', pad: 'valid' },
  { name: '1', pad: 1 },
  { name: '2', pad: 2 },
  {
    name: 'explicit',
    pad: [
      [0, 0],
      [1, 0],
      [2, 1],
      [0, 0],
    ],
  },
];

// [x shape, filter height, filter width, out channels]
const CONV_SHAPES: [Shape4, number, number, number][] = [
  [[1, 5, 5, 1], 3, 3, 2],
  [[2, 7, 7, 3], 3, 3, 4],
  [[3, 8, 9, 2], 2, 3, 5],
  [[2, 12, 10, 8], 5, 5, 16],
  [[4, 6, 6, 16], 1, 1, 3],
  [[1, 9, 6, 33], 3, 2, 7],
];

const STRIDES: (number | Pair)[] = [1, 2, [2, 1]];

interface Case {
  label: string;
  xs: Shape4;
  fs: Shape4;
  strides: number | Pair;
  dilation: number;
  pad: Pad;
}

function cases(filterFor: (xs: Shape4, kh: number, kw: number, co: number) => Shape4, dilations: number[]): Case[] {
  const out: Case[] = [];
  for (const [xs, kh, kw, co] of CONV_SHAPES)
    for (const strides of STRIDES)
      for (const dilation of dilations)
        for (const { name, pad } of PADS) {
          const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
          // tfjs-core 4.22 sizes a numeric pad's output with filterHeight/strideHeight for both
          // axes, so non-square numeric-pad convs are mis-sized (and overrun wasm's forward conv).
          if (typeof pad === 'number' && (sh !== sw || kh !== kw)) continue;
          const p = padAmounts(pad);
          if (outSize(xs[1], kh, sh, dilation, pad, p.top, p.bottom) <= 0) continue;
          if (outSize(xs[2], kw, sw, dilation, pad, p.left, p.right) <= 0) continue;
          const fs = filterFor(xs, kh, kw, co);
          out.push({ label: `x ${xs} f ${fs} s ${strides} d ${dilation} pad ${name}`, xs, fs, strides, dilation, pad });
        }
  return out;
}

const conv2dCases = cases((xs, kh, kw, co) => [kh, kw, xs[3], co], [1]);
const depthwiseCases = cases((xs, kh, kw, co) => [kh, kw, xs[3], 1 + (co % 3)], [1]);
const dilatedConvCases = cases((xs, kh, kw, co) => [kh, kw, xs[3], co], [2]).filter((c) => c.xs[1] >= 7);
const dilatedDepthwiseCases = cases((xs, kh, kw, co) => [kh, kw, xs[3], 1 + (co % 3)], [2]).filter((c) => c.xs[1] >= 7);

// im2col buffers are capped at 2^22 floats: 7·7·16 rows × 48·48 columns is 1.8M per image (two images
// per chunk, three chunks); 7·7·32 × 56·56 is 4.9M (over the cap alone: one image per chunk).
const LARGE_CASES: Case[] = [
  { label: 'x 5,48,48,16 f 7,7,16,2 same', xs: [5, 48, 48, 16], fs: [7, 7, 16, 2], strides: 1, dilation: 1, pad: 'same' },
  { label: 'x 2,56,56,32 f 7,7,32,2 same', xs: [2, 56, 56, 32], fs: [7, 7, 32, 2], strides: 1, dilation: 1, pad: 'same' },
];

/** dy's shape for a conv of `c` (conv2d itself forbids stride > 1 with dilation > 1; the kernels do not). */
function dyShapeOf(c: Case, outChannels: number): Shape4 {
  const [sh, sw] = typeof c.strides === 'number' ? [c.strides, c.strides] : c.strides;
  const p = padAmounts(c.pad);
  return [c.xs[0], outSize(c.xs[1], c.fs[0], sh, c.dilation, c.pad, p.top, p.bottom), outSize(c.xs[2], c.fs[1], sw, c.dilation, c.pad, p.left, p.right), outChannels];
}

/** Reference filter gradient of a dilated conv: cpu's undilated kernel on the zero-inserted filter. */
async function referenceDilatedFilterGrad(kernel: string, c: Case, xv: Float32Array, dyv: Float32Array, dyShape: Shape4): Promise<Float32Array> {
  const effShape: Shape4 = [(c.fs[0] - 1) * c.dilation + 1, (c.fs[1] - 1) * c.dilation + 1, c.fs[2], c.fs[3]];
  const full = await on('cpu', () =>
    runKernel(kernel, { x: tf.tensor4d(xv, c.xs), dy: tf.tensor4d(dyv, dyShape) }, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dilations: 1, filterShape: effShape }),
  );
  return undilateFilter(full, c.fs, c.dilation);
}

beforeAll(async () => {
  // Initialise both backends once (the wasm module loads asynchronously); tests switch between them.
  await tf.setBackend('wasm');
  await tf.setBackend('cpu');
});

describe('registerWasmTrainingKernels', () => {
  it('registers the missing kernels once and is idempotent', () => {
    // tfjs-backend-wasm 4.22 ships none of these; if a later version does, ours are skipped.
    for (const name of ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput']) {
      expect(tf.getKernel(name, 'wasm')).toBeUndefined();
    }
    const first = registerWasmTrainingKernels();
    expect(first.sort()).toEqual(['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput']);
    const kernel = tf.getKernel('Conv2DBackpropFilter', 'wasm');
    expect(kernel?.backendName).toBe('wasm');
    expect(registerWasmTrainingKernels()).toEqual([]);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBe(kernel);
    // The built-in Conv2DBackpropInput is left alone unless asked for.
    expect(first).not.toContain('Conv2DBackpropInput');
  });
});

describe('conv2d gradients on wasm match cpu', () => {
  it.each(conv2dCases.map((c) => [c.label, c] as const))('%s', async (_label, c) => {
    const xv = randn(c.xs, 1);
    const fv = randn(c.fs, 2);
    const [dxRef, dfRef] = await on('cpu', () => conv2dGrads(xv, c.xs, fv, c.fs, c.strides, c.pad));
    const [dx, df] = await on('wasm', () => conv2dGrads(xv, c.xs, fv, c.fs, c.strides, c.pad));
    expect(relErr(df!, dfRef!)).toBeLessThanOrEqual(TOLERANCE);
    expect(relErr(dx!, dxRef!)).toBeLessThanOrEqual(TOLERANCE);
    // Not vacuous: the reference gradient is non-trivial.
    expect(Math.max(...dfRef!.map(Math.abs))).toBeGreaterThan(0.1);
  });

  it.each(LARGE_CASES.map((c) => [c.label, c] as const))('splits a large batch into im2col chunks and frees every intermediate: %s', async (_label, c) => {
    const dyShape = dyShapeOf(c, c.fs[3]);
    const xv = randn(c.xs, 3);
    const dyv = randn(dyShape, 4);
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: c.fs };
    const ref = await on('cpu', () => runKernel('Conv2DBackpropFilter', { x: tf.tensor4d(xv, c.xs), dy: tf.tensor4d(dyv, dyShape) }, attrs));
    await tf.setBackend('wasm');
    const idsBefore = wasmDataIds();
    const tensorsBefore = tf.memory().numTensors;
    const got = runKernel('Conv2DBackpropFilter', { x: tf.tensor4d(xv, c.xs), dy: tf.tensor4d(dyv, dyShape) }, attrs);
    expect(relErr(got, ref)).toBeLessThanOrEqual(TOLERANCE);
    expect(wasmDataIds()).toBe(idsBefore);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it.each(dilatedConvCases.map((c) => [c.label, c] as const))('Conv2DBackpropFilter with dilations: %s', async (_label, c) => {
    const dyShape = dyShapeOf(c, c.fs[3]);
    const xv = randn(c.xs, 5);
    const dyv = randn(dyShape, 6);
    const ref = await referenceDilatedFilterGrad('Conv2DBackpropFilter', c, xv, dyv, dyShape);
    const got = await on('wasm', () =>
      runKernel('Conv2DBackpropFilter', { x: tf.tensor4d(xv, c.xs), dy: tf.tensor4d(dyv, dyShape) }, { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dilations: c.dilation, filterShape: c.fs }),
    );
    expect(relErr(got, ref)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('rejects NCHW with a clear error', async () => {
    await tf.setBackend('wasm');
    expect(() =>
      runKernel('Conv2DBackpropFilter', { x: tf.zeros([1, 2, 5, 5]), dy: tf.zeros([1, 3, 3, 3]) }, { strides: 1, pad: 'valid', dataFormat: 'NCHW', filterShape: [3, 3, 2, 3] }),
    ).toThrow(/NHWC/);
  });

  it('rejects a dy that does not match the conv geometry instead of reading past it', async () => {
    await tf.setBackend('wasm');
    const idsBefore = wasmDataIds();
    expect(() =>
      runKernel('Conv2DBackpropFilter', { x: tf.zeros([1, 5, 5, 2]), dy: tf.zeros([1, 4, 4, 3]) }, { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, 2, 3] }),
    ).toThrow(/dy has shape \[1, 4, 4, 3\], expected \[1, 3, 3, 3\]/);
    expect(wasmDataIds()).toBe(idsBefore);
  });
});

describe('depthwise conv2d gradients on wasm match cpu', () => {
  it.each(depthwiseCases.map((c) => [c.label, c] as const))('%s', async (_label, c) => {
    const xv = randn(c.xs, 11);
    const fv = randn(c.fs, 12);
    const [dxRef, dfRef] = await on('cpu', () => depthwiseGrads(xv, c.xs, fv, c.fs, c.strides, c.pad));
    const [dx, df] = await on('wasm', () => depthwiseGrads(xv, c.xs, fv, c.fs, c.strides, c.pad));
    expect(relErr(df!, dfRef!)).toBeLessThanOrEqual(TOLERANCE);
    expect(relErr(dx!, dxRef!)).toBeLessThanOrEqual(TOLERANCE);
  });

  it.each(dilatedDepthwiseCases.map((c) => [c.label, c] as const))('with dilations: %s', async (_label, c) => {
    const dyShape = dyShapeOf(c, c.fs[2] * c.fs[3]);
    const xv = randn(c.xs, 13);
    const fv = randn(c.fs, 14);
    const dyv = randn(dyShape, 15);
    const attrs = { strides: c.strides, pad: c.pad, dilations: c.dilation };

    const dfRef = await referenceDilatedFilterGrad('DepthwiseConv2dNativeBackpropFilter', c, xv, dyv, dyShape);
    const df = await on('wasm', () =>
      runKernel('DepthwiseConv2dNativeBackpropFilter', { x: tf.tensor4d(xv, c.xs), dy: tf.tensor4d(dyv, dyShape) }, { ...attrs, filterShape: c.fs }),
    );
    expect(relErr(df, dfRef)).toBeLessThanOrEqual(TOLERANCE);

    const eff = dilateFilter(fv, c.fs, c.dilation);
    const dxRef = await on('cpu', () =>
      runKernel('DepthwiseConv2dNativeBackpropInput', { dy: tf.tensor4d(dyv, dyShape), filter: tf.tensor4d(eff.values, eff.shape) }, { ...attrs, dilations: 1, inputShape: c.xs }),
    );
    const dx = await on('wasm', () =>
      runKernel('DepthwiseConv2dNativeBackpropInput', { dy: tf.tensor4d(dyv, dyShape), filter: tf.tensor4d(fv, c.fs) }, { ...attrs, inputShape: c.xs }),
    );
    expect(relErr(dx, dxRef)).toBeLessThanOrEqual(TOLERANCE);
  });
});

/** conv2d 3x3 8 filters → maxPooling → flatten → dense 10 softmax on 28x28x1. */
function smallCnn(optimizer: tf.Optimizer): tf.Sequential {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 21 }) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 22 }) }),
    ],
  });
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  return model;
}

/** n images: one of 10 fixed random prototypes plus noise, labelled with the prototype's index. */
function prototypeData(n: number): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  return tf.tidy(() => {
    const prototypes = tf.randomUniform([10, 28, 28, 1], 0, 1, 'float32', 31);
    const labels = tf.tensor1d(Array.from({ length: n }, (_, i) => (i * 7) % 10), 'int32');
    const xs = tf.add(tf.gather(prototypes, labels), tf.randomNormal([n, 28, 28, 1], 0, 0.1, 'float32', 32)) as tf.Tensor4D;
    return { xs, ys: tf.oneHot(labels, 10).toFloat() as tf.Tensor2D };
  });
}

describe('training a small CNN on wasm', () => {
  it('one SGD step moves the conv kernel exactly as on cpu', async () => {
    const step = async (backend: Backend): Promise<Float32Array> => {
      await tf.setBackend(backend);
      const model = smallCnn(tf.train.sgd(0.5));
      const { xs, ys } = prototypeData(16);
      const before = copy(model.layers[0]!.getWeights()[0]!);
      await model.trainOnBatch(xs, ys);
      const after = copy(model.layers[0]!.getWeights()[0]!);
      tf.dispose([xs, ys]);
      model.dispose();
      return after.map((v, i) => v - before[i]!);
    };
    const ref = await step('cpu');
    const got = await step('wasm');
    expect(Math.max(...ref.map(Math.abs))).toBeGreaterThan(1e-3);
    expect(relErr(got, ref)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('model.fit decreases the loss', async () => {
    await tf.setBackend('wasm');
    const model = smallCnn(tf.train.adam(0.01));
    const { xs, ys } = prototypeData(64);
    const history = await model.fit(xs, ys, { batchSize: 16, epochs: 4, shuffle: false, verbose: 0 });
    const losses = history.history.loss as number[];
    tf.dispose([xs, ys]);
    model.dispose();
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]!).toBeLessThan(0.5 * losses[0]!);
  });
});

// Last: this replaces a built-in kernel for the rest of the process.
describe('opt-in fast Conv2DBackpropInput', () => {
  it('replaces the built-in once', () => {
    const builtin = tf.getKernel('Conv2DBackpropInput', 'wasm');
    expect(registerWasmTrainingKernels({ replaceConv2DBackpropInput: true })).toEqual(['Conv2DBackpropInput']);
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).not.toBe(builtin);
    expect(registerWasmTrainingKernels({ replaceConv2DBackpropInput: true })).toEqual([]);
  });

  it.each(conv2dCases.map((c) => [c.label, c] as const))('matches cpu: %s', async (_label, c) => {
    const xv = randn(c.xs, 41);
    const fv = randn(c.fs, 42);
    const [dxRef] = await on('cpu', () => conv2dGrads(xv, c.xs, fv, c.fs, c.strides, c.pad));
    const [dx] = await on('wasm', () => conv2dGrads(xv, c.xs, fv, c.fs, c.strides, c.pad));
    expect(relErr(dx!, dxRef!)).toBeLessThanOrEqual(TOLERANCE);
  });

  it.each(dilatedConvCases.map((c) => [c.label, c] as const))('with dilations: %s', async (_label, c) => {
    const dyShape = dyShapeOf(c, c.fs[3]);
    const fv = randn(c.fs, 43);
    const dyv = randn(dyShape, 44);
    const eff = dilateFilter(fv, c.fs, c.dilation);
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.xs };
    const ref = await on('cpu', () => runKernel('Conv2DBackpropInput', { dy: tf.tensor4d(dyv, dyShape), filter: tf.tensor4d(eff.values, eff.shape) }, attrs));
    const got = await on('wasm', () => runKernel('Conv2DBackpropInput', { dy: tf.tensor4d(dyv, dyShape), filter: tf.tensor4d(fv, c.fs) }, { ...attrs, dilations: c.dilation }));
    expect(relErr(got, ref)).toBeLessThanOrEqual(TOLERANCE);
  });

  it.each(LARGE_CASES.map((c) => [c.label, c] as const))('splits a large batch into chunks and frees every intermediate: %s', async (_label, c) => {
    const dyShape = dyShapeOf(c, c.fs[3]);
    const fv = randn(c.fs, 45);
    const dyv = randn(dyShape, 46);
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.xs };
    const ref = await on('cpu', () => runKernel('Conv2DBackpropInput', { dy: tf.tensor4d(dyv, dyShape), filter: tf.tensor4d(fv, c.fs) }, attrs));
    await tf.setBackend('wasm');
    const idsBefore = wasmDataIds();
    const got = runKernel('Conv2DBackpropInput', { dy: tf.tensor4d(dyv, dyShape), filter: tf.tensor4d(fv, c.fs) }, attrs);
    expect(relErr(got, ref)).toBeLessThanOrEqual(TOLERANCE);
    expect(wasmDataIds()).toBe(idsBefore);
  });
});
