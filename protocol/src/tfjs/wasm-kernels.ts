/**
 * Training kernels that `@tensorflow/tfjs-backend-wasm` 4.x does not ship.
 *
 * The wasm backend registers forward convolutions and `Conv2DBackpropInput`,
 * but no `Conv2DBackpropFilter` and no depthwise backprop kernels, so any
 * `model.fit` of a CNN on 'wasm' throws "Kernel 'Conv2DBackpropFilter' not
 * registered". This module registers them against the kernel registry of
 * `@tensorflow/tfjs-core` only; it never imports the wasm backend, so the same
 * file works in Node and in bundlers (the caller imports and selects 'wasm').
 *
 * How they run:
 * - `Conv2DBackpropFilter` lays out im2colᵀ of `x` on the wasm heap in JS and
 *   computes dW = im2colᵀ · dy with the backend's own `BatchMatMul`, which for
 *   non-transposed rank-1-batch operands is XNNPACK's SIMD GEMM (the transposed
 *   variants fall back to a scalar C++ loop, hence the explicit layout).
 * - The optional fast `Conv2DBackpropInput` is the same trick reversed:
 *   dcols = dy · Wᵀ with `BatchMatMul`, then col2im in JS. The built-in one is a
 *   scalar C++ loop that dominates a CNN's backward pass.
 * - Depthwise backprops are cheap (no channel reduction): direct JS loops.
 *
 * Every intermediate lives on the wasm heap through `makeOutput` and is freed
 * with `disposeData`; heap views are re-taken after each allocation because
 * growing the wasm memory detaches earlier views.
 */
import {
  backend_util,
  BatchMatMul,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  getKernel,
  registerKernel,
  unregisterKernel,
  type DataId,
  type DataType,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
  type TypedArray,
} from '@tensorflow/tfjs-core';

const BACKEND = 'wasm';

/** The part of tfjs-backend-wasm's `BackendWasm` these kernels use. */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): TypedArray;
  disposeData(dataId: DataId): boolean;
}

type Shape4 = [number, number, number, number];
type Pad = Parameters<typeof backend_util.computeConv2DInfo>[4];
type DimRoundingMode = 'floor' | 'round' | 'ceil';
type Pair = number | [number, number];

interface ConvAttrs {
  strides: Pair;
  pad: Pad;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: DimRoundingMode;
  /** Absent from tfjs' Conv2D backprop attrs (always 1 there); honoured if given. */
  dilations?: Pair;
}

interface FilterGradAttrs extends ConvAttrs {
  filterShape: Shape4;
}

interface InputGradAttrs extends ConvAttrs {
  inputShape: Shape4;
}

/**
 * Upper bound, in floats, on one im2col/dcols buffer (16 MiB). Larger problems
 * are processed a few images at a time so the wasm heap stays bounded.
 */
const MAX_COLUMN_FLOATS = 1 << 22;

function asWasmBackend(backend: unknown): WasmHeapBackend {
  const b = backend as Partial<WasmHeapBackend> | null;
  if (
    b == null ||
    typeof b.makeOutput !== 'function' ||
    typeof b.typedArrayFromHeap !== 'function' ||
    typeof b.disposeData !== 'function'
  ) {
    throw new Error('wasm training kernels need the tfjs wasm backend (makeOutput/typedArrayFromHeap)');
  }
  return b as WasmHeapBackend;
}

function input(inputs: NamedTensorInfoMap, name: string, kernel: string): TensorInfo {
  const t = inputs[name];
  if (t == null) throw new Error(`${kernel}: missing input '${name}'`);
  if (t.dtype !== 'float32') throw new Error(`${kernel}: input '${name}' must be float32, got ${t.dtype}`);
  if (t.shape.length !== 4) throw new Error(`${kernel}: input '${name}' must be rank 4, got rank ${t.shape.length}`);
  return t;
}

function checkShape(t: TensorInfo, expected: readonly number[], what: string, kernel: string): void {
  if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
    throw new Error(`${kernel}: ${what} has shape [${t.shape.join(', ')}], expected [${expected.join(', ')}]`);
  }
}

function checkNhwc(attrs: ConvAttrs, kernel: string): void {
  if (attrs.dataFormat != null && attrs.dataFormat !== 'NHWC') {
    throw new Error(`${kernel} on wasm supports dataFormat NHWC only, got ${attrs.dataFormat}`);
  }
}

