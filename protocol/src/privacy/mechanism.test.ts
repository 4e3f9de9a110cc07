import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AdaptiveClip,
  addGaussianNoiseInPlace,
  clipInPlace,
  gaussianNoise,
  l2Norm,
  noiseStdFor,
} from './mechanism.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('l2Norm', () => {
  it('treats all tensors as one flattened vector', () => {
    expect(l2Norm([Float32Array.of(3), Float32Array.of(), Float32Array.of(4, 12)])).toBe(13);
    expect(l2Norm([])).toBe(0);
  });

  it('accumulates in float64', () => {
    // 2^20 squares of fl32(0.1): a float32 running sum stalls far from the total (errors of
    // several percent); float64 stays within n·2^-53 ≈ 1e-10.
    const v = new Float32Array(2 ** 20).fill(0.1);
    const x = v[0] as number;
    const exact = Math.sqrt(2 ** 20 * x * x);
    expect(Math.abs(l2Norm([v]) - exact) / exact).toBeLessThan(1e-9);
  });
});

describe('clipInPlace', () => {
  it('scales an update above C to norm C exactly, keeping its direction', () => {
    const a = Float32Array.of(3, 0);
    const b = Float32Array.of(0, 4);
    const result = clipInPlace([a, b], 1);
    expect(result).toEqual({ norm: 5, scale: 0.2, clipped: true });
    expect(Math.abs(l2Norm([a, b]) - 1)).toBeLessThan(1e-6);
    expect(a[0]).toBeCloseTo(0.6, 6);
    expect(b[1]).toBeCloseTo(0.8, 6);
  });

  it('clips a large random update to C within 1e-6 relative', () => {
    const tensors = [gaussianNoise(100_000, 3), gaussianNoise(12_345, 0.5)].map((x) => Float32Array.from(x));
    const before = l2Norm(tensors);
    const result = clipInPlace(tensors, 2.5);
    expect(result.clipped).toBe(true);
    expect(result.norm).toBe(before);
    expect(Math.abs(l2Norm(tensors) - 2.5) / 2.5).toBeLessThan(1e-6);
  });

  it('leaves an update at or below C untouched', () => {
    const a = Float32Array.of(0.375, -0.25);
    const copy = Float32Array.from(a);
    expect(clipInPlace([a], 0.5)).toEqual({ norm: l2Norm([copy]), scale: 1, clipped: false });
    expect(a).toEqual(copy);
    // Exactly at C (norm of (3, 4) is exactly 5): not clipped either.
    const atC = Float32Array.of(3, 4);
    expect(clipInPlace([atC], 5)).toEqual({ norm: 5, scale: 1, clipped: false });
    expect(Array.from(atC)).toEqual([3, 4]);
    const zero = new Float32Array(4);
    expect(clipInPlace([zero], 1).clipped).toBe(false);
  });

  it('refuses non-finite updates and bad clip norms', () => {
    expect(() => clipInPlace([Float32Array.of(1, Number.NaN)], 1)).toThrow(/norm is NaN/);
    expect(() => clipInPlace([Float32Array.of(Number.POSITIVE_INFINITY)], 1)).toThrow(/Infinity/);
    expect(() => clipInPlace([Float32Array.of(1)], 0)).toThrow(/clip norm/);
    expect(() => clipInPlace([Float32Array.of(1)], Number.POSITIVE_INFINITY)).toThrow(/clip norm/);
  });
});

