import { describe, expect, it } from 'vitest';
import { CryptoError } from './errors.js';
import { chunkLength, ciphertextCount, packUpdate, unpackAggregate, updateLength } from './packing.js';

describe('packing layout', () => {
  it('needs ⌊L/S⌋ + 1 ciphertexts: the weight takes the slot after the data', () => {
    expect(ciphertextCount(0, 4)).toBe(1);
    expect(ciphertextCount(3, 4)).toBe(1);
    expect(ciphertextCount(4, 4)).toBe(2); // no spare slot: the weight gets its own ciphertext
    expect(ciphertextCount(5, 4)).toBe(2);
    expect(ciphertextCount(101_770, 4096)).toBe(25); // 24·4096 = 98 304 < 101 771
    expect(chunkLength(5, 4, 0)).toBe(4);
    expect(chunkLength(5, 4, 1)).toBe(2);
  });

  it('writes weight·value in order, then the weight', () => {
    const chunks = packUpdate([new Float32Array([0.5, -1]), new Float32Array([2, 3, 4])], 4, 3);
    expect(chunks.map((c) => Array.from(c))).toEqual([
      [1.5, -3, 6, 9],
      [12, 3],
    ]);
    expect(updateLength([new Float32Array(2), new Float32Array(3)])).toBe(5);
  });

  it('puts the weight alone in slot 0 of an extra chunk when L is a multiple of S', () => {
    const chunks = packUpdate(new Float32Array([1, 2, 3, 4]), 4, 2);
    expect(chunks.map((c) => Array.from(c))).toEqual([[2, 4, 6, 8], [2]]);
  });

  it('multiplies in float64 (no float32 rounding of weight·value)', () => {
    const v = Math.fround(0.1);
    const [chunk] = packUpdate(new Float32Array([v]), 4, 1000);
    expect(chunk![0]).toBe(v * 1000);
    expect(chunk![0]).not.toBe(Math.fround(v * 1000));
  });

  it('unpacks values and rounds the weight; a non-integral weight means corruption', () => {
    const sum = unpackAggregate([new Float64Array([1, 2, 3, 4]), new Float64Array([5, 7.0000001, 0, 0])], 5, 4);
    expect(Array.from(sum.values)).toEqual([1, 2, 3, 4, 5]);
    expect(sum.weight).toBe(7);
    expect(() => unpackAggregate([new Float64Array([1, 2.5])], 1, 4)).toThrow(CryptoError);
    expect(() => unpackAggregate([new Float64Array([1, -3])], 1, 4)).toThrow(CryptoError);
    expect(() => unpackAggregate([new Float64Array([1, 2])], 5, 4)).toThrow(/expected 2 chunks/);
  });

  it('checks magnitude against the scheme’s range', () => {
    expect(() => packUpdate(new Float32Array([10]), 4, 10, 99)).toThrow(/exceeds/);
    expect(() => packUpdate(new Float32Array([1]), 4, 100, 99)).toThrow(/weight must be an integer/);
    expect(packUpdate(new Float32Array([9]), 4, 11, 99)[0]![0]).toBe(99);
  });
});