/** A Float32Array view of a tensor's heap memory; valid until the heap grows. */
function heapF32(backend: WasmHeapBackend, info: TensorInfo): Float32Array {
  const view = backend.typedArrayFromHeap(info);
  if (!(view instanceof Float32Array)) throw new Error('expected a float32 heap view');
  return view;
}

/** out = a · b for a [1, m, k] and b [1, k, n], both freshly allocated here. */
function wasmMatMul(backend: WasmHeapBackend, a: TensorInfo, b: TensorInfo): TensorInfo {
  const kernel = getKernel(BatchMatMul, BACKEND) as KernelConfig | undefined;
  if (kernel == null) throw new Error(`kernel '${BatchMatMul}' is not registered for '${BACKEND}'`);
  const out = kernel.kernelFunc({
    inputs: { a, b },
    backend,
    attrs: { transposeA: false, transposeB: false },
  });
  if (Array.isArray(out)) throw new Error(`${BatchMatMul} returned several outputs`);
  return out;
}

/** Images per im2col chunk so that one column buffer stays under MAX_COLUMN_FLOATS. */
function imagesPerChunk(batch: number, floatsPerImage: number): number {
  return Math.max(1, Math.min(batch, Math.floor(MAX_COLUMN_FLOATS / Math.max(1, floatsPerImage))));
}

/** First output index whose input tap `o * stride + offset` is >= 0. */
function firstValid(offset: number, stride: number, outSize: number): number {
  return Math.min(outSize, Math.max(0, Math.ceil(-offset / stride)));
}

/** One past the last output index whose input tap `o * stride + offset` is < inSize. */
function endValid(offset: number, stride: number, inSize: number, outSize: number, lo: number): number {
  return Math.max(lo, Math.min(outSize, Math.ceil((inSize - offset) / stride)));
}

/**
 * Writes im2colᵀ of images [n0, n0 + count) into `cols` as a [K, count·P]
 * row-major matrix: row (kh, kw, ci), column (image, oh, ow). Padding taps are 0.
 * The valid output window of each filter tap is computed once, so the inner
 * loop is a branch-free strided gather.
 */
function im2colTransposed(
  x: Float32Array,
  cols: Float32Array,
  info: backend_util.Conv2DInfo,
  n0: number,
  count: number,
): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const { filterHeight: KH, filterWidth: KW } = info;
  const { top, left } = info.padInfo;
  const P = OH * OW;
  const width = count * P;
  const xRow = W * C;
  const xStep = sW * C;
  const xRowStep = sH * xRow;
  for (let i = 0; i < count; i++) {
    const xImage = (n0 + i) * H * xRow;
    for (let kh = 0; kh < KH; kh++) {
      const ihOff = kh * dH - top;
      const ohLo = firstValid(ihOff, sH, OH);
      const ohHi = endValid(ihOff, sH, H, OH, ohLo);
      for (let kw = 0; kw < KW; kw++) {
        const iwOff = kw * dW - left;
        const owLo = firstValid(iwOff, sW, OW);
        const owHi = endValid(iwOff, sW, W, OW, owLo);
        const span = owHi - owLo;
        // Taps that fall into padding for some outputs: zero the row first.
        const partial = ohLo > 0 || ohHi < OH || span < OW;
        const rowBase = (kh * KW + kw) * C;
        for (let ci = 0; ci < C; ci++) {
          const rowStart = (rowBase + ci) * width + i * P;
          if (partial) cols.fill(0, rowStart, rowStart + P);
          let xr = xImage + (ohLo * sH + ihOff) * xRow + (owLo * sW + iwOff) * C + ci;
          let m = rowStart + ohLo * OW + owLo;
          for (let oh = ohLo; oh < ohHi; oh++) {
            let xi = xr;
            for (let j = 0; j < span; j++) {
              cols[m + j] = x[xi];
              xi += xStep;
            }
            xr += xRowStep;
            m += OW;
          }
        }
      }
    }
  }
}

/**
 * Adds the columns of `dcols` ([count·P, K] row-major, row (image, oh, ow),
 * column (kh, kw, ci)) back onto images [n0, n0 + count) of `dx`.
 */
