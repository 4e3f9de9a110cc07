/**
 * Rényi-DP accountant for the (Poisson-)sampled Gaussian mechanism.
 *
 * The RDP computation follows Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the
 * Sampled Gaussian Mechanism" (arXiv:1908.10530), and is the same algorithm as Google's
 * `dp_accounting/rdp/rdp_privacy_accountant.py` and Opacus' `analysis/rdp.py`, so that an ε
 * reported here can be checked against either. The RDP→(ε, δ) conversion is Balle et al. 2020
 * ("Hypothesis Testing Interpretations and Rényi DP", Prop. 12 of arXiv:2004.00010 v4), exactly
 * as Opacus' `get_privacy_spent` and dp_accounting's `compute_epsilon` use it.
 *
 * Pure arithmetic, no Node-only imports: the browser client uses it too.
 */
import { z } from 'zod';

/** The RDP orders dp_accounting uses by default: 1.1..10.9 by 0.1, 11..63, 128, 256, 512, 1024. */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  // `1 + x / 10` (not `1.1 + 0.1 * k`) so every order is bit-identical to dp_accounting's grid;
  // x = 10, 20, … give the exact integers 2..10, which take the integer code path there too.
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 53 }, (_, i) => 11 + i),
  128,
  256,
  512,
  1024,
]);

// ---------------------------------------------------------------------------------------------
// Special functions. JavaScript has no lgamma or erfc, so they are implemented here to double
// precision (what scipy's gammaln and log_ndtr give dp_accounting).
// ---------------------------------------------------------------------------------------------

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);
const INV_SQRT_PI = 1 / Math.sqrt(Math.PI);

/** sin(πx), argument-reduced exactly first so it keeps full relative precision near the zeros. */
function sinPi(x: number): number {
  const r = x - 2 * Math.round(x / 2); // exact; r ∈ [-1, 1]
  // sin(πr) = sin(π(1 − r)): keeps the argument in [-π/2, π/2], where sin has no cancellation.
  if (r > 0.5) return Math.sin(Math.PI * (1 - r));
  if (r < -0.5) return -Math.sin(Math.PI * (1 + r));
  return Math.sin(Math.PI * r);
}

/** log|Γ(x)| like scipy.special.gammaln (which dp_accounting's _log_comb relies on for α − i + 1 < 0). */
function logGamma(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  if (x <= 0 && Number.isInteger(x)) return Number.POSITIVE_INFINITY; // poles
  if (x < 0.5) {
    // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
    return Math.log(Math.PI / Math.abs(sinPi(x))) - logGamma(1 - x);
  }
  // Shift to x ≥ 10, where Stirling's series with 7 terms is accurate to ~1e-17:
  // log Γ(x) = log Γ(x + n) − log(x (x+1) … (x+n−1)).
  let product = 1;
  while (x < 10) {
    product *= x;
    x += 1;
  }
  const logShift = Math.log(product);
  const inv = 1 / x;
  const inv2 = inv * inv;
  const series =
    inv *
    (1 / 12 +
      inv2 *
        (-1 / 360 +
          inv2 * (1 / 1260 + inv2 * (-1 / 1680 + inv2 * (1 / 1188 + inv2 * (-691 / 360360 + inv2 / 156))))));
  return (x - 0.5) * Math.log(x) - x + HALF_LOG_2PI + series - logShift;
}

