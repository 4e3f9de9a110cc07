import { describe, expect, it } from 'vitest';
import {
  checkManifest,
  decodeTensors,
  encodeTensors,
  flatten,
  manifestOf,
  maxPayloadBytesFor,
  type NamedTensor,
  parameterCount,
  sizeOf,
  type TensorSpec,
  unflatten,
} from './codec.js';
import { ErrorCode, TesseraError } from './errors.js';

/** Tensors with values that are not round decimals, so a lossy path (float64 → text → float32) would show. */
function sampleTensors(): NamedTensor[] {
  return [
    { name: 'dense/kernel', shape: [2, 3], values: Float32Array.from([0.1, -2.5, 3.14159, 1e-38, -0, 65504.5]) },
    { name: 'dense/bias', shape: [3], values: Float32Array.from([Math.PI, -Math.E, 1 / 3]) },
    { name: 'scale', shape: [], values: Float32Array.from([-7.25]) },
  ];
}

/** The raw IEEE-754 bits of a Float32Array, to compare values bit for bit (distinguishes -0 from 0). */
function bits(values: Float32Array): number[] {
  return [...new Uint32Array(Float32Array.from(values).buffer)];
}

/** Runs fn and returns the TesseraError it throws (fails the test if it does not throw one). */
function thrown(fn: () => unknown): TesseraError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TesseraError);
    return e as TesseraError;
  }
  throw new Error('expected a TesseraError, nothing was thrown');
}