function col2imAdd(
  dcols: Float32Array,
  dx: Float32Array,
  info: backend_util.Conv2DInfo,
  n0: number,
  count: number,
): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const { filterHeight: KH, filterWidth: KW } = info;
  const { top, left } = info.padInfo;
  const K = KH * KW * C;
  let m = 0;
  for (let i = 0; i < count; i++) {
    const dxImage = (n0 + i) * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, m += K) {
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sH + kh * dH - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sW + kw * dW - left;
            if (iw < 0 || iw >= W) continue;
            const src = m + (kh * KW + kw) * C;
            const dst = dxImage + (ih * W + iw) * C;
            for (let ci = 0; ci < C; ci++) dx[dst + ci] += dcols[src + ci];
          }
        }
      }
    }
  }
}

function conv2DBackpropFilterWasm(args: { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const x = input(args.inputs, 'x', Conv2DBackpropFilter);
  const dy = input(args.inputs, 'dy', Conv2DBackpropFilter);
  const attrs = args.attrs as unknown as FilterGradAttrs;
  checkNhwc(attrs, Conv2DBackpropFilter);
  const info = backend_util.computeConv2DInfo(
    x.shape as Shape4,
    attrs.filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize: N, outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const P = OH * OW;
  const filterShape: Shape4 = [info.filterHeight, info.filterWidth, info.inChannels, CO];
  checkShape(dy, info.outShape, 'dy', Conv2DBackpropFilter);
  if (attrs.filterShape[2] !== info.inChannels) {
    throw new Error(`${Conv2DBackpropFilter}: filterShape has ${attrs.filterShape[2]} input channels, x has ${info.inChannels}`);
  }

  if (N * P === 0 || K * CO === 0) {
    const zero = backend.makeOutput(filterShape, 'float32');
    heapF32(backend, zero).fill(0);
    return zero;
  }

  const step = imagesPerChunk(N, K * P);
  let dw: TensorInfo | null = null;
  try {
    for (let n0 = 0; n0 < N; n0 += step) {
      dw = addFilterGradChunk(backend, x, dy, info, n0, Math.min(step, N - n0), dw);
    }
  } catch (error) {
    if (dw != null) backend.disposeData(dw.dataId);
    throw error;
  }
  if (dw == null) throw new Error(`${Conv2DBackpropFilter}: no chunk was computed`);
  // BatchMatMul returned [1, K, CO]; same memory as [KH, KW, CI, CO].
  return { dataId: dw.dataId, shape: filterShape, dtype: 'float32' };
}

/** dW over images [n0, n0 + count), added to `acc` (or returned as the first partial sum). */
function addFilterGradChunk(
  backend: WasmHeapBackend,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
  n0: number,
  count: number,
  acc: TensorInfo | null,
): TensorInfo {
  const CO = info.outChannels;
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const P = info.outHeight * info.outWidth;
  const width = count * P;
  const cols = backend.makeOutput([1, K, width], 'float32');
  // A fresh copy of the dy rows: the wasm matmul caches its packed XNNPACK
  // weights by the right operand's tensor id, so it must never be a tensor
  // whose id outlives this call or is reused with another shape.
  const dyRows = backend.makeOutput([1, width, CO], 'float32');
  let part: TensorInfo;
  try {
    const start = n0 * P * CO;
    heapF32(backend, dyRows).set(heapF32(backend, dy).subarray(start, start + width * CO));
    im2colTransposed(heapF32(backend, x), heapF32(backend, cols), info, n0, count);
    part = wasmMatMul(backend, cols, dyRows);
  } finally {
    backend.disposeData(cols.dataId);
    backend.disposeData(dyRows.dataId);
  }
  if (acc == null) return part;
  const sum = heapF32(backend, acc);
  const add = heapF32(backend, part);
  for (let i = 0; i < sum.length; i++) sum[i] += add[i];
  backend.disposeData(part.dataId);
  return acc;
}

function conv2DBackpropInputWasm(args: { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const dy = input(args.inputs, 'dy', Conv2DBackpropInput);
  const filter = input(args.inputs, 'filter', Conv2DBackpropInput);
  const attrs = args.attrs as unknown as InputGradAttrs;
  checkNhwc(attrs, Conv2DBackpropInput);
  const info = backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape as Shape4,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize: N, outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const P = OH * OW;

  checkShape(dy, info.outShape, 'dy', Conv2DBackpropInput);
  if (filter.shape[2] !== attrs.inputShape[3]) {
    throw new Error(`${Conv2DBackpropInput}: filter has ${filter.shape[2]} input channels, inputShape has ${attrs.inputShape[3]}`);
  }

  const dx = backend.makeOutput([...attrs.inputShape], 'float32');
  heapF32(backend, dx).fill(0);
  if (N * P === 0 || K * CO === 0) return dx;

  // Wᵀ as [1, CO, K]: the right operand must be non-transposed for XNNPACK.
  const filterT = backend.makeOutput([1, CO, K], 'float32');
  try {
    const w = heapF32(backend, filter);
    const wt = heapF32(backend, filterT);
    for (let k = 0; k < K; k++) {
      const row = k * CO;
      for (let co = 0; co < CO; co++) wt[co * K + k] = w[row + co];
    }
    const step = imagesPerChunk(N, K * P);
    for (let n0 = 0; n0 < N; n0 += step) {
      const count = Math.min(step, N - n0);
      const width = count * P;
      const dyRows = backend.makeOutput([1, width, CO], 'float32');
      let dcols: TensorInfo;
      try {
        const start = n0 * P * CO;
        heapF32(backend, dyRows).set(heapF32(backend, dy).subarray(start, start + width * CO));
        dcols = wasmMatMul(backend, dyRows, filterT);
      } finally {
        backend.disposeData(dyRows.dataId);
      }
      try {
        col2imAdd(heapF32(backend, dcols), heapF32(backend, dx), info, n0, count);
      } finally {
        backend.disposeData(dcols.dataId);
      }
    }
  } catch (error) {
    backend.disposeData(dx.dataId);
    throw error;
  } finally {
    backend.disposeData(filterT.dataId);
  }
  return dx;
}

function depthwiseInfo(inShape: Shape4, filterShape: Shape4, attrs: ConvAttrs): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(
    inShape,
    filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
    'channelsLast',
  );
}

function depthwiseBackpropFilterWasm(args: { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const x = input(args.inputs, 'x', DepthwiseConv2dNativeBackpropFilter);
  const dy = input(args.inputs, 'dy', DepthwiseConv2dNativeBackpropFilter);
  const attrs = args.attrs as unknown as FilterGradAttrs;
  checkNhwc(attrs, DepthwiseConv2dNativeBackpropFilter);
  const info = depthwiseInfo(x.shape as Shape4, attrs.filterShape, attrs);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const { strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const { filterHeight: KH, filterWidth: KW } = info;
  const { top, left } = info.padInfo;
  const chMul = CO / C;
  checkShape(dy, info.outShape, 'dy', DepthwiseConv2dNativeBackpropFilter);
  if (attrs.filterShape[2] !== C) {
    throw new Error(`${DepthwiseConv2dNativeBackpropFilter}: filterShape has ${attrs.filterShape[2]} channels, x has ${C}`);
  }

  const out = backend.makeOutput([KH, KW, C, chMul], 'float32');
  const xv = heapF32(backend, x);
  const dyv = heapF32(backend, dy);
  // Float64 accumulators: each weight sums N·OH·OW products.
  const acc = new Float64Array(KH * KW * CO);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const dyOff = ((n * OH + oh) * OW + ow) * CO;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sH + kh * dH - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sW + kw * dW - left;
            if (iw < 0 || iw >= W) continue;
            const xOff = ((n * H + ih) * W + iw) * C;
            const aOff = (kh * KW + kw) * CO;
            if (chMul === 1) {
              for (let c = 0; c < C; c++) acc[aOff + c] += xv[xOff + c] * dyv[dyOff + c];
            } else {
              for (let c = 0; c < C; c++) {
                const xval = xv[xOff + c];
                const base = c * chMul;
                for (let q = 0; q < chMul; q++) acc[aOff + base + q] += xval * dyv[dyOff + base + q];
              }
            }
          }
        }
      }
    }
  }
  heapF32(backend, out).set(acc);
  return out;
}