/** log of the binomial coefficient C(n, k) in absolute value, for real n (as dp_accounting's _log_comb). */
function logComb(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

// W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969),
// the coefficients of Netlib's CALERF written as their nearest doubles. Checked against mpmath:
// logErfc is within 2.3e-16 (relative, or absolute below 1) on [-60, 60] and beyond.
const ERF_P = [
  3209.3775891384694, 377.485237685302, 113.86415415105016, 3.1611237438705655, 0.18577770618460315,
];
const ERF_Q = [2844.236833439171, 1282.6165260773723, 244.02463793444417, 23.601290952344122, 1];
const ERFCX_MID_P = [
  1230.3393547979972, 2051.0783778260716, 1712.0476126340707, 881.952221241769, 298.6351381974001,
  66.11919063714163, 8.883149794388377, 0.5641884969886701, 2.1531153547440383e-08,
];
const ERFCX_MID_Q = [
  1230.3393548037495, 3439.3676741437216, 4362.619090143247, 3290.7992357334597, 1621.3895745666903,
  537.1811018620099, 117.6939508913125, 15.744926110709835, 1,
];
const ERFCX_TAIL_P = [
  0.0006587491615298378, 0.016083785148742275, 0.12578172611122926, 0.36034489994980445,
  0.30532663496123236, 0.016315387137302097,
];
const ERFCX_TAIL_Q = [
  0.0023352049762686918, 0.06051834131244132, 0.5279051029514285, 1.8729528499234604, 2.568520192289822, 1,
];

/** Σ c[i]·x^i by Horner's rule (coefficients in ascending powers). */
function polynomial(c: readonly number[], x: number): number {
  let acc = 0;
  for (let i = c.length - 1; i >= 0; i--) acc = acc * x + (c[i] as number);
  return acc;
}

/** erfcx(x) = exp(x²)·erfc(x) for x ≥ 0.5, which stays representable where erfc underflows. */
function erfcxLarge(x: number): number {
  if (x < 4) return polynomial(ERFCX_MID_P, x) / polynomial(ERFCX_MID_Q, x);
  const z = 1 / (x * x);
  return (INV_SQRT_PI - (z * polynomial(ERFCX_TAIL_P, z)) / polynomial(ERFCX_TAIL_Q, z)) / x;
}

/** log(erfc(x)), accurate for large x where erfc(x) itself underflows (dp_accounting's _log_erfc). */
function logErfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x >= 0.5) return Math.log(erfcxLarge(x)) - x * x;
  if (x > -0.5) {
    const t = x * x;
    return Math.log1p((-x * polynomial(ERF_P, t)) / polynomial(ERF_Q, t));
  }
  // erfc(x) = 2 − erfc(−x) ∈ (1, 2): no cancellation.
  const y = -x;
  return Math.log(2 - Math.exp(-y * y) * erfcxLarge(y));
}

/** log(e^a + e^b) without overflow. */
function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === Number.NEGATIVE_INFINITY || hi === Number.POSITIVE_INFINITY) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

// ---------------------------------------------------------------------------------------------
// log A_α of the sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019, Sec. 3).
// ---------------------------------------------------------------------------------------------

/** log A_α for integer α by the binomial expansion (MTZ19 Sec. 3.2), 0 < q < 1. */
function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = Number.NEGATIVE_INFINITY;
  const logQ = Math.log(q);
  const log1mq = Math.log1p(-q);
  for (let i = 0; i <= alpha; i++) {
    const logCoef = logComb(alpha, i) + i * logQ + (alpha - i) * log1mq;
    logA = logAdd(logA, logCoef + (i * i - i) / (2 * sigma * sigma));
  }
  return logA;
}

// dp_accounting's cap; an order that has not converged by then is reported as +∞ and so never
// chosen as the optimum (sound: +∞ is an upper bound).
const MAX_STEPS_LOG_A_FRAC = 1000;