describe('gaussianNoise', () => {
  const n = 200_000;
  const std = 2.5;

  it('has mean 0 and the requested standard deviation (sound statistical bounds)', () => {
    const x = gaussianNoise(n, std);
    let sum = 0;
    let sumSquares = 0;
    for (const v of x) {
      sum += v;
      sumSquares += v * v;
    }
    // Mean ~ N(0, σ²/n): |mean| ≤ 6σ/√n fails with probability 2e-9.
    expect(Math.abs(sum / n)).toBeLessThan((6 * std) / Math.sqrt(n));
    // Σ(x/σ)² ~ χ²(n) (mean known to be 0). Laurent & Massart 2000, Lemma 1:
    //   P(X ≥ n + 2√(nt) + 2t) ≤ e^-t  and  P(X ≤ n − 2√(nt)) ≤ e^-t.
    // With t = 25 each side fails with probability ≤ 1.4e-11; the band is ±1.1% on σ.
    const t = 25;
    const chi2 = sumSquares / (std * std);
    expect(chi2).toBeLessThan(n + 2 * Math.sqrt(n * t) + 2 * t);
    expect(chi2).toBeGreaterThan(n - 2 * Math.sqrt(n * t));
  });

  it('has a Gaussian shape (mass within 1σ and 2σ)', () => {
    const x = gaussianNoise(n, std);
    let within1 = 0;
    let within2 = 0;
    for (const v of x) {
      if (Math.abs(v) <= std) within1++;
      if (Math.abs(v) <= 2 * std) within2++;
    }
    // Hoeffding: P(|p̂ − p| ≥ 0.01) ≤ 2·exp(−2n·0.01²) = 2e^-40. p = erf(1/√2), erf(√2).
    expect(Math.abs(within1 / n - 0.6826894921370859)).toBeLessThan(0.01);
    expect(Math.abs(within2 / n - 0.9544997361036416)).toBeLessThan(0.01);
  });

  it('draws only from crypto.getRandomValues, at most 65536 bytes a call', () => {
    const random = vi.spyOn(Math, 'random');
    const getRandomValues = vi.spyOn(globalThis.crypto, 'getRandomValues');
    gaussianNoise(50_001, 1);
    expect(random).not.toHaveBeenCalled();
    // 50_001 samples → 25_001 pairs → 100_004 words → 7 calls of ≤ 16_384 words.
    expect(getRandomValues).toHaveBeenCalledTimes(7);
    for (const [array] of getRandomValues.mock.calls) {
      expect((array as ArrayBufferView).byteLength).toBeLessThanOrEqual(65536);
    }
  });

  it('builds 53-bit uniforms and never takes log(0)', () => {
    // All-zero words are the smallest uniform: u1 = 2^-53, angle 0 → radius √(106 ln 2).
    vi.spyOn(globalThis.crypto, 'getRandomValues').mockImplementation(<T extends ArrayBufferView | null>(a: T) => {
      if (a) new Uint8Array(a.buffer, a.byteOffset, a.byteLength).fill(0);
      return a;
    });
    const [first, second] = gaussianNoise(2, 1);
    expect(first).toBeCloseTo(Math.sqrt(106 * Math.LN2), 12);
    expect(second).toBe(0);
  });

  it('handles edge sizes and rejects bad arguments', () => {
    expect(gaussianNoise(0, 1)).toHaveLength(0);
    expect(gaussianNoise(3, 1)).toHaveLength(3);
    expect(Array.from(gaussianNoise(5, 0))).toEqual([0, 0, 0, 0, 0]);
    expect(() => gaussianNoise(-1, 1)).toThrow(/sample count/);
    expect(() => gaussianNoise(1.5, 1)).toThrow(/sample count/);
    expect(() => gaussianNoise(3, -1)).toThrow(/noise std/);
    expect(() => gaussianNoise(3, Number.NaN)).toThrow(/noise std/);
  });
});

describe('addGaussianNoiseInPlace', () => {
  it('adds independent noise of the requested std to every tensor', () => {
    const a = new Float32Array(100_001).fill(1);
    const b = new Float32Array(100_001).fill(1);
    addGaussianNoiseInPlace([a, b], 0.5);
    expect(a).not.toEqual(b);
    const t = 25;
    for (const v of [a, b]) {
      let chi2 = 0;
      for (const x of v) chi2 += ((x - 1) / 0.5) ** 2;
      // Same Laurent–Massart bound as above; float32 rounding of 1 + noise adds ~1e-8 relative.
      expect(chi2).toBeLessThan(v.length + 2 * Math.sqrt(v.length * t) + 2 * t);
      expect(chi2).toBeGreaterThan(v.length - 2 * Math.sqrt(v.length * t));
    }
  });

  it('is a no-op for std 0', () => {
    const a = Float32Array.of(1, 2, 3);
    addGaussianNoiseInPlace([a], 0);
    expect(Array.from(a)).toEqual([1, 2, 3]);
  });
});

describe('noiseStdFor', () => {
  it('splits the central noise over t clients in distributed mode', () => {
    expect(noiseStdFor('central', 1.1, 0.5, 100)).toBeCloseTo(0.55, 15);
    expect(noiseStdFor('local', 1.1, 0.5, 100)).toBeCloseTo(0.55, 15);
    const share = noiseStdFor('distributed', 1.1, 0.5, 100);
    expect(share).toBeCloseTo(0.055, 15);
    // t shares of variance (zC)²/t sum to the central variance (zC)².
    expect(100 * share * share).toBeCloseTo(0.55 * 0.55, 15);
  });

  it('rejects invalid parameters', () => {
    expect(() => noiseStdFor('distributed', 1, 1, 0)).toThrow(/minClients/);
    expect(() => noiseStdFor('distributed', 1, 1, 2.5)).toThrow(/minClients/);
    expect(() => noiseStdFor('central', -1, 1, 1)).toThrow(/noise multiplier/);
    expect(() => noiseStdFor('central', 1, 0, 1)).toThrow(/clip norm/);
  });
});