function depthwiseBackpropInputWasm(args: { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const dy = input(args.inputs, 'dy', DepthwiseConv2dNativeBackpropInput);
  const filter = input(args.inputs, 'filter', DepthwiseConv2dNativeBackpropInput);
  const attrs = args.attrs as unknown as InputGradAttrs;
  checkNhwc(attrs, DepthwiseConv2dNativeBackpropInput);
  const info = depthwiseInfo(attrs.inputShape, filter.shape as Shape4, attrs);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const { strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const { filterHeight: KH, filterWidth: KW } = info;
  const { top, left } = info.padInfo;
  const chMul = CO / C;
  checkShape(dy, info.outShape, 'dy', DepthwiseConv2dNativeBackpropInput);
  if (filter.shape[2] !== attrs.inputShape[3]) {
    throw new Error(`${DepthwiseConv2dNativeBackpropInput}: filter has ${filter.shape[2]} channels, inputShape has ${attrs.inputShape[3]}`);
  }

  const out = backend.makeOutput([...attrs.inputShape], 'float32');
  const dx = heapF32(backend, out);
  const dyv = heapF32(backend, dy);
  const wv = heapF32(backend, filter);
  dx.fill(0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const dyOff = ((n * OH + oh) * OW + ow) * CO;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sH + kh * dH - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sW + kw * dW - left;
            if (iw < 0 || iw >= W) continue;
            const xOff = ((n * H + ih) * W + iw) * C;
            const wOff = (kh * KW + kw) * CO;
            if (chMul === 1) {
              for (let c = 0; c < C; c++) dx[xOff + c] += dyv[dyOff + c] * wv[wOff + c];
            } else {
              for (let c = 0; c < C; c++) {
                const base = c * chMul;
                let s = 0;
                for (let q = 0; q < chMul; q++) s += dyv[dyOff + base + q] * wv[wOff + base + q];
                dx[xOff + c] += s;
              }
            }
          }
        }
      }
    }
  }
  return out;
}