/** log A_α for fractional α by the two series split at z0 (MTZ19 Sec. 3.3), 0 < q < 1. */
function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = Number.NEGATIVE_INFINITY;
  let logA1 = Number.NEGATIVE_INFINITY;
  const sigma2 = sigma * sigma;
  const z0 = sigma2 * Math.log(1 / q - 1) + 0.5;
  const logQ = Math.log(q);
  const log1mq = Math.log1p(-q);
  const log05 = Math.log(0.5);
  const scale = Math.SQRT2 * sigma;
  let lastS0 = Number.NEGATIVE_INFINITY;
  let lastS1 = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < MAX_STEPS_LOG_A_FRAC; i++) {
    const logCoef = logComb(alpha, i);
    const j = alpha - i;
    const logT0 = logCoef + i * logQ + j * log1mq;
    const logT1 = logCoef + j * logQ + i * log1mq;
    const logE0 = log05 + logErfc((i - z0) / scale);
    const logE1 = log05 + logErfc((z0 - j) / scale);
    const logS0 = logT0 + (i * i - i) / (2 * sigma2) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma2) + logE1;
    logA0 = logAdd(logA0, logS0);
    logA1 = logAdd(logA1, logS1);
    const total = logAdd(logA0, logA1);
    // Stop once both series decrease and their terms are negligible (e^-30) next to the total.
    if (logS0 < lastS0 && logS1 < lastS1 && Math.max(logS0, logS1) < total - 30) return total;
    lastS0 = logS0;
    lastS1 = logS1;
  }
  return Number.POSITIVE_INFINITY;
}

/** RDP of one step of the sampled Gaussian mechanism at one order. */
function rdpOneStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0 || alpha === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  if (q === 1) return alpha / (2 * sigma * sigma);
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

function checkSamplingRate(q: number): void {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`sampling rate q must be in [0, 1], got ${q}`);
}
function checkNoiseMultiplier(sigma: number): void {
  if (!(sigma >= 0 && Number.isFinite(sigma))) {
    throw new RangeError(`noise multiplier must be a finite number >= 0, got ${sigma}`);
  }
}
function checkSteps(steps: number): void {
  if (!(Number.isSafeInteger(steps) && steps >= 0)) {
    throw new RangeError(`steps must be an integer >= 0, got ${steps}`);
  }
}
function checkOrders(orders: readonly number[]): void {
  if (orders.length === 0) throw new RangeError('at least one RDP order is needed');
  for (const a of orders) {
    if (!(a > 1)) throw new RangeError(`RDP orders must be > 1, got ${a}`);
  }
}
function checkDelta(delta: number): void {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
}

/**
 * RDP at each order of `steps` compositions of the sampled Gaussian mechanism with sampling
 * rate `q` and noise multiplier σ (noise std / L2 sensitivity).
 * @example computeRdp(0.01, 2.5, 50, [2, 5, 50]) // ≈ [8.7e-4, 2.2e-3, 2.4e-2]
 */
export function computeRdp(q: number, noiseMultiplier: number, steps: number, orders: readonly number[]): number[] {
  checkSamplingRate(q);
  checkNoiseMultiplier(noiseMultiplier);
  checkSteps(steps);
  checkOrders(orders);
  // steps = 0 is no mechanism at all; avoid 0·∞ = NaN when σ = 0.
  if (steps === 0) return orders.map(() => 0);
  return orders.map((alpha) => rdpOneStep(q, noiseMultiplier, alpha) * steps);
}

/** An (ε, δ) guarantee and the RDP order it was read from. */
export interface PrivacySpent {
  epsilon: number;
  order: number;
}

/**
 * Smallest ε over the orders for the given δ, by the Balle et al. 2020 conversion
 * ε = rdp − (log δ + log α)/(α − 1) + log((α − 1)/α), as Opacus' get_privacy_spent.
 * NaN entries are skipped; if every entry is NaN the result is ε = +∞ with order NaN.
 */
export function rdpToEpsilon(orders: readonly number[], rdp: readonly number[], delta: number): PrivacySpent {
  if (orders.length !== rdp.length) {
    throw new RangeError(`orders and rdp differ in length (${orders.length} vs ${rdp.length})`);
  }
  checkOrders(orders);
  checkDelta(delta);
  const logDelta = Math.log(delta);
  let best: PrivacySpent = { epsilon: Number.POSITIVE_INFINITY, order: Number.NaN };
  for (let i = 0; i < orders.length; i++) {
    const alpha = orders[i] as number;
    const r = rdp[i] as number;
    const eps = r - (logDelta + Math.log(alpha)) / (alpha - 1) + Math.log((alpha - 1) / alpha);
    if (Number.isNaN(eps)) continue;
    if (eps < best.epsilon || Number.isNaN(best.order)) best = { epsilon: eps, order: alpha };
  }
  // The bound can dip below 0 for tiny RDP and large α·δ; (ε<0, δ)-DP implies (0, δ)-DP, so clamp
  // (dp_accounting's compute_epsilon does the same; Opacus would report the negative number).
  if (best.epsilon < 0) best = { epsilon: 0, order: best.order };
  return best;
}