describe('AdaptiveClip', () => {
  it('uses the defaults of Andrew et al. 2021', () => {
    const clip = new AdaptiveClip({ expectedClients: 100 });
    expect(clip.clipNorm).toBe(0.1);
    expect(clip.learningRate).toBe(0.2);
    expect(clip.targetQuantile).toBe(0.5);
    expect(clip.bitNoiseStd).toBe(5);
  });

  it('applies C ← C·exp(−η(b̃ − γ)) exactly when the bit noise is off', () => {
    const clip = new AdaptiveClip({ expectedClients: 4, bitNoiseStd: 0, initialClip: 1 });
    expect(clip.update([1, 1, 1, 0])).toBeCloseTo(Math.exp(-0.2 * (0.75 - 0.5)), 15);
    expect(clip.update([0, 0, 0, 0])).toBeCloseTo(Math.exp(-0.2 * 0.25) * Math.exp(0.2 * 0.5), 15);
    // Centred sum (TF Privacy): with 2 of the 4 expected clients, b̃ = (2 − 1)/4 + ½ = 0.75.
    const short = new AdaptiveClip({ expectedClients: 4, bitNoiseStd: 0, initialClip: 1 });
    expect(short.update([1, 1])).toBeCloseTo(Math.exp(-0.2 * 0.25), 15);
    expect(() => short.update([1, 2])).toThrow(/bits/);
  });

  it.each([0.5, 0.9])('converges to the %s quantile of lognormal norms within 200 rounds', (gamma) => {
    const m = 100;
    const clip = new AdaptiveClip({ expectedClients: m, targetQuantile: gamma });
    const lognormal = (k: number): number[] => Array.from(gaussianNoise(k, 1), (x) => Math.exp(x));
    for (let round = 0; round < 200; round++) {
      const c = clip.clipNorm;
      clip.update(lognormal(m).map((norm) => (norm <= c ? 1 : 0)));
    }
    // The final quantile's spread is small: its RMS deviation from γ over 300 runs of this setup was
    // 0.016 (γ = 0.5) and 0.008 (γ = 0.9), so 0.1 is more than 6 standard deviations away.
    const fresh = lognormal(20_000);
    const below = fresh.filter((norm) => norm <= clip.clipNorm).length / fresh.length;
    expect(Math.abs(below - gamma)).toBeLessThan(0.1);
  });

  it('computes the update noise multiplier z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2)', () => {
    // m = 100 → σ_b = 5: z_Δ = (1 − 1/100)^(−1/2).
    const zDelta = AdaptiveClip.updateNoiseMultiplier(1, 100);
    expect(zDelta).toBeCloseTo(1 / Math.sqrt(0.99), 14);
    // Composing updates (z_Δ) with the count (2σ_b) gives back the total z (Theorem 1).
    expect((zDelta ** -2 + 10 ** -2) ** -0.5).toBeCloseTo(1, 14);
    expect(AdaptiveClip.updateNoiseMultiplier(1.5, 1000, 7)).toBeCloseTo((1.5 ** -2 - 14 ** -2) ** -0.5, 14);
    expect(new AdaptiveClip({ expectedClients: 100 }).noiseMultiplierForUpdates(1)).toBe(zDelta);
  });

  it('refuses a z that the bit noise cannot accommodate', () => {
    // m = 10 → σ_b = 0.5 → 2σ_b = z: all of the budget would go to the count.
    expect(() => AdaptiveClip.updateNoiseMultiplier(1, 10)).toThrow(/must exceed z\/2/);
    expect(() => AdaptiveClip.updateNoiseMultiplier(1, 5)).toThrow(/must exceed z\/2/);
    expect(() => AdaptiveClip.updateNoiseMultiplier(0, 100)).toThrow(/noise multiplier/);
    expect(() => new AdaptiveClip({ expectedClients: 0 })).toThrow(/expectedClients/);
    expect(() => new AdaptiveClip({ expectedClients: 10, targetQuantile: 1 })).toThrow(/targetQuantile/);
  });
});
