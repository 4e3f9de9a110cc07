import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ORDERS,
  RdpAccountant,
  computeRdp,
  epsilonFor,
  noiseMultiplierFor,
  rdpToEpsilon,
} from './rdp.js';

/** |actual − expected| ≤ atol + rtol·|expected|, numpy.allclose's rule (used by the reference tests). */
function expectClose(actual: number, expected: number, rtol: number, atol = 0): void {
  const ok = Math.abs(actual - expected) <= atol + rtol * Math.abs(expected);
  expect(ok, `expected ${actual} to be within rtol=${rtol}, atol=${atol} of ${expected}`).toBe(true);
}

describe('DEFAULT_ORDERS', () => {
  it('is dp_accounting’s grid: 1.1..10.9 by 0.1, 11..63, 128, 256, 512, 1024', () => {
    expect(DEFAULT_ORDERS).toHaveLength(99 + 53 + 4);
    expect(DEFAULT_ORDERS[0]).toBe(1.1);
    expect(DEFAULT_ORDERS[98]).toBe(10.9);
    expect(DEFAULT_ORDERS.slice(99, 101)).toEqual([11, 12]);
    expect(DEFAULT_ORDERS.slice(-5)).toEqual([63, 128, 256, 512, 1024]);
    // 1 + 10/10 etc. must be exact integers so they take the integer (binomial) path.
    expect(DEFAULT_ORDERS.filter((a) => Number.isInteger(a) && a <= 10)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe('computeRdp', () => {
  it('matches dp_accounting’s Poisson-sampled Gaussian vector', () => {
    // Source: google/differential-privacy, python/dp_accounting/dp_accounting/rdp/
    // rdp_privacy_accountant_test.py, test_compute_rdp_poisson_sampled_gaussian:
    //   orders = [1.5, 2.5, 5, 50, 100, np.inf]; noise_multiplier = 2.5;
    //   sampling_probability = 0.01; count = 50
    //   np.allclose(accountant._rdp, [6.70579741e-04, 1.08548710e-03, 2.18075656e-03,
    //                                 2.38460375e-02, 1.67416308e02, np.inf], rtol=1e-4)
    const rdp = computeRdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100, Number.POSITIVE_INFINITY]);
    const expected = [6.70579741e-4, 1.0854871e-3, 2.18075656e-3, 2.38460375e-2, 1.67416308e2];
    expected.forEach((e, i) => expectClose(rdp[i] as number, e, 1e-4));
    expect(rdp[5]).toBe(Number.POSITIVE_INFINITY);
  });

  it('matches log A_α by numerical integration (dp_accounting’s test_compute_log_a_equals_mp cases)', () => {
    // Cases and tolerance (rtol=1e-4, atol=1e-8) from rdp_privacy_accountant_test.py,
    // test_compute_log_a_equals_mp. Expected values: log ∫ μ0(z)·((1−q) + q·e^{(2z−1)/(2σ²)})^α dz
    // evaluated with mpmath 1.3 quad (30 digits, maxdegree 10) exactly as that test's _compute_a_mp.
    // RDP = log A_α / (α − 1), so log A_α = computeRdp(q, σ, 1, [α]) · (α − 1).
    const cases: [q: number, sigma: number, alpha: number, logA: number][] = [
      [1e-7, 0.1, 1.01, 4.003412327842532e-8],
      [1e-6, 0.1, 256, 3260448.8237019717],
      [1e-5, 0.1, 256.1, 3263586.4328729603],
      [1e-6, 1, 27, 8.769503540806863e-10],
      [1e-4, 1, 1.5, 6.442686970363956e-9],
      [1e-3, 1, 2, 1.7182803522127806e-6],
      [0.01, 10, 20, 1.9129699912825616e-4],
      [0.1, 100, 20.5, 1.9991818458125194e-4],
      [0.99, 0.1, 256, 3263983.021518832],
      [0.999, 100, 256.1, 3.260108037973113],
    ];
    for (const [q, sigma, alpha, logA] of cases) {
      const [rdp] = computeRdp(q, sigma, 1, [alpha]);
      expectClose((rdp as number) * (alpha - 1), logA, 1e-4, 1e-8);
    }
  });

  it('handles the closed-form edges: q = 0, q = 1, σ = 0, zero steps', () => {
    const orders = [1.5, 2, 32, 1024];
    expect(computeRdp(0, 1, 10, orders)).toEqual([0, 0, 0, 0]);
    expect(computeRdp(0, 0, 10, orders)).toEqual([0, 0, 0, 0]);
    expect(computeRdp(0.1, 0, 1, orders)).toEqual(orders.map(() => Number.POSITIVE_INFINITY));
    expect(computeRdp(0.1, 0, 0, orders)).toEqual([0, 0, 0, 0]);
    const sigma = 1.7;
    computeRdp(1, sigma, 3, orders).forEach((r, i) => {
      const alpha = orders[i] as number;
      expectClose(r, (3 * alpha) / (2 * sigma * sigma), 1e-15);
    });
  });

  it('is linear in the number of steps', () => {
    const one = computeRdp(0.02, 1.3, 1, DEFAULT_ORDERS);
    const many = computeRdp(0.02, 1.3, 777, DEFAULT_ORDERS);
    many.forEach((r, i) => expectClose(r, 777 * (one[i] as number), 1e-12));
  });

  it('rejects parameters outside the mechanism’s domain', () => {
    expect(() => computeRdp(-0.1, 1, 1, [2])).toThrow(/sampling rate/);
    expect(() => computeRdp(1.5, 1, 1, [2])).toThrow(/sampling rate/);
    expect(() => computeRdp(Number.NaN, 1, 1, [2])).toThrow(/sampling rate/);
    expect(() => computeRdp(0.1, -1, 1, [2])).toThrow(/noise multiplier/);
    expect(() => computeRdp(0.1, 1, 1.5, [2])).toThrow(/steps/);
    expect(() => computeRdp(0.1, 1, -1, [2])).toThrow(/steps/);
    expect(() => computeRdp(0.1, 1, 1, [1])).toThrow(/orders must be > 1/);
    expect(() => computeRdp(0.1, 1, 1, [])).toThrow(/at least one/);
  });
});

describe('rdpToEpsilon', () => {
  it('matches dp_accounting’s pure-DP conversion vector', () => {
    // Source: rdp_privacy_accountant_test.py, test_compute_epsilon_delta_pure_dp:
    //   orders = range(2, 33); rdp = [1.1 for _ in orders]
    //   compute_epsilon(orders, rdp, delta=1e-5) == (1.32783806176, 32)
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const spent = rdpToEpsilon(
      orders,
      orders.map(() => 1.1),
      1e-5,
    );
    expectClose(spent.epsilon, 1.32783806176, 1e-10);
    expect(spent.order).toBe(32);
  });

  it('reproduces the (1, 1e-6)-DP Gaussian vector with the Balle et al. conversion', () => {
    // Source: rdp_privacy_accountant_test.py, test_compute_epsilon_delta_gaussian:
    //   orders = [0.001 * i for i in range(1000, 100000)]
    //   # noise multiplier is chosen to obtain exactly (1,1e-6)-DP.
    //   rdp = _compute_rdp_poisson_subsampled_gaussian(1, 4.530877117, orders)
    //   assertAlmostEqual(compute_epsilon(orders, rdp, delta=1e-6)[0], 1)
    // compute_epsilon there uses the Balle et al. 2020 bound (it skips α ≤ 1.01, hence i > 1010).
    const dense = Array.from({ length: 100000 - 1011 }, (_, k) => 0.001 * (k + 1011));
    const atDense = rdpToEpsilon(dense, computeRdp(1, 4.530877117, 1, dense), 1e-6);
    expectClose(atDense.epsilon, 1, 1e-7);
    expectClose(atDense.order, 21.985, 1e-3);

    // With the default (coarser) grid the best order is 22 and ε is still 1 to 3e-7.
    const atDefault = epsilonFor({ q: 1, noiseMultiplier: 4.530877117, steps: 1, delta: 1e-6 });
    expectClose(atDefault.epsilon, 1, 1e-6);
    expect(atDefault.epsilon).toBeGreaterThanOrEqual(atDense.epsilon);
    expect(atDefault.order).toBe(22);

    // The classic conversion ε = rdp − log δ/(α − 1) (Mironov 2017, Prop. 3) gives ≈ 1.1845 on the
    // same vector, so the "exactly (1, 1e-6)" σ was calibrated with the Balle et al. bound.
    const rdp = computeRdp(1, 4.530877117, 1, dense);
    const classic = Math.min(...dense.map((a, i) => (rdp[i] as number) - Math.log(1e-6) / (a - 1)));
    expectClose(classic, 1.18451, 1e-4);
  });

  it('skips NaN entries, reports +∞ when nothing is usable, and never returns ε < 0', () => {
    expect(rdpToEpsilon([2, 3], [Number.NaN, 0.5], 1e-5).order).toBe(3);
    const none = rdpToEpsilon([2, 3], [Number.NaN, Number.NaN], 1e-5);
    expect(none.epsilon).toBe(Number.POSITIVE_INFINITY);
    expect(none.order).toBeNaN();
    // α·δ > 1 makes the raw bound negative for zero RDP: −log(20.48)/1023 + log(1023/1024) < 0.
    expect(rdpToEpsilon([1024], [0], 0.02)).toEqual({ epsilon: 0, order: 1024 });
    expect(rdpToEpsilon([2], [Number.POSITIVE_INFINITY], 1e-5).epsilon).toBe(Number.POSITIVE_INFINITY);
  });

  it('validates its inputs', () => {
    expect(() => rdpToEpsilon([2, 3], [1], 1e-5)).toThrow(/length/);
    expect(() => rdpToEpsilon([2], [1], 0)).toThrow(/delta/);
    expect(() => rdpToEpsilon([2], [1], 1)).toThrow(/delta/);
  });
});

describe('epsilonFor / noiseMultiplierFor', () => {
  const base = { q: 0.01, delta: 1e-5 };

  it('ε increases with the number of steps', () => {
    let previous = 0;
    for (const steps of [1, 10, 100, 1000, 10000]) {
      const { epsilon } = epsilonFor({ ...base, noiseMultiplier: 1.1, steps });
      expect(epsilon).toBeGreaterThan(previous);
      previous = epsilon;
    }
  });

  it('ε decreases as the noise multiplier grows', () => {
    let previous = Number.POSITIVE_INFINITY;
    for (const noiseMultiplier of [0.5, 0.7, 1, 1.5, 2, 4, 8]) {
      const { epsilon } = epsilonFor({ ...base, noiseMultiplier, steps: 1000 });
      expect(epsilon).toBeLessThan(previous);
      previous = epsilon;
    }
  });

  it('noiseMultiplierFor inverts epsilonFor', () => {
    for (const [q, steps, targetEpsilon] of [
      [0.01, 1000, 2],
      [0.001, 5000, 0.5],
      [0.1, 50, 8],
      [1, 1, 1],
    ] as const) {
      const sigma = noiseMultiplierFor({ q, steps, delta: 1e-5, targetEpsilon, tolerance: 1e-7 });
      const at = epsilonFor({ q, noiseMultiplier: sigma, steps, delta: 1e-5 }).epsilon;
      // The returned σ always meets the target, and a slightly smaller one does not.
      expect(at).toBeLessThanOrEqual(targetEpsilon);
      expectClose(at, targetEpsilon, 1e-4);
      expect(epsilonFor({ q, noiseMultiplier: sigma * (1 - 1e-5), steps, delta: 1e-5 }).epsilon).toBeGreaterThan(
        targetEpsilon,
      );
    }
  });

  it('recovers σ = 4.530877117 for (1, 1e-6)-DP at q = 1 (the dp_accounting vector in reverse)', () => {
    const sigma = noiseMultiplierFor({ q: 1, steps: 1, delta: 1e-6, targetEpsilon: 1, tolerance: 1e-9 });
    // The default grid is coarser than the one the vector was calibrated on, so σ is a hair larger.
    expect(sigma).toBeGreaterThanOrEqual(4.530877117 * (1 - 1e-9));
    expectClose(sigma, 4.530877117, 1e-5);
  });

  it('needs no noise when nothing is sampled, and rejects a non-positive target', () => {
    expect(noiseMultiplierFor({ q: 0, steps: 10, delta: 1e-5, targetEpsilon: 1 })).toBe(0);
    expect(noiseMultiplierFor({ q: 0.1, steps: 0, delta: 1e-5, targetEpsilon: 1 })).toBe(0);
    expect(() => noiseMultiplierFor({ q: 0.1, steps: 10, delta: 1e-5, targetEpsilon: 0 })).toThrow(/targetEpsilon/);
  });
});

describe('RdpAccountant', () => {
  it('composes heterogeneous steps by adding RDP per order', () => {
    const acc = new RdpAccountant();
    acc.step(0.01, 1.1, 100).step(0.02, 0.9, 50).step(0.02, 0.9);
    const expected = computeRdp(0.01, 1.1, 100, DEFAULT_ORDERS).map(
      (r, i) => r + (computeRdp(0.02, 0.9, 51, DEFAULT_ORDERS)[i] as number),
    );
    acc.getRdp().forEach((r, i) => expectClose(r, expected[i] as number, 1e-12));
    expect(acc.getEpsilon(1e-5)).toBe(rdpToEpsilon(DEFAULT_ORDERS, acc.getRdp(), 1e-5).epsilon);
    expect(acc.steps).toBe(151);
    // Consecutive identical steps are merged into one history entry.
    expect(acc.history).toEqual([
      { q: 0.01, noiseMultiplier: 1.1, count: 100 },
      { q: 0.02, noiseMultiplier: 0.9, count: 51 },
    ]);
  });

  it('agrees with epsilonFor for a homogeneous run', () => {
    const acc = new RdpAccountant();
    for (let i = 0; i < 300; i++) acc.step(0.05, 1.3);
    const direct = epsilonFor({ q: 0.05, noiseMultiplier: 1.3, steps: 300, delta: 1e-6 });
    const spent = acc.getPrivacySpent(1e-6);
    // Adding 300 times vs multiplying by 300 differs only in the last bits.
    expectClose(spent.epsilon, direct.epsilon, 1e-12);
    expect(spent.order).toBe(direct.order);
  });

  it('survives a JSON round trip', () => {
    const acc = new RdpAccountant([1.5, 2, 4, 8, 16, 32, 64]);
    acc.step(0.01, 1.1, 10).step(0.05, 2, 3);
    const restored = RdpAccountant.fromJSON(JSON.parse(JSON.stringify(acc)));
    expect(restored.orders).toEqual([1.5, 2, 4, 8, 16, 32, 64]);
    expect(restored.history).toEqual(acc.history);
    expect(restored.getRdp()).toEqual(acc.getRdp());
    expect(restored.getEpsilon(1e-5)).toBe(acc.getEpsilon(1e-5));
  });

  it('rejects malformed persisted state', () => {
    const good = new RdpAccountant().step(0.1, 1).toJSON();
    expect(() => RdpAccountant.fromJSON({ ...good, version: 2 })).toThrow();
    expect(() => RdpAccountant.fromJSON({ ...good, orders: [1, 2] })).toThrow(/orders must be > 1/);
    expect(() => RdpAccountant.fromJSON({ ...good, history: [{ q: 2, noiseMultiplier: 1, count: 1 }] })).toThrow();
    expect(() => RdpAccountant.fromJSON({ ...good, history: [{ q: 0.1, noiseMultiplier: 1, count: -1 }] })).toThrow();
    expect(() => RdpAccountant.fromJSON({ ...good, extra: true })).toThrow();
    expect(() => RdpAccountant.fromJSON(null)).toThrow();
  });

  it('leaves its state untouched when a step is invalid', () => {
    const acc = new RdpAccountant().step(0.1, 1);
    const before = acc.getRdp();
    expect(() => acc.step(0.1, -1)).toThrow(/noise multiplier/);
    expect(acc.getRdp()).toEqual(before);
    expect(acc.steps).toBe(1);
  });
});