function config(kernelName: string, kernelFunc: (args: { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap }) => TensorInfo): KernelConfig {
  return { kernelName, backendName: BACKEND, kernelFunc: kernelFunc as KernelFunc };
}

/** Kernels the wasm backend lacks; registered only where nothing is registered yet. */
const MISSING_KERNELS: readonly KernelConfig[] = [
  config(Conv2DBackpropFilter, conv2DBackpropFilterWasm),
  config(DepthwiseConv2dNativeBackpropFilter, depthwiseBackpropFilterWasm),
  config(DepthwiseConv2dNativeBackpropInput, depthwiseBackpropInputWasm),
];

/** Replacement for the built-in scalar `Conv2DBackpropInput`; opt-in. */
const FAST_CONV2D_BACKPROP_INPUT = config(Conv2DBackpropInput, conv2DBackpropInputWasm);

/** Options for {@link registerWasmTrainingKernels}. */
export interface WasmTrainingKernelOptions {
  /**
   * Also replace tfjs-backend-wasm's own `Conv2DBackpropInput` (a scalar C++
   * loop, the slowest step of a CNN's backward pass on wasm) with the
   * XNNPACK-matmul version from this module. Default false.
   */
  replaceConv2DBackpropInput?: boolean;
}

/**
 * Registers the convolution gradient kernels the tfjs wasm backend lacks
 * (`Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropInput`). Idempotent: a kernel already
 * registered for 'wasm' is left alone. Returns the names it registered.
 *
 * @example
 * import * as tf from '@tensorflow/tfjs';
 * import '@tensorflow/tfjs-backend-wasm';
 * registerWasmTrainingKernels();
 * await tf.setBackend('wasm');
 */
export function registerWasmTrainingKernels(options: WasmTrainingKernelOptions = {}): string[] {
  const registered: string[] = [];
  for (const kernel of MISSING_KERNELS) {
    if ((getKernel(kernel.kernelName, BACKEND) as KernelConfig | undefined) != null) continue;
    registerKernel(kernel);
    registered.push(kernel.kernelName);
  }
  if (options.replaceConv2DBackpropInput === true) {
    const current = getKernel(Conv2DBackpropInput, BACKEND) as KernelConfig | undefined;
    if (current?.kernelFunc !== FAST_CONV2D_BACKPROP_INPUT.kernelFunc) {
      if (current != null) unregisterKernel(Conv2DBackpropInput, BACKEND);
      registerKernel(FAST_CONV2D_BACKPROP_INPUT);
      registered.push(Conv2DBackpropInput);
    }
  }
  return registered;
}
