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
 * - Opt-in wrappers of built-ins that are slow in training: `BatchMatMul` with a
 *   transposed operand (dense layers' backward pass) is rewritten to a
 *   non-transposed product on XNNPACK; `MaxPoolGrad` and leading-axes `Sum`
 *   (bias gradients) are single-pass JS loops instead of scalar C++ / a full
 *   transpose. Each keeps the built-in it replaces and falls back to it.
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
  MaxPoolGrad,
  registerKernel,
  Sum,
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
  const out = builtinKernelFunc(BatchMatMul)({
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

/**
 * The kernels this module replaced, by name, as they were registered before:
 * the replacements call them (and keep their `setupFunc`, which binds the C++
 * entry point when the backend initializes after the replacement).
 */
const builtins = new Map<string, KernelConfig>();

/** The wasm backend's own kernel function for `name` (the one a replacement wraps). */
function builtinKernelFunc(name: string): KernelFunc {
  const kernel = builtins.get(name) ?? (getKernel(name, BACKEND) as KernelConfig | undefined);
  if (kernel == null) throw new Error(`kernel '${name}' is not registered for '${BACKEND}'`);
  return kernel.kernelFunc;
}

/** A fresh heap copy of `t` with its last two axes swapped ([..., r, c] → [..., c, r]). */
function transposeLastTwo(backend: WasmHeapBackend, t: TensorInfo): TensorInfo {
  const rank = t.shape.length;
  const rows = t.shape[rank - 2]!;
  const cols = t.shape[rank - 1]!;
  const shape = [...t.shape.slice(0, -2), cols, rows];
  const out = backend.makeOutput(shape, 'float32');
  const src = heapF32(backend, t);
  const dst = heapF32(backend, out);
  const size = rows * cols;
  // Blocked so that both the reads and the writes stay within a few cache lines.
  const B = 32;
  for (let base = 0; base < src.length; base += size) {
    for (let r0 = 0; r0 < rows; r0 += B) {
      const r1 = Math.min(rows, r0 + B);
      for (let c0 = 0; c0 < cols; c0 += B) {
        const c1 = Math.min(cols, c0 + B);
        for (let r = r0; r < r1; r++) {
          let s = base + r * cols + c0;
          let d = base + c0 * rows + r;
          for (let c = c0; c < c1; c++, s++, d += rows) dst[d] = src[s]!;
        }
      }
    }
  }
  return out;
}

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/**
 * `BatchMatMul` that never hands a transposed operand to the built-in kernel:
 * XNNPACK's SIMD GEMM only runs for transposeA = transposeB = false, the other
 * cases take a scalar C++ loop (every dense layer's backward pass). A transposed
 * operand is laid out on the heap first (a copy of O(m·k), against O(m·k·n) of
 * arithmetic), then freed. The copy is a fresh tensor, so XNNPACK's packed-weight
 * cache (keyed by the right operand's id) never sees a stale one.
 */
function batchMatMulWasm(args: { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const original = builtinKernelFunc(BatchMatMul);
  const attrs = args.attrs as unknown as MatMulAttrs;
  const { a, b } = args.inputs;
  if (
    (attrs.transposeA !== true && attrs.transposeB !== true) ||
    a == null ||
    b == null ||
    a.dtype !== 'float32' ||
    b.dtype !== 'float32' ||
    a.shape.length < 2 ||
    b.shape.length < 2
  ) {
    return original(args as Parameters<KernelFunc>[0]) as TensorInfo;
  }
  const backend = asWasmBackend(args.backend);
  const tA = attrs.transposeA === true;
  const tB = attrs.transposeB === true;
  const size = (t: TensorInfo): number => t.shape.reduce((p, d) => p * d, 1);
  const m = tA ? a.shape[a.shape.length - 1]! : a.shape[a.shape.length - 2]!;
  const n = tB ? b.shape[b.shape.length - 2]! : b.shape[b.shape.length - 1]!;
  const batch = Math.max(size({ ...a, shape: a.shape.slice(0, -2) }), size({ ...b, shape: b.shape.slice(0, -2) }));
  // Floats copied (transposes) plus floats XNNPACK packs (the right operand), both ways:
  // op(a)·op(b) directly, or as (op(b)ᵀ · op(a)ᵀ)ᵀ, which needs no copy of an operand
  // that is already transposed (dx = dy·Wᵀ then copies dy and the small result, not W).
  const direct = (tA ? size(a) : 0) + (tB ? size(b) : 0) + size(b);
  const swapped = (tB ? 0 : size(b)) + (tA ? 0 : size(a)) + batch * m * n + size(a);
  const made: TensorInfo[] = [];
  const run = (left: TensorInfo, right: TensorInfo): TensorInfo =>
    original({
      inputs: { a: left, b: right },
      backend: args.backend as Parameters<KernelFunc>[0]['backend'],
      attrs: { ...args.attrs, transposeA: false, transposeB: false },
    }) as TensorInfo;
  const own = (t: TensorInfo): TensorInfo => {
    made.push(t);
    return t;
  };
  try {
    if (direct <= swapped) {
      return run(tA ? own(transposeLastTwo(backend, a)) : a, tB ? own(transposeLastTwo(backend, b)) : b);
    }
    const outT = own(run(tB ? b : own(transposeLastTwo(backend, b)), tA ? a : own(transposeLastTwo(backend, a))));
    return transposeLastTwo(backend, outT);
  } finally {
    for (const t of made) backend.disposeData(t.dataId);
  }
}

interface PoolAttrs {
  filterSize: Pair;
  strides: Pair;
  pad: Pad;
  dimRoundingMode?: DimRoundingMode;
}

/**
 * `MaxPoolGrad` (NHWC) in JS: each output routes its dy to the first maximum of
 * its window (row-major scan, strict `>`, as tfjs' cpu backend does), with all
 * channels of a pixel handled together so the loops walk memory contiguously.
 * The built-in is a scalar C++ loop over every (dx, window) pair.
 */
function maxPoolGradWasm(args: { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const dy = input(args.inputs, 'dy', MaxPoolGrad);
  const x = input(args.inputs, 'input', MaxPoolGrad);
  const attrs = args.attrs as unknown as PoolAttrs;
  const info = backend_util.computePool2DInfo(x.shape as Shape4, attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  checkShape(dy, info.outShape, 'dy', MaxPoolGrad);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const { effectiveFilterHeight: FH, effectiveFilterWidth: FW } = info;
  const { top, left } = info.padInfo;

  const out = backend.makeOutput([...x.shape], 'float32');
  const dx = heapF32(backend, out);
  const xv = heapF32(backend, x);
  const dyv = heapF32(backend, dy);
  dx.fill(0);
  // Heap offsets of the current window's pixels (at most FH·FW of them).
  const taps = new Int32Array(Math.max(1, Math.ceil(FH / dH) * Math.ceil(FW / dW)));
  for (let n = 0; n < N; n++) {
    const xImage = n * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      const rCorner = oh * sH - top;
      let rMin = rCorner;
      while (rMin < 0) rMin += dH;
      const rMax = Math.min(H, FH + rCorner);
      for (let ow = 0; ow < OW; ow++) {
        const cCorner = ow * sW - left;
        let cMin = cCorner;
        while (cMin < 0) cMin += dW;
        const cMax = Math.min(W, FW + cCorner);
        let count = 0;
        for (let r = rMin; r < rMax; r += dH) {
          for (let c = cMin; c < cMax; c += dW) taps[count++] = xImage + (r * W + c) * C;
        }
        const dyOff = ((n * OH + oh) * OW + ow) * C;
        if (count === 4) {
          // The common 2×2 window, unrolled (about twice as fast as the loop below).
          const t0 = taps[0]!;
          const t1 = taps[1]!;
          const t2 = taps[2]!;
          const t3 = taps[3]!;
          for (let ch = 0; ch < C; ch++) {
            let best = Number.NEGATIVE_INFINITY;
            let pos = -1;
            let v = xv[t0 + ch]!;
            if (v > best) {
              best = v;
              pos = t0 + ch;
            }
            v = xv[t1 + ch]!;
            if (v > best) {
              best = v;
              pos = t1 + ch;
            }
            v = xv[t2 + ch]!;
            if (v > best) {
              best = v;
              pos = t2 + ch;
            }
            v = xv[t3 + ch]!;
            if (v > best) pos = t3 + ch;
            if (pos >= 0) dx[pos] += dyv[dyOff + ch]!;
          }
          continue;
        }
        for (let ch = 0; ch < C; ch++) {
          let best = Number.NEGATIVE_INFINITY;
          let pos = -1;
          for (let t = 0; t < count; t++) {
            const p = taps[t]! + ch;
            const v = xv[p]!;
            if (v > best) {
              best = v;
              pos = p;
            }
          }
          if (pos >= 0) dx[pos] += dyv[dyOff + ch]!;
        }
      }
    }
  }
  return out;
}

interface SumAttrs {
  axis: number | number[];
  keepDims: boolean;
}

/**
 * `Sum` over leading axes only (a bias gradient: dy [N, H, W, C] summed to [C]) as one
 * contiguous pass with float64 accumulators. The built-in transposes the reduced axes to the
 * end first, a full copy of the gradient. Anything else goes to the built-in.
 */
function sumWasm(args: { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap }): TensorInfo {
  const original = builtinKernelFunc(Sum);
  const x = args.inputs['x'];
  const attrs = args.attrs as unknown as SumAttrs;
  const rank = x?.shape.length ?? 0;
  const axes = x == null ? [] : [...new Set((Array.isArray(attrs.axis) ? attrs.axis : [attrs.axis]).map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
  const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
  if (x == null || x.dtype !== 'float32' || !leading) return original(args as Parameters<KernelFunc>[0]) as TensorInfo;
  const backend = asWasmBackend(args.backend);
  const kept = x.shape.slice(axes.length);
  const inner = kept.reduce((a, d) => a * d, 1);
  const outShape = attrs.keepDims ? [...axes.map(() => 1), ...kept] : kept;
  const out = backend.makeOutput(outShape, 'float32');
  const xv = heapF32(backend, x);
  const acc = new Float64Array(inner);
  for (let base = 0; base < xv.length; base += inner) {
    for (let j = 0; j < inner; j++) acc[j] += xv[base + j]!;
  }
  heapF32(backend, out).set(acc);
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

/** Replacements for built-in wasm kernels that are slow in training; each opt-in. */
const FAST_CONV2D_BACKPROP_INPUT = config(Conv2DBackpropInput, conv2DBackpropInputWasm);
const FAST_BATCH_MAT_MUL = config(BatchMatMul, batchMatMulWasm);
const FAST_MAX_POOL_GRAD = config(MaxPoolGrad, maxPoolGradWasm);
const FAST_SUM = config(Sum, sumWasm);

/** Options for {@link registerWasmTrainingKernels}. */
export interface WasmTrainingKernelOptions {
  /**
   * Also replace tfjs-backend-wasm's own `Conv2DBackpropInput` (a scalar C++
   * loop, the slowest step of a CNN's backward pass on wasm) with the
   * XNNPACK-matmul version from this module. Default false.
   */
  replaceConv2DBackpropInput?: boolean;
  /**
   * Wrap the built-in `BatchMatMul` so that transposed operands (dense layers'
   * backward pass) are laid out transposed first and the product runs on
   * XNNPACK's SIMD GEMM instead of a scalar loop. Default false.
   */
  replaceBatchMatMul?: boolean;
  /** Replace the built-in scalar `MaxPoolGrad` with a channel-vectorized JS loop. Default false. */
  replaceMaxPoolGrad?: boolean;
  /** Sum over leading axes (bias gradients) in one pass instead of transpose + reduce. Default false. */
  replaceSum?: boolean;
}

/** Swaps in `fast` for its kernel name, remembering the built-in it replaces. */
function replaceKernel(fast: KernelConfig): boolean {
  const current = getKernel(fast.kernelName, BACKEND) as KernelConfig | undefined;
  if (current?.kernelFunc === fast.kernelFunc) return false;
  if (current != null) {
    builtins.set(fast.kernelName, current);
    unregisterKernel(fast.kernelName, BACKEND);
  }
  // The built-in's setupFunc binds its C++ function; keep it for a backend that initializes later.
  const { setupFunc, disposeFunc } = builtins.get(fast.kernelName) ?? {};
  registerKernel({ ...fast, ...(setupFunc ? { setupFunc } : {}), ...(disposeFunc ? { disposeFunc } : {}) });
  return true;
}

/**
 * Registers the convolution gradient kernels the tfjs wasm backend lacks
 * (`Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropInput`), and the opted-in replacements of slow
 * built-ins. Idempotent: a kernel already registered for 'wasm' is left alone.
 * Returns the names it registered.
 *
 * @example
 * import * as tf from '@tensorflow/tfjs';
 * import '@tensorflow/tfjs-backend-wasm';
 * registerWasmTrainingKernels({ replaceBatchMatMul: true });
 * await tf.setBackend('wasm');
 */
export function registerWasmTrainingKernels(options: WasmTrainingKernelOptions = {}): string[] {
  const registered: string[] = [];
  for (const kernel of MISSING_KERNELS) {
    if ((getKernel(kernel.kernelName, BACKEND) as KernelConfig | undefined) != null) continue;
    registerKernel(kernel);
    registered.push(kernel.kernelName);
  }
  const wanted: [boolean | undefined, KernelConfig][] = [
    [options.replaceConv2DBackpropInput, FAST_CONV2D_BACKPROP_INPUT],
    [options.replaceBatchMatMul, FAST_BATCH_MAT_MUL],
    [options.replaceMaxPoolGrad, FAST_MAX_POOL_GRAD],
    [options.replaceSum, FAST_SUM],
  ];
  for (const [on, fast] of wanted) {
    if (on === true && replaceKernel(fast)) registered.push(fast.kernelName);
  }
  return registered;
}
export { HostAdamOptimizer } from './host-adam.js';