describe('encodeTensors / decodeTensors', () => {
  it('round-trips several tensors bit-exactly, with names and shapes', () => {
    const input = sampleTensors();
    const enc = encodeTensors(input);
    expect(enc.manifest).toEqual([
      { name: 'dense/kernel', shape: [2, 3], dtype: 'float32' },
      { name: 'dense/bias', shape: [3], dtype: 'float32' },
      { name: 'scale', shape: [], dtype: 'float32' },
    ]);
    expect(enc.data.byteLength).toBe((6 + 3 + 1) * 4);
    const out = decodeTensors(enc, { expected: manifestOf(input), requireFinite: true });
    expect(out.map((t) => t.name)).toEqual(['dense/kernel', 'dense/bias', 'scale']);
    expect(out.map((t) => t.shape)).toEqual([[2, 3], [3], []]);
    for (let i = 0; i < input.length; i++) expect(bits(out[i]!.values)).toEqual(bits(input[i]!.values));
    // -0 survives as -0 (bit pattern 0x80000000), not +0.
    expect(Object.is(out[0]!.values[4], -0)).toBe(true);
  });

  it('lays the values out back to back, little-endian float32', () => {
    const enc = encodeTensors([
      { name: 'a', shape: [1], values: Float32Array.from([1]) },
      { name: 'b', shape: [1], values: Float32Array.from([-2]) },
    ]);
    // 1.0f = 0x3f800000, -2.0f = 0xc0000000, little-endian bytes.
    expect([...enc.data]).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
  });

  it('does not share the encoded buffer with the caller’s arrays', () => {
    const input = sampleTensors();
    const enc = encodeTensors(input);
    input[1]!.values[0] = 42;
    expect(decodeTensors(enc)[1]!.values[0]).toBe(Math.fround(Math.PI));
  });

  it('refuses to encode a tensor whose values do not match its shape', () => {
    const err = thrown(() => encodeTensors([{ name: 'w', shape: [2, 2], values: new Float32Array(3) }]));
    expect(err.code).toBe(ErrorCode.TENSOR_MISMATCH);
    expect(err.message).toContain('w');
  });

  it('decodes from a Uint8Array at an unaligned byteOffset (a Buffer slice)', () => {
    const input = sampleTensors();
    const enc = encodeTensors(input);
    const backing = Buffer.alloc(enc.data.byteLength + 3);
    backing.set(enc.data, 1);
    const slice = backing.subarray(1, 1 + enc.data.byteLength);
    expect(slice.byteOffset % 4).not.toBe(0);
    const out = decodeTensors({ manifest: enc.manifest, data: slice }, { requireFinite: true });
    for (let i = 0; i < input.length; i++) expect(bits(out[i]!.values)).toEqual(bits(input[i]!.values));
  });

  it('decodes from an aligned view with a non-zero byteOffset without reading neighbouring bytes', () => {
    const input = sampleTensors();
    const enc = encodeTensors(input);
    const backing = new Uint8Array(enc.data.byteLength + 8).fill(0xff);
    backing.set(enc.data, 4);
    const view = backing.subarray(4, 4 + enc.data.byteLength);
    const out = decodeTensors({ manifest: enc.manifest, data: view });
    expect(bits(flatten(out))).toEqual(bits(flatten(input)));
  });

  it('decodes from an ArrayBuffer', () => {
    const input = sampleTensors();
    const enc = encodeTensors(input);
    const ab = enc.data.buffer.slice(enc.data.byteOffset, enc.data.byteOffset + enc.data.byteLength) as ArrayBuffer;
    const out = decodeTensors({ manifest: enc.manifest, data: ab as unknown as Uint8Array });
    for (let i = 0; i < input.length; i++) expect(bits(out[i]!.values)).toEqual(bits(input[i]!.values));
  });

  describe('manifest checks against the expected one → ERR_TENSOR_MISMATCH', () => {
    const enc = encodeTensors(sampleTensors());
    const expected = manifestOf(sampleTensors());

    it('a different tensor count', () => {
      const err = thrown(() => decodeTensors(enc, { expected: expected.slice(0, 2) }));
      expect(err.code).toBe(ErrorCode.TENSOR_MISMATCH);
      expect(err.message).toBe('expected 2 tensors, got 3');
    });

    it('a different name', () => {
      const renamed: TensorSpec[] = expected.map((t, i) => (i === 1 ? { ...t, name: 'other/bias' } : t));
      const err = thrown(() => decodeTensors(enc, { expected: renamed }));
      expect(err.code).toBe(ErrorCode.TENSOR_MISMATCH);
      expect(err.message).toContain('other/bias');
    });

    it('a different shape with the same element count', () => {
      const reshaped: TensorSpec[] = expected.map((t, i) => (i === 0 ? { ...t, shape: [3, 2] } : t));
      const err = thrown(() => decodeTensors(enc, { expected: reshaped }));
      expect(err.code).toBe(ErrorCode.TENSOR_MISMATCH);
      expect(err.message).toContain('[2,3]');
    });

    it('a different rank', () => {
      const reshaped: TensorSpec[] = expected.map((t, i) => (i === 1 ? { ...t, shape: [3, 1] } : t));
      expect(thrown(() => decodeTensors(enc, { expected: reshaped })).code).toBe(ErrorCode.TENSOR_MISMATCH);
    });

    it("dtype 'int32' in the received manifest, even without an expected manifest", () => {
      const manifest = enc.manifest.map((t, i) => (i === 2 ? { ...t, dtype: 'int32' } : t)) as unknown as TensorSpec[];
      const err = thrown(() => decodeTensors({ manifest, data: enc.data }));
      expect(err.code).toBe(ErrorCode.TENSOR_MISMATCH);
      expect(err.message).toContain('int32');
    });

    it("dtype 'int32' in the expected manifest", () => {
      const wantsInt = expected.map((t, i) => (i === 0 ? { ...t, dtype: 'int32' } : t)) as unknown as TensorSpec[];
      const err = thrown(() => checkManifest(enc.manifest, wantsInt));
      expect(err.code).toBe(ErrorCode.TENSOR_MISMATCH);
      expect(err.message).toContain('int32');
    });

    it('accepts an identical manifest', () => {
      expect(() => checkManifest(enc.manifest, expected)).not.toThrow();
    });
  });

  it('rejects a payload shorter or longer than the manifest needs', () => {
    const enc = encodeTensors(sampleTensors());
    const short = thrown(() => decodeTensors({ manifest: enc.manifest, data: enc.data.subarray(0, enc.data.byteLength - 4) }));
    expect(short.code).toBe(ErrorCode.TENSOR_MISMATCH);
    expect(short.message).toBe('payload has 36 bytes, manifest needs 40');
    const long = new Uint8Array(enc.data.byteLength + 4);
    long.set(enc.data);
    expect(thrown(() => decodeTensors({ manifest: enc.manifest, data: long })).message).toBe('payload has 44 bytes, manifest needs 40');
    // Not a multiple of 4 either.
    const odd = new Uint8Array(enc.data.byteLength + 1);
    expect(thrown(() => decodeTensors({ manifest: enc.manifest, data: odd })).code).toBe(ErrorCode.TENSOR_MISMATCH);
  });

  it.each([
    ['NaN', Number.NaN],
    ['+Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('rejects %s with requireFinite (ERR_NON_FINITE, naming the flat index) and passes it through without', (_label, bad) => {
    const tensors = sampleTensors();
    tensors[1]!.values[2] = bad; // flat index 6 + 2 = 8
    const enc = encodeTensors(tensors);
    const err = thrown(() => decodeTensors(enc, { requireFinite: true }));
    expect(err.code).toBe(ErrorCode.NON_FINITE);
    expect(err.message).toContain('flat index 8');
    const lenient = decodeTensors(enc);
    expect(Object.is(lenient[1]!.values[2], bad)).toBe(true);
  });

  it('checks finiteness on unaligned input too', () => {
    const enc = encodeTensors([{ name: 'x', shape: [2], values: Float32Array.from([1, Number.NaN]) }]);
    const backing = new Uint8Array(enc.data.byteLength + 1);
    backing.set(enc.data, 1);
    const err = thrown(() => decodeTensors({ manifest: enc.manifest, data: backing.subarray(1) }, { requireFinite: true }));
    expect(err.code).toBe(ErrorCode.NON_FINITE);
    expect(err.message).toContain('flat index 1');
  });
});

describe('flatten / unflatten', () => {
  it('flatten concatenates in manifest order', () => {
    expect([...flatten(sampleTensors())]).toEqual([
      ...Float32Array.from([0.1, -2.5, 3.14159, 1e-38, -0, 65504.5]),
      ...Float32Array.from([Math.PI, -Math.E, 1 / 3]),
      -7.25,
    ]);
  });

  it('unflatten is the inverse of flatten', () => {
    const input = sampleTensors();
    const flat = flatten(input);
    const back = unflatten(flat, manifestOf(input));
    expect(back.map((t) => ({ name: t.name, shape: t.shape }))).toEqual(input.map((t) => ({ name: t.name, shape: t.shape })));
    for (let i = 0; i < input.length; i++) expect(bits(back[i]!.values)).toEqual(bits(input[i]!.values));
    expect(bits(flatten(back))).toEqual(bits(flat));
  });

  it('unflatten rejects a flat vector of the wrong length', () => {
    const manifest = manifestOf(sampleTensors());
    expect(thrown(() => unflatten(new Float32Array(11), manifest)).message).toBe('flat vector has 11 values, manifest 10');
    expect(thrown(() => unflatten(new Float32Array(9), manifest)).code).toBe(ErrorCode.TENSOR_MISMATCH);
  });
});

describe('sizes', () => {
  it('sizeOf: product of dims, 1 for a scalar, 0 with a zero dim', () => {
    expect(sizeOf([2, 3, 4])).toBe(24);
    expect(sizeOf([])).toBe(1);
    expect(sizeOf([5, 0])).toBe(0);
  });

  it('parameterCount sums all tensors', () => {
    expect(parameterCount(manifestOf(sampleTensors()))).toBe(10);
    expect(
      parameterCount([
        { name: 'conv', shape: [3, 3, 1, 8], dtype: 'float32' },
        { name: 'b', shape: [8], dtype: 'float32' },
      ]),
    ).toBe(80);
    expect(parameterCount([])).toBe(0);
  });

  it('maxPayloadBytesFor: 4 bytes per parameter plus 64 KiB slack (or the given slack)', () => {
    const manifest: TensorSpec[] = [{ name: 'w', shape: [1000, 10], dtype: 'float32' }];
    expect(maxPayloadBytesFor(manifest)).toBe(40_000 + 65_536);
    expect(maxPayloadBytesFor(manifest, 100)).toBe(40_100);
    expect(maxPayloadBytesFor([], 0)).toBe(0);
  });
});