/** Parameters of a run of the sampled Gaussian mechanism. */
export interface EpsilonForOptions {
  /** Sampling rate per step (cohort size / population for client-level DP). */
  q: number;
  /** Noise std divided by the L2 sensitivity (clip norm). */
  noiseMultiplier: number;
  steps: number;
  delta: number;
  orders?: readonly number[];
}

/** (ε, order) after `steps` steps of the sampled Gaussian mechanism at the given δ. */
export function epsilonFor(options: EpsilonForOptions): PrivacySpent {
  const orders = options.orders ?? DEFAULT_ORDERS;
  checkDelta(options.delta);
  return rdpToEpsilon(orders, computeRdp(options.q, options.noiseMultiplier, options.steps, orders), options.delta);
}

/** Parameters for {@link noiseMultiplierFor}. */
export interface NoiseMultiplierForOptions {
  q: number;
  steps: number;
  delta: number;
  targetEpsilon: number;
  orders?: readonly number[];
  /** Relative precision on σ of the bisection; default 1e-6. */
  tolerance?: number;
}

/**
 * Smallest noise multiplier σ (to within `tolerance`, relative) whose ε after `steps` steps is at
 * most `targetEpsilon`. The σ returned always satisfies the target: bisection keeps the upper end.
 * @example noiseMultiplierFor({ q: 0.01, steps: 1000, delta: 1e-5, targetEpsilon: 2 })
 */
export function noiseMultiplierFor(options: NoiseMultiplierForOptions): number {
  const { q, steps, delta, targetEpsilon } = options;
  const orders = options.orders ?? DEFAULT_ORDERS;
  const tolerance = options.tolerance ?? 1e-6;
  checkSamplingRate(q);
  checkSteps(steps);
  checkDelta(delta);
  checkOrders(orders);
  if (!(targetEpsilon > 0 && Number.isFinite(targetEpsilon))) {
    throw new RangeError(`targetEpsilon must be a finite number > 0, got ${targetEpsilon}`);
  }
  if (!(tolerance > 0 && tolerance < 1)) throw new RangeError(`tolerance must be in (0, 1), got ${tolerance}`);
  // Nothing is released about anyone: no noise needed.
  if (q === 0 || steps === 0) return 0;

  // ε(σ) is non-increasing in σ (each order's RDP is), so bracket then bisect.
  const eps = (sigma: number): number => rdpToEpsilon(orders, computeRdp(q, sigma, steps, orders), delta).epsilon;
  let hi = 1;
  let lo = 0;
  if (eps(hi) > targetEpsilon) {
    do {
      lo = hi;
      hi *= 2;
      if (hi > 2 ** 40) {
        throw new RangeError(
          `no noise multiplier up to 2^40 reaches epsilon ${targetEpsilon} (q=${q}, steps=${steps}, delta=${delta})`,
        );
      }
    } while (eps(hi) > targetEpsilon);
  } else {
    // σ = 1 already suffices: walk down to a σ that does not.
    let probe = 0.5;
    while (probe > 2 ** -30 && eps(probe) <= targetEpsilon) {
      hi = probe;
      probe /= 2;
    }
    lo = probe > 2 ** -30 ? probe : 0;
  }
  while (hi - lo > tolerance * hi) {
    const mid = 0.5 * (lo + hi);
    if (eps(mid) <= targetEpsilon) hi = mid;
    else lo = mid;
  }
  return hi;
}

// ---------------------------------------------------------------------------------------------
// Accountant
// ---------------------------------------------------------------------------------------------

/** A run of `count` identical steps in an accountant's history. */
export interface RdpStep {
  q: number;
  noiseMultiplier: number;
  count: number;
}

