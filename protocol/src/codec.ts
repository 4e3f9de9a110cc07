import { ErrorCode, TesseraError } from './errors.js';

/** One tensor's entry in a weights manifest. Only float32 travels on the wire today. */
export interface TensorSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
}

/** A named float32 tensor held as a flat array (row-major, tfjs order). */
export interface NamedTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

/**
 * Weights as they travel: a small JSON manifest plus ONE binary buffer holding every tensor's
 * float32 values back to back, little-endian. socket.io sends the buffer as a binary attachment.
 */
export interface EncodedTensors {
  manifest: TensorSpec[];
  data: Uint8Array;
}

/** Number of elements of a shape (1 for a scalar). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Total number of parameters described by a manifest. */
export function parameterCount(manifest: readonly TensorSpec[]): number {
  let n = 0;
  for (const t of manifest) n += sizeOf(t.shape);
  return n;
}

/** Manifest (names, shapes, dtypes) of a list of tensors. */
export function manifestOf(tensors: readonly NamedTensor[]): TensorSpec[] {
  return tensors.map((t) => ({ name: t.name, shape: [...t.shape], dtype: 'float32' as const }));
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Encodes tensors into one contiguous buffer plus manifest.
 * @example const enc = encodeTensors(model.getWeights().map(...)); socket.emit('submit', { ..., update: enc })
 */
export function encodeTensors(tensors: readonly NamedTensor[]): EncodedTensors {
  if (!littleEndian) throw new Error('big-endian hosts are not supported by the weights codec');
  const manifest = manifestOf(tensors);
  const total = parameterCount(manifest);
  const out = new Float32Array(total);
  let offset = 0;
  for (const t of tensors) {
    const n = sizeOf(t.shape);
    if (t.values.length !== n) {
      throw new TesseraError(ErrorCode.TENSOR_MISMATCH, `tensor ${t.name}: ${t.values.length} values for shape [${t.shape.join(',')}]`);
    }
    out.set(t.values, offset);
    offset += n;
  }
  return { manifest, data: new Uint8Array(out.buffer) };
}

/** Options for decodeTensors: the manifest the receiver expects, and whether to require finite values. */
export interface DecodeOptions {
  expected?: readonly TensorSpec[];
  requireFinite?: boolean;
}

/** Views any binary payload socket.io may hand over (Buffer, Uint8Array, ArrayBuffer) as bytes. */
export function asBytes(data: Uint8Array | ArrayBuffer): Uint8Array {
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}

/**
 * Decodes and checks an EncodedTensors: byte length against the manifest, optionally the
 * manifest against the expected one (count, names, shapes, dtype) and finiteness of every value.
 * Throws TesseraError with ERR_TENSOR_MISMATCH or ERR_NON_FINITE.
 */
export function decodeTensors(enc: EncodedTensors, opts: DecodeOptions = {}): NamedTensor[] {
  const { manifest } = enc;
  const bytes = asBytes(enc.data);
  for (const t of manifest) {
    if (t.dtype !== 'float32') throw new TesseraError(ErrorCode.TENSOR_MISMATCH, `tensor ${t.name}: dtype ${String(t.dtype)} (only float32 travels)`);
  }
  if (opts.expected) checkManifest(manifest, opts.expected);
  const total = parameterCount(manifest);
  if (bytes.byteLength !== total * 4) {
    throw new TesseraError(ErrorCode.TENSOR_MISMATCH, `payload has ${bytes.byteLength} bytes, manifest needs ${total * 4}`);
  }
  // Float32Array views need 4-byte alignment; socket.io buffers may sit at any offset.
  const floats =
    bytes.byteOffset % 4 === 0
      ? new Float32Array(bytes.buffer, bytes.byteOffset, total)
      : new Float32Array(new Uint8Array(bytes).buffer, 0, total); // copy: Buffer#slice would share memory
  if (opts.requireFinite) {
    for (let i = 0; i < floats.length; i++) {
      if (!Number.isFinite(floats[i])) {
        throw new TesseraError(ErrorCode.NON_FINITE, `non-finite value at flat index ${i}`);
      }
    }
  }
  const out: NamedTensor[] = [];
  let offset = 0;
  for (const t of manifest) {
    const n = sizeOf(t.shape);
    out.push({ name: t.name, shape: [...t.shape], values: floats.subarray(offset, offset + n) });
    offset += n;
  }
  return out;
}

/** Throws ERR_TENSOR_MISMATCH unless `actual` has the same tensors (names, shapes, dtypes) as `expected`. */
export function checkManifest(actual: readonly TensorSpec[], expected: readonly TensorSpec[]): void {
  if (actual.length !== expected.length) {
    throw new TesseraError(ErrorCode.TENSOR_MISMATCH, `expected ${expected.length} tensors, got ${actual.length}`);
  }
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (a.dtype !== e.dtype) throw new TesseraError(ErrorCode.TENSOR_MISMATCH, `tensor ${i} (${e.name}): dtype ${a.dtype}, expected ${e.dtype}`);
    if (a.name !== e.name) throw new TesseraError(ErrorCode.TENSOR_MISMATCH, `tensor ${i}: name ${a.name}, expected ${e.name}`);
    if (a.shape.length !== e.shape.length || a.shape.some((d, j) => d !== e.shape[j])) {
      throw new TesseraError(ErrorCode.TENSOR_MISMATCH, `tensor ${e.name}: shape [${a.shape.join(',')}], expected [${e.shape.join(',')}]`);
    }
  }
}

/** Concatenates tensors' values into one flat Float32Array (the privacy/crypto pipeline works on this). */
export function flatten(tensors: readonly NamedTensor[]): Float32Array {
  const out = new Float32Array(parameterCount(manifestOf(tensors)));
  let o = 0;
  for (const t of tensors) {
    out.set(t.values, o);
    o += t.values.length;
  }
  return out;
}

/** Splits a flat array back into tensors following a manifest. */
export function unflatten(flat: Float32Array, manifest: readonly TensorSpec[]): NamedTensor[] {
  const out: NamedTensor[] = [];
  let o = 0;
  for (const t of manifest) {
    const n = sizeOf(t.shape);
    out.push({ name: t.name, shape: [...t.shape], values: flat.subarray(o, o + n) });
    o += n;
  }
  if (o !== flat.length) throw new TesseraError(ErrorCode.TENSOR_MISMATCH, `flat vector has ${flat.length} values, manifest ${o}`);
  return out;
}

/** Socket payload budget for a model: its float32 bytes plus room for the manifest and envelope. */
export function maxPayloadBytesFor(manifest: readonly TensorSpec[], slack = 64 * 1024): number {
  return parameterCount(manifest) * 4 + slack;
}
