import { describe, expect, it } from 'vitest';
import { createPrng } from './prng.js';

describe('createPrng', () => {
  it('is deterministic for a seed and differs across seeds and streams', () => {
    const draw = (seed: string | number, stream?: string): number[] => {
      const rng = createPrng(seed, stream);
      return Array.from({ length: 8 }, () => rng.nextUint32());
    };
    expect(draw('tessera')).toEqual(draw('tessera'));
    expect(draw(42)).toEqual(draw('42'));
    expect(draw('tessera')).not.toEqual(draw('tessera2'));
    expect(draw('tessera', 'a')).not.toEqual(draw('tessera', 'b'));
    expect(draw('tessera', 'a')).not.toEqual(draw('tessera'));
  });

  it('nextFloat is uniform-ish in [0, 1)', () => {
    const rng = createPrng(1);
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const x = rng.nextFloat();
      min = Math.min(min, x);
      max = Math.max(max, x);
      sum += x;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(sum / n).toBeCloseTo(0.5, 1);
  });

  it('nextInt covers [0, n) evenly and rejects bad n', () => {
    const rng = createPrng('ints');
    const counts = new Array<number>(7).fill(0);
    for (let i = 0; i < 70000; i++) {
      const k = rng.nextInt(7);
      counts[k] = (counts[k] as number) + 1;
    }
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500);
    expect(() => rng.nextInt(0)).toThrow(RangeError);
    expect(() => rng.nextInt(2.5)).toThrow(RangeError);
  });

  it('shuffle permutes in place deterministically', () => {
    const a = createPrng('s').shuffle(Array.from({ length: 50 }, (_, i) => i));
    const b = createPrng('s').shuffle(Array.from({ length: 50 }, (_, i) => i));
    expect(a).toEqual(b);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(a).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('gamma has mean ≈ shape and variance ≈ shape, for shape above and below 1', () => {
    for (const shape of [0.3, 1, 2.5, 9]) {
      const rng = createPrng(`gamma-${shape}`);
      const n = 40000;
      let sum = 0;
      let sumSq = 0;
      let min = Infinity;
      for (let i = 0; i < n; i++) {
        const x = rng.gamma(shape);
        min = Math.min(min, x);
        sum += x;
        sumSq += x * x;
      }
      const mean = sum / n;
      const variance = sumSq / n - mean * mean;
      expect(min).toBeGreaterThanOrEqual(0);
      expect(Math.abs(mean - shape) / shape).toBeLessThan(0.03);
      expect(Math.abs(variance - shape) / shape).toBeLessThan(0.1);
    }
    expect(() => createPrng(1).gamma(0)).toThrow(RangeError);
  });

  it('dirichlet sums to 1, has mean 1/k, and concentrates for small alpha', () => {
    const rng = createPrng('dir');
    const k = 5;
    const means = new Array<number>(k).fill(0);
    let maxSmall = 0;
    let maxLarge = 0;
    const trials = 4000;
    for (let t = 0; t < trials; t++) {
      const p = rng.dirichlet(1, k);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
      p.forEach((x, i) => (means[i] = (means[i] as number) + x / trials));
      maxSmall += Math.max(...rng.dirichlet(0.05, k)) / trials;
      maxLarge += Math.max(...rng.dirichlet(100, k)) / trials;
    }
    for (const m of means) expect(m).toBeCloseTo(1 / k, 1);
    expect(maxSmall).toBeGreaterThan(0.85);
    expect(maxLarge).toBeLessThan(0.3);
  });

  it('dirichlet with tiny alpha does not underflow to NaN', () => {
    const rng = createPrng('tiny');
    for (let t = 0; t < 200; t++) {
      const p = rng.dirichlet(0.001, 20);
      expect(p.every((x) => Number.isFinite(x) && x >= 0)).toBe(true);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
    }
  });
});