/** Schema of {@link RdpAccountant.toJSON}'s output; checked again by {@link RdpAccountant.fromJSON}. */
export const rdpAccountantStateSchema = z.strictObject({
  version: z.literal(1),
  orders: z.array(z.number().gt(1, 'RDP orders must be > 1')).min(1),
  history: z.array(
    z.strictObject({
      q: z.number().min(0).max(1),
      noiseMultiplier: z.number().min(0),
      count: z.number().int().min(0),
    }),
  ),
});

/** Persistable state of an {@link RdpAccountant}. */
export type RdpAccountantState = z.infer<typeof rdpAccountantStateSchema>;

/**
 * Composes heterogeneous sampled-Gaussian steps (e.g. rounds whose cohort size or noise changed)
 * and reports the (ε, δ) spent so far. RDP adds up across steps at each order.
 * @example
 * const acc = new RdpAccountant();
 * acc.step(0.01, 1.1, 100);
 * acc.getEpsilon(1e-5);
 */
export class RdpAccountant {
  readonly orders: readonly number[];
  readonly #rdp: number[];
  readonly #history: RdpStep[] = [];
  // Per-step RDP of the last (q, σ) seen: a training run repeats the same step many times.
  #cached: { q: number; noiseMultiplier: number; rdp: number[] } | undefined;

  constructor(orders: readonly number[] = DEFAULT_ORDERS) {
    checkOrders(orders);
    this.orders = Object.freeze([...orders]);
    this.#rdp = this.orders.map(() => 0);
  }

  /** Records `count` steps with sampling rate q and noise multiplier σ. */
  step(q: number, noiseMultiplier: number, count = 1): this {
    checkSteps(count);
    if (this.#cached?.q !== q || this.#cached.noiseMultiplier !== noiseMultiplier) {
      this.#cached = { q, noiseMultiplier, rdp: computeRdp(q, noiseMultiplier, 1, this.orders) };
    }
    if (count === 0) return this;
    const perStep = this.#cached.rdp;
    for (let i = 0; i < perStep.length; i++) {
      // A step with infinite RDP at some order stays infinite; 0·∞ cannot arise since count ≥ 1.
      this.#rdp[i] = (this.#rdp[i] as number) + count * (perStep[i] as number);
    }
    const last = this.#history.at(-1);
    // Consecutive identical rounds are merged so a long run persists as one entry.
    if (last && last.q === q && last.noiseMultiplier === noiseMultiplier) last.count += count;
    else this.#history.push({ q, noiseMultiplier, count });
    return this;
  }

  /** Steps recorded so far, identical consecutive steps merged. */
  get history(): readonly Readonly<RdpStep>[] {
    return this.#history.map((s) => ({ ...s }));
  }

  /** Total number of steps recorded. */
  get steps(): number {
    return this.#history.reduce((n, s) => n + s.count, 0);
  }

  /** Accumulated RDP at each of {@link orders}. */
  getRdp(): number[] {
    return [...this.#rdp];
  }

  /** ε spent so far at the given δ, with the order that gives it. */
  getPrivacySpent(delta: number): PrivacySpent {
    return rdpToEpsilon(this.orders, this.#rdp, delta);
  }

  /** ε spent so far at the given δ. */
  getEpsilon(delta: number): number {
    return this.getPrivacySpent(delta).epsilon;
  }

  /** The history and orders, from which {@link fromJSON} recomputes the RDP exactly. */
  toJSON(): RdpAccountantState {
    return { version: 1, orders: [...this.orders], history: this.#history.map((s) => ({ ...s })) };
  }

  /** Rebuilds an accountant from {@link toJSON}'s output; throws a ZodError if it is malformed. */
  static fromJSON(state: unknown): RdpAccountant {
    const parsed = rdpAccountantStateSchema.parse(state);
    const accountant = new RdpAccountant(parsed.orders);
    for (const s of parsed.history) accountant.step(s.q, s.noiseMultiplier, s.count);
    return accountant;
  }
}
