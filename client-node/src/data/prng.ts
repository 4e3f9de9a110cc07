/**
 * Seeded pseudo-random numbers for *simulation partitioning only*.
 *
 * This generator is deliberately deterministic: every client process in a simulated federation
 * derives the same data partition from a shared seed, without talking to the others. It is NOT
 * suitable for anything secret — privacy noise, masks and keys use `node:crypto` /
 * `crypto.getRandomValues` elsewhere. (The platform's unseeded generator is never used.)
 *
 * Algorithm: xoshiro128** (Blackman & Vigna), state seeded from the cyrb128 string hash.
 */

/** A seed: numbers are hashed by their decimal string, so `42` and `'42'` give the same stream. */
export type Seed = string | number;

/** A seeded, deterministic random source (see the module note: simulation only). */
export interface Prng {
  /** Raw 32-bit unsigned output. */
  nextUint32(): number;
  /** Uniform in [0, 1). */
  nextFloat(): number;
  /** Uniform integer in [0, n), unbiased; `n` must be an integer in [1, 2^32]. */
  nextInt(n: number): number;
  /** Standard normal variate. */
  nextNormal(): number;
  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T>(array: T[]): T[];
  /** Gamma(shape, 1) variate (Marsaglia–Tsang; shape < 1 via the u^(1/shape) boost). */
  gamma(shape: number): number;
  /** A draw from the symmetric Dirichlet(alpha, …, alpha) on `k` categories; sums to 1. */
  dirichlet(alpha: number, k: number): number[];
}

const TWO_POW_32 = 4294967296;

/** cyrb128: a fast, well-mixed 128-bit non-cryptographic string hash (four 32-bit words). */
function cyrb128(str: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < str.length; i++) {
    const k = str.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * Create a deterministic PRNG from a seed and an optional stream name (so one shared seed can
 * feed independent streams, e.g. the held-out split and the client partition).
 * @example
 * const rng = createPrng('tessera', 'partition');
 * rng.shuffle([0, 1, 2, 3]);
 */
export function createPrng(seed: Seed, stream = ''): Prng {
  if (typeof seed === 'number' && !Number.isFinite(seed)) {
    throw new RangeError(`PRNG seed must be a finite number or a string, got ${seed}`);
  }
  const [a, b, c, d] = cyrb128(stream === '' ? String(seed) : `${String(seed)}\u0000${stream}`);
  let s0 = a;
  let s1 = b;
  let s2 = c;
  let s3 = d;
  // xoshiro's only forbidden state is all zeros.
  if ((s0 | s1 | s2 | s3) === 0) s0 = 0x9e3779b9;

  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };

  const nextFloat = (): number => nextUint32() / TWO_POW_32;
  // Strictly inside (0, 1): safe to take logs of.
  const nextOpenFloat = (): number => (nextUint32() + 0.5) / TWO_POW_32;

  const nextInt = (n: number): number => {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`nextInt(n) needs an integer n in [1, 2^32], got ${n}`);
    }
    // Rejection sampling removes the modulo bias.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const r = nextUint32();
      if (r < limit) return r % n;
    }
  };

  // Marsaglia polar method; the spare variate is kept for the next call.
  let spare: number | undefined;
  const nextNormal = (): number => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    for (;;) {
      const u = 2 * nextFloat() - 1;
      const v = 2 * nextFloat() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const m = Math.sqrt((-2 * Math.log(s)) / s);
        spare = v * m;
        return u * m;
      }
    }
  };

  const shuffle = <T>(array: T[]): T[] => {
    for (let i = array.length - 1; i > 0; i--) {
      const j = nextInt(i + 1);
      const tmp = array[i] as T;
      array[i] = array[j] as T;
      array[j] = tmp;
    }
    return array;
  };

  // log of a Gamma(shape, 1) variate. Working in logs keeps tiny shapes (alpha = 0.01) from
  // underflowing to 0, which would make a Dirichlet draw 0/0.
  const logGamma = (shape: number): number => {
    if (!(shape > 0) || !Number.isFinite(shape)) {
      throw new RangeError(`gamma shape must be a positive finite number, got ${shape}`);
    }
    if (shape < 1) {
      // Boost: Gamma(a) = Gamma(a + 1) * U^(1/a).
      return logGamma(shape + 1) + Math.log(nextOpenFloat()) / shape;
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = nextNormal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = nextOpenFloat();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2) return Math.log(d * v);
      if (Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return Math.log(d * v);
    }
  };

  const gamma = (shape: number): number => Math.exp(logGamma(shape));

  const dirichlet = (alpha: number, k: number): number[] => {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`dirichlet needs an integer k >= 1, got ${k}`);
    const logs = Array.from({ length: k }, () => logGamma(alpha));
    const max = logs.reduce((m, l) => (l > m ? l : m), -Infinity);
    const w = logs.map((l) => Math.exp(l - max));
    const sum = w.reduce((acc, x) => acc + x, 0);
    return w.map((x) => x / sum);
  };

  return { nextUint32, nextFloat, nextInt, nextNormal, shuffle, gamma, dirichlet };
}
